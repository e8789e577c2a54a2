"""The training loop: exact resume, non-finite guard, logit-scale clamp, metrics, config checks."""

import dataclasses
import json
import math

import pytest
import torch

from vlm_course.models.clip import CLIP, CLIPConfig
from vlm_course.models.text_encoder import TextConfig
from vlm_course.models.vit import ViTConfig
from vlm_course.objectives.contrastive import clip_loss
from vlm_course.training.checkpoint import CheckpointError
from vlm_course.training.loop import TrainConfig, clamp_logit_scale, evaluate, train
from vlm_course.world import ShapeWorld, WorldConfig


def model_config() -> CLIPConfig:
    return CLIPConfig.for_world(16, ViTConfig(image_size=32, patch_size=8, width=16, layers=1,
                                              heads=2),
                                TextConfig(width=16, layers=1, heads=2, context_length=24))


@pytest.fixture(scope="module")
def world():
    return ShapeWorld(WorldConfig.tiny())


def fresh(seed=0):
    torch.manual_seed(seed)
    return CLIP(model_config())


CFG = TrainConfig(steps=6, batch_size=8, lr=3e-3, warmup_steps=2, checkpoint_every=2)


def test_resume_continues_exactly(tmp_path, world):
    full = fresh()
    hist_full = train(full, world, CFG, tmp_path / "full")

    part = fresh()
    first = train(part, world, CFG, tmp_path / "part", stop_after=3)   # "interrupted" after 3
    assert [r["step"] for r in first] == [0, 1, 2]
    resumed = fresh(seed=99)              # a different init: everything must come from the file
    rest = train(resumed, world, CFG, tmp_path / "part", resume=True)
    assert [r["step"] for r in rest] == [3, 4, 5]
    losses = [r["loss"] for r in first + rest]
    assert losses == [r["loss"] for r in hist_full]               # bit-equal losses
    for (n, p), (_, q) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=n)
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == list(range(6))


def test_resume_refuses_other_configs(tmp_path, world):
    train(fresh(), world, dataclasses.replace(CFG, steps=2), tmp_path)
    with pytest.raises(CheckpointError, match="training config"):
        train(fresh(), world, dataclasses.replace(CFG, steps=2, lr=1e-2), tmp_path, resume=True)
    other = CLIPConfig.for_world(16, ViTConfig(image_size=32, patch_size=8, width=16, layers=2,
                                               heads=2),
                                 TextConfig(width=16, layers=1, heads=2, context_length=24))
    with pytest.raises(CheckpointError, match="model config"):
        train(CLIP(other), world, dataclasses.replace(CFG, steps=2), tmp_path, resume=True)
    with pytest.raises(ValueError, match="out_dir"):
        train(fresh(), world, CFG, None, resume=True)


def test_non_finite_guard_skips_then_gives_up(world):
    model = fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = {"n": 0}

    def once_nan(img, txt, scale):
        calls["n"] += 1
        loss = clip_loss(img, txt, scale)
        return loss * float("nan") if calls["n"] == 1 else loss

    hist = train(model, world, dataclasses.replace(CFG, steps=2), None, loss_fn=once_nan)
    assert [r["skipped"] for r in hist] == [1, 1] and math.isnan(hist[0]["loss"])

    model = fresh()
    with pytest.raises(FloatingPointError, match="3 steps in a row"):
        train(model, world, dataclasses.replace(CFG, max_bad_steps=3), None,
              loss_fn=lambda a, b, s: clip_loss(a, b, s) * float("inf"))
    for k, v in model.state_dict().items():      # nothing was updated
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_logit_scale_clamped_after_each_step_and_evaluate(world):
    model = fresh()
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    clamp_logit_scale(model)
    assert float(model.logit_scale.detach()) == pytest.approx(math.log(100))
    hist = train(model, world, dataclasses.replace(CFG, steps=2, lr=1.0), None)
    assert all(r["logit_scale"] <= 100 + 1e-4 for r in hist)
    out = evaluate(model, world, n=20, batch_size=8)
    assert math.isfinite(out["loss"]) and 0 <= out["i2t_top1"] <= 1


def test_training_lowers_the_loss(world):
    model = fresh()
    cfg = TrainConfig(steps=40, batch_size=16, lr=3e-3, warmup_steps=5)
    before = evaluate(model, world, n=64, batch_size=16)["loss"]
    train(model, world, cfg, None)
    after = evaluate(model, world, n=64, batch_size=16)["loss"]
    assert after < before - 0.1, (before, after)


def test_train_config_errors():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=1)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0.0)


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "steps must be an int >= 1, got 0"),
    ("steps", 2.0, "steps must be an int >= 1, got 2.0"),
    ("batch_size", 1, r"batch_size must be an int >= 2 \(contrastive needs negatives\), got 1"),
    ("checkpoint_every", 0, "checkpoint_every must be an int >= 1, got 0"),
    ("max_bad_steps", True, "max_bad_steps must be an int >= 1, got True"),
    ("warmup_steps", -1, "warmup_steps must be an int >= 0, got -1"),
    ("seed", 1.5, "seed must be an int, got 1.5"),
    ("lr", -1e-3, "lr must be a finite number > 0, got -0.001"),
    ("lr", float("inf"), "lr must be a finite number > 0, got inf"),
    ("weight_decay", -0.1, "weight_decay must be a finite number >= 0, got -0.1"),
    ("min_lr_ratio", 1.5, r"min_lr_ratio must be a finite number in \[0, 1\], got 1.5"),
    ("min_lr_ratio", -0.1, r"min_lr_ratio must be a finite number in \[0, 1\], got -0.1"),
    ("grad_clip", 0.0,
     r"grad_clip must be a finite number > 0 \(or None for no clipping\), got 0.0"),
    ("grad_clip", float("nan"), "grad_clip must be a finite number > 0"),
    ("grad_clip", "1", "grad_clip must be a finite number > 0"),
])
def test_train_config_field_errors(field, value, message):
    with pytest.raises(ValueError, match="TrainConfig." + message):
        TrainConfig(**{field: value})


def test_train_config_edge_values_accepted(world):
    TrainConfig(min_lr_ratio=0.0, weight_decay=0.0, warmup_steps=0)
    TrainConfig(min_lr_ratio=1.0, steps=2, warmup_steps=100)    # warmup may outlast a short run
    cfg = dataclasses.replace(CFG, steps=2, grad_clip=None)     # None: no clipping
    hist = train(fresh(), world, cfg, None)
    assert len(hist) == 2 and all(math.isfinite(r["loss"]) for r in hist)


def test_evaluate_and_train_argument_errors(world):
    model = fresh()
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        evaluate(model, world, n=0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        evaluate(model, world, n=4, batch_size=0)
    with pytest.raises(ValueError, match="stop_after must be None or an int >= 1, got 0"):
        train(model, world, CFG, None, stop_after=0)


def test_resume_rewrites_metrics_atomically(tmp_path, world, monkeypatch):
    import os

    from vlm_course.training import checkpoint

    train(fresh(), world, CFG, tmp_path, stop_after=3)     # checkpoint at step 2, metrics 0..2
    metrics = tmp_path / "metrics.jsonl"
    assert [json.loads(ln)["step"] for ln in metrics.read_text().splitlines()] == [0, 1, 2]
    with open(metrics, "a") as handle:      # a record written after the last checkpoint
        handle.write(json.dumps({"step": 3, "loss": 0.0}) + "\n")
    before = metrics.read_text()
    real_replace = os.replace

    def crash_on_metrics(src, dst):
        if os.fspath(dst).endswith("metrics.jsonl"):
            raise OSError("simulated crash before the rename")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash_on_metrics)
    with pytest.raises(OSError, match="simulated crash"):
        train(fresh(), world, CFG, tmp_path, resume=True)
    assert metrics.read_text() == before       # a plain write_text would have truncated it
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)
    train(fresh(), world, CFG, tmp_path, resume=True)
    assert [json.loads(ln)["step"] for ln in metrics.read_text().splitlines()] == list(range(6))
    assert not (tmp_path / "metrics.jsonl.tmp").exists()
