"""Optimiser groups, the LR schedule and the checkpoint files (no model or world needed)."""

import json
import math

import pytest
import torch
from torch import nn

from vlm_course.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    read_pointer,
    save_checkpoint,
    sha256_of,
)
from vlm_course.training.data import scene_indices
from vlm_course.training.optim import build_optimizer, lr_at, param_groups


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(5, 4)
        self.fc = nn.Linear(4, 3)
        self.ln = nn.LayerNorm(3)
        self.proj = nn.Parameter(torch.randn(3, 2))
        self.logit_scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, ids):
        return self.ln(self.fc(self.token_embedding(ids))) @ self.proj * self.logit_scale.exp()


def test_param_groups_decay_only_matrices():
    groups = param_groups(Toy(), 0.1)
    assert sorted(groups[0]["names"]) == ["fc.weight", "proj"]
    assert sorted(groups[1]["names"]) == ["fc.bias", "ln.bias", "ln.weight", "logit_scale",
                                          "token_embedding.weight"]
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups(Toy(), -1)
    with pytest.raises(ValueError, match="lr"):
        build_optimizer(Toy(), lr=0)


def test_lr_schedule_warmup_then_cosine():
    lrs = [lr_at(s, 1.0, 10, 110, min_ratio=0.1) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5)          # half-way: cosine at pi/2
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lr_at(500, 1.0, 10, 110, 0.1) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        lr_at(0, 1.0, 10, 0)


def test_scene_indices_shard_the_global_batch():
    assert scene_indices(3, 8) == range(24, 32)
    assert list(scene_indices(3, 8, rank=1, world_size=2)) == list(range(28, 32))
    shards = [i for r in range(4) for i in scene_indices(5, 8, rank=r, world_size=4)]
    assert shards == list(scene_indices(5, 8))        # the ranks together: the whole batch
    with pytest.raises(ValueError, match="batch_size=7 must split evenly over world_size=2"):
        scene_indices(0, 7, rank=0, world_size=2)
    with pytest.raises(ValueError, match=r"rank must be an int in \[0, world_size=2\), got 2"):
        scene_indices(0, 8, rank=2, world_size=2)
    for name, kwargs in (("step", {"step": -1}), ("batch_size", {"batch_size": 0}),
                         ("world_size", {"world_size": 0})):
        args = {"step": 0, "batch_size": 8, **kwargs}
        with pytest.raises(ValueError, match=f"{name} must be an int >= "):
            scene_indices(**args)


def _trained_toy(steps=3):
    torch.manual_seed(0)
    model = Toy()
    opt = build_optimizer(model, lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        model(torch.tensor([[1, 2], [3, 4]])).square().mean().backward()
        opt.step()
    return model, opt


def test_checkpoint_roundtrip_restores_model_optimizer_and_rng(tmp_path):
    model, opt = _trained_toy()
    path = save_checkpoint(tmp_path, 3, model, opt, model_config={"w": 4}, extra={"next_step": 3})
    expected_draw = torch.rand(3)
    assert path.exists() and not list(tmp_path.glob("*.tmp"))
    pointer = read_pointer(tmp_path)
    assert pointer["sha256"] == sha256_of(path) and pointer["step"] == 3
    assert json.loads((tmp_path / "latest.json").read_text())["extra"]["next_step"] == 3

    torch.manual_seed(123)
    fresh = Toy()
    fresh_opt = build_optimizer(fresh, lr=1e-2)
    info = load_checkpoint(tmp_path, fresh, fresh_opt, model_config={"w": 4})
    assert info["step"] == 3
    torch.testing.assert_close(torch.rand(3), expected_draw)      # RNG restored
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    s1, s2 = opt.state_dict(), fresh_opt.state_dict()
    for k in s1["state"]:
        for name in s1["state"][k]:
            torch.testing.assert_close(s1["state"][k][name], s2["state"][k][name], rtol=0, atol=0)
    assert s1["param_groups"] == s2["param_groups"]


def test_checkpoint_keeps_newest_and_errors(tmp_path):
    model, opt = _trained_toy()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, model, opt, model_config={"w": 4}, keep=2)
    assert [p.name for p in sorted(tmp_path.glob("ckpt-*"))] == ["ckpt-0000002.safetensors",
                                                                 "ckpt-0000003.safetensors"]
    with pytest.raises(CheckpointError, match="does not match the model config"):
        load_checkpoint(tmp_path, Toy(), model_config={"w": 8})
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "nowhere", Toy())

    class Other(Toy):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 5)
            self.ln = nn.LayerNorm(5)
            self.proj = nn.Parameter(torch.randn(5, 2))
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(tmp_path, Other())

    data = bytearray((tmp_path / "ckpt-0000003.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "ckpt-0000003.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(tmp_path, Toy())
    (tmp_path / "latest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(tmp_path, Toy())
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path, -1, model)
    with pytest.raises(ValueError, match="keep must be an int >= 1"):
        save_checkpoint(tmp_path, 4, model, keep=0)
    assert math.isfinite(float(model.logit_scale.detach()))


def test_optimizer_receives_its_hyper_parameters():
    model = Toy()
    default = build_optimizer(model, lr=0.25)
    for group in default.param_groups:
        assert group["lr"] == 0.25 and group["betas"] == (0.9, 0.98) and group["eps"] == 1e-6
    assert [g["weight_decay"] for g in default.param_groups] == [0.1, 0.0]
    custom = build_optimizer(model, lr=0.5, weight_decay=0.0, betas=(0.8, 0.9), eps=1e-8)
    for group in custom.param_groups:
        assert group["lr"] == 0.5 and group["betas"] == (0.8, 0.9) and group["eps"] == 1e-8
        assert group["weight_decay"] == 0.0 and "names" not in group


def test_frozen_parameters_are_skipped_not_the_rest():
    model = Toy()
    model.token_embedding.weight.requires_grad_(False)  # the first parameter is frozen
    groups = param_groups(model, 0.0)                     # zero decay is allowed
    names = groups[0]["names"] + groups[1]["names"]
    assert "token_embedding.weight" not in names
    assert sorted(names) == ["fc.bias", "fc.weight", "ln.bias", "ln.weight", "logit_scale", "proj"]


def test_lr_schedule_edges():
    assert lr_at(109, 1.0, 10, 110) == pytest.approx(0.5 * (1 + math.cos(math.pi * 99 / 100)))
    assert lr_at(500, 2.0, 10, 110) == 0.0                 # default min_ratio is 0
    assert lr_at(6, 1.0, 5, 5, min_ratio=0.2) == pytest.approx(0.2)  # warmup == run: span 1
    assert lr_at(0, 1.0, 0, 4) == 1.0                      # no warmup: start at base_lr


def test_checkpoint_files_layout_and_retention(tmp_path):
    from safetensors import safe_open

    from vlm_course.training.checkpoint import atomic_save_safetensors, config_differences

    model, opt = _trained_toy()
    nested = tmp_path / "runs" / "a" / "b"                      # parents are created
    save_checkpoint(nested, 0, model, opt)                      # step 0 is a valid step
    pointer = read_pointer(nested)
    assert pointer["step"] == 0 and pointer["format_version"] == 1
    text = (nested / "latest.json").read_text()
    assert text.startswith('{\n  "extra": {},\n  "file": ')     # sorted keys, indent 2
    for step in (1, 2, 3):
        save_checkpoint(nested, step, model, opt)               # default keep=2
    assert sorted(p.name for p in nested.glob("ckpt-*")) == ["ckpt-0000002.safetensors",
                                                             "ckpt-0000003.safetensors"]
    save_checkpoint(nested, 4, model, opt, keep=1)
    assert [p.name for p in nested.glob("ckpt-*")] == ["ckpt-0000004.safetensors"]
    atomic_save_safetensors({"w": torch.ones(2)}, tmp_path / "m.safetensors", {"note": "hi"})
    with safe_open(str(tmp_path / "m.safetensors"), "pt") as handle:
        assert handle.metadata() == {"note": "hi"}
    assert config_differences({"a": 1}, {"a": 1, "b": 2}) == [
        "b: checkpoint has '<absent>', current config has 2"]
    assert config_differences({"a": 1, "c": 3}, {"a": 1}) == [
        "c: checkpoint has 3, current config has '<absent>'"]
    assert config_differences(None, None) == []


def test_set_lr_and_inclusive_bounds():
    from vlm_course.training.optim import set_lr

    opt = build_optimizer(Toy(), lr=0.1, betas=(0.0, 0.5))  # beta 0 is allowed (no momentum)
    set_lr(opt, 0.0)                                           # lr 0 is allowed for set_lr
    assert [g["lr"] for g in opt.param_groups] == [0.0, 0.0]
    set_lr(opt, 0.3)
    assert [g["lr"] for g in opt.param_groups] == [0.3, 0.3]
    assert lr_at(50, 1.0, 0, 10, min_ratio=1.0) == 1.0        # min_ratio 1: a constant rate
