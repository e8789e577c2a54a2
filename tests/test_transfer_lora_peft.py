"""Oracle: the course's LoRA equals Hugging Face ``peft``'s LoRA with the same weights.

Covers the single-layer form (outputs, gradients, merged weights), a whole ViT tower with LoRA on
every attention output projection, and the packed q/k/v projection, where the course adapts rows
of one ``in_proj_weight`` and ``peft`` adapts separate ``q_proj`` / ``v_proj`` layers.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vlm_course.recipes.clip import PRESETS, build_model
from vlm_course.transfer.lora import LoRA, LoRAConfig, LoRALinear

peft = pytest.importorskip("peft")


def _peft(module: nn.Module, targets: list[str], rank: int, alpha: float):
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0,
                             init_lora_weights=False)  # random A and B, so B A != 0
    return peft.get_peft_model(module, config)


def _lora_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer")]


def test_lora_linear_matches_peft_outputs_gradients_and_merge():
    torch.manual_seed(0)
    base = nn.Linear(12, 7)
    ref = _peft(nn.Sequential(copy.deepcopy(base)), ["0"], rank=3, alpha=6.0)
    ours = LoRALinear(copy.deepcopy(base), rank=3, alpha=6.0)
    (layer,) = _lora_layers(ref)
    with torch.no_grad():
        ours.lora_A.copy_(layer.lora_A["default"].weight)
        ours.lora_B.copy_(layer.lora_B["default"].weight)
    assert ours.scaling == layer.scaling["default"] == 2.0
    x = torch.randn(5, 12, dtype=torch.float32)
    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y_ref, y_ours = ref(x_ref), ours(x_ours)
    torch.testing.assert_close(y_ours, y_ref)
    weights = torch.randn(5, 7)
    (y_ref * weights).sum().backward()
    (y_ours * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad)
    torch.testing.assert_close(ours.lora_A.grad, layer.lora_A["default"].weight.grad)
    torch.testing.assert_close(ours.lora_B.grad, layer.lora_B["default"].weight.grad)
    assert ours.base.weight.grad is None  # the base layer is frozen
    merged_ref = ref.merge_and_unload()[0]
    merged = ours.merged()
    torch.testing.assert_close(merged.weight, merged_ref.weight)
    torch.testing.assert_close(merged(x), y_ref.detach())


def test_lora_on_every_attention_output_matches_peft_on_the_whole_vit():
    torch.manual_seed(1)
    model = build_model(PRESETS["tiny"]()).eval()
    ref = _peft(copy.deepcopy(model.visual), ["out_proj"], rank=2, alpha=4.0).eval()
    ours = LoRA(model, ["circle", "star"], LoRAConfig(rank=2, alpha=4.0, targets=("o",)))
    layers = _lora_layers(ref)
    assert len(layers) == len(ours.sites) == 2  # one per block, in block order
    with torch.no_grad():
        for layer, lora_A, lora_B in zip(layers, ours.lora_A, ours.lora_B, strict=True):
            lora_A.copy_(layer.lora_A["default"].weight)
            lora_B.copy_(layer.lora_B["default"].weight)
    images = torch.rand(3, 3, 48, 48)
    expected = F.normalize(ref(images), dim=-1)
    torch.testing.assert_close(ours.encode_image(images), expected)
    assert (expected - model.encode_image(images)).abs().max() > 1e-4  # LoRA did change it


class SplitQKV(nn.Module):
    """q, k, v as three ``nn.Linear`` layers (Hugging Face's layout) from a packed weight."""

    def __init__(self, in_proj_weight: torch.Tensor, in_proj_bias: torch.Tensor):
        super().__init__()
        D = in_proj_weight.shape[1]
        for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
            layer = nn.Linear(D, D)
            with torch.no_grad():
                layer.weight.copy_(in_proj_weight[i * D:(i + 1) * D])
                layer.bias.copy_(in_proj_bias[i * D:(i + 1) * D])
            setattr(self, name, layer)

    def forward(self, x):
        return torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], dim=-1)


@pytest.mark.parametrize("targets", [("q", "v"), ("k",), ("q", "k", "v")])
def test_packed_qkv_lora_matches_peft_on_separate_projections(targets):
    torch.manual_seed(2)
    model = build_model(PRESETS["tiny"]()).eval()
    attn = model.text.transformer.resblocks[1].attn
    ref = _peft(SplitQKV(attn.in_proj_weight, attn.in_proj_bias),
                [f"{t}_proj" for t in targets], rank=3, alpha=5.0)
    ours = LoRA(model, ["circle"], LoRAConfig(rank=3, alpha=5.0, targets=targets, tower="text"))
    per_block = len(targets)
    block1 = range(per_block, 2 * per_block)  # the sites of block 1, in target order
    ref_layers = {name.split(".")[-1]: m for name, m in ref.named_modules()
                  if hasattr(m, "base_layer")}
    with torch.no_grad():
        for t, i in zip(targets, block1, strict=True):
            layer = ref_layers[f"{t}_proj"]
            ours.lora_A[i].copy_(layer.lora_A["default"].weight)
            ours.lora_B[i].copy_(layer.lora_B["default"].weight)
    weight = ours.effective_weights("text")["transformer.resblocks.1.attn.in_proj_weight"]
    x = torch.randn(2, 5, 64)
    torch.testing.assert_close(F.linear(x, weight, attn.in_proj_bias), ref(x))
