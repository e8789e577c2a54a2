"""``python -m vlm_course.cli RECIPE``: runs any recipe, resumes, fails clearly on bad input."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vlm_course.cli import main, preset_of, run
from vlm_course.recipes import RECIPES

FAST = ["--steps", "2", "--batch-size", "8"]
CLIP = ["clip"]


def test_python_api_returns_model_and_history():
    model, history = run("clip", "tiny", steps=2, batch_size=8)
    assert [r["step"] for r in history] == [0, 1]
    assert all(math_ok(r["loss"]) for r in history)
    assert not model.training
    assert model.encode_image(torch.rand(2, 3, model.config.image_size,
                                         model.config.image_size)).shape == (2, 64)


def math_ok(x):
    return x == x and abs(x) < 1e6


def test_cli_runs_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["clip", "--preset", "tiny", "--out", str(out), "--steps", "3",
                 "--batch-size", "8"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["last_step"] == 2 and run["preset"] == "tiny"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    # a finished run resumed with more steps is refused (the schedule's length is part of it)
    assert main(["clip", "--preset", "tiny", "--out", str(out), "--steps", "4", "--batch-size", "8",
                 "--resume"]) == 1
    assert "training config" in capsys.readouterr().err


def test_unknown_preset_lists_presets(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["clip", "--preset", "huge", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown preset 'huge' for recipe 'clip'" in err and "tiny" in err and "small" in err
    with pytest.raises(ValueError, match="unknown preset 'huge' for recipe 'clip'; known presets"):
        preset_of("clip", "huge")
    with pytest.raises(SystemExit) as exc:
        main(["nope", "--out", str(tmp_path)])
    assert exc.value.code == 2
    known = sorted(RECIPES)
    assert f"unknown recipe 'nope'; known recipes: {', '.join(known)}" in capsys.readouterr().err
    with pytest.raises(ValueError,
                       match=rf"recipe must be one of {re.escape(str(known))}, got 'nope'"):
        preset_of("nope", "tiny")


@pytest.mark.parametrize("flag, value, message", [
    ("--steps", "0", "argument --steps: expected an int >= 1, got '0'"),
    ("--steps", "two", "argument --steps: expected an int >= 1, got 'two'"),
    ("--batch-size", "-8", "argument --batch-size: expected an int >= 1, got '-8'"),
    ("--lr", "0", "argument --lr: expected a finite number > 0, got '0'"),
    ("--lr", "nan", "argument --lr: expected a finite number > 0, got 'nan'"),
    ("--seed", "-1", "argument --seed: expected an int >= 0, got '-1'"),
])
def test_bad_flags_name_the_flag(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as exc:
        main(["clip", "--out", str(tmp_path), flag, value])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_out_and_recipe_constraints(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["clip"])
    assert "--out" in capsys.readouterr().err
    assert main(["clip", "--out", str(tmp_path / "one"), "--steps", "1", "--batch-size", "1"]) == 1
    assert "batch_size must be an int >= 2 (contrastive needs negatives)" in capsys.readouterr().err


def test_any_registered_recipe_runs(tmp_path):
    out = tmp_path / "simclr"
    assert main(["simclr", "--out", str(out), *FAST]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["recipe"] == "simclr" and info["model_config"]["image_size"] == 32
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["clip", "--out", str(blocker / "sub"), *FAST]) == 1
    assert "not writable" in capsys.readouterr().err


def test_existing_checkpoint_mismatch_and_corruption(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["clip", "--out", str(out), *FAST]) == 0
    assert main(["clip", "--out", str(out), *FAST]) == 1                     # would overwrite
    assert "--resume" in capsys.readouterr().err
    assert main(["clip", "--out", str(out), "--preset", "tiny_resnet", *FAST, "--resume"]) == 1
    assert "does not match the model config" in capsys.readouterr().err
    assert main(["clip", "--out", str(tmp_path / "empty"), *FAST, "--resume"]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    ckpt = sorted(out.glob("ckpt-*.safetensors"))[-1]
    data = bytearray(ckpt.read_bytes())
    data[-10] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    assert main(["clip", "--out", str(out), *FAST, "--resume"]) == 1
    assert "corrupted" in capsys.readouterr().err


def test_torchrun_two_gloo_processes_match_one_process(tmp_path):
    """DDP + the gathered loss on 2 CPU ranks = one process on the whole batch."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1"}
    with socket.socket() as probe:                  # a free port, so parallel runs don't clash
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "vlm_course.cli",
           "clip", "--out", str(tmp_path / "ddp"),
           "--device", "cpu", *FAST]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert main(["clip", "--out", str(tmp_path / "single"), "--device", "cpu", *FAST]) == 0

    def losses(folder: Path):
        return [json.loads(ln)["loss"]
                for ln in (folder / "metrics.jsonl").read_text().splitlines()]

    ddp, single = losses(tmp_path / "ddp"), losses(tmp_path / "single")
    assert len(ddp) == len(single) == 2
    assert ddp == pytest.approx(single, rel=1e-5, abs=1e-5)
    run = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert run["world_size"] == 2


def test_resume_accumulates_wall_time_and_finished_resume_keeps_run_json(tmp_path):
    out = tmp_path / "run"
    run("clip", "tiny", steps=4, batch_size=8, out_dir=out, stop_after=2)     # interrupted after 2
    first = json.loads((out / "run.json").read_text())
    assert first["last_step"] == 1
    assert first["wall_time_s_total"] == first["wall_time_s_this_call"] > 0
    _, rest = run("clip", "tiny", steps=4, batch_size=8, out_dir=out, resume=True)
    assert [r["step"] for r in rest] == [2, 3]
    second = json.loads((out / "run.json").read_text())
    assert second["last_step"] == 3
    assert second["wall_time_s_total"] == pytest.approx(
        first["wall_time_s_total"] + second["wall_time_s_this_call"])
    before = (out / "run.json").read_bytes()
    _, none = run("clip", "tiny", steps=4, batch_size=8, out_dir=out, resume=True)   # already done
    assert none == []
    assert (out / "run.json").read_bytes() == before     # not overwritten with a ~0 s wall time
