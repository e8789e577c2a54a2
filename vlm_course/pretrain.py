"""Pre-train a CLIP on ShapeWorld: ``python -m vlm_course.pretrain --preset tiny --out DIR``.

Chapter 04 (and 13 for several GPUs).  Each preset fixes the model (:data:`PRESETS` of
:mod:`vlm_course.models.clip`), the world it sees and the training recipe; ``--steps``,
``--batch-size``, ``--lr`` and ``--seed`` override the recipe.  ``--resume`` continues the newest
checkpoint in ``--out`` exactly where it stopped (same batches, same optimiser state).

Under ``torchrun --nproc_per_node N -m vlm_course.pretrain ...`` every process trains a
``DistributedDataParallel`` replica on its slice of each global batch (gloo on CPU, NCCL on GPU)
and the loss gathers the features of all ranks
(:func:`vlm_course.training.distributed.distributed_clip_loss`), so the run computes the same
loss as one process on the whole batch.

From Python (notebook 04): ``model, history = pretrain("tiny", steps=60, batch_size=64)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch

from vlm_course.models.clip import CLIP, PRESETS, CLIPConfig
from vlm_course.settings import get_device, seed_everything
from vlm_course.training.checkpoint import POINTER, CheckpointError, atomic_save_json
from vlm_course.training.loop import TrainConfig, train

#: Training recipe per preset (a run's --steps/--batch-size/--lr/--seed override these).
RECIPES: dict[str, TrainConfig] = {
    "tiny": TrainConfig(steps=1500, batch_size=128, lr=2e-3, weight_decay=0.1, warmup_steps=100,
                        checkpoint_every=50),
    "tiny_resnet": TrainConfig(steps=1500, batch_size=128, lr=1e-3, warmup_steps=100,
                               checkpoint_every=100),
    "small": TrainConfig(steps=20000, batch_size=1024, lr=1e-3, warmup_steps=1000,
                         checkpoint_every=1000),
}

#: ShapeWorld settings per preset (the canvas follows the model's image size).
WORLDS: dict[str, dict] = {"tiny": {"max_objects": 2}, "tiny_resnet": {"max_objects": 2},
                           "small": {}}


def check_preset(preset: str) -> str:
    """Return ``preset`` or raise ``ValueError`` listing the known presets."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(sorted(PRESETS))}")
    return preset


def build(preset: str, world_seed: int = 0):
    """``(CLIPConfig, WorldConfig, TrainConfig)`` of a preset."""
    from vlm_course.world import WorldConfig

    check_preset(preset)
    model_cfg: CLIPConfig = PRESETS[preset]()
    world_cfg = WorldConfig(canvas=model_cfg.image_size, shapes=model_cfg.shapes,
                            colours=model_cfg.colours, seed=world_seed, **WORLDS[preset])
    return model_cfg, world_cfg, dataclasses.replace(RECIPES[preset])


def check_writable(out: Path) -> Path:
    """Create ``out`` if needed and prove it is writable; raise ``PermissionError`` naming it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"output folder {str(out)!r} is not writable: {err}") from err
    return out


def pretrain(preset: str = "tiny", *, steps: int | None = None, batch_size: int | None = None,
             lr: float | None = None, seed: int = 0, out_dir: str | Path | None = None,
             resume: bool = False, device: str | None = None, stop_after: int | None = None):
    """Build the preset's CLIP and world, train, return ``(model, history)`` (model in eval mode).

    ``history`` is the list of per-step records (``step``, ``loss``, ``lr``, ``logit_scale``, ...).
    Without ``out_dir`` nothing is written (the notebook use); with it, metrics, checkpoints and
    ``run.json`` (configs, command, wall time) go there.
    """
    from vlm_course.training.distributed import distributed_clip_loss, rank_and_world_size
    from vlm_course.world import ShapeWorld

    model_cfg, world_cfg, train_cfg = build(preset)
    overrides = {k: v for k, v in (("steps", steps), ("batch_size", batch_size), ("lr", lr))
                 if v is not None}
    train_cfg = dataclasses.replace(train_cfg, seed=seed, **overrides)
    out = Path(out_dir) if out_dir is not None else None
    rank, world_size = rank_and_world_size()
    if out is not None:            # every rank checks, so no rank is left waiting in a collective
        check_writable(out)
        if not resume and (out / POINTER).exists():
            raise CheckpointError(f"{str(out)!r} already holds a checkpoint; pass --resume to "
                                  "continue it or choose another --out folder")
    seed_everything(seed)
    dev = get_device(device)
    if world_size > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
    model = CLIP(model_cfg).to(dev)
    trained = model
    if world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)
    tic = time.time()
    history = train(trained, ShapeWorld(world_cfg), train_cfg, out, resume=resume,
                    loss_fn=distributed_clip_loss, stop_after=stop_after, rank=rank,
                    world_size=world_size, desc=f"pretrain {preset}")
    if out is not None and rank == 0:
        write_run_info(out / "run.json", history, time.time() - tic, {
            "preset": preset, "command": " ".join(sys.argv), "model_config": model_cfg.to_dict(),
            "world_config": world_cfg.as_dict(), "train_config": dataclasses.asdict(train_cfg),
            "world_size": world_size, "device": str(dev)})
    return model.eval(), history


def write_run_info(path: Path, history: list[dict], seconds: float, info: dict) -> None:
    """Write ``run.json``: ``info`` plus the last step/loss and the wall time of the run.

    ``wall_time_s_this_call`` is this call's ``train()`` time; ``wall_time_s_total`` adds it to the
    total already in ``path`` (so a resumed run reports the time of all its calls).  A call that
    ran no step (resuming a finished run) leaves an existing ``run.json`` untouched, so its wall
    time is not replaced by ~0 s.
    """
    previous = json.loads(path.read_text()) if path.exists() else None
    if previous is not None and not history:
        return
    before = 0.0
    if previous is not None:
        before = previous.get("wall_time_s_total", previous.get("wall_time_s_this_call", 0.0))
    atomic_save_json({**info, "wall_time_s_this_call": seconds,
                      "wall_time_s_total": before + seconds,
                      "last_step": history[-1]["step"] if history else None,
                      "last_loss": history[-1]["loss"] if history else None}, path)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vlm_course.pretrain",
                                     description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny", help=f"one of {', '.join(sorted(PRESETS))}")
    parser.add_argument("--out", required=True, help="output folder (checkpoints, metrics.jsonl)")
    parser.add_argument("--steps", type=int, help="total optimiser steps (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, help="global batch size (default: the recipe's)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0, help="seed for init and caption choice")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: the course's choice)")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    args = parser.parse_args(argv)
    if args.preset not in PRESETS:
        parser.error(f"unknown preset {args.preset!r}; known presets: {', '.join(sorted(PRESETS))}")
    return args


def main(argv=None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 a clear error printed on stderr)."""
    args = parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        import torch.distributed as dist

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        _, history = pretrain(args.preset, steps=args.steps, batch_size=args.batch_size,
                              lr=args.lr, seed=args.seed, out_dir=args.out, resume=args.resume,
                              device=args.device)
    except (CheckpointError, PermissionError, ValueError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if distributed:
            dist.destroy_process_group()
    if history:
        print(json.dumps({"last_step": history[-1]["step"], "loss": round(history[-1]["loss"], 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
