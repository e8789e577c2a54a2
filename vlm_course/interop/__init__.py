"""Weight converters between the course's models and the reference libraries.

Chapter 02 (architectures) and chapter 04 (CLIP): the course's towers are written from scratch,
and these converters show they are the same networks as OpenCLIP's (:mod:`.openclip`) and Hugging
Face transformers' ``CLIPModel`` (:mod:`.hf`): a state dict converted one way loads into the other
model, which then computes the same numbers (``tests/test_interop.py``).

The converters map plain ``{name: tensor}`` dicts, so they apply to weights and to gradients
alike.  The reference libraries are optional (the ``ref`` extra): this package never imports them
at import time, and ``import vlm_course`` does not import this package.  Only ``build_*`` and
``*_config`` functions import ``open_clip`` / ``transformers``, inside the function.
"""

from .hf import from_hf, hf_config, hf_input_ids, to_hf
from .openclip import from_open_clip, open_clip_config, to_open_clip

__all__ = ["from_open_clip", "to_open_clip", "open_clip_config", "from_hf", "to_hf", "hf_config",
           "hf_input_ids"]
