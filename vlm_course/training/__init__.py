"""Training (chapter 04 onwards): one loop for every objective, optimiser/schedule, checkpoints.

Modules: :mod:`~vlm_course.training.loop` (``TrainConfig``, ``train(model, batches, step_fn,
config)`` and its named stages), :mod:`~vlm_course.training.optim` (AdamW groups, warmup +
cosine), :mod:`~vlm_course.training.data` (which examples a step trains on, per rank),
:mod:`~vlm_course.training.checkpoint` (safetensors + JSON, atomic, resumable) and
:mod:`~vlm_course.training.distributed` (rank/world size, feature gathering, the gathered CLIP
loss).  Objectives plug in as recipes (:mod:`vlm_course.recipes`).  Import the module you need;
nothing is imported here so that importing the package stays cheap.
"""
