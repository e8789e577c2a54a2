"""The one training loop: any objective, exact resume (CLIP, SimCLR), shards by rank, stop_after,
non-finite guard, CLIP's clamp after each step, metrics, and errors that name the argument."""

import dataclasses
import json
import math

import pytest
import torch
from torch import nn

from vlm_course.models.clip import CLIP, CLIPConfig
from vlm_course.models.text_encoder import TextConfig
from vlm_course.models.vit import VisionTransformer, ViTConfig
from vlm_course.objectives.contrastive import CLIP_MAX_LOGIT_SCALE
from vlm_course.recipes import clip as clip_recipe
from vlm_course.recipes import simclr as simclr_recipe
from vlm_course.training import loop
from vlm_course.training.checkpoint import CheckpointError
from vlm_course.training.loop import TrainConfig, to_device, train
from vlm_course.world import ShapeWorld, WorldConfig

VOCAB = clip_recipe.shapeworld_vocab(WorldConfig.tiny())
CFG = TrainConfig(steps=6, batch_size=8, lr=3e-3, warmup_steps=2, checkpoint_every=2)


def model_config(layers: int = 1) -> CLIPConfig:
    return CLIPConfig.build(16, ViTConfig(image_size=32, patch_size=8, width=16, layers=layers,
                                          heads=2),
                            TextConfig(width=16, layers=1, heads=2, context_length=24), VOCAB)


@pytest.fixture(scope="module")
def world():
    return ShapeWorld(WorldConfig.tiny())


def fresh(seed=0):
    torch.manual_seed(seed)
    return CLIP(model_config())


def clip_run(model, world, config, out=None, **kwargs):
    return train(model, clip_recipe.batches(world, model, config), clip_recipe.step, config, out,
                 after_step=clip_recipe.after_step, **kwargs)


# ------------------------------------------------------------------ any objective
class Regression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)


def regression_batches(step, rank, world_size):
    g = torch.Generator().manual_seed(step)
    x = torch.randn(16, 3, generator=g)
    return {"x": x, "y": x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3}


def regression_step(model, batch):
    loss = ((model.linear(batch["x"]) - batch["y"]) ** 2).mean()
    return loss, {"bias": float(model.linear.bias.detach())}


def test_a_toy_regression_trains_with_the_same_loop():
    torch.manual_seed(0)
    model = Regression()
    cfg = TrainConfig(steps=150, batch_size=16, lr=0.05, weight_decay=0.0, warmup_steps=5)
    hist = train(model, regression_batches, regression_step, cfg)
    assert [r["step"] for r in hist] == list(range(150))
    assert hist[-1]["loss"] < 1e-3 * hist[0]["loss"], (hist[0]["loss"], hist[-1]["loss"])
    torch.testing.assert_close(model.linear.weight.detach(), torch.tensor([[1.0, -2.0, 0.5]]),
                               atol=0.02, rtol=0)
    assert "bias" in hist[0] and "data_seconds" in hist[0]
    assert hist[0]["lr"] == pytest.approx(0.05 / 5)                 # warmup's first step


# ------------------------------------------------------------------ exact resume
def test_clip_resume_continues_exactly(tmp_path, world):
    full = fresh()
    hist_full = clip_run(full, world, CFG, tmp_path / "full")
    part = fresh()
    first = clip_run(part, world, CFG, tmp_path / "part", stop_after=3)   # "interrupted" after 3
    assert [r["step"] for r in first] == [0, 1, 2]
    resumed = fresh(seed=99)              # a different init: everything must come from the file
    rest = clip_run(resumed, world, CFG, tmp_path / "part", resume=True)
    assert [r["step"] for r in rest] == [3, 4, 5]
    assert [r["loss"] for r in first + rest] == [r["loss"] for r in hist_full]   # bit-equal
    for (n, p), (_, q) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=n)
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == list(range(6))


def test_simclr_resume_continues_exactly(tmp_path):
    world = ShapeWorld(WorldConfig(canvas=32, max_objects=1))
    cfg = TrainConfig(steps=4, batch_size=8, lr=2e-3, warmup_steps=1, checkpoint_every=2)

    def encoder(seed):
        torch.manual_seed(seed)
        return VisionTransformer(ViTConfig(image_size=32, patch_size=8, width=16, layers=1,
                                           heads=2, output_dim=16))

    def run(model, out, **kwargs):
        return train(model, simclr_recipe.batches(world, model, cfg), simclr_recipe.step, cfg,
                     out, **kwargs)

    full = encoder(0)
    hist_full = run(full, tmp_path / "full")
    part = encoder(0)
    first = run(part, tmp_path / "part", stop_after=2)
    resumed = encoder(7)
    rest = run(resumed, tmp_path / "part", resume=True)
    assert [r["step"] for r in rest] == [2, 3]
    assert [r["loss"] for r in first + rest] == [r["loss"] for r in hist_full]
    for (n, p), (_, q) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=n)
    wider = VisionTransformer(ViTConfig(image_size=32, patch_size=8, width=32, layers=1, heads=2,
                                        output_dim=16))
    with pytest.raises(CheckpointError, match="model config"):   # a ViT's cfg is checked too
        run(wider, tmp_path / "part", resume=True)


def test_resume_refuses_other_configs(tmp_path, world):
    clip_run(fresh(), world, dataclasses.replace(CFG, steps=2), tmp_path)
    with pytest.raises(CheckpointError, match="training config"):
        clip_run(fresh(), world, dataclasses.replace(CFG, steps=2, lr=1e-2), tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="model config"):
        clip_run(CLIP(model_config(layers=2)), world, dataclasses.replace(CFG, steps=2), tmp_path,
                 resume=True)
    with pytest.raises(ValueError, match="resume=True needs out_dir"):
        clip_run(fresh(), world, CFG, None, resume=True)


# ------------------------------------------------------------------ ranks and stop_after
def test_every_rank_gets_its_own_shard(tmp_path, monkeypatch, world):
    """With a fake rank 1 of 2 the loop asks the batch source for rank 1's shard and, not being
    rank 0, writes nothing."""
    monkeypatch.setattr(loop, "rank_and_world_size", lambda: (1, 2))
    calls = []

    def batches(step, rank, world_size):
        calls.append((step, rank, world_size))
        return regression_batches(step, rank, world_size)

    torch.manual_seed(0)
    train(Regression(), batches, regression_step, dataclasses.replace(CFG, steps=3),
          tmp_path / "rank1")
    assert calls == [(0, 1, 2), (1, 1, 2), (2, 1, 2)]
    assert not (tmp_path / "rank1").exists()
    source = clip_recipe.batches(world, fresh(), CFG)
    assert list(source.indices(3, 1, 2)) == list(range(28, 32))      # second half of step 3
    whole, _ = source(3)
    half, tokens = source(3, 1, 2)
    torch.testing.assert_close(half, whole[4:], rtol=0, atol=0)
    assert tokens["input_ids"].shape[0] == 4


def test_stop_after_ends_the_call_early(world):
    calls = []

    def batches(step, rank, world_size):
        calls.append(step)
        return regression_batches(step, rank, world_size)

    hist = train(Regression(), batches, regression_step, CFG, stop_after=2)
    assert [r["step"] for r in hist] == [0, 1] and calls == [0, 1]
    assert len(train(Regression(), batches, regression_step, CFG, stop_after=100)) == CFG.steps


# ------------------------------------------------------------------ guard and clamp
def test_non_finite_guard_skips_then_gives_up(world):
    model = fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = {"n": 0}

    def once_nan(m, batch):
        calls["n"] += 1
        loss, metrics = clip_recipe.step(m, batch)
        return (loss * float("nan") if calls["n"] == 1 else loss), metrics

    cfg = dataclasses.replace(CFG, steps=2)
    hist = train(model, clip_recipe.batches(world, model, cfg), once_nan, cfg)
    assert [r["skipped"] for r in hist] == [1, 1] and math.isnan(hist[0]["loss"])
    assert math.isnan(hist[0]["grad_norm"]) and math.isfinite(hist[1]["grad_norm"])

    model = fresh()
    with pytest.raises(FloatingPointError, match="3 steps in a row"):
        train(model, clip_recipe.batches(world, model, CFG),
              lambda m, b: (clip_recipe.step(m, b)[0] * float("inf"), {}),
              dataclasses.replace(CFG, max_bad_steps=3))
    for k, v in model.state_dict().items():      # nothing was updated
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_logit_scale_clamped_after_each_step(world):
    """A step function that pushes logit_scale up hard: without the clamp it passes log(100)
    after the first step (checked), with CLIP's after_step it never does."""
    cap = CLIP_MAX_LOGIT_SCALE

    def push_up(m, batch):
        loss, metrics = clip_recipe.step(m, batch)
        return loss - 1000.0 * m.logit_scale, metrics   # dominates the CLIP gradient on the scale

    def run(after):
        model = fresh()
        with torch.no_grad():
            model.logit_scale.fill_(cap - 1e-3)
        seen = []

        def after_step(m):
            if after is not None:
                after(m)
            seen.append(float(m.logit_scale.detach()))

        cfg = dataclasses.replace(CFG, steps=3, lr=0.1, warmup_steps=0)
        hist = train(model, clip_recipe.batches(world, model, cfg), push_up, cfg,
                     after_step=after_step)
        return seen, hist

    unclamped, _ = run(None)
    assert all(v > cap + 0.01 for v in unclamped), unclamped       # the push really overshoots
    clamped, hist = run(clip_recipe.after_step)
    assert len(clamped) == 3 and all(v <= cap + 1e-6 for v in clamped), clamped
    assert clamped[0] == pytest.approx(cap, abs=1e-6)               # the first step hit the cap
    assert all(r["logit_scale"] <= 100 + 1e-3 for r in hist)


# ------------------------------------------------------------------ metrics file
def test_resume_rewrites_metrics_atomically(tmp_path, world, monkeypatch):
    import os

    from vlm_course.training import checkpoint

    clip_run(fresh(), world, CFG, tmp_path, stop_after=3)    # checkpoint at step 2, metrics 0..2
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
        clip_run(fresh(), world, CFG, tmp_path, resume=True)
    assert metrics.read_text() == before       # a plain write_text would have truncated it
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)
    clip_run(fresh(), world, CFG, tmp_path, resume=True)
    assert [json.loads(ln)["step"] for ln in metrics.read_text().splitlines()] == list(range(6))
    assert not (tmp_path / "metrics.jsonl.tmp").exists()


def test_checkpoints_are_written_when_due(tmp_path):
    cfg = dataclasses.replace(CFG, steps=5, checkpoint_every=2)
    train(Regression(), regression_batches, regression_step, cfg, tmp_path, stop_after=3)
    pointer = json.loads((tmp_path / "latest.json").read_text())
    assert pointer["step"] == 3                  # the end of this call, not only multiples of 2
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.safetensors")) == [
        "ckpt-0000002.safetensors", "ckpt-0000003.safetensors"]
    train(Regression(), regression_batches, regression_step, cfg, tmp_path, resume=True)
    assert json.loads((tmp_path / "latest.json").read_text())["step"] == 5


# ------------------------------------------------------------------ helpers and errors
def test_to_device_moves_nested_batches():
    batch = {"a": torch.ones(2), "b": [torch.zeros(1), (torch.ones(1), "text")], "c": 3}
    out = to_device(batch, torch.device("meta"))
    assert out["a"].device.type == "meta" and out["b"][0].device.type == "meta"
    assert isinstance(out["b"][1], tuple) and out["b"][1][0].device.type == "meta"
    assert out["b"][1][1] == "text" and out["c"] == 3


def test_train_config_errors():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0.0)


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "steps must be an int >= 1, got 0"),
    ("steps", 2.0, "steps must be an int >= 1, got 2.0"),
    ("batch_size", 0, "batch_size must be an int >= 1, got 0"),
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


def test_train_config_edge_values_accepted():
    TrainConfig(min_lr_ratio=0.0, weight_decay=0.0, warmup_steps=0, batch_size=1)
    TrainConfig(min_lr_ratio=1.0, steps=2, warmup_steps=100)    # warmup may outlast a short run
    cfg = dataclasses.replace(CFG, steps=2, grad_clip=None)     # None: no clipping
    hist = train(Regression(), regression_batches, regression_step, cfg)
    assert len(hist) == 2 and all(math.isfinite(r["loss"]) for r in hist)


@pytest.mark.parametrize("args, kwargs, error, message", [
    (("model",), {}, TypeError, "model must be a torch.nn.Module, got str"),
    ((nn.ReLU(),), {}, ValueError, "model must have at least one parameter"),
    ((None, 3), {}, TypeError, "batches must be callable, got int"),
    ((None, None, "step"), {}, TypeError, "step_fn must be callable, got str"),
    ((None, None, None, {"steps": 2}), {}, TypeError, "config must be a TrainConfig, got dict"),
    ((), {"stop_after": 0}, ValueError, "stop_after must be None or an int >= 1, got 0"),
    ((), {"stop_after": True}, ValueError, "stop_after must be None or an int >= 1, got True"),
    ((), {"after_step": 1}, TypeError, "after_step must be None or callable, got int"),
])
def test_train_argument_errors_name_the_argument(args, kwargs, error, message):
    defaults = [Regression(), regression_batches, regression_step, CFG]
    call = [a if a is not None else d for a, d in zip(args, defaults, strict=False)]
    call += defaults[len(call):]
    with pytest.raises(error, match=message):
        train(*call, **kwargs)


@pytest.mark.parametrize("bad, message", [
    (lambda m, b: 1.0, "step_fn must return \\(loss: 0-d tensor, metrics: dict\\), got float"),
    (lambda m, b: (m.linear(b["x"]), {}), "got tuple with loss shape \\(16, 1\\)"),
    (lambda m, b: (m.linear(b["x"]).mean(), None), "step_fn must return"),
])
def test_step_fn_must_return_a_scalar_loss_and_metrics(bad, message):
    with pytest.raises(TypeError, match=message):
        train(Regression(), regression_batches, bad, CFG)


# ------------------------------------------------------------------ mutation-testing survivors
def test_checkpoints_only_when_due(tmp_path, monkeypatch):
    """Every checkpoint_every steps and at the end, not after every step."""
    saved = []
    real = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint",
                        lambda out, step, *a, **k: saved.append(step) or real(out, step, *a, **k))
    cfg = dataclasses.replace(CFG, steps=5, checkpoint_every=4)
    train(Regression(), regression_batches, regression_step, cfg, tmp_path)
    assert saved == [4, 5]


def test_skipped_steps_are_counted_across_a_resume(tmp_path):
    calls = {"n": 0}

    def nan_first(model, batch):
        calls["n"] += 1
        loss, metrics = regression_step(model, batch)
        return (loss * float("nan") if calls["n"] == 1 else loss), metrics

    cfg = dataclasses.replace(CFG, steps=4, checkpoint_every=2)
    first = train(Regression(), regression_batches, nan_first, cfg, tmp_path, stop_after=2)
    assert [r["skipped"] for r in first] == [1, 1]
    rest = train(Regression(), regression_batches, regression_step, cfg, tmp_path, resume=True)
    assert [r["skipped"] for r in rest] == [1, 1]              # carried over from the checkpoint


def test_bf16_autocast_on_cuda_only_and_config_dicts():
    assert isinstance(loop._autocast(torch.device("cpu")), type(loop.contextlib.nullcontext()))
    import warnings

    with warnings.catch_warnings():          # "CUDA is not available" on a CPU-only machine
        warnings.simplefilter("ignore")
        ctx = loop._autocast(torch.device("cuda"))
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16

    class WithToDict:
        def to_dict(self):
            return {"width": 3, "names": ("a", "b")}

    assert loop.json_config(WithToDict()) == {"width": 3, "names": ["a", "b"]}
    assert loop.json_config(TrainConfig(steps=3))["steps"] == 3
    assert loop.json_config(None) is None


def test_schedule_clipping_and_timing_reach_each_step(tmp_path):
    """The records' lr is the configured warmup + cosine (min_lr_ratio included), clipping
    reaches the optimiser, times are durations, a fresh nested out_dir is created."""
    from vlm_course.training.optim import lr_at

    cfg = TrainConfig(steps=6, batch_size=16, lr=0.1, warmup_steps=2, min_lr_ratio=0.5,
                      weight_decay=0.0)
    hist = train(Regression(), regression_batches, regression_step, cfg,
                 tmp_path / "a" / "b", stop_after=1)
    hist += train(Regression(), regression_batches, regression_step, cfg, tmp_path / "a" / "b",
                  resume=True)
    assert [r["lr"] for r in hist] == [lr_at(s, 0.1, 2, 6, 0.5) for s in range(6)]
    assert all(0 <= r["data_seconds"] <= r["seconds"] < 600 for r in hist)

    def first_update(grad_clip):
        torch.manual_seed(0)
        model = Regression()
        before = model.linear.weight.detach().clone()
        one = dataclasses.replace(cfg, steps=1, grad_clip=grad_clip)
        train(model, regression_batches, regression_step, one)
        return float((model.linear.weight.detach() - before).abs().max())

    assert first_update(1e-9) < 0.2 * first_update(None)     # clipped far below Adam's eps


def test_bad_step_counting(world):
    """Skips are counted one by one, a finite step resets the run of bad steps, and a run that
    ends on a non-finite loss fails."""
    def nan_at(*steps):
        seen = iter(range(100))

        def step_fn(model, batch):
            loss, metrics = regression_step(model, batch)
            return (loss * float("nan") if next(seen) in steps else loss), metrics
        return step_fn

    cfg = dataclasses.replace(CFG, steps=6, max_bad_steps=2)
    hist = train(Regression(), regression_batches, nan_at(0, 2, 4), cfg)
    assert [r["skipped"] for r in hist] == [1, 1, 2, 2, 3, 3]
    with pytest.raises(FloatingPointError, match="ended on a non-finite loss"):
        train(Regression(), regression_batches, nan_at(2), dataclasses.replace(CFG, steps=3))


def test_stop_after_one_and_unwrap():
    assert len(train(Regression(), regression_batches, regression_step, CFG, stop_after=1)) == 1
    inner = Regression()
    wrapper = nn.Module()
    wrapper.module = inner
    assert loop.unwrap(wrapper) is inner and loop.unwrap(inner) is inner
