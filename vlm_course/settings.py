"""Course-wide settings: device choice, seeding, the scale switch, progress bars, offline defaults.

Layer 1 of the package (COURSE_DESIGN §3): every other module may import this one; it imports
nothing from the course.  Nothing here touches the network.  Importing it only sets environment
defaults for Hugging Face libraries so that they stay offline unless a call asks for a download
explicitly (``local_files_only=False`` and ``HF_HUB_OFFLINE=0`` set by the caller).

Environment variables read here:

=====================  ===========================================  ==========================
variable               accepted values                              default
=====================  ===========================================  ==========================
``VLM_COURSE_DEVICE``  ``cpu``, ``cuda``, ``cuda:N``, ``mps``        first of CUDA, MPS, CPU
``VLM_COURSE_SCALE``   ``cpu`` (laptop-sized), ``gpu`` (bigger)     ``cpu``
``VLM_COURSE_QUIET``   any non-empty value hides progress bars      unset
``CI``                 any non-empty value other than ``false``/0   unset
=====================  ===========================================  ==========================
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCALES = ("cpu", "gpu")
DEVICE_KINDS = ("cpu", "cuda", "mps")

# Offline by default: Hugging Face libraries read these when they are first imported.
# setdefault, so a user who exports HF_HUB_OFFLINE=0 on purpose keeps their choice.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def get_device(name: str | None = None):
    """Return the ``torch.device`` the course computes on.

    Order of choice: the ``name`` argument, then ``VLM_COURSE_DEVICE``, then the first available
    of CUDA, Apple MPS and CPU.  An unknown or unavailable device is an error that lists the
    accepted values, never a silent fallback: ``ValueError`` (naming ``device=`` or
    ``VLM_COURSE_DEVICE=``) for an unknown or unavailable device, ``TypeError`` for a non-str.

    >>> get_device("cpu")
    device(type='cpu')
    """
    import torch

    if name is not None and not isinstance(name, str):
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda:0' (or None), got "
                        f"{type(name).__name__}")
    requested = name if name is not None else os.environ.get("VLM_COURSE_DEVICE")
    if requested is None or requested.strip() == "":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")

    source = "device" if name is not None else "VLM_COURSE_DEVICE"
    value = requested.strip().lower()
    kind, _, index = value.partition(":")
    if kind not in DEVICE_KINDS or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise ValueError(
            f"{source}={requested!r} is not a device the course knows; "
            f"expected one of {', '.join(DEVICE_KINDS)} (or cuda:N for a GPU index)"
        )
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source}={requested!r} but CUDA is not available here; use 'cpu'")
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise ValueError(
            f"{source}={requested!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{source}={requested!r} but Apple MPS is not available here; "
                             "use 'cpu'")
    return torch.device(value)


def get_scale() -> str:
    """Return the experiment scale: ``"cpu"`` (default, laptop-sized) or ``"gpu"`` (bigger runs).

    Read from ``VLM_COURSE_SCALE``; an unknown value raises ``ValueError`` listing the accepted
    ones.
    """
    value = os.environ.get("VLM_COURSE_SCALE", "cpu").strip().lower() or "cpu"
    if value not in SCALES:
        raise ValueError(
            f"VLM_COURSE_SCALE={os.environ['VLM_COURSE_SCALE']!r} is not a known scale; "
            f"expected one of {', '.join(SCALES)}"
        )
    return value


def by_scale(cpu: T, gpu: T) -> T:
    """Pick a value by the current scale: ``steps = by_scale(cpu=200, gpu=5000)``.

    Raises what :func:`get_scale` raises (an unknown ``VLM_COURSE_SCALE``).
    """
    return gpu if get_scale() == "gpu" else cpu


def repo_path(*parts: str) -> Path:
    """An absolute path inside the course repository (every chapter), e.g. ``repo_path("data")``.

    Resolved from this file's location, not the working directory, so a notebook finds the
    repository's ``data/`` whether it runs from ``notebooks/``, the repository root or the book
    build. parts: path components (strings). Raises TypeError when a part is not a string.
    """
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"parts: expected strings, got {part!r}")
    return Path(__file__).resolve().parent.parent.joinpath(*parts)


def seed_everything(seed: int, deterministic: bool = True) -> int:
    """Seed Python's ``random``, NumPy and PyTorch (all devices) with ``seed``.

    With ``deterministic=True`` PyTorch is asked for deterministic algorithms where that is cheap
    (``warn_only=True``, so an op without a deterministic kernel warns instead of failing) and
    cuDNN autotuning is switched off.  Returns the seed so a notebook can print it.
    Raises ``ValueError`` when ``seed`` is not an int >= 0.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        # cuBLAS needs this for deterministic matmuls on CUDA >= 10.2; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return seed


def is_quiet() -> bool:
    """True when progress bars should be hidden: ``CI`` or ``VLM_COURSE_QUIET`` is set.
    Raises nothing."""
    return _truthy(os.environ.get("CI")) or _truthy(os.environ.get("VLM_COURSE_QUIET"))


def progress(iterable: Iterable[T] | None = None, **kwargs: Any):
    """A ``tqdm.auto`` progress bar (a widget in Jupyter, text in a terminal), silent when quiet.

    Accepts every ``tqdm`` keyword (``total``, ``desc``, ...).  ``disable`` defaults to
    :func:`is_quiet` so CI logs stay clean.  Raises ``TypeError`` (from tqdm) for an unknown
    keyword.
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", is_quiet())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


def environment_report() -> dict[str, str]:
    """Versions, device, threads and settings, as a dict a notebook can show as a table.

    Raises what :func:`get_device` / :func:`get_scale` raise for bad environment variables.
    """
    import platform

    import numpy as np
    import torch

    report = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(get_device()),
        "cuda available": str(torch.cuda.is_available()),
        "torch threads": str(torch.get_num_threads()),
        "cpu count": str(os.cpu_count()),
        "scale": get_scale(),
        "progress bars": "hidden" if is_quiet() else "shown",
        "HF offline": os.environ.get("HF_HUB_OFFLINE", ""),
    }
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    for module in ("torchvision", "transformers", "matplotlib", "ipywidgets", "sklearn", "skimage"):
        try:
            mod = __import__(module)
            report[module] = getattr(mod, "__version__", "?")
        except ImportError:
            report[module] = "not installed"
    return report
