"""``from_pretrained``: a real CLIP by name, from a local folder or the local cache -- never a
silent download.

Chapter 13.  ``from_pretrained("openai/clip-vit-base-patch32")`` looks the name up in the local
Hugging Face cache (``~/.cache/huggingface/hub`` or ``$HF_HUB_CACHE``) with
``local_files_only=True`` and ``HF_HUB_OFFLINE=1`` set for the call, so it never opens a network
connection: when the files are not there it raises :class:`NotDownloadedError` at once, with the
command that downloads them.  Only ``download=True`` fetches anything.  A path to a folder
holding ``config.json`` and the weights works too (the folder :func:`save_hf_pretrained
<vlm_course.hub.hf_folder.save_hf_pretrained>` writes, or one copied from another machine).

:func:`open_clip_from_pretrained` does the same for OpenCLIP's ``(architecture, pretrained tag)``
pairs (Cherti et al. 2023), whose weights also live on the Hugging Face hub.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .adapters import HFCLIP, OpenCLIP
from .preprocess import ImagePreprocess

__all__ = ["NotDownloadedError", "from_pretrained", "locate", "open_clip_from_pretrained"]

#: The files a CLIP folder needs (weights as safetensors only: never a pickle).
HF_PATTERNS = ["*.json", "*.safetensors", "*.txt"]


class NotDownloadedError(FileNotFoundError):
    """A named model is not on this machine and the caller did not ask to download it."""


@contextlib.contextmanager
def offline(enabled: bool = True):
    """Set ``HF_HUB_OFFLINE=1`` (and ``TRANSFORMERS_OFFLINE=1``) for the duration, then restore."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    if enabled:
        os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _hint(repo: str, what: str, call: str) -> str:
    return (f"{what} is not on this machine, and the course never downloads without being asked. "
            f"Download it once on a machine with internet: `hf download {repo}` (the "
            f"huggingface_hub command line), or in Python `{call}`; or pass the path of a local "
            f"folder / weight file copied from a machine that has it")


def locate(name: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
           download: bool = False, revision: str | None = None) -> Path:
    """The local folder of model ``name``: ``name`` itself if it is a folder, else its snapshot
    in the Hugging Face cache (``cache_dir``, default the hub's).

    Raises:
        TypeError: ``name`` is not a string or path.
        FileNotFoundError: ``name`` looks like a path (starts with ``.``, ``/`` or ``~``) and no
            such folder exists.
        ValueError: ``name`` is neither a folder nor a valid model id.
        NotDownloadedError: ``name`` is not in the cache and ``download`` is False (at once,
            without touching the network; the message says how to download it), or its cached
            snapshot lacks ``config.json`` or safetensors weights (pickled weights are not read).
    """
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a model id like 'openai/clip-vit-base-patch32' or a "
                        f"folder path, got {type(name).__name__}")
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    text = os.fspath(name)
    if isinstance(name, os.PathLike) or text.startswith((".", "/", "~")):
        raise FileNotFoundError(f"name {text!r} is not a folder")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    call = f"vlm_course.hub.loading.from_pretrained({text!r}, download=True)"
    try:
        if download:
            folder = Path(snapshot_download(text, cache_dir=cache_dir, revision=revision,
                                            allow_patterns=HF_PATTERNS))
        else:
            with offline():
                folder = Path(snapshot_download(text, cache_dir=cache_dir, revision=revision,
                                                local_files_only=True,
                                                allow_patterns=HF_PATTERNS))
    except HFValidationError as err:
        raise ValueError(f"name must be a folder or a model id like "
                         f"'openai/clip-vit-base-patch32', got {text!r}") from err
    except (FileNotFoundError, ConnectionError) as err:   # not cached / offline mode
        if download:
            raise
        where = f"the Hugging Face cache {str(cache_dir)!r}" if cache_dir else \
            "the local Hugging Face cache"
        raise NotDownloadedError(_hint(text, f"{text!r} (looked up in {where})", call)) from err
    if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
        raise NotDownloadedError(_hint(text, f"{text!r} is in the cache ({folder}) without "
                                       f"config.json or *.safetensors weights, so it", call))
    return folder


def from_pretrained(name: str | os.PathLike, *, into: str = "adapter",
                    cache_dir: str | os.PathLike | None = None, download: bool = False,
                    revision: str | None = None):
    """A pretrained Hugging Face CLIP by name or folder, ready for :mod:`vlm_course.evaluation`.

    ``into="adapter"``: the ``transformers.CLIPModel`` with its tokenizer and image processor in
    an :class:`~vlm_course.hub.adapters.HFCLIP`; ``into="course"``: the weights converted into
    the course's own :class:`~vlm_course.models.clip.CLIP`
    (:func:`~vlm_course.hub.hf_folder.load_hf_folder`).  Both in eval mode on the CPU.

    Raises ValueError for another ``into``; what :func:`locate` raises (notably
    :class:`NotDownloadedError` in well under a second when offline and not cached).
    """
    if into not in ("adapter", "course"):
        raise ValueError(f"into must be 'adapter' or 'course', got {into!r}")
    folder = locate(name, cache_dir=cache_dir, download=download, revision=revision)
    with offline():
        if into == "course":
            from .hf_folder import load_hf_folder

            return load_hf_folder(folder)
        import transformers

        model = transformers.CLIPModel.from_pretrained(folder, local_files_only=True).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        if (folder / "preprocessor_config.json").is_file():
            processor = transformers.AutoImageProcessor.from_pretrained(folder,
                                                                        local_files_only=True)
            preprocess = ImagePreprocess.from_hf(processor)
        else:   # OpenAI's statistics at the model's image size
            S = model.config.vision_config.image_size
            preprocess = ImagePreprocess(S, (S, S), (0.48145466, 0.4578275, 0.40821073),
                                         (0.26862954, 0.26130258, 0.27577711))
    return HFCLIP(model, tokenizer, preprocess).eval()


def open_clip_from_pretrained(arch: str, pretrained: str | os.PathLike, *,
                              cache_dir: str | os.PathLike | None = None,
                              download: bool = False) -> OpenCLIP:
    """An OpenCLIP model (``arch``, e.g. ``"ViT-B-32"``) with weights ``pretrained`` -- a tag
    such as ``"laion2b_s34b_b79k"`` (looked up in the local Hugging Face cache) or a local
    weight file -- in an :class:`~vlm_course.hub.adapters.OpenCLIP`, eval mode, CPU.

    Raises ValueError for an unknown ``arch`` / tag (listing the known tags);
    NotDownloadedError when the tag's weights are not cached and ``download`` is False.
    """
    import open_clip

    if arch not in open_clip.list_models():
        raise ValueError(f"arch must be an open_clip architecture such as 'ViT-B-32', got "
                         f"{arch!r}")
    path = Path(pretrained).expanduser()
    if not path.is_file():
        cfg = open_clip.get_pretrained_cfg(arch, str(pretrained))
        if not cfg or not cfg.get("hf_hub"):
            tags = open_clip.list_pretrained_tags_by_model(arch)
            raise ValueError(f"pretrained must be a weight file or one of {arch}'s tags "
                             f"{tags}, got {pretrained!r}")
        from huggingface_hub import hf_hub_download

        repo = cfg["hf_hub"].rstrip("/")
        try:
            with offline(not download):
                path = Path(hf_hub_download(repo, "open_clip_model.safetensors",
                                            cache_dir=cache_dir, local_files_only=not download))
        except Exception as err:
            if download:
                raise
            call = (f"vlm_course.hub.loading.open_clip_from_pretrained({arch!r}, "
                    f"{str(pretrained)!r}, download=True)")
            raise NotDownloadedError(_hint(repo, f"OpenCLIP {arch} / {pretrained} ({repo!r})",
                                           call)) from err
    with offline():
        model = open_clip.create_model(arch, pretrained=str(path)).eval()
        tokenizer = open_clip.get_tokenizer(arch)
    return OpenCLIP(model, tokenizer, ImagePreprocess.from_open_clip(model)).eval()
