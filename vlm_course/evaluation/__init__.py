"""Evaluation (chapter 08): zero-shot classification with prompt ensembles, image–text retrieval.

Modules: :mod:`~vlm_course.evaluation.zeroshot` and :mod:`~vlm_course.evaluation.retrieval`; both
work with any model implementing the course's VLM interface (``encode_image``, ``encode_text``,
``tokenize``, ``logit_scale``).  Chapter 06 adds :mod:`~vlm_course.evaluation.winoground`
(Winoground in miniature: caption pairs with the same words, for any image-text scorer) and
:mod:`~vlm_course.evaluation.pointing` (the pointing game for region-word scores).
"""
