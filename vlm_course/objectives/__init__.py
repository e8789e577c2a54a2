"""Pre-training objectives as pure loss functions (layer 4 of the package).

Modules: ``contrastive`` (SimCLR, CLIP, UniCL, SigLIP; chapter 04) and ``augment`` (image views for
contrastive learning on ShapeWorld).  Import from the module, e.g.
``from vlm_course.objectives.contrastive import clip_loss``; nothing is imported here so that
importing the package stays light.
"""
