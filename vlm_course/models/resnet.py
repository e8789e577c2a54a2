"""Residual networks: basic and bottleneck blocks, the ResNet-D / CLIP changes, a small ResNet.

Chapter 02 (network architectures).  He et al. 2016 ("Deep residual learning") add the block's
input to its output, ``y = relu(F(x) + shortcut(x))``; the identity path carries gradients to
early layers however deep the net is.  ``skip=False`` removes that path (the "plain" network of
the paper's ablation).  He et al. 2019 ("Bag of tricks", ResNet-D) and CLIP (Radford et al. 2021)
change three things, switched on together by ``avg_down`` / ``ResNetConfig.resnet_d``:

* a stem of three 3x3 convolutions followed by 2x2 average pooling (instead of one 7x7 conv and
  max pooling);
* a stride-2 block average-pools *before* a stride-1 convolution instead of using a strided
  convolution that skips 3 of every 4 positions -- in the residual branch and in the shortcut;
* attention pooling at the end (:class:`~vlm_course.models.pooling.AttentionPool2d`).

Zero-initialising the last BatchNorm of each residual branch (``zero_init_last``) makes every
block start as the identity (Goyal et al. 2017; He et al. 2019).

Shapes: images ``(B, C, H, W)`` float (H and W multiples of the total stride, not necessarily
equal); feature maps ``(B, C', H', W')``; output ``(B, D_out)``.
State-dict names of the blocks match torchvision's ``BasicBlock`` / ``Bottleneck``
(``conv1, bn1, ..., downsample.0 (conv), downsample.1 (bn)``) and OpenCLIP's ``Bottleneck``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .image_size import as_hw, normalise_size
from .pooling import AttentionPool2d, GlobalAvgPool

__all__ = ["BasicBlock", "Bottleneck", "ResNetConfig", "ResNet"]


def _shortcut(in_ch: int, out_ch: int, stride: int, avg_down: bool) -> tuple[nn.Module, nn.Module]:
    """(pool, projection) for the shortcut, or (Identity, None) when shapes already match."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity(), None
    conv_stride = 1 if avg_down else stride
    pool = nn.AvgPool2d(stride) if (avg_down and stride > 1) else nn.Identity()
    proj = nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 1, stride=conv_stride, bias=False), nn.BatchNorm2d(out_ch)
    )
    return pool, proj


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers; ``y = relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x))``.

    ``(B, in_ch, H, W) -> (B, out_ch, H / stride, W / stride)``.  ``skip=False``: no shortcut
    (plain block).  ``avg_down=True``: a stride-2 block average-pools first, then convolves at
    stride 1 (ResNet-D).
    """

    expansion = 1

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, skip: bool = True,
                 avg_down: bool = False):
        super().__init__()
        self.skip = skip
        self.pool = nn.AvgPool2d(stride) if (avg_down and stride > 1) else nn.Identity()
        s = 1 if avg_down else stride
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=s, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        self.shortcut_pool, self.downsample = (
            _shortcut(in_ch, out_ch, stride, avg_down) if skip else (nn.Identity(), None)
        )

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(self.pool(x))))
        out = self.bn2(self.conv2(out))
        if self.skip:
            identity = self.shortcut_pool(x)
            if self.downsample is not None:
                identity = self.downsample(identity)
            out = out + identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4): ``(B, in_ch, H, W) -> (B, 4 * planes, H/s, W/s)``.

    Without ``avg_down`` the stride sits on the 3x3 convolution (torchvision's "ResNet v1.5").
    With ``avg_down`` every convolution has stride 1 and an average pool follows the 3x3
    convolution; the shortcut average-pools before its 1x1 convolution (ResNet-D, CLIP).
    ``skip=False``: no shortcut (plain block).
    """

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1, skip: bool = True,
                 avg_down: bool = False):
        super().__init__()
        out_ch = planes * self.expansion
        self.skip = skip
        s = 1 if avg_down else stride
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=s, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if (avg_down and stride > 1) else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        self.shortcut_pool, self.downsample = (
            _shortcut(in_ch, out_ch, stride, avg_down) if skip else (nn.Identity(), None)
        )

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        if self.skip:
            identity = self.shortcut_pool(x)
            if self.downsample is not None:
                identity = self.downsample(identity)
            out = out + identity
        return self.relu(out)


@dataclass
class ResNetConfig:
    """A small ResNet.

    ``layers[i]`` blocks in stage ``i``; stage ``i`` has ``width * 2**i`` planes and stride 2
    except the first stage (stride 1).  The stem divides the image size by 4, so the feature
    grid is ``image_size / (4 * 2**(len(layers) - 1))`` wide.  ``image_size``: an int (square)
    or ``(H, W)``; it fixes the attention pool's grid (average pooling takes any multiple of the
    stride).
    """

    layers: tuple[int, ...] = (1, 1, 1, 1)
    width: int = 16  # channels after the stem
    block: str = "bottleneck"  # "basic" or "bottleneck"
    in_channels: int = 3
    image_size: int | tuple[int, int] = 64
    output_dim: int = 64
    pool: str = "attention"  # "attention" (CLIP) or "avg" (global average pooling)
    heads: int = 4  # attention-pool heads
    resnet_d: bool = True  # three-conv stem + average pool before strided convs (CLIP)
    skip: bool = True  # False: plain network (the skip-connection ablation)
    zero_init_last: bool = True  # zero-init the last BN of each residual branch

    def __post_init__(self):
        self.image_size = normalise_size(self.image_size, "image_size")
        self.layers = tuple(self.layers)

    @classmethod
    def tiny(cls, **overrides) -> ResNetConfig:
        """CLIP-style ResNet for 64x64 images: 3 stages, 8x8 -> 4x4 grid, 256-d map, 64-d output."""
        return replace(cls(layers=(1, 1, 1), width=16, heads=4, output_dim=64), **overrides)

    @property
    def stride(self) -> int:
        return 4 * 2 ** (len(self.layers) - 1)

    @property
    def image_hw(self) -> tuple[int, int]:
        """``(H, W)`` of the configured image size."""
        return as_hw(self.image_size)

    @property
    def grid(self) -> tuple[int, int]:
        """``(H / stride, W / stride)``: the feature grid of the configured image size."""
        H, W = self.image_hw
        return H // self.stride, W // self.stride

    @property
    def grid_size(self) -> int:
        """Side of a square feature grid.  Raises ValueError for a non-square one (use ``grid``)."""
        gh, gw = self.grid
        if gh != gw:
            raise ValueError(f"grid_size needs a square grid, got grid={self.grid}; use cfg.grid")
        return gh

    @property
    def feature_dim(self) -> int:
        expansion = Bottleneck.expansion if self.block == "bottleneck" else BasicBlock.expansion
        return self.width * 2 ** (len(self.layers) - 1) * expansion


class ResNet(nn.Module):
    """Stem, stages of residual blocks, and a pooling head (a part: pass ``pool=`` to swap it).

    The image-tower API shared with :class:`~vlm_course.models.vit.VisionTransformer`
    (see :mod:`vlm_course.models.towers`): ``forward_features(images) -> (B, C', H', W')`` feature
    map, ``forward_head(features) -> (B, output_dim)`` (the pooling head ``self.pool``),
    ``forward(images) = forward_head(forward_features(images))``.  With
    ``return_attention=True`` each returns ``(output, attentions)``: ``[]`` for the convolutional
    stages, ``[(B, h, 1, H'W' + 1)]`` for the attention pool.  ``output_dim`` is the size of the
    final vector.

    Raises TypeError when ``cfg`` is not a :class:`ResNetConfig`; ValueError for an unknown
    ``cfg.block`` / ``cfg.pool`` or an image size that is not a multiple of the stride.
    """

    def __init__(self, cfg: ResNetConfig, pool: nn.Module | None = None):
        super().__init__()
        if not isinstance(cfg, ResNetConfig):
            raise TypeError(f"cfg must be a ResNetConfig, got {type(cfg).__name__}")
        if cfg.block not in ("basic", "bottleneck"):
            raise ValueError(f"cfg.block must be 'basic' or 'bottleneck', got {cfg.block!r}")
        if cfg.pool not in ("attention", "avg"):
            raise ValueError(f"cfg.pool must be 'attention' or 'avg', got {cfg.pool!r}")
        if any(side % cfg.stride for side in cfg.image_hw):
            raise ValueError(
                f"cfg.image_size must be divisible by the total stride {cfg.stride}, "
                f"got {cfg.image_size}"
            )
        self.cfg = cfg
        w = cfg.width
        if cfg.resnet_d:
            self.stem = nn.Sequential(
                nn.Conv2d(cfg.in_channels, w // 2, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(w // 2), nn.ReLU(),
                nn.Conv2d(w // 2, w // 2, 3, padding=1, bias=False),
                nn.BatchNorm2d(w // 2), nn.ReLU(),
                nn.Conv2d(w // 2, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                nn.AvgPool2d(2),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(cfg.in_channels, w, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
            )
        block = Bottleneck if cfg.block == "bottleneck" else BasicBlock
        stages, in_ch = [], w
        for i, n in enumerate(cfg.layers):
            planes = w * 2**i
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(in_ch, planes, stride, cfg.skip, cfg.resnet_d))
                in_ch = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        if pool is None:
            if cfg.pool == "attention":
                gh, gw = cfg.grid
                grid = gh if gh == gw else (gh, gw)  # an int keeps OpenCLIP's square layout
                pool = AttentionPool2d(grid, in_ch, cfg.heads, cfg.output_dim)
            else:
                pool = GlobalAvgPool(in_ch, cfg.output_dim)
        self.pool = pool
        self.output_dim = getattr(pool, "output_dim", cfg.output_dim)
        self.init_parameters()

    def init_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if self.cfg.zero_init_last and self.cfg.skip:
            for stage in self.stages:
                for blk in stage:
                    nn.init.zeros_(blk.last_bn().weight)

    def _check(self, images: torch.Tensor) -> None:
        """Raises ValueError unless ``images`` is ``(B, in_channels, H, W)`` with H and W multiples
        of the stride (and the configured ``(H, W)`` under attention pooling)."""
        c = self.cfg
        if images.dim() != 4 or images.shape[1] != c.in_channels:
            raise ValueError(
                f"images must have shape (B, C={c.in_channels}, H, W), got {tuple(images.shape)}"
            )
        H, W = c.image_hw
        if isinstance(self.pool, AttentionPool2d) and tuple(images.shape[-2:]) != (H, W):
            raise ValueError(
                f"images must be {H}x{W} (attention pooling has a fixed grid):"
                f" expected (B, {c.in_channels}, {H}, {W}), got {tuple(images.shape)}"
            )
        if images.shape[-2] % c.stride or images.shape[-1] % c.stride:
            raise ValueError(
                f"images height and width must be divisible by the total stride {c.stride}, "
                f"got {tuple(images.shape)}"
            )

    def forward_features(self, images: torch.Tensor, return_attention: bool = False):
        """``(B, C, H, W) -> (B, feature_dim, H / stride, W / stride)`` before pooling.

        With ``return_attention=True``: ``(features, [])`` (convolutions have no attention).
        Raises ValueError for images of the wrong shape.
        """
        self._check(images)
        x = self.stem(images)
        for stage in self.stages:
            x = stage(x)
        return (x, []) if return_attention else x

    def forward_head(self, features: torch.Tensor, return_attention: bool = False):
        """The pooling head: ``(B, feature_dim, H', W') -> (B, output_dim)``.

        With ``return_attention=True``: ``(output, attentions)`` of the pool.  Raises ValueError
        for a feature map the head cannot take.
        """
        if return_attention:
            return self.pool(features, return_attention=True)
        return self.pool(features)

    def forward(self, images: torch.Tensor, return_attention: bool = False):
        """``(B, C, H, W) -> (B, output_dim)``, not normalised.

        With ``return_attention=True``: ``(output, attentions)`` (the attention pool's weights).
        """
        if not return_attention:
            return self.forward_head(self.forward_features(images))
        features, maps = self.forward_features(images, return_attention=True)
        out, head_maps = self.forward_head(features, return_attention=True)
        return out, maps + head_maps
