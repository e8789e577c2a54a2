"""The contrastive pre-training loop as plain functions: ``train_step``, ``evaluate``, ``train``.

Chapter 04 (pre-training a tiny CLIP on ShapeWorld).  Recipe after CLIP (Radford et al. 2021):
AdamW with decay on weight matrices only, linear warmup then cosine decay, gradient clipping, bf16
autocast on CUDA (CPU stays fp32), the learnable ``logit_scale`` clamped to ``<= log(100)`` after
every optimiser step, a guard that skips a step whose loss is not finite (and gives up after
``max_bad_steps`` in a row), metrics appended to ``out/metrics.jsonl`` and atomic checkpoints every
``checkpoint_every`` steps.  The batch of step ``s`` is a pure function of ``(seed, s)``
(:func:`vlm_course.training.data.clip_batch`), so a resumed run continues *exactly*.

The model is anything whose ``forward(images, tokens)`` returns ``(image_emb, text_emb,
logit_scale)`` and that has ``tokenize``, ``logit_scale`` and ``config`` — the course's
:class:`vlm_course.models.clip.CLIP`, possibly wrapped in ``DistributedDataParallel``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from vlm_course.objectives.contrastive import CLIP_MAX_LOGIT_SCALE, clip_loss
from vlm_course.settings import progress
from vlm_course.training.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    config_differences,
    load_checkpoint,
    save_checkpoint,
)
from vlm_course.training.data import clip_batch, clip_batch_at
from vlm_course.training.optim import build_optimizer, lr_at, set_lr


@dataclass
class TrainConfig:
    """Hyper-parameters of a pre-training run (all JSON-able; stored in every checkpoint)."""

    steps: int = 1000
    batch_size: int = 128          # global batch (split over ranks under torchrun)
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50         # may exceed steps (a short run that never leaves warmup)
    min_lr_ratio: float = 0.02
    grad_clip: float | None = 1.0  # max global grad norm; None disables clipping
    seed: int = 0                  # data order (scene indices, caption choice) and init
    checkpoint_every: int = 200    # steps between checkpoints (and one at the end)
    max_bad_steps: int = 5         # consecutive non-finite losses before giving up

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("batch_size", 2), ("checkpoint_every", 1),
                          ("max_bad_steps", 1), ("warmup_steps", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"TrainConfig.{name} must be an int >= {low}"
                                 + (" (contrastive needs negatives)"
                                    if name == "batch_size" else "")
                                 + f", got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"TrainConfig.seed must be an int, got {self.seed!r}")
        _check_real("lr", self.lr, "> 0", lambda v: v > 0)
        _check_real("weight_decay", self.weight_decay, ">= 0", lambda v: v >= 0)
        _check_real("min_lr_ratio", self.min_lr_ratio, "in [0, 1]", lambda v: 0 <= v <= 1)
        if self.grad_clip is not None:
            _check_real("grad_clip", self.grad_clip, "> 0 (or None for no clipping)",
                        lambda v: v > 0)


def _check_real(name: str, value: object, allowed: str, ok: Callable[[float], bool]) -> None:
    """Raise ValueError unless ``value`` is a finite real number satisfying ``ok``."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not ok(value)):
        raise ValueError(f"TrainConfig.{name} must be a finite number {allowed}, got {value!r}")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return getattr(model, "module", model)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def clamp_logit_scale(model: torch.nn.Module, max_value: float = CLIP_MAX_LOGIT_SCALE) -> None:
    """Clamp the log-space ``logit_scale`` parameter in place to ``<= max_value`` (CLIP's cap
    100)."""
    with torch.no_grad():
        unwrap(model).logit_scale.clamp_(max=max_value)


def train_step(model, images: torch.Tensor, tokens, optimizer: torch.optim.Optimizer, *,
               loss_fn: Callable = clip_loss, grad_clip: float | None = 1.0) -> dict:
    """One optimiser step on one batch; returns ``{"loss", "grad_norm", "finite"}``.

    ``images`` (B, 3, H, W) float on the model's device, ``tokens`` the tokenizer's output for the
    B captions.  ``loss_fn(image_emb, text_emb, logit_scale)`` defaults to CLIP's symmetric InfoNCE.
    A non-finite loss or gradient skips the update (``finite`` is False) and leaves the weights as
    they were.  The caller sets the learning rate and clamps ``logit_scale`` afterwards.
    ``grad_clip`` is the max global gradient norm; ``None`` (or a value <= 0) disables clipping.
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with _autocast(images.device):
        image_emb, text_emb, logit_scale = model(images, tokens)
        loss = loss_fn(image_emb.float(), text_emb.float(), logit_scale.float())
    if not _all_ranks_true(torch.isfinite(loss.detach())):   # every rank must skip together
        return {"loss": float(loss.detach()), "grad_norm": float("nan"), "finite": False}
    loss.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    max_norm = grad_clip if grad_clip is not None and grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if not _all_ranks_true(torch.isfinite(grad_norm)):
        optimizer.zero_grad(set_to_none=True)
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "finite": False}
    optimizer.step()
    return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "finite": True}


@torch.no_grad()
def evaluate(model, world, *, split: str = "val", n: int = 256, batch_size: int = 128,
             seed: int = 0, loss_fn: Callable = clip_loss) -> dict:
    """Mean contrastive loss and in-batch image→text top-1 on ``n`` fixed scenes of ``split``.

    Scenes ``0 .. n-1`` of the split, in batches of ``batch_size`` (the batch size changes the
    number of negatives, so compare runs at the same value).  Returns ``{"loss", "i2t_top1"}``.
    """
    for name, value in (("n", n), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    bare = unwrap(model)
    was_training = bare.training
    bare.eval()
    device = next(bare.parameters()).device
    losses, hits, count = [], 0, 0
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        images, tokens = clip_batch_at(world, bare.tokenize, range(start, start + size),
                                       seed=seed, split=split)
        image_emb, text_emb, logit_scale = bare(images.to(device), _to(tokens, device))
        losses.append(
            float(loss_fn(image_emb.float(), text_emb.float(), logit_scale.float())) * size)
        sim = image_emb.float() @ text_emb.float().T
        hits += int((sim.argmax(dim=1) == torch.arange(size, device=device)).sum())
        count += size
    bare.train(was_training)
    return {"loss": sum(losses) / count, "i2t_top1": hits / count}


def _all_ranks_true(flag: torch.Tensor) -> bool:
    """``flag`` (0-d bool) AND-ed over all ranks (itself when not distributed)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        flag = flag.float().reshape(1)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.all())


def _mean_over_ranks(value: float, device: torch.device, world_size: int) -> float:
    """Mean of ``value`` over the ranks.  Every rank must call the all-reduce, even with a
    non-finite value (which then propagates), or the ranks' collectives fall out of step."""
    if world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64 if device.type == "cpu" else torch.float32,
                     device=device)
    dist.all_reduce(t)
    return float(t) / world_size


def _to(tokens, device):
    if torch.is_tensor(tokens):
        return tokens.to(device)
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in dict(tokens).items()}


def _json_config(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def train(model, world, config: TrainConfig, out_dir: str | Path | None = None, *,
          resume: bool = False, loss_fn: Callable = clip_loss, stop_after: int | None = None,
          rank: int = 0, world_size: int = 1, desc: str = "pretrain") -> list[dict]:
    """Train ``model`` on the ShapeWorld stream of ``world`` for ``config.steps`` steps.

    ``out_dir`` (optional) receives ``metrics.jsonl`` and checkpoints; with ``resume=True`` the
    newest checkpoint there is loaded first (its model and training configs must match, else a
    :class:`CheckpointError` names the differences) and training continues from its step.
    ``stop_after`` ends the call after that many steps (simulates an interruption).  Under
    ``torchrun`` pass the DDP-wrapped model, the process ``rank`` and ``world_size``, and a
    ``loss_fn`` that gathers features across ranks; only rank 0 writes files.
    Returns the per-step records of this call: ``step, loss, lr, logit_scale, grad_norm, skipped``.
    """
    if stop_after is not None and (isinstance(stop_after, bool) or not isinstance(stop_after, int)
                                   or stop_after < 1):
        raise ValueError(f"stop_after must be None or an int >= 1, got {stop_after!r}")
    bare = unwrap(model)
    device = next(bare.parameters()).device
    optimizer = build_optimizer(model, config.lr, config.weight_decay)
    model_cfg = _json_config(bare.config)
    train_cfg = _json_config(config)
    out = Path(out_dir) if out_dir is not None else None
    start, skipped_before = 0, 0
    if resume:
        if out is None:
            raise ValueError("resume=True needs out_dir, the folder holding the checkpoint")
        pointer = load_checkpoint(out, bare, optimizer, model_config=model_cfg)
        saved = dict(pointer["extra"].get("train_config", {}))
        diffs = config_differences({k: v for k, v in saved.items() if k != "checkpoint_every"},
                                   {k: v for k, v in train_cfg.items() if k != "checkpoint_every"})
        if diffs:
            raise CheckpointError(f"checkpoint in {str(out)!r} was made with another training "
                                  "config: " + "; ".join(diffs))
        start = int(pointer["step"])
        skipped_before = int(pointer["extra"].get("skipped", 0))
    metrics_path = out / "metrics.jsonl" if out is not None else None
    if metrics_path is not None and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        kept = []
        if resume and metrics_path.exists():   # drop records written after the checkpoint
            kept = [ln for ln in metrics_path.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["step"] < start]
        atomic_write_bytes(metrics_path, "".join(ln + "\n" for ln in kept).encode())

    end = config.steps if stop_after is None else min(config.steps, start + stop_after)
    history, bad_in_a_row, skipped = [], 0, skipped_before
    quiet = {} if rank == 0 else {"disable": True}          # one bar, on rank 0
    bar = progress(range(start, end), desc=desc, initial=start, total=config.steps, **quiet)
    for step in bar:
        tic = time.perf_counter()
        images, tokens = clip_batch(world, bare.tokenize, step, config.batch_size, seed=config.seed,
                                    rank=rank, world_size=world_size)
        lr = lr_at(step, config.lr, config.warmup_steps, config.steps, config.min_lr_ratio)
        set_lr(optimizer, lr)
        result = train_step(model, images.to(device), _to(tokens, device), optimizer,
                            loss_fn=loss_fn, grad_clip=config.grad_clip)
        result["loss"] = _mean_over_ranks(result["loss"], device, world_size)
        if result["finite"]:
            bad_in_a_row = 0
            clamp_logit_scale(model)
        else:
            bad_in_a_row += 1
            skipped += 1
            if bad_in_a_row >= config.max_bad_steps:
                raise FloatingPointError(f"loss or gradient was not finite for {bad_in_a_row} "
                                         f"steps in a row (last at step {step}, "
                                         f"loss {result['loss']}); "
                                         "lower the learning rate or check the data")
        record = {"step": step, "loss": result["loss"], "lr": lr,
                  "logit_scale": float(bare.logit_scale.detach().exp()),
                  "grad_norm": result["grad_norm"], "skipped": skipped,
                  "seconds": time.perf_counter() - tic}
        history.append(record)
        if rank == 0:
            bar.set_postfix(loss=f"{result['loss']:.3f}", lr=f"{lr:.1e}")
            if metrics_path is not None:
                with open(metrics_path, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
            done = step + 1
            if out is not None and (done % config.checkpoint_every == 0 or done == config.steps
                                    or done == end):
                save_checkpoint(out, done, bare, optimizer, model_config=model_cfg,
                                extra={"train_config": train_cfg, "next_step": done,
                                       "skipped": skipped})
    if not math.isfinite(history[-1]["loss"] if history else 0.0):
        raise FloatingPointError("training ended on a non-finite loss")
    return history
