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
    """Hex sha256 of a file, read in 1 MiB chunks.  Raises ``FileNotFoundError`` when absent."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a ``*.tmp`` file in the same folder, flushed and
    fsynced, then ``os.replace`` — a crash leaves the old file or the new one, never a mix.
    Raises ``TypeError`` when ``data`` is not bytes."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
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
    sha256.  Raises ``TypeError`` when ``tensors`` is not a dict of str -> Tensor."""
    if not isinstance(tensors, dict):
        raise TypeError(f"tensors must be a dict of str -> torch.Tensor, got "
                        f"{type(tensors).__name__}")
    bad = [f"{k!r}: {type(v).__name__}" for k, v in tensors.items()
           if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if bad:
        raise TypeError(f"tensors must be a dict of str -> torch.Tensor, got {bad[:3]}")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(clean, str(tmp), metadata=metadata)
    with open(tmp, "rb") as handle:   # on disk before the pointer names it (as for the JSON)
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return sha256_of(path)


def atomic_save_json(obj: Any, path: str | os.PathLike, *, sort_keys: bool = True) -> None:
    """Write ``obj`` as indented JSON via a temporary file + ``os.replace``.  Raises ``TypeError``
    (from ``json``) when ``obj`` is not JSON-able, before anything is written."""
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

    Raises ``TypeError`` when ``model`` is not an ``nn.Module``, ``optimizer`` not a
    ``torch.optim.Optimizer`` (or None), or ``model_config`` / ``extra`` not a dict (or None);
    ``ValueError`` when ``step`` is not an int >= 0 or ``keep`` not an int >= 1.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got "
                        f"{type(optimizer).__name__}")
    for name, value in (("model_config", model_config), ("extra", extra)):
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"{name} must be a dict or None, got {type(value).__name__}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
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
    broken.

    Broken means: not JSON, not a JSON object, a required field (``step``, ``file``, ``sha256``,
    ``model_config``) missing, or of the wrong type (``step`` an int >= 0, ``file`` a bare file
    name ``*.safetensors`` inside ``out_dir``, ``sha256`` 64 hex digits, ``model_config`` an
    object or null).  Every message names the pointer file and the field.
    """
    path = Path(out_dir) / POINTER
    if not path.exists():
        raise CheckpointError(f"no checkpoint in {str(out_dir)!r}: {POINTER} is missing")
    try:
        pointer = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint pointer {str(path)!r} is corrupted: {err}") from err
    if not isinstance(pointer, dict):
        raise CheckpointError(f"checkpoint pointer {str(path)!r} is corrupted: expected a JSON "
                              f"object, got {type(pointer).__name__}")
    missing = {"step", "file", "sha256", "model_config"} - set(pointer)
    if missing:
        raise CheckpointError(f"checkpoint pointer {str(path)!r} lacks the fields "
                              f"{sorted(missing)}")
    step, file, digest = pointer["step"], pointer["file"], pointer["sha256"]
    problems = []
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        problems.append(f"step must be an int >= 0, got {step!r}")
    if not isinstance(file, str) or Path(file).name != file or not file.endswith(".safetensors"):
        problems.append(f"file must be a bare *.safetensors file name, got {file!r}")
    if not (isinstance(digest, str) and len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest)):
        problems.append(f"sha256 must be 64 lower-case hex digits, got {digest!r}")
    if pointer["model_config"] is not None and not isinstance(pointer["model_config"], dict):
        problems.append(f"model_config must be an object or null, got "
                        f"{pointer['model_config']!r}")
    if problems:
        raise CheckpointError(f"checkpoint pointer {str(path)!r} is corrupted: "
                              + "; ".join(problems))
    return pointer


def config_differences(saved: dict | None, current: dict | None) -> list[str]:
    """Human-readable list of fields where two config dicts differ (empty when they match).

    ``None`` counts as an empty dict.  Raises ``TypeError`` when either is neither a dict nor
    None.
    """
    for name, value in (("saved", saved), ("current", current)):
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"{name} must be a dict or None, got {type(value).__name__}")
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
    tensor names and shapes match the model; the optimiser state and the RNG state are present
    when they are asked for.  Returns the pointer dict (``step``, ``extra``, ...).
    Raises ``TypeError`` when ``model`` is not an ``nn.Module`` or ``optimizer`` not an
    optimiser (or None).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got "
                        f"{type(optimizer).__name__}")
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
        groups = pointer.get("optimizer_param_groups")
        if not opt or not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
            raise CheckpointError(f"checkpoint {str(path)!r} holds no optimizer state matching "
                                  f"{len(optimizer.param_groups)} parameter group(s) (tensors: "
                                  f"{len(opt)}, optimizer_param_groups: {groups!r:.60})")
        try:
            optimizer.load_state_dict(_optimizer_from_tensors(opt, groups))
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"optimizer state in {str(path)!r} does not fit the "
                                  f"optimizer: {err}") from err
    if restore_rng:
        if "rng.torch" not in tensors:
            raise CheckpointError(f"checkpoint {str(path)!r} has no 'rng.torch' state; pass "
                                  "restore_rng=False to load it without restoring the RNG")
        torch.set_rng_state(tensors["rng.torch"])
        if torch.cuda.is_available():
            states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda")]
            if len(states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(states)
    return pointer


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state)`` with an error that names missing/unexpected/mis-shaped
    keys.  Raises :class:`CheckpointError` (naming ``source``) when they do not match."""
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
