"""Real pretrained CLIPs with the course's code (chapter 13).

* :mod:`.preprocess` -- a real CLIP's image preprocessing in torch (resize, crop, normalise);
* :mod:`.adapters` -- :class:`~.adapters.HFCLIP` and :class:`~.adapters.OpenCLIP`: the course's VLM
  interface around a Hugging Face ``CLIPModel`` or an ``open_clip`` model, so chapter 08's
  evaluation runs on them unchanged;
* :mod:`.hf_folder` -- a course CLIP saved as a Hugging Face model folder
  (``save_hf_pretrained``), and a Hugging Face CLIP folder loaded into the course classes
  (``load_hf_folder``);
* :mod:`.loading` -- ``from_pretrained(name)``: a named model from a local folder or the local
  Hugging Face cache; offline it fails at once with the command that downloads it.

The layer sits above :mod:`vlm_course.interop` (the weight converters).  ``transformers``,
``tokenizers``, ``huggingface_hub`` and ``open_clip`` are imported only inside the functions that
need them; ``import vlm_course`` does not import this package.
"""
