"""Evaluation (chapter 08): zero-shot prediction with any vision-language model.

One concept per module; every module works with any model implementing the course's VLM
interface (``encode_image``, ``encode_text``, ``tokenize``, ``logit_scale``):

* :mod:`~vlm_course.evaluation.zeroshot` — prompt ensembles, the ShapeWorld card evaluation;
* :mod:`~vlm_course.evaluation.classifier` — :class:`ZeroShotClassifier` (built once from class
  names and templates; strict vocabulary check; top-1/top-5; confusion matrix);
* :mod:`~vlm_course.evaluation.retrieval` — recall@K, ranks, median rank, tie and duplicate rules;
* :mod:`~vlm_course.evaluation.pairs` — the paired image-caption similarity matrix, its diagonal
  margin and top-1 (chapter 04);
* :mod:`~vlm_course.evaluation.dense` — dense joint-space features (MaskCLIP value path, naive
  patch tokens): the only module that touches a model's internals;
* :mod:`~vlm_course.evaluation.segmentation` — zero-shot semantic segmentation;
* :mod:`~vlm_course.evaluation.proposals` and :mod:`~vlm_course.evaluation.detection` —
  class-agnostic proposals and zero-shot / open-vocabulary detection;
* :mod:`~vlm_course.evaluation.metrics` (top-k, confusion, mIoU) and
  :mod:`~vlm_course.evaluation.box_ap` (COCO box AP);
* :mod:`~vlm_course.evaluation.shapeworld_report` — all four tasks on ShapeWorld with chance levels;
* :mod:`~vlm_course.evaluation.probe` — a logistic-regression probe written in PyTorch, and
  :mod:`~vlm_course.evaluation.linear_probe` — the linear-probe protocol (C sweep, k-shot
  curves over seeds, cached features; chapter 09), :mod:`~vlm_course.evaluation.layers` —
  features of every depth of a ViT for layer-wise probes;
* :mod:`~vlm_course.evaluation.handcrafted` (HOG) and :mod:`~vlm_course.evaluation.paradigms` —
  chapter 01's one task solved by five paradigms, accuracy vs labels per class;
* :mod:`~vlm_course.evaluation.winoground` — Winoground in miniature: caption pairs with the same
  words in a different structure, for any image-text scorer (chapter 06);
* :mod:`~vlm_course.evaluation.pointing` — the pointing game for region-word scores (chapter 06);
* :mod:`~vlm_course.evaluation.frameworks` — chapter 07's comparison report (zero-shot with and
  without typos, retrieval, Winoground) and the caption index / scoring of the ranking-cost study;
* :mod:`~vlm_course.evaluation.checks` — shared argument checks.
"""
