"""The registry of the course's shipped checkpoints (``data/checkpoints/``): list, inspect, load.

Chapter 04 ships a tiny CLIP pre-trained on ShapeWorld by ``python -m vlm_course.pretrain``; the
later chapters (zero-shot, transfer, distillation, benchmarks) load it with ``load(name)`` instead
of training.  Each checkpoint is two files:

* ``<name>.safetensors`` — the model weights (no pickle anywhere);
* ``<name>.json`` — its card: ``model_config``, ``world_config``, the tokenizer's vocabulary
  (so later vocabulary changes cannot break it), the exact command, seed, steps,
  wall time, hardware, final loss, the weights' ``sha256`` and evaluation numbers measured by
  :mod:`vlm_course.evaluation`.

``load`` recomputes the sha256 of the weights and refuses a file that does not match its card.
The folder is ``data/checkpoints`` of the repository, or ``$VLM_COURSE_CHECKPOINTS`` if set.  It
is found from the source tree, so it needs an editable install (``pip install -e .``, as ``make``
does); a missing folder or name raises a ``KeyError`` that says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["available", "card", "checkpoint_dir", "load", "ChecksumError"]


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
    """Load shipped checkpoint ``name`` as a :class:`~vlm_course.models.clip.CLIP` in eval mode.

    Verifies the weights' sha256 against the card first and raises :class:`ChecksumError` on a
    mismatch (a corrupted or replaced file) — nothing is loaded from an unverified file.
    """
    from safetensors.torch import load_file

    from vlm_course.models.clip import CLIP, CLIPConfig
    from vlm_course.settings import get_device
    from vlm_course.text import Tokenizer
    from vlm_course.training.checkpoint import load_model_state, sha256_of

    info = card(name, root)
    path = checkpoint_dir(root) / f"{name}.safetensors"
    digest = sha256_of(path)
    if digest != info.get("sha256"):
        raise ChecksumError(f"{str(path)!r} does not match its card: sha256 is {digest}, the card "
                            f"records {info.get('sha256')}; the file is corrupted or was replaced "
                            f"(restore it with: git checkout -- {path.name})")
    tokenizer = Tokenizer.from_dict(info["tokenizer"]) if "tokenizer" in info else None
    model = CLIP(CLIPConfig.from_dict(info["model_config"]), tokenizer=tokenizer)
    load_model_state(model, load_file(str(path)), source=str(path))
    model.to(get_device(device)).eval()
    return model


def ship(run_dir: str | os.PathLike, name: str, *, command: str,
         root: str | os.PathLike | None = None, eval_scenes: int = 2000,
         retrieval_scenes: int = 1000, description: str = "") -> dict:
    """Turn the newest checkpoint of a ``vlm_course.pretrain`` run into a shipped checkpoint + card.

    Writes ``<root>/<name>.safetensors`` (model weights only) and ``<root>/<name>.json``; the card's
    evaluation numbers are measured here by :mod:`vlm_course.evaluation`: zero-shot accuracy on
    single-object *test* scenes ``0 .. eval_scenes - 1`` (all / seen / held-out compositions) and
    retrieval R@1/R@5 on test scenes ``0 .. retrieval_scenes - 1`` of the training world.
    Returns the card.
    """
    import datetime
    import platform

    import torch

    from vlm_course.evaluation.retrieval import evaluate_retrieval
    from vlm_course.evaluation.zeroshot import evaluate_shapeworld
    from vlm_course.models.clip import CLIP, CLIPConfig
    from vlm_course.training.checkpoint import (
        atomic_save_json,
        atomic_save_safetensors,
        load_checkpoint,
    )
    from vlm_course.world import ShapeWorld, WorldConfig

    run = Path(run_dir)
    info = json.loads((run / "run.json").read_text())
    model = CLIP(CLIPConfig.from_dict(info["model_config"]))
    pointer = load_checkpoint(run, model, model_config=info["model_config"], restore_rng=False)
    model.eval()
    world_cfg = WorldConfig(**{k: (tuple(map(tuple, v)) if k == "heldout" else
                                   tuple(v) if isinstance(v, list) else v)
                               for k, v in info["world_config"].items()})
    records = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln]
    folder = checkpoint_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    digest = atomic_save_safetensors(model.state_dict(), folder / f"{name}.safetensors")
    with torch.no_grad():
        zeroshot = evaluate_shapeworld(model, world_cfg, n=eval_scenes, split="test", start=0)
        batch = ShapeWorld(world_cfg).batch("test", range(retrieval_scenes), masks=False)
        retrieval = evaluate_retrieval(model, batch.images, batch.captions, ks=(1, 5))
    last = records[-50:]
    card_ = {
        "name": name, "description": description, "command": command,
        "seed": info["train_config"]["seed"], "steps": pointer["step"],
        "batch_size": info["train_config"]["batch_size"],
        "wall_time_s": round(info.get("wall_time_s_total",
                                      info.get("wall_time_s_this_call", float("nan"))), 1),
        "wall_time_note": ("train() wall time summed over every pretrain call of the run (from "
                           "run.json)" if "wall_time_s_total" in info else
                           "the last pretrain call's train() wall time (from run.json)")
                          + "; sum_step_seconds adds up the per-step times of every call",
        "sum_step_seconds": round(sum(r["seconds"] for r in records), 1),
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "device": info.get("device"), "torch": torch.__version__},
        "final_loss": records[-1]["loss"],
        "final_loss_mean_last_50": sum(r["loss"] for r in last) / len(last),
        "final_logit_scale": records[-1]["logit_scale"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokenizer": model.tokenizer.to_dict(),
        "sha256": digest, "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "model_config": info["model_config"], "world_config": info["world_config"],
        "train_config": info["train_config"],
        "evaluation": {
            "zeroshot": zeroshot, "retrieval": retrieval,
            "protocol": (f"zero-shot: vlm_course.evaluation.zeroshot.evaluate_shapeworld on "
                         f"single-object test scenes 0..{eval_scenes - 1} of the world above "
                         "(prompt ensembles of shapeworld_prompts; heldout_* = scenes whose "
                         "colour-shape pair never occurs in training); retrieval: "
                         "vlm_course.evaluation.retrieval.evaluate_retrieval on test scenes "
                         f"0..{retrieval_scenes - 1} with all their captions."),
        },
    }
    atomic_save_json(card_, folder / f"{name}.json", sort_keys=False)   # weights, then card
    return card_
