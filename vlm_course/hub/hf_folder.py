"""A course CLIP as a Hugging Face model folder, and a Hugging Face CLIP in the course classes.

Chapter 13.  :func:`save_hf_pretrained` writes a course :class:`~vlm_course.models.clip.CLIP` in
the ``save_pretrained`` layout that ``transformers.CLIPModel.from_pretrained``,
``AutoTokenizer.from_pretrained`` and ``AutoImageProcessor.from_pretrained`` read:

* ``config.json`` + ``model.safetensors`` -- the weights converted by
  :func:`vlm_course.interop.hf.to_hf` (the ``[EOS]`` id moves to ``V - 1``, see there);
* ``tokenizer.json`` + ``tokenizer_config.json`` -- the course's word-level tokenizer rebuilt with
  the ``tokenizers`` library (lower-casing, the same word/punctuation split, ``[SOS] ... [EOS]``,
  the moved ids), so ``AutoTokenizer`` gives exactly the ids the converted model expects;
* ``preprocessor_config.json`` -- a ``CLIPImageProcessor`` at the model's image size with
  ``mean = 0``, ``std = 1`` (the course's models take pixels in [0, 1]);
* ``course_config.json`` -- the course ``CLIPConfig``, so :func:`load_hf_folder` rebuilds the
  exact course model (vocabulary included).

:func:`load_hf_folder` reads any CLIP folder into the course classes: a course export through its
``course_config.json``; any other (e.g. ``openai/clip-vit-base-patch32``) through
:func:`course_config_from_hf`, with :class:`HFTokenizer` giving the course's ``CLIP`` the real
sub-word tokenizer.  Everything reads local files only (``local_files_only=True``); finding a
named model in the cache is :mod:`vlm_course.hub.loading`.  ``transformers`` and ``tokenizers``
are imported inside the functions.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from vlm_course.interop.hf import build_hf, from_hf, token_id_map
from vlm_course.models.clip import CLIP, CLIPConfig
from vlm_course.models.text_encoder import TextConfig
from vlm_course.models.vit import ViTConfig

__all__ = ["COURSE_CONFIG", "HFTokenizer", "course_config_from_hf", "load_hf_folder",
           "save_hf_pretrained", "word_level_tokenizer"]

#: The file that marks a folder written by :func:`save_hf_pretrained`.
COURSE_CONFIG = "course_config.json"
_SPLIT_OUT = r"[^a-z0-9,.:;!?]+"   # the course tokenizer's separators (dropped)
_PUNCT = r"[,.:;!?]"               # punctuation marks: tokens of their own


def word_level_tokenizer(tokenizer, context_length: int):
    """The course ``Tokenizer`` as a ``transformers`` fast tokenizer with the ids of
    :func:`~vlm_course.interop.hf.token_id_map` (``[EOS]`` moved to ``V - 1``).

    ``tok(texts, padding="max_length", max_length=L, truncation=True)`` then gives the course
    tokenizer's ``input_ids`` mapped by :func:`~vlm_course.interop.hf.hf_input_ids` (tested).
    Raises TypeError when ``tokenizer`` is not a course ``Tokenizer`` (no ``vocab`` list).
    """
    import transformers
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    if not isinstance(getattr(tokenizer, "vocab", None), list):
        raise TypeError(f"tokenizer must be a vlm_course.text.Tokenizer, got "
                        f"{type(tokenizer).__name__}")
    words = tokenizer.vocab                      # special tokens first, then the words
    id_map = token_id_map(len(words), tokenizer.eos_id).tolist()
    vocab = {w: id_map[i] for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_SPLIT_OUT), behavior="removed"),
        pre_tokenizers.Split(Regex(_PUNCT), behavior="isolated")])
    tok.post_processor = processors.TemplateProcessing(
        single="[SOS] $A [EOS]",
        special_tokens=[("[SOS]", vocab["[SOS]"]), ("[EOS]", vocab["[EOS]"])])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="[SOS]", eos_token="[EOS]", pad_token="[PAD]",
        unk_token="[UNK]", mask_token="[MASK]", model_max_length=context_length)


def save_hf_pretrained(model: CLIP, folder: str | os.PathLike, *, overwrite: bool = False
                       ) -> Path:
    """Write course ``model`` as a Hugging Face CLIP folder (see the module docstring).

    The folder is assembled in a temporary sibling and moved into place at the end, so an
    interrupted export leaves no half-written model.  Returns the folder's path.

    Raises:
        TypeError: ``model`` is not a course ``CLIP``.
        ValueError: a config Hugging Face's ``CLIPModel`` cannot express (ResNet tower,
            post-norm, non-square images; :func:`vlm_course.interop.hf.hf_config`).
        FileExistsError: ``folder`` exists and ``overwrite`` is False.
    """
    import transformers

    if not isinstance(model, CLIP):
        raise TypeError(f"model must be a vlm_course CLIP, got {type(model).__name__}")
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"folder {str(folder)!r} exists; pass overwrite=True to replace it")
    cfg = model.config
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    hf = build_hf(cfg, state)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        hf.save_pretrained(tmp, safe_serialization=True)
        word_level_tokenizer(model.tokenizer, cfg.text.context_length).save_pretrained(tmp)
        H, W = cfg.vision.image_hw
        transformers.CLIPImageProcessor(
            size={"shortest_edge": H}, crop_size={"height": H, "width": W},
            image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0]).save_pretrained(tmp)
        (tmp / COURSE_CONFIG).write_text(json.dumps(cfg.to_dict(), indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


class HFTokenizer:
    """A Hugging Face tokenizer with the call signature of the course ``Tokenizer``, so a course
    ``CLIP`` can read a real CLIP's sub-word ids: ``tok(texts, context_length=L)`` ->
    ``{"input_ids", "attention_mask", "eot_index"}`` (``eot_index``: the position of the
    end-of-text token, where CLIP pools).  A sub-word tokenizer has no unknown words."""

    def __init__(self, tokenizer):
        self.hf = tokenizer
        self.vocab_size = len(tokenizer)
        self.eos_id = int(tokenizer.eos_token_id)

    def __call__(self, texts, context_length: int = 77, strict: bool = False) -> dict:
        enc = self.hf(list(texts), padding="max_length", truncation=True,
                      max_length=context_length, return_tensors="pt")
        mask = enc["attention_mask"].long()
        return {"input_ids": enc["input_ids"].long(), "attention_mask": mask,
                "eot_index": mask.sum(dim=1) - 1}

    def unknown_words(self, texts) -> list[str]:
        return []


def course_config_from_hf(hf_config, eos_id: int) -> CLIPConfig:
    """The course ``CLIPConfig`` with the sizes of a ``transformers.CLIPConfig`` (no
    vocabulary: pair the model with an :class:`HFTokenizer`).  ``eos_id``: the tokenizer's
    end-of-text id (49407 for OpenAI's CLIP; the config's ``eos_token_id`` may hold a legacy 2).

    Raises ValueError for a non-square image size or activations the course does not have.
    """
    v, t = hf_config.vision_config, hf_config.text_config
    for name, act in (("vision_config", v.hidden_act), ("text_config", t.hidden_act)):
        if act not in ("gelu", "quick_gelu"):
            raise ValueError(f"hf_config.{name}.hidden_act must be 'gelu' or 'quick_gelu', "
                             f"got {act!r}")
    D = hf_config.projection_dim
    vision = ViTConfig(image_size=v.image_size, patch_size=v.patch_size,
                       in_channels=v.num_channels, width=v.hidden_size,
                       layers=v.num_hidden_layers, heads=v.num_attention_heads,
                       mlp_ratio=v.intermediate_size / v.hidden_size, output_dim=D,
                       activation=v.hidden_act, ln_eps=v.layer_norm_eps)
    text = TextConfig(vocab_size=t.vocab_size, context_length=t.max_position_embeddings,
                      width=t.hidden_size, layers=t.num_hidden_layers,
                      heads=t.num_attention_heads, mlp_ratio=t.intermediate_size / t.hidden_size,
                      output_dim=D, activation=t.hidden_act, ln_eps=t.layer_norm_eps,
                      eos_id=eos_id)
    return CLIPConfig(embed_dim=D, vision=vision, text=text,
                      init_logit_scale=float(hf_config.logit_scale_init_value))


def load_hf_folder(folder: str | os.PathLike) -> CLIP:
    """A course ``CLIP`` (eval mode, CPU) with the weights of the Hugging Face CLIP in
    ``folder``: a :func:`save_hf_pretrained` export (its own vocabulary) or any ``CLIPModel``
    folder with a tokenizer (its sub-word tokenizer through :class:`HFTokenizer`).

    Raises FileNotFoundError when ``folder`` has no ``config.json``; ValueError as
    :func:`course_config_from_hf`.
    """
    import transformers

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"folder {str(folder)!r} holds no config.json: not a Hugging "
                                f"Face model folder")
    hf = transformers.CLIPModel.from_pretrained(folder, local_files_only=True)
    state = hf.state_dict()
    if (folder / COURSE_CONFIG).is_file():
        cfg = CLIPConfig.from_dict(json.loads((folder / COURSE_CONFIG).read_text()))
        model = CLIP(cfg)
    else:
        tok = HFTokenizer(transformers.AutoTokenizer.from_pretrained(folder,
                                                                     local_files_only=True))
        cfg = course_config_from_hf(hf.config, tok.eos_id)
        model = CLIP(cfg, tokenizer=tok)
    with torch.no_grad():
        model.load_state_dict(from_hf(state, cfg))
    return model.eval()
