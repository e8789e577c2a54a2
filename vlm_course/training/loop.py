"""One training loop for every objective: ``train(model, batches, step_fn, config)``.

Chapter 04 (pre-training a tiny CLIP, SimCLR) and every later objective (masked modelling,
image-text matching, prompt tuning, distillation).  The loop knows nothing about CLIP or
ShapeWorld; an objective brings two functions (a *recipe*, :mod:`vlm_course.recipes`):

* ``batches(step, rank, world_size) -> batch``: the batch of global optimiser step ``step`` for
  process ``rank`` of ``world_size``, a pure function of its arguments.  Resuming at step ``s``
  therefore sees exactly the batches an uninterrupted run would, and every rank gets its own
  shard.  A batch is a tensor or a dict / list / tuple of them (anything else passes through).
* ``step_fn(model, batch) -> (loss, metrics)``: a 0-d loss tensor and a dict of floats to log
  (computed before the update).

Recipe after CLIP (Radford et al. 2021): AdamW with decay on weight matrices only, linear warmup
then cosine decay, gradient clipping, bf16 autocast on CUDA (the CPU stays fp32), a guard that
skips a step whose loss or gradient is not finite on *any* rank (all ranks skip together) and
gives up after ``max_bad_steps`` in a row, ``after_step(model)`` after every finite step (CLIP
clamps its ``logit_scale`` there), metrics appended to ``out/metrics.jsonl`` and atomic
safetensors checkpoints every ``checkpoint_every`` steps.

Rank and world size come from :func:`vlm_course.training.distributed.rank_and_world_size` only
(the process group when one is initialised), so no caller can forget them.  Under ``torchrun``
pass the ``DistributedDataParallel``-wrapped model; only rank 0 writes files.

``train`` is four named stages: :func:`prepare` (optimiser, resume, metrics file),
:func:`optimisation_step` (one guarded update), :func:`log_step` and :func:`checkpoint_step`.
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
from typing import Any

import torch
import torch.distributed as dist

from vlm_course.settings import progress
from vlm_course.training.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    config_differences,
    load_checkpoint,
    save_checkpoint,
)
from vlm_course.training.distributed import rank_and_world_size
from vlm_course.training.optim import build_optimizer, lr_at, set_lr

__all__ = ["TrainConfig", "TrainState", "train", "prepare", "optimisation_step", "log_step",
           "checkpoint_step", "to_device", "unwrap", "json_config", "model_config_of"]


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run (all JSON-able; stored in every checkpoint).

    Raises ``ValueError`` naming the field (``TrainConfig.<field> must be ...``) for a bad value.
    """

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
        for name, low in (("steps", 1), ("batch_size", 1), ("checkpoint_every", 1),
                          ("max_bad_steps", 1), ("warmup_steps", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"TrainConfig.{name} must be an int >= {low}, got {value!r}")
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


@dataclass
class TrainState:
    """What :func:`prepare` sets up and the other stages share."""

    optimizer: torch.optim.Optimizer
    device: torch.device
    rank: int
    world_size: int
    start: int                     # first step this call runs
    end: int                       # one past the last step this call runs
    skipped: int                   # non-finite steps so far (over the whole run)
    model_config: dict | None
    train_config: dict
    out: Path | None
    bad_in_a_row: int = 0


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return getattr(model, "module", model)


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor moved to ``device``: tensors, dicts (any mapping with
    ``items``, e.g. a token batch), lists and tuples, recursively; other values pass through."""
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def json_config(config) -> dict | None:
    """A model's or run's config as a JSON dict: ``to_dict()``, a dataclass, a dict or None."""
    if config is None:
        return None
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    elif dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    return json.loads(json.dumps(config))


def model_config_of(model: torch.nn.Module):
    """The config a model was built from: its ``config`` (or ``cfg``) attribute, else None."""
    bare = unwrap(model)
    return getattr(bare, "config", getattr(bare, "cfg", None))


def _all_ranks_true(flag: torch.Tensor) -> bool:
    """``flag`` (0-d bool) AND-ed over all ranks (itself when not distributed)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        flag = flag.float().reshape(1)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.all())


def _mean_over_ranks(value: float, device: torch.device, world_size: int) -> float:
    """Mean of ``value`` over the ranks.  Every rank must call the all-reduce, even with a
    non-finite value (which then propagates), or the ranks' collectives fall out of step."""
    if world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64 if device.type == "cpu" else torch.float32,
                     device=device)
    dist.all_reduce(t)
    return float(t) / world_size


def _check_args(model, batches, step_fn, config, stop_after, after_step) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(True for _ in model.parameters()):
        raise ValueError("model must have at least one parameter to train, got none")
    for name, fn in (("batches", batches), ("step_fn", step_fn)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    if after_step is not None and not callable(after_step):
        raise TypeError(f"after_step must be None or callable, got {type(after_step).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if stop_after is not None and (isinstance(stop_after, bool) or not isinstance(stop_after, int)
                                   or stop_after < 1):
        raise ValueError(f"stop_after must be None or an int >= 1, got {stop_after!r}")


# ----------------------------------------------------------------------------- stage 1: prepare
def prepare(model, config: TrainConfig, out_dir: str | Path | None, *, resume: bool,
            stop_after: int | None) -> TrainState:
    """Build the optimiser, restore the newest checkpoint when ``resume`` and reset the metrics
    file to the records before the resumed step (rewritten atomically, so a crash here loses
    nothing).

    Raises:
        ValueError: ``resume=True`` without ``out_dir``.
        CheckpointError: no/corrupted checkpoint, or one made with another model or training
            config (the differing fields are listed; ``checkpoint_every`` may differ).
    """
    bare = unwrap(model)
    rank, world_size = rank_and_world_size()
    device = next(bare.parameters()).device
    optimizer = build_optimizer(model, config.lr, config.weight_decay)
    model_cfg = json_config(model_config_of(bare))
    train_cfg = json_config(config)
    out = Path(out_dir) if out_dir is not None else None
    start, skipped = 0, 0
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
        skipped = int(pointer["extra"].get("skipped", 0))
    if out is not None and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        metrics = out / "metrics.jsonl"
        kept = []
        if resume and metrics.exists():        # drop records written after the checkpoint
            kept = [ln for ln in metrics.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["step"] < start]
        atomic_write_bytes(metrics, "".join(ln + "\n" for ln in kept).encode())
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)
    return TrainState(optimizer=optimizer, device=device, rank=rank, world_size=world_size,
                      start=start, end=end, skipped=skipped, model_config=model_cfg,
                      train_config=train_cfg, out=out)


# ----------------------------------------------------------------------- stage 2: one update
def optimisation_step(model, batch, step_fn: Callable, optimizer: torch.optim.Optimizer, *,
                      grad_clip: float | None = 1.0) -> dict:
    """One guarded optimiser step on one batch (already on the model's device).

    Returns ``{"loss", "grad_norm", "finite", "metrics"}``.  A loss or gradient norm that is not
    finite on any rank skips the update on every rank (``finite`` False) and leaves the weights as
    they were.  ``grad_clip`` is the max global gradient norm (``None`` or <= 0: no clipping).

    Raises:
        TypeError: ``step_fn`` did not return ``(0-d tensor loss, dict of metrics)``.
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    device = next(unwrap(model).parameters()).device
    with _autocast(device):
        out = step_fn(model, batch)
    if not (isinstance(out, tuple) and len(out) == 2 and torch.is_tensor(out[0])
            and out[0].dim() == 0 and isinstance(out[1], dict)):
        raise TypeError("step_fn must return (loss: 0-d tensor, metrics: dict), got "
                        f"{type(out).__name__}"
                        + (f" with loss shape {tuple(out[0].shape)}"
                           if isinstance(out, tuple) and out and torch.is_tensor(out[0]) else ""))
    loss, metrics = out
    loss = loss.float()
    metrics = {k: float(v) for k, v in metrics.items()}
    if not _all_ranks_true(torch.isfinite(loss.detach())):     # every rank must skip together
        return {"loss": float(loss.detach()), "grad_norm": float("nan"), "finite": False,
                "metrics": metrics}
    loss.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    max_norm = grad_clip if grad_clip is not None and grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if not _all_ranks_true(torch.isfinite(grad_norm)):
        optimizer.zero_grad(set_to_none=True)
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "finite": False,
                "metrics": metrics}
    optimizer.step()
    return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "finite": True,
            "metrics": metrics}


# ----------------------------------------------------------------------------- stage 3: log
def log_step(state: TrainState, record: dict, bar=None) -> None:
    """Append ``record`` to ``out/metrics.jsonl`` and show the loss on the progress bar (rank 0
    only; other ranks do nothing)."""
    if state.rank != 0:
        return
    if bar is not None:
        bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.1e}")
    if state.out is not None:
        with open(state.out / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")


# ------------------------------------------------------------------------ stage 4: checkpoint
def checkpoint_step(state: TrainState, model, config: TrainConfig, done: int) -> Path | None:
    """Write the checkpoint after ``done`` steps when it is due: every ``checkpoint_every`` steps,
    at the end of the run and at the end of this call (rank 0 with an ``out`` folder only).
    Returns the tensor file's path, or None when nothing was written."""
    if state.rank != 0 or state.out is None:
        return None
    if not (done % config.checkpoint_every == 0 or done == config.steps or done == state.end):
        return None
    return save_checkpoint(state.out, done, unwrap(model), state.optimizer,
                           model_config=state.model_config,
                           extra={"train_config": state.train_config, "skipped": state.skipped})


# ----------------------------------------------------------------------------- the loop
def train(model, batches: Callable, step_fn: Callable, config: TrainConfig,
          out_dir: str | Path | None = None, *, resume: bool = False,
          stop_after: int | None = None, after_step: Callable | None = None,
          desc: str = "train") -> list[dict]:
    """Train ``model`` for ``config.steps`` steps of ``step_fn`` on ``batches`` (module docstring).

    ``out_dir`` (optional) receives ``metrics.jsonl`` and checkpoints; with ``resume=True`` the
    newest checkpoint there is loaded first and training continues from its step.
    ``stop_after`` ends the call after that many steps (simulates an interruption);
    ``after_step(model)`` runs after every finite step (e.g. a clamp).  Returns this call's
    per-step records: ``step, loss, lr, grad_norm, skipped, seconds, data_seconds`` and the
    step function's metrics (the loss is the mean over ranks).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, ``batches`` / ``step_fn`` / ``after_step``
            not callable, ``config`` not a :class:`TrainConfig`, or ``step_fn`` returned
            something else than ``(0-d tensor, dict)``.
        ValueError: a model without parameters, a bad ``stop_after``, ``resume`` without
            ``out_dir``.
        CheckpointError: resuming from a missing, corrupted or mismatched checkpoint.
        FloatingPointError: ``max_bad_steps`` non-finite steps in a row, or a run that ends on a
            non-finite loss.
    """
    _check_args(model, batches, step_fn, config, stop_after, after_step)
    state = prepare(model, config, out_dir, resume=resume, stop_after=stop_after)
    quiet = {} if state.rank == 0 else {"disable": True}          # one bar, on rank 0
    bar = progress(range(state.start, state.end), desc=desc, initial=state.start,
                   total=config.steps, **quiet)
    history = []
    for step in bar:
        tic = time.perf_counter()
        batch = to_device(batches(step, state.rank, state.world_size), state.device)
        data_seconds = time.perf_counter() - tic
        lr = lr_at(step, config.lr, config.warmup_steps, config.steps, config.min_lr_ratio)
        set_lr(state.optimizer, lr)
        result = optimisation_step(model, batch, step_fn, state.optimizer,
                                   grad_clip=config.grad_clip)
        loss = _mean_over_ranks(result["loss"], state.device, state.world_size)
        if result["finite"]:
            state.bad_in_a_row = 0
            if after_step is not None:
                after_step(model)
        else:
            state.bad_in_a_row += 1
            state.skipped += 1
            if state.bad_in_a_row >= config.max_bad_steps:
                raise FloatingPointError(f"loss or gradient was not finite for "
                                         f"{state.bad_in_a_row} steps in a row (last at step "
                                         f"{step}, loss {loss}); lower the learning rate or "
                                         "check the data")
        record = {**result["metrics"], "step": step, "loss": loss, "lr": lr,
                  "grad_norm": result["grad_norm"], "skipped": state.skipped,
                  "seconds": time.perf_counter() - tic, "data_seconds": data_seconds}
        history.append(record)
        log_step(state, record, bar)
        checkpoint_step(state, model, config, step + 1)
    if history and not math.isfinite(history[-1]["loss"]):
        raise FloatingPointError("training ended on a non-finite loss")
    return history
