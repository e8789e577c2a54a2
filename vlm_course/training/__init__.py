"""Training (chapter 04): the loop as plain functions, optimiser/schedule, data stream, checkpoints.

Modules: :mod:`~vlm_course.training.loop` (``TrainConfig``, ``train_step``, ``evaluate``,
``train``), :mod:`~vlm_course.training.optim` (AdamW groups, warmup + cosine),
:mod:`~vlm_course.training.data` (the ShapeWorld batch of a step),
:mod:`~vlm_course.training.checkpoint` (safetensors + JSON, atomic, resumable) and
:mod:`~vlm_course.training.distributed` (torch.distributed helpers).  Import the module you need;
nothing is imported here so that importing the package stays cheap.
"""
