"""A supervised image classifier: a CNN image tower and a linear head over one or more tasks.

Chapter 01 (the paradigms of visual recognition): the "deep network trained from labels" of the
survey's second paradigm and the "supervised pre-training, then fine-tuning" of its third (a
network pre-trained on ImageNet labels, He et al. 2016, and fine-tuned on a target task).  The
tower is the course's :class:`~vlm_course.models.resnet.ResNet`; the head is one linear layer
whose outputs are the concatenated logits of ``num_classes = (K_1, K_2, ...)`` tasks (several
heads trained together: one multi-task pre-training).

Stages: ``encode_image(images) -> (B, D)`` the representation a probe or a new head reads,
``forward(images) -> (B, sum K_t)`` logits, ``split_logits`` -> one ``(B, K_t)`` per task,
``replace_head(num_classes)`` for fine-tuning on a new task.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .resnet import ResNet, ResNetConfig

__all__ = ["ClassifierConfig", "ImageClassifier"]


def _check_num_classes(num_classes) -> tuple[int, ...]:
    if (not isinstance(num_classes, (tuple, list)) or not num_classes
            or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 2
                       for k in num_classes)):
        raise ValueError(f"num_classes must be a non-empty tuple of ints >= 2 (classes per task), "
                         f"got {num_classes!r}")
    return tuple(num_classes)


@dataclass
class ClassifierConfig:
    """``tower``: the ResNet's config (its ``output_dim`` is the representation width D);
    ``num_classes``: classes of each task the head predicts.  Raises ValueError for a bad
    ``num_classes``, TypeError when ``tower`` is not a :class:`ResNetConfig`."""

    tower: ResNetConfig = field(default_factory=ResNetConfig)
    num_classes: tuple[int, ...] = (8,)

    def __post_init__(self):
        if not isinstance(self.tower, ResNetConfig):
            raise TypeError(f"tower must be a ResNetConfig, got {type(self.tower).__name__}")
        self.num_classes = _check_num_classes(self.num_classes)

    @classmethod
    def tiny(cls, num_classes: tuple[int, ...] = (8,), image_size: int = 48) -> ClassifierConfig:
        """A small ResNet (basic blocks, 3 stages of 16/32/64 channels, global average pooling,
        64-d representation) for ``image_size`` (a multiple of 16) images."""
        tower = ResNetConfig(layers=(1, 1, 1), width=16, block="basic", image_size=image_size,
                             output_dim=64, pool="avg")
        return cls(tower=tower, num_classes=num_classes)

    def to_dict(self) -> dict:
        """Plain JSON-able dict; inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        """Rebuild a config saved by :meth:`to_dict` (e.g. from a checkpoint card)."""
        tower = dict(d["tower"])
        tower["layers"] = tuple(tower["layers"])
        if isinstance(tower.get("image_size"), list):
            tower["image_size"] = tuple(tower["image_size"])
        return cls(tower=ResNetConfig(**tower), num_classes=tuple(d["num_classes"]))


class ImageClassifier(nn.Module):
    """ResNet tower + linear head (module docstring).  ``ImageClassifier(ClassifierConfig.tiny())``.

    Raises TypeError when ``config`` is not a :class:`ClassifierConfig`.
    """

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        if not isinstance(config, ClassifierConfig):
            raise TypeError(f"config must be a ClassifierConfig, got {type(config).__name__}")
        self.config = config
        self.tower = ResNet(config.tower)
        self.output_dim = sum(config.num_classes)
        self.head = nn.Linear(self.tower.output_dim, self.output_dim)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, D)`` representation (the tower's pooled output).

        Raises ValueError for images of the wrong shape (the tower names the expected size).
        """
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, *self.config.tower.image_hw):
            raise ValueError(f"images must have shape (B, 3, {self.config.tower.image_hw[0]}, "
                             f"{self.config.tower.image_hw[1]}), got {tuple(images.shape)}")
        return self.tower(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, sum K_t)`` logits of every task, concatenated."""
        return self.head(self.encode_image(images))

    def split_logits(self, logits: torch.Tensor) -> list[torch.Tensor]:
        """``(B, sum K_t) -> [(B, K_1), (B, K_2), ...]``, one block per task.

        Raises ValueError unless ``logits`` is ``(B, sum K_t)``.
        """
        if logits.dim() != 2 or logits.shape[1] != self.output_dim:
            raise ValueError(f"logits must have shape (B, {self.output_dim}), got "
                             f"{tuple(logits.shape)}")
        return list(torch.split(logits, list(self.config.num_classes), dim=1))

    def replace_head(self, num_classes: tuple[int, ...]) -> ImageClassifier:
        """Swap in a freshly initialised head for ``num_classes`` (fine-tuning on a new task);
        the tower keeps its weights.  Returns ``self``.  Raises ValueError for bad
        ``num_classes``."""
        num_classes = _check_num_classes(num_classes)
        self.config = dataclasses.replace(self.config, num_classes=num_classes)
        self.output_dim = sum(num_classes)
        self.head = nn.Linear(self.tower.output_dim, self.output_dim).to(
            self.head.weight.device)
        return self
