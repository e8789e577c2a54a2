"""The registry of the course's shipped checkpoints (``data/checkpoints/``): list, inspect, load.

Chapter 04 ships a tiny CLIP pre-trained on ShapeWorld by ``python -m vlm_course.cli clip``; the
later chapters (zero-shot, transfer, distillation, benchmarks) load it with ``load(name)`` instead
of training.  Each checkpoint is two files:

* ``<name>.safetensors`` — the model weights (no pickle anywhere);
* ``<name>.json`` — its card: ``recipe`` and ``preset`` (:mod:`vlm_course.recipes`),
  ``model_config`` (for CLIP it holds the tokenizer's vocabulary, so later vocabulary changes
  cannot break it), ``world_config``, the exact command, seed, steps,
  wall time, hardware, final loss, the weights' ``sha256`` and evaluation numbers measured by
  the recipe's ``evaluate`` (:mod:`vlm_course.evaluation`).

``load`` recomputes the sha256 of the weights and refuses a file that does not match its card.
The folder is ``data/checkpoints`` of the repository, or ``$VLM_COURSE_CHECKPOINTS`` if set.  It
is found from the source tree, so it needs an editable install (``pip install -e .``, as ``make``
does); a missing folder or name raises a ``KeyError`` that says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["available", "card", "checkpoint_dir", "load", "ship", "ChecksumError"]


class ChecksumError(ValueError):
    """A shipped weight file does not match the sha256 recorded in its card."""


def checkpoint_dir(root: str | os.PathLike | None = None) -> Path:
    """The folder holding the shipped checkpoints."""
    if root is not None:
        return Path(root)
    env = os.environ.get("VLM_COURSE_CHECKPOINTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "data" / "checkpoints"


def available(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the checkpoints that have both a card and a weight file, sorted."""
    folder = checkpoint_dir(root)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".safetensors").exists())


#: What to do when the shipped checkpoints are not found (the folder is located from the source
#: tree, so a regular, non-editable ``pip install`` of the package does not carry it along).
WHERE_HINT = ("the checkpoints live in data/checkpoints of the course repository and are found "
              "from the source tree: install the course editable (`pip install -e .`, which "
              "`make` does) from a clone, or set VLM_COURSE_CHECKPOINTS to a folder holding "
              "<name>.json and <name>.safetensors")


def card(name: str, root: str | os.PathLike | None = None) -> dict:
    """The JSON card of checkpoint ``name``; ``KeyError`` listing the available names if unknown.

    The message says whether the folder itself is missing and how to point the course at it.
    """
    names = available(root)
    if name not in names:
        folder = checkpoint_dir(root)
        where = (f"in {str(folder)!r}" if folder.is_dir()
                 else f"because the checkpoint folder {str(folder)!r} does not exist")
        raise KeyError(f"no shipped checkpoint named {name!r} {where}; available: "
                       f"{', '.join(names) or '(none)'}; {WHERE_HINT}")
    return json.loads((checkpoint_dir(root) / f"{name}.json").read_text())


def load(name: str, device: str | None = None, root: str | os.PathLike | None = None):
    """Load shipped checkpoint ``name`` (the model of its card's recipe, e.g. a
    :class:`~vlm_course.models.clip.CLIP`) in eval mode.

    Verifies the weights' sha256 against the card first — nothing is loaded from an unverified
    file.

    Raises:
        KeyError: no checkpoint ``name`` (the available names and where they are looked for).
        ChecksumError: the weights do not match the card's sha256 (corrupted or replaced).
        CheckpointError: the weights do not fit the card's model config.
    """
    from safetensors.torch import load_file

    from vlm_course.recipes import get
    from vlm_course.settings import get_device
    from vlm_course.training.checkpoint import load_model_state, sha256_of

    info = card(name, root)
    path = checkpoint_dir(root) / f"{name}.safetensors"
    digest = sha256_of(path)
    if digest != info.get("sha256"):
        raise ChecksumError(f"{str(path)!r} does not match its card: sha256 is {digest}, the card "
                            f"records {info.get('sha256')}; the file is corrupted or was replaced "
                            f"(restore it with: git checkout -- {path.name})")
    model = get(info.get("recipe", "clip")).model_from_config(info["model_config"])
    load_model_state(model, load_file(str(path)), source=str(path))
    model.to(get_device(device)).eval()
    return model


def ship(run_dir: str | os.PathLike, name: str, *, command: str,
         root: str | os.PathLike | None = None, description: str = "",
         **evaluate_kwargs) -> dict:
    """Turn the newest checkpoint of a ``vlm_course.cli`` run into a shipped checkpoint + card.

    Writes ``<root>/<name>.safetensors`` (model weights only), then ``<root>/<name>.json``; the
    card's ``evaluation`` is measured here by the run's recipe (``evaluate(model, world,
    **evaluate_kwargs)``; for CLIP ``eval_scenes`` / ``retrieval_scenes``).  Returns the card.

    Raises:
        FileNotFoundError: ``run_dir`` holds no ``run.json`` / ``metrics.jsonl``.
        CheckpointError: the run's checkpoint is missing, corrupted or of another config.
    """
    import datetime
    import platform

    import torch

    from vlm_course.recipes import get
    from vlm_course.training.checkpoint import (
        atomic_save_json,
        atomic_save_safetensors,
        load_checkpoint,
    )
    from vlm_course.world import WorldConfig

    run = Path(run_dir)
    info = json.loads((run / "run.json").read_text())
    recipe = get(info.get("recipe", "clip"))
    model = recipe.model_from_config(info["model_config"])
    pointer = load_checkpoint(run, model, model_config=info["model_config"], restore_rng=False)
    model.eval()
    world_cfg = WorldConfig.from_dict(info["world_config"])
    records = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln]
    folder = checkpoint_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    digest = atomic_save_safetensors(model.state_dict(), folder / f"{name}.safetensors")
    with torch.no_grad():
        evaluation = recipe.evaluate(model, world_cfg, **evaluate_kwargs)
    last = records[-50:]
    card_ = {
        "name": name, "recipe": info.get("recipe", "clip"), "preset": info.get("preset"),
        "description": description, "command": command,
        "seed": info["train_config"]["seed"], "steps": pointer["step"],
        "batch_size": info["train_config"]["batch_size"],
        "wall_time_s": round(info.get("wall_time_s_total",
                                      info.get("wall_time_s_this_call", float("nan"))), 1),
        "wall_time_note": ("train() wall time summed over every call of the run (from "
                           "run.json)" if "wall_time_s_total" in info else
                           "the last call's train() wall time (from run.json)")
                          + "; sum_step_seconds adds up the per-step times of every call",
        "sum_step_seconds": round(sum(r["seconds"] for r in records), 1),
        "sum_data_seconds": round(sum(r.get("data_seconds", 0.0) for r in records), 1),
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "device": info.get("device"), "torch": torch.__version__},
        "final_loss": records[-1]["loss"],
        "final_loss_mean_last_50": sum(r["loss"] for r in last) / len(last),
        "parameters": sum(p.numel() for p in model.parameters()),
        "sha256": digest, "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "model_config": info["model_config"], "world_config": info["world_config"],
        "train_config": info["train_config"],
        "evaluation": evaluation,
    }
    if "logit_scale" in records[-1]:
        card_["final_logit_scale"] = records[-1]["logit_scale"]
    if hasattr(model, "tokenizer"):
        card_["tokenizer"] = model.tokenizer.to_dict()
    atomic_save_json(card_, folder / f"{name}.json", sort_keys=False)   # weights, then card
    return card_
