"""Residual blocks, pooling heads and the ResNet (chapter 02): behaviour and bad input."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.resnet import Bottleneck as TVBottleneck

from vlm_course.models import (
    AttentionPool2d,
    BasicBlock,
    Bottleneck,
    GlobalAvgPool,
    ResNet,
    ResNetConfig,
)


def test_plain_block_has_no_shortcut_and_differs_from_residual_one():
    torch.manual_seed(0)
    res, plain = BasicBlock(8, 16, 2), BasicBlock(8, 16, 2, skip=False)
    assert res.downsample is not None and plain.downsample is None
    plain.load_state_dict(res.state_dict(), strict=False)
    x = torch.randn(2, 8, 8, 8)
    res.eval(), plain.eval()
    assert not torch.allclose(res(x), plain(x))


def test_avg_down_changes_only_strided_blocks():
    torch.manual_seed(0)
    ref = TVBottleneck(32, 8).eval()  # stride 1, no downsampling: ResNet-D is the same block
    ours = Bottleneck(32, 8, avg_down=True).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 32, 8, 8)
    torch.testing.assert_close(ours(x), ref(x))
    strided, pooled = Bottleneck(16, 8, 2).eval(), Bottleneck(16, 8, 2, avg_down=True).eval()
    pooled.load_state_dict(strided.state_dict())
    x = torch.randn(2, 16, 8, 8)
    assert strided(x).shape == pooled(x).shape and not torch.allclose(strided(x), pooled(x))


def test_attention_pool_weights_and_mean_token():
    torch.manual_seed(0)
    pool = AttentionPool2d(3, 16, 4, 8)
    x = torch.randn(2, 16, 3, 3)
    tokens = pool.tokens(x)
    assert tokens.shape == (2, 10, 16)
    torch.testing.assert_close(tokens[:, 0] - pool.positional_embedding[0],
                               x.flatten(2).mean(-1))  # first token is the grid mean (+ its pos)
    y, maps = pool(x, return_attention=True)
    assert len(maps) == 1 and y.shape == (2, 8) and maps[0].shape == (2, 4, 1, 10)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 4, 1))
    torch.testing.assert_close(y, pool(x))


def test_attention_pool_sees_position_average_pool_does_not():
    torch.manual_seed(0)
    x = torch.zeros(1, 8, 2, 2)
    x[0, :, 0, 0] = 1.0
    moved = x.roll(1, dims=3)  # the same object one cell to the right
    gap, att = GlobalAvgPool(8), AttentionPool2d(2, 8, 2)
    torch.testing.assert_close(gap(x), gap(moved))
    assert not torch.allclose(att(x), att(moved))


def test_dense_attention_pool_equals_pooled_output_on_one_cell():
    torch.manual_seed(0)
    pool = AttentionPool2d(1, 16, 4, 8)
    with torch.no_grad():
        pool.positional_embedding.zero_()
    x = torch.randn(3, 16, 1, 1)
    torch.testing.assert_close(pool.dense(x)[:, :, 0, 0], pool(x))
    assert pool.dense(torch.randn(3, 16, 5, 4)).shape == (3, 8, 5, 4)


def test_resnet_takes_its_pooling_head_as_a_part():
    cfg = ResNetConfig.tiny()
    model = ResNet(cfg, pool=GlobalAvgPool(cfg.feature_dim, 10))
    x = torch.rand(2, 3, 64, 64)
    feats = model.forward_features(x)
    assert feats.shape == (2, cfg.feature_dim, cfg.grid_size, cfg.grid_size)
    assert model(x).shape == (2, 10) and model.output_dim == 10
    torch.testing.assert_close(model(x), model.forward_head(feats))
    assert model(x, return_attention=True)[1] == []  # neither convolutions nor GAP attend
    assert ResNet(ResNetConfig.tiny(pool="avg"))(torch.rand(1, 3, 96, 96)).shape == (1, 64)


def test_attention_of_the_resnet_tower_is_the_pool_s():
    torch.manual_seed(0)
    model = ResNet(ResNetConfig.tiny()).eval()
    x = torch.rand(2, 3, 64, 64)
    out, maps = model(x, return_attention=True)
    torch.testing.assert_close(out, model(x))
    assert len(maps) == 1 and maps[0].shape == (2, 4, 1, 4 * 4 + 1)
    feats, none = model.forward_features(x, return_attention=True)
    assert none == [] and feats.shape == (2, 256, 4, 4)


def test_non_square_images():
    torch.manual_seed(0)
    cfg = ResNetConfig.tiny(image_size=(64, 32))
    assert cfg.grid == (4, 2)
    model = ResNet(cfg).eval()
    x = torch.rand(2, 3, 64, 32)
    assert model.forward_features(x).shape == (2, 256, 4, 2) and model(x).shape == (2, 64)
    assert model.pool.positional_embedding.shape == (4 * 2 + 1, 256)
    with pytest.raises(ValueError, match=r"expected \(B, 3, 64, 32\), got \(2, 3, 32, 64\)"):
        model(x.transpose(2, 3))
    gap = ResNet(ResNetConfig.tiny(pool="avg")).eval()  # average pooling: any multiple of 16
    assert gap(torch.rand(1, 3, 48, 80)).shape == (1, 64)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ResNet(ResNetConfig.tiny())(torch.rand(3, 64, 64)),
         r"images must have shape \(B, C=3"),
        (lambda: ResNet(ResNetConfig.tiny())(torch.rand(1, 1, 64, 64)), r"got \(1, 1, 64, 64\)"),
        (lambda: ResNet(ResNetConfig.tiny())(torch.rand(1, 3, 32, 32)),
         r"expected \(B, 3, 64, 64\), got \(1, 3, 32, 32\)"),
        (lambda: ResNet(ResNetConfig.tiny(pool="avg"))(torch.rand(1, 3, 40, 64)),
         r"divisible by the total stride 16, got \(1, 3, 40, 64\)"),
        (lambda: ResNet(ResNetConfig.tiny(block="wide")),
         "cfg.block must be 'basic' or 'bottleneck', got 'wide'"),
        (lambda: ResNet(ResNetConfig.tiny(pool="max")),
         "cfg.pool must be 'attention' or 'avg', got 'max'"),
        (lambda: ResNet(ResNetConfig.tiny(image_size=40)),
         "cfg.image_size must be divisible by the total stride 16, got 40"),
        (lambda: AttentionPool2d(2, 8, 2)(torch.rand(1, 8, 3, 3)), r"2x2 grid.*got \(1, 8, 3, 3\)"),
        (lambda: AttentionPool2d(2, 8, 2)(torch.rand(1, 4, 2, 2)), r"x must have shape \(B, C=8"),
        (lambda: AttentionPool2d(2, 9, 2), "dim must be divisible by heads, got dim=9, heads=2"),
        (lambda: GlobalAvgPool(8)(torch.rand(2, 8)),
         r"x must have shape \(B, C=8, H, W\), got \(2, 8\)"),
    ],
)
def test_bad_input_names_argument_and_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_config_of_the_wrong_type_is_a_type_error():
    from vlm_course.models import ViTConfig

    with pytest.raises(TypeError, match="cfg must be a ResNetConfig, got ViTConfig"):
        ResNet(ViTConfig.tiny())
