"""Train any registered recipe: ``python -m vlm_course.cli RECIPE --preset P --out DIR``.

Chapter 04 (and 13 for several GPUs).  ``RECIPE`` is a name of :data:`vlm_course.recipes.RECIPES`
(``clip``, ``simclr``, ...); each preset fixes the model, the world it sees and the training
recipe; ``--steps``, ``--batch-size``, ``--lr`` and ``--seed`` override the recipe.  ``--resume``
continues the newest checkpoint in ``--out`` exactly where it stopped (same batches, same
optimiser state).  The console script ``vlm-train`` is the same command.

Under ``torchrun --nproc_per_node N -m vlm_course.cli ...`` every process trains a
``DistributedDataParallel`` replica on its shard of each global batch (gloo on CPU, NCCL on GPU);
CLIP's step gathers the features of all ranks, so the run computes the same loss as one process
on the whole batch.

A shipped checkpoint is made in two commands (the card records both)::

    python -m vlm_course.cli clip --preset tiny --out runs/tiny
    python -c "from vlm_course import pretrained; pretrained.ship('runs/tiny',
        'clip_tiny_shapeworld', command='python -m vlm_course.cli clip --preset tiny ...')"

From Python (notebook 04): ``model, history = run("clip", "tiny", steps=60, batch_size=64)``.
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

from vlm_course.recipes import RECIPES, get
from vlm_course.settings import get_device, seed_everything
from vlm_course.training.checkpoint import POINTER, CheckpointError, atomic_save_json
from vlm_course.training.distributed import rank_and_world_size
from vlm_course.training.loop import json_config, train

__all__ = ["check_writable", "main", "parse_args", "preset_of", "run", "write_run_info"]


def preset_of(recipe: str, preset: str):
    """``(recipe module, RecipePreset)`` of a recipe's preset.

    Raises:
        ValueError: unknown ``recipe`` or ``preset`` (the known names are listed).
    """
    module = get(recipe)
    if preset not in module.PRESETS:
        raise ValueError(f"unknown preset {preset!r} for recipe {recipe!r}; known presets: "
                         f"{', '.join(sorted(module.PRESETS))}")
    return module, module.PRESETS[preset]()


def check_writable(out: Path) -> Path:
    """Create ``out`` if needed and prove it is writable.

    Raises:
        PermissionError: the folder cannot be created or written (its path is named).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"output folder {str(out)!r} is not writable: {err}") from err
    return out


def run(recipe: str = "clip", preset: str = "tiny", *, steps: int | None = None,
        batch_size: int | None = None, lr: float | None = None, seed: int = 0,
        out_dir: str | Path | None = None, resume: bool = False, device: str | None = None,
        stop_after: int | None = None):
    """Build the preset's model and world, train, return ``(model, history)`` (model in eval
    mode).

    ``history`` is the list of per-step records (``step``, ``loss``, ``lr``, ...).  Without
    ``out_dir`` nothing is written (the notebook use); with it, metrics, checkpoints and
    ``run.json`` (recipe, preset, configs, command, wall time) go there.

    Raises:
        ValueError: unknown recipe/preset, a bad override (``TrainConfig`` names the field).
        PermissionError: ``out_dir`` is not writable.
        CheckpointError: ``out_dir`` already holds a checkpoint and ``resume`` is False, or the
            checkpoint to resume is missing, corrupted or of another config.
        FloatingPointError: the loss stayed non-finite (see
            :func:`~vlm_course.training.loop.train`).
    """
    from vlm_course.world import ShapeWorld

    module, spec = preset_of(recipe, preset)
    overrides = {k: v for k, v in (("steps", steps), ("batch_size", batch_size), ("lr", lr))
                 if v is not None}
    train_cfg = dataclasses.replace(spec.train, seed=seed, **overrides)
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
    model = module.build_model(spec).to(dev)
    trained = model
    if world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)
    source = module.batches(ShapeWorld(spec.world), model, train_cfg, **spec.options)
    tic = time.time()
    history = train(trained, source, module.step, train_cfg, out, resume=resume,
                    stop_after=stop_after, after_step=getattr(module, "after_step", None),
                    desc=f"{recipe} {preset}")
    if out is not None and rank == 0:
        write_run_info(out / "run.json", history, time.time() - tic, {
            "recipe": recipe, "preset": preset, "command": " ".join(sys.argv),
            "model_config": json_config(spec.model), "world_config": spec.world.to_dict(),
            "train_config": dataclasses.asdict(train_cfg), "world_size": world_size,
            "device": str(dev)})
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


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {text!r}")
        return value
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line; a bad flag exits with status 2 and a message naming it."""
    parser = argparse.ArgumentParser(prog="python -m vlm_course.cli",
                                     description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help=f"one of {', '.join(sorted(RECIPES))}")
    parser.add_argument("--preset", default="tiny", help="a preset of the recipe (default tiny)")
    parser.add_argument("--out", required=True, help="output folder (checkpoints, metrics.jsonl)")
    parser.add_argument("--steps", type=_int_at_least(1),
                        help="total optimiser steps (default: the recipe's)")
    parser.add_argument("--batch-size", type=_int_at_least(1),
                        help="global batch size (default: the recipe's)")
    parser.add_argument("--lr", type=_positive_float, help="peak learning rate (default: the "
                        "recipe's)")
    parser.add_argument("--seed", type=_int_at_least(0), default=0,
                        help="seed for init and data order")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: the course's choice)")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    args = parser.parse_args(argv)
    if args.recipe not in RECIPES:
        parser.error(f"unknown recipe {args.recipe!r}; known recipes: {', '.join(sorted(RECIPES))}")
    presets = get(args.recipe).PRESETS
    if args.preset not in presets:
        parser.error(f"unknown preset {args.preset!r} for recipe {args.recipe!r}; known presets: "
                     f"{', '.join(sorted(presets))}")
    return args


def main(argv=None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 a clear error printed on stderr, 2 a bad
    flag)."""
    args = parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        import torch.distributed as dist

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        _, history = run(args.recipe, args.preset, steps=args.steps, batch_size=args.batch_size,
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
