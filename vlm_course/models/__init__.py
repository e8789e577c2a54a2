"""Network architectures (chapter 02): CNN and ViT image towers, the text tower, their parts.

Image towers map ``(B, C, H, W)`` images to ``(B, output_dim)`` through one stage API,
``forward_features`` -> ``forward_head`` (see :mod:`vlm_course.models.towers`); the tower a config
builds follows from the config's type (:func:`build_image_tower`).  The text tower maps token ids
``(B, L)`` (+ ``attention_mask``) to ``(B, output_dim)`` pooled at ``[EOS]``.  Each model takes a
small config dataclass with a ``tiny()`` preset.  ``CLIP`` (chapter 04) composes the two towers;
``ITMModel`` (chapters 06-07) adds a fusion encoder; ``TwoLegModel`` (chapter 07, ALBEF) adds an
MLM head to it; ``OneTower`` (chapter 07, CLIPPO) reads images and rendered captions with one
shared ViT.
"""

from .attention import MultiHeadAttention, attention, attention_explicit
from .clip import CLIP, CLIPConfig
from .fusion import FusionBlock, FusionConfig, FusionEncoder
from .grounding import RegionWordConfig, RegionWordHead
from .itm import ITMConfig, ITMModel
from .one_tower import OneTower, OneTowerConfig
from .pooling import AttentionPool2d, GlobalAvgPool
from .resnet import BasicBlock, Bottleneck, ResNet, ResNetConfig
from .text_encoder import TextConfig, TextEncoder, causal_mask
from .towers import IMAGE_TOWERS, build_image_tower, register_image_tower, tower_name
from .transformer import QuickGELU, ResidualAttentionBlock, Transformer, make_activation
from .two_leg import TwoLegConfig, TwoLegModel
from .vit import VisionTransformer, ViTConfig, patchify, unpatchify

__all__ = [
    "FusionBlock",
    "FusionConfig",
    "FusionEncoder",
    "ITMConfig",
    "ITMModel",
    "OneTower",
    "OneTowerConfig",
    "TwoLegConfig",
    "TwoLegModel",
    "RegionWordConfig",
    "RegionWordHead",
    "attention",
    "attention_explicit",
    "MultiHeadAttention",
    "GlobalAvgPool",
    "AttentionPool2d",
    "BasicBlock",
    "Bottleneck",
    "ResNetConfig",
    "ResNet",
    "QuickGELU",
    "make_activation",
    "ResidualAttentionBlock",
    "Transformer",
    "patchify",
    "unpatchify",
    "ViTConfig",
    "VisionTransformer",
    "IMAGE_TOWERS",
    "build_image_tower",
    "register_image_tower",
    "tower_name",
    "causal_mask",
    "TextConfig",
    "TextEncoder",
    "CLIPConfig",
    "CLIP",
]
