"""Transfer learning (chapter 10): adapting a frozen VLM to a downstream task with a few labels.

The survey's "VLMs with transfer learning": text prompt tuning, visual prompt tuning and feature
adapters, with LoRA as the general-purpose baseline.  One module per method; every method wraps
any model with the course's VLM interface, freezes it and trains only its own parameters:

* :mod:`~vlm_course.transfer.frozen` — the common base :class:`FrozenVLM` and the zero-shot
  baseline;
* :mod:`~vlm_course.transfer.prompt_tuning` — CoOp and CoCoOp;
* :mod:`~vlm_course.transfer.visual_prompts` — VPT shallow and deep;
* :mod:`~vlm_course.transfer.adapters` — CLIP-Adapter, Tip-Adapter, Tip-Adapter-F;
* :mod:`~vlm_course.transfer.lora` — LoRA on the attention projections;
* :mod:`~vlm_course.transfer.linear_probe` — the linear-probe baseline;
* :mod:`~vlm_course.transfer.fit` — the few-shot optimisation loop, prediction, accuracy;
* :mod:`~vlm_course.transfer.tasks` — the downstream task (grainy ShapeWorld) and its splits;
* :mod:`~vlm_course.transfer.protocol` — the few-shot and base-to-new experiments;
* :mod:`~vlm_course.transfer.pseudo_label` — unsupervised transfer: zero-shot pseudo-labels and
  a probe fitted on them (chapter 14);
* :mod:`~vlm_course.transfer.internals` — the one place that reaches inside a model's towers.

Nothing is imported here (importing :mod:`vlm_course` must not import torch).
"""
