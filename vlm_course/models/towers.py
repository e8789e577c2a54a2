"""Which image tower a config builds: the tower type follows from the config's type.

Chapter 02 (network architectures).  Every image tower of the course shares one stage API (the
timm / MAE vocabulary):

* ``forward_features(images (B, C, H, W), return_attention=False)`` -- the backbone: a ViT returns
  its tokens ``(B, 1 + N, D)`` after the blocks, a ResNet its feature map ``(B, C', H', W')``;
* ``forward_head(features, return_attention=False) -> (B, output_dim)`` -- pooling and projection;
* ``forward(images, return_attention=False) = forward_head(forward_features(images))``.

With ``return_attention=True`` each stage returns ``(output, attentions)``, ``attentions`` a list
with one ``(B, h, N_query, N_key)`` tensor per attention layer the stage ran (an empty list for a
stage without attention, e.g. ResNet's convolutions or ViT's head).

A later tower registers its config and module class with :func:`register_image_tower`;
:func:`build_image_tower` then builds it from a config of that type.
"""

from __future__ import annotations

from torch import nn

from .resnet import ResNet, ResNetConfig
from .vit import VisionTransformer, ViTConfig

__all__ = ["IMAGE_TOWERS", "register_image_tower", "build_image_tower", "tower_name"]

#: name -> (config class, module class)
IMAGE_TOWERS: dict[str, tuple[type, type]] = {
    "vit": (ViTConfig, VisionTransformer),
    "resnet": (ResNetConfig, ResNet),
}


def register_image_tower(name: str, config_cls: type, module_cls: type) -> None:
    """Make ``build_image_tower(config_cls(...))`` build ``module_cls``.

    Raises ValueError when ``name`` or ``config_cls`` is already registered to another tower.
    """
    for other, (cfg_cls, mod_cls) in IMAGE_TOWERS.items():
        if (other == name or cfg_cls is config_cls) and (cfg_cls, mod_cls) != (config_cls,
                                                                              module_cls):
            raise ValueError(f"name {name!r} / config {config_cls.__name__} already registered "
                             f"as {other!r} -> {mod_cls.__name__}")
    IMAGE_TOWERS[name] = (config_cls, module_cls)


def tower_name(cfg) -> str:
    """The registered name (``"vit"``, ``"resnet"``, ...) of the tower ``cfg`` builds.

    Raises TypeError when ``cfg`` is not an instance of a registered tower config.
    """
    for name, (cfg_cls, _) in IMAGE_TOWERS.items():
        if type(cfg) is cfg_cls:
            return name
    known = ", ".join(c.__name__ for c, _ in IMAGE_TOWERS.values())
    raise TypeError(f"cfg must be an image-tower config ({known}), got {type(cfg).__name__}")


def build_image_tower(cfg) -> nn.Module:
    """The image tower of ``cfg``'s type: ``ViTConfig`` -> :class:`VisionTransformer`,
    ``ResNetConfig`` -> :class:`ResNet`.  Raises TypeError for any other config type."""
    return IMAGE_TOWERS[tower_name(cfg)][1](cfg)
