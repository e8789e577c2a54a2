"""The registry of the course's shipped checkpoints (``data/checkpoints/``): list, inspect, load.

Chapter 04 ships a tiny CLIP pre-trained on ShapeWorld by ``python -m vlm_course.pretrain``; the
later chapters (zero-shot, transfer, distillation, benchmarks) load it with ``load(name)`` instead
of training.  Each checkpoint is two files:

* ``<name>.safetensors`` — the model weights (no pickle anywhere);
* ``<name>.json`` — its card: ``model_config``, ``world_config``, the exact command, seed, steps,
  wall time, hardware, final loss, the weights' ``sha256`` and evaluation numbers measured by
  :mod:`vlm_course.evaluation`.

``load`` recomputes the sha256 of the weights and refuses a file that does not match its card.
The folder is ``data/checkpoints`` of the repository, or ``$VLM_COURSE_CHECKPOINTS`` if set.
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


def card(name: str, root: str | os.PathLike | None = None) -> dict:
    """The JSON card of checkpoint ``name``; ``KeyError`` listing the available names if unknown."""
    names = available(root)
    if name not in names:
        raise KeyError(f"no shipped checkpoint named {name!r} in {str(checkpoint_dir(root))!r}; "
                       f"available: {', '.join(names) or '(none)'}")
    return json.loads((checkpoint_dir(root) / f"{name}.json").read_text())


def load(name: str, device: str | None = None, root: str | os.PathLike | None = None):
    """Load shipped checkpoint ``name`` as a :class:`~vlm_course.models.clip.CLIP` in eval mode.

    Verifies the weights' sha256 against the card first and raises :class:`ChecksumError` on a
    mismatch (a corrupted or replaced file) — nothing is loaded from an unverified file.
    """
    from safetensors.torch import load_file

    from vlm_course.models.clip import CLIP, CLIPConfig
    from vlm_course.settings import get_device
    from vlm_course.training.checkpoint import load_model_state, sha256_of

    info = card(name, root)
    path = checkpoint_dir(root) / f"{name}.safetensors"
    digest = sha256_of(path)
    if digest != info.get("sha256"):
        raise ChecksumError(f"{str(path)!r} does not match its card: sha256 is {digest}, the card "
                            f"records {info.get('sha256')}; the file is corrupted or was replaced "
                            f"(restore it with: git checkout -- {path.name})")
    model = CLIP(CLIPConfig.from_dict(info["model_config"]))
    load_model_state(model, load_file(str(path)), source=str(path))
    model.to(get_device(device)).eval()
    return model
