"""Knowledge distillation from a VLM into task models (chapter 11).

The survey's "VLMs with knowledge distillation": a vision-language model's open-vocabulary
knowledge is distilled into a small model built for one dense task, which keeps its own
architecture and speed but inherits the VLM's vocabulary.

* :mod:`~vlm_course.distill.losses` — Hinton's soft-target loss with temperature, ViLD's
  region-embedding distillation (L1 / cosine), pixel-wise distillation of dense predictions;
* :mod:`~vlm_course.distill.teacher` — the frozen teacher: crop embeddings (ViLD-image targets),
  class text embeddings, dense pseudo-labels;
* :mod:`~vlm_course.distill.detector` — a small open-vocabulary detector (ViLD-text + ViLD-image);
* :mod:`~vlm_course.distill.segmenter` — a small segmenter taught by dense pseudo-labels;
* :mod:`~vlm_course.distill.shapeworld` — the base/novel split on ShapeWorld, the detector's
  data, training and open-vocabulary evaluation (chapter 08's box AP);
* :mod:`~vlm_course.distill.shapeworld_seg` — the same for the segmenter (chapter 08's mIoU).

Nothing here is imported with ``vlm_course``; import the submodules.
"""
