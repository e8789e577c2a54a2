"""Pre-training objectives as pure loss functions (layer 4 of the package).

Modules: ``contrastive`` (SimCLR, CLIP, UniCL, SigLIP; chapter 04), ``augment`` (image views for
contrastive learning on ShapeWorld) and ``alignment`` (image-text matching with hard negatives,
GLIP's region-word alignment, FILIP; chapter 06).  Import from the module, e.g.
``from vlm_course.objectives.contrastive import clip_loss``; nothing is imported here so that
importing the package stays light.
"""
