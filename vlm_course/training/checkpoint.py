"""Checkpoints for the training loop: safetensors for tensors, a small JSON for the rest, atomic
writes.

Chapter 04 (pre-training a tiny CLIP). A checkpoint of step ``s`` in folder ``out`` is two files:

* ``out/ckpt-{s:07d}.safetensors`` — every tensor: the model's ``state_dict`` under ``model.``,
  the optimiser's per-parameter state (AdamW's ``step``, ``exp_avg``, ``exp_avg_sq``) under
  ``optim.{param index}.{name}`` and the RNG states under ``rng.`` (uint8 tensors).
* ``out/latest.json`` — the pointer: step, file name, its sha256, the model config, the training
  config, the optimiser's hyper-parameter groups and anything the caller adds (e.g. the data
  position).

Writes are atomic (write ``*.tmp`` then ``os.replace``) and ordered tensors-first, pointer-last, so
a run killed at any instant leaves either the old or the new checkpoint, never half of one.  Nothing
is pickled: loading uses ``safetensors`` and ``json`` only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

POINTER = "latest.json"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupted or does not belong to the current run."""


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a ``*.tmp`` file in the same folder, flushed and
    fsynced, then ``os.replace`` — a crash leaves the old file or the new one, never a mix."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                            metadata: dict[str, str] | None = None) -> str:
    """Save ``tensors`` to ``path`` via a temporary file + ``os.replace``; return the file's
    sha256."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(clean, str(tmp), metadata=metadata)
    with open(tmp, "rb") as handle:   # on disk before the pointer names it (as for the JSON)
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return sha256_of(path)


def atomic_save_json(obj: Any, path: str | os.PathLike, *, sort_keys: bool = True) -> None:
    """Write ``obj`` as indented JSON via a temporary file + ``os.replace``."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n"
    atomic_write_bytes(path, text.encode())


def _optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, list]:
    sd = optimizer.state_dict()
    tensors = {}
    for index, state in sd["state"].items():
        for name, value in state.items():
            if not torch.is_tensor(value):
                value = torch.tensor(value)
            tensors[f"optim.{index}.{name}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in sd["param_groups"]]
    return tensors, groups


def _optimizer_from_tensors(tensors: dict[str, torch.Tensor], groups: list) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in groups]
    return {"state": state, "param_groups": groups}


def save_checkpoint(out_dir: str | os.PathLike, step: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, *,
                    model_config: dict | None = None, extra: dict | None = None,
                    keep: int = 2) -> Path:
    """Write the checkpoint of ``step`` into ``out_dir`` atomically and return the tensor file's
    path.

    ``model_config`` (a plain dict) is stored so that :func:`load_checkpoint` can refuse a
    checkpoint of another architecture; ``extra`` is any JSON-able dict (training config, data
    position, ...).  Only the newest ``keep`` tensor files are kept.
    """
    if not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be an int >= 1 (tensor files to keep), got {keep!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    groups: list = []
    if optimizer is not None:
        opt_tensors, groups = _optimizer_to_tensors(optimizer)
        tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda{i}"] = s
    name = f"ckpt-{step:07d}.safetensors"
    digest = atomic_save_safetensors(tensors, out / name)
    pointer = {"format_version": FORMAT_VERSION, "step": step, "file": name, "sha256": digest,
               "model_config": model_config, "optimizer_param_groups": groups, "extra": extra or {}}
    atomic_save_json(pointer, out / POINTER)
    old = sorted(out.glob("ckpt-*.safetensors"))
    for path in old[:-keep]:
        path.unlink(missing_ok=True)
    return out / name


def read_pointer(out_dir: str | os.PathLike) -> dict:
    """Read and check ``out_dir/latest.json``; raise :class:`CheckpointError` if absent or
    broken."""
    path = Path(out_dir) / POINTER
    if not path.exists():
        raise CheckpointError(f"no checkpoint in {str(out_dir)!r}: {POINTER} is missing")
    try:
        pointer = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint pointer {str(path)!r} is corrupted: {err}") from err
    missing = {"step", "file", "sha256", "model_config"} - set(pointer)
    if missing:
        raise CheckpointError(f"checkpoint pointer {str(path)!r} lacks the fields "
                              f"{sorted(missing)}")
    return pointer


def config_differences(saved: dict | None, current: dict | None) -> list[str]:
    """Human-readable list of fields where two config dicts differ (empty when they match)."""
    saved, current = saved or {}, current or {}
    diffs = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if a != b:
            diffs.append(f"{key}: checkpoint has {a!r}, current config has {b!r}")
    return diffs


def load_checkpoint(out_dir: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, *,
                    model_config: dict | None = None, restore_rng: bool = True) -> dict:
    """Restore the newest checkpoint in ``out_dir`` into ``model`` (and ``optimizer``) in place.

    Checks, in order, each failing with a :class:`CheckpointError` that says what is wrong: the
    pointer exists and parses; the tensor file exists and its sha256 matches (else "corrupted");
    the stored model config equals ``model_config`` (the differing fields are listed); the
    tensor names and shapes match the model.  Returns the pointer dict (``step``, ``extra``, ...).
    """
    pointer = read_pointer(out_dir)
    path = Path(out_dir) / pointer["file"]
    if not path.exists():
        raise CheckpointError(f"checkpoint file {str(path)!r} named by {POINTER} is missing")
    digest = sha256_of(path)
    if digest != pointer["sha256"]:
        raise CheckpointError(f"checkpoint file {str(path)!r} is corrupted: sha256 {digest} "
                              f"does not match the recorded {pointer['sha256']}")
    if model_config is not None:
        diffs = config_differences(pointer["model_config"], model_config)
        if diffs:
            raise CheckpointError(f"checkpoint in {str(out_dir)!r} does not match the model "
                                  "config: " + "; ".join(diffs))
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"checkpoint file {str(path)!r} is corrupted: {err}") from err
    load_model_state(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
                     source=str(path))
    if optimizer is not None:
        opt = {k: v for k, v in tensors.items() if k.startswith("optim.")}
        optimizer.load_state_dict(_optimizer_from_tensors(opt, pointer["optimizer_param_groups"]))
    if restore_rng:
        torch.set_rng_state(tensors["rng.torch"])
        if torch.cuda.is_available():
            states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda")]
            if len(states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(states)
    return pointer


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state)`` with an error that names missing/unexpected/mis-shaped
    keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(f"weights in {source!r} do not match the model: "
                              f"missing {missing[:5]}, unexpected {unexpected[:5]}, "
                              f"shape mismatches {shapes[:5]}")
    model.load_state_dict(state)
