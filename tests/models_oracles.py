"""Reference-equivalence cases for vlm_course.models (chapter 02), shared by the tests and the
bench.

Each case builds the course module and its reference implementation, copies the reference's weights
into the course module, runs both in eval mode on the same seeded input and returns the tensors to
compare as ``[(label, ours, reference), ...]`` (outputs, and input gradients where cheap).
``tests/test_models_oracles.py`` asserts they are equal (``torch.testing.assert_close``);
``bench/oracle_diffs.py`` prints the largest absolute difference of each case.
Reference libraries are imported inside the cases; ``CASES[name].requires`` names the optional ones.
The weight mappings themselves live in the package (:mod:`vlm_course.interop`), so what is tested is
what users convert with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

Pairs = list[tuple[str, torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Case:
    fn: Callable[[], Pairs]
    requires: tuple[str, ...] = ()


CASES: dict[str, Case] = {}


def case(name: str, requires: tuple[str, ...] = ()):
    def register(fn):
        CASES[name] = Case(fn, requires)
        return fn

    return register


def randomise_batchnorm(module: nn.Module, seed: int = 1) -> None:
    """Random affine parameters and running statistics, so eval-mode BN is not the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g) * 0.1
            m.running_mean = torch.randn(n, generator=g) * 0.1
            m.running_var = torch.rand(n, generator=g) + 0.5


def run_both(ours: Callable, ref: Callable, *inputs: torch.Tensor, grad: bool = True) -> Pairs:
    """Outputs of both (first output if a tuple) and the gradients of the floating-point inputs
    under the same random output weighting.  Modules are put in eval mode; a case that passes
    lambdas puts the modules inside them in eval mode itself."""
    for model in (ours, ref):
        if isinstance(model, nn.Module):
            model.eval()
    results = []
    for model in (ours, ref):
        xs = [x.clone().requires_grad_(grad and x.is_floating_point()) for x in inputs]
        out = model(*xs)
        out = out[0] if isinstance(out, tuple) else out
        grads = []
        if grad:
            w = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
            (out * w).sum().backward()
            grads = [x.grad for x in xs if x.is_floating_point()]
        results.append((out.detach(), grads))
    (o1, g1), (o2, g2) = results
    pairs = [("output", o1, o2)]
    pairs += [(f"input grad {i}", a, b) for i, (a, b) in enumerate(zip(g1, g2, strict=True))]
    return pairs


# ---------------------------------------------------------------- residual blocks (torchvision)
@case("BasicBlock vs torchvision BasicBlock (stride 1 and 2)")
def basic_block_torchvision() -> Pairs:
    from torchvision.models.resnet import BasicBlock as TVBasic

    from vlm_course.models import BasicBlock

    torch.manual_seed(0)
    pairs = []
    for stride, cin, cout in ((1, 8, 8), (2, 8, 16)):
        down = None
        if stride != 1 or cin != cout:
            down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        ref = TVBasic(cin, cout, stride, downsample=down)
        randomise_batchnorm(ref)
        ours = BasicBlock(cin, cout, stride)
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(2, cin, 8, 8)
        pairs += [(f"stride {stride} {n}", a, b) for n, a, b in run_both(ours, ref, x)]
    return pairs


@case("Bottleneck vs torchvision Bottleneck (stride 2, v1.5)")
def bottleneck_torchvision() -> Pairs:
    from torchvision.models.resnet import Bottleneck as TVBottleneck

    from vlm_course.models import Bottleneck

    torch.manual_seed(0)
    cin, planes = 16, 8
    down = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, 2, bias=False), nn.BatchNorm2d(planes * 4))
    ref = TVBottleneck(cin, planes, 2, downsample=down)
    randomise_batchnorm(ref)
    ours = Bottleneck(cin, planes, 2, avg_down=False)
    ours.load_state_dict(ref.state_dict())
    return run_both(ours, ref, torch.randn(2, cin, 8, 8))


# ---------------------------------------------------------------- ResNet-D / CLIP (open_clip)
@case("Bottleneck(avg_down) vs open_clip modified_resnet.Bottleneck (stride 1 and 2)",
      requires=("open_clip",))
def bottleneck_open_clip() -> Pairs:
    from open_clip.modified_resnet import Bottleneck as OCBottleneck

    from vlm_course.models import Bottleneck

    torch.manual_seed(0)
    pairs = []
    for stride, cin in ((1, 32), (2, 16)):
        ref = OCBottleneck(cin, 8, stride)
        randomise_batchnorm(ref)
        ours = Bottleneck(cin, 8, stride, avg_down=True)
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(2, cin, 8, 8)
        pairs += [(f"stride {stride} {n}", a, b) for n, a, b in run_both(ours, ref, x)]
    return pairs


@case("AttentionPool2d vs open_clip modified_resnet.AttentionPool2d", requires=("open_clip",))
def attention_pool_open_clip() -> Pairs:
    from open_clip.modified_resnet import AttentionPool2d as OCPool

    from vlm_course.models import AttentionPool2d

    torch.manual_seed(0)
    ref = OCPool(4, 32, 4, 24)
    ours = AttentionPool2d(4, 32, 4, 24)
    ours.load_state_dict(ref.state_dict())
    return run_both(ours, ref, torch.randn(3, 32, 4, 4))


@case("ResNet(resnet_d, attention pool) vs open_clip ModifiedResNet", requires=("open_clip",))
def modified_resnet_open_clip() -> Pairs:
    from open_clip.modified_resnet import ModifiedResNet

    from vlm_course.interop.openclip import resnet_from_open_clip
    from vlm_course.models import ResNet, ResNetConfig

    torch.manual_seed(0)
    ref = ModifiedResNet(layers=[1, 2, 1, 1], output_dim=32, heads=4, image_size=64, width=16)
    randomise_batchnorm(ref)
    cfg = ResNetConfig(layers=(1, 2, 1, 1), width=16, heads=4, image_size=64, output_dim=32)
    ours = ResNet(cfg)
    ours.load_state_dict(resnet_from_open_clip(ref.state_dict()))
    return run_both(ours, ref, torch.randn(2, 3, 64, 64))


# ---------------------------------------------------------------- attention and transformer blocks
@case("attention (fused SDPA path) vs attention_explicit, causal and boolean masks")
def attention_paths() -> Pairs:
    from vlm_course.models import attention, attention_explicit, causal_mask

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8) for _ in range(3))
    pairs = [("no mask", attention(q, k, v)[0], attention_explicit(q, k, v)[0])]
    m = causal_mask(7)
    pairs.append(("causal additive", attention(q, k, v, m)[0], attention_explicit(q, k, v, m)[0]))
    keep = torch.rand(2, 1, 7, 7) > 0.3
    keep[..., 0] = True  # every query keeps at least one key
    pairs.append(("bool mask", attention(q, k, v, keep)[0], attention_explicit(q, k, v, keep)[0]))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    pairs.append(("explicit vs SDPA(is_causal)", attention_explicit(q, k, v, m)[0], ref))
    return pairs


@case("MultiHeadAttention vs nn.MultiheadAttention (outputs, weights, grads)")
def mha_torch() -> Pairs:
    from vlm_course.models import MultiHeadAttention, causal_mask

    torch.manual_seed(0)
    ref = nn.MultiheadAttention(32, 4, batch_first=True)
    nn.init.normal_(ref.in_proj_bias)
    ours = MultiHeadAttention(32, 4)
    ours.load_state_dict(ref.state_dict())
    ours.eval(), ref.eval()
    x = torch.randn(3, 6, 32)
    mask = causal_mask(6)
    pairs = run_both(lambda t: ours(t, attn_mask=mask), lambda t: ref(t, t, t, attn_mask=mask), x)
    _, w_ours = ours(x, attn_mask=mask, need_weights=True)
    _, w_ref = ref(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
    pairs.append(("attention weights", w_ours.detach(), w_ref.detach()))
    ctx = torch.randn(3, 5, 32)
    pairs.append(("cross-attention", ours(x, ctx)[0].detach(), ref(x, ctx, ctx)[0].detach()))
    return pairs


@case("ResidualAttentionBlock (pre-norm) vs torchvision vision_transformer.EncoderBlock")
def encoder_block_torchvision() -> Pairs:
    from torchvision.models.vision_transformer import EncoderBlock

    from vlm_course.models import ResidualAttentionBlock

    torch.manual_seed(0)
    ref = EncoderBlock(num_heads=4, hidden_dim=32, mlp_dim=128, dropout=0.0, attention_dropout=0.0)
    ours = ResidualAttentionBlock(32, 4, mlp_ratio=4.0, activation="gelu", ln_eps=1e-6)
    rename = {"self_attention": "attn", "mlp.0": "mlp.c_fc", "mlp.3": "mlp.c_proj"}
    state = {}
    for key, value in ref.state_dict().items():
        for a, b in rename.items():
            key = key.replace(a, b) if key.startswith(a) else key
        state[key] = value
    ours.load_state_dict(state)
    return run_both(ours, ref, torch.randn(2, 9, 32))


@case("ResidualAttentionBlock (pre- and post-norm) vs nn.TransformerEncoderLayer")
def block_torch_encoder_layer() -> Pairs:
    from vlm_course.models import ResidualAttentionBlock

    torch.manual_seed(0)
    pairs = []
    rename = {"self_attn": "attn", "linear1": "mlp.c_fc", "linear2": "mlp.c_proj",
              "norm1": "ln_1", "norm2": "ln_2"}
    for norm_first in (True, False):
        ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu",
                                         batch_first=True, norm_first=norm_first)
        ours = ResidualAttentionBlock(32, 4, mlp_ratio=2.0, norm_first=norm_first)
        state = {}
        for key, value in ref.state_dict().items():
            head, _, rest = key.partition(".")
            state[f"{rename[head]}.{rest}"] = value
        ours.load_state_dict(state)
        label = "pre-norm" if norm_first else "post-norm"
        pairs += [(f"{label} {n}", a, b) for n, a, b in run_both(ours, ref, torch.randn(2, 5, 32))]
    return pairs


# ---------------------------------------------------------------- towers (open_clip, Hugging Face)
@case("VisionTransformer vs open_clip VisionTransformer (GELU and QuickGELU)",
      requires=("open_clip",))
def vit_open_clip() -> Pairs:
    from open_clip.transformer import QuickGELU as OCQuickGELU
    from open_clip.transformer import VisionTransformer as OCViT

    from vlm_course.interop.openclip import vit_from_open_clip
    from vlm_course.models import VisionTransformer, ViTConfig

    torch.manual_seed(0)
    pairs = []
    for act, act_layer in (("gelu", nn.GELU), ("quick_gelu", OCQuickGELU)):
        ref = OCViT(image_size=32, patch_size=8, width=32, layers=2, heads=4, mlp_ratio=4.0,
                    output_dim=16, act_layer=act_layer)
        cfg = ViTConfig(image_size=32, patch_size=8, width=32, layers=2, heads=4,
                        output_dim=16, activation=act)
        ours = VisionTransformer(cfg)
        ours.load_state_dict(vit_from_open_clip(ref.state_dict()))
        pairs += [(f"{act} {n}", a, b)
                  for n, a, b in run_both(ours, ref, torch.randn(2, 3, 32, 32))]
    return pairs


@case("VisionTransformer vs Hugging Face CLIPVisionModelWithProjection (quick_gelu)",
      requires=("transformers",))
def vit_hf() -> Pairs:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from vlm_course.interop.hf import vit_from_hf
    from vlm_course.models import VisionTransformer, ViTConfig

    torch.manual_seed(0)
    hf_cfg = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=128,
                              num_hidden_layers=2, num_attention_heads=4, projection_dim=16,
                              hidden_act="quick_gelu", layer_norm_eps=1e-5)
    ref = CLIPVisionModelWithProjection(hf_cfg).eval()
    ours = VisionTransformer(ViTConfig(image_size=32, patch_size=8, width=32, layers=2, heads=4,
                                       output_dim=16, activation="quick_gelu")).eval()
    ours.load_state_dict(vit_from_hf(ref.state_dict()))
    return run_both(ours, lambda t: ref(pixel_values=t).image_embeds, torch.randn(2, 3, 32, 32))


def text_batch(vocab: int, eos: int, lengths=(5, 9, 3), L: int = 12):
    """Random ids, [SOS]=1 first, ``eos`` after the words, pad 0 after; returns (ids, mask, eot)."""
    g = torch.Generator().manual_seed(3)
    ids = torch.zeros(len(lengths), L, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, 0] = 1
        ids[i, 1 : n - 1] = torch.randint(5, eos if eos > 5 else vocab, (n - 2,), generator=g)
        ids[i, n - 1] = eos
        mask[i, :n] = 1
    return ids, mask, torch.tensor(lengths) - 1


@case("TextEncoder vs open_clip TextTransformer (argmax pooling)", requires=("open_clip",))
def text_open_clip() -> Pairs:
    from open_clip.transformer import TextTransformer

    from vlm_course.models import TextConfig, TextEncoder

    torch.manual_seed(0)
    V = 40
    ref = TextTransformer(context_length=16, vocab_size=V, width=32, heads=4, layers=2,
                          output_dim=16)
    ours = TextEncoder(TextConfig(vocab_size=V, context_length=16, width=32, heads=4, layers=2,
                                  output_dim=16))
    ours.load_state_dict(ref.state_dict())
    ours.eval(), ref.eval()
    ids, mask, _ = text_batch(V, eos=V - 1, L=16)  # open_clip pools at the largest id: [EOS]
    return run_both(lambda t: ours(t, mask), ref, ids, grad=False)


@case("TextEncoder vs Hugging Face CLIPTextModelWithProjection (eos_token_id set)",
      requires=("transformers",))
def text_hf() -> Pairs:
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from vlm_course.interop.hf import text_from_hf
    from vlm_course.models import TextConfig, TextEncoder

    torch.manual_seed(0)
    V, EOS = 40, 2 + 1  # a small vocabulary whose [EOS] is *not* the largest id
    hf_cfg = CLIPTextConfig(vocab_size=V, hidden_size=32, intermediate_size=128,
                            num_hidden_layers=2, num_attention_heads=4,
                            max_position_embeddings=16, hidden_act="gelu", layer_norm_eps=1e-5,
                            projection_dim=16, eos_token_id=EOS, pad_token_id=0, bos_token_id=1)
    ref = CLIPTextModelWithProjection(hf_cfg)
    ours = TextEncoder(TextConfig(vocab_size=V, context_length=16, width=32, heads=4, layers=2,
                                  output_dim=16))
    ours.load_state_dict(text_from_hf(ref.state_dict()))
    ours.eval(), ref.eval()
    ids, mask, eot = text_batch(V, eos=EOS)
    return run_both(lambda t: ours(t, eot_index=eot),
                    lambda t: ref(input_ids=t, attention_mask=mask).text_embeds, ids, grad=False)


# ---------------------------------------------------------------- whole CLIP (vlm_course.interop)
CAPTIONS = ["a red circle", "a large blue square", "a green star left of a white ring",
            "a small yellow heart", "there are two objects"]


def tiny_clip_config(tower: str = "vit", activation: str = "gelu"):
    """A small course ``CLIPConfig`` every reference can express (4-stage ModifiedResNet for
    open_clip's ResNet; 32x32 ViT patch 8)."""
    from vlm_course.models import ResNetConfig, TextConfig, ViTConfig
    from vlm_course.models.clip import CLIPConfig
    from vlm_course.recipes.clip import shapeworld_vocab
    from vlm_course.world import WorldConfig

    if tower == "resnet":
        vision = ResNetConfig(layers=(1, 1, 1, 1), width=8, heads=2, image_size=64)
    else:
        vision = ViTConfig(image_size=32, patch_size=8, width=32, layers=2, heads=4,
                           activation=activation)
    text = TextConfig(width=32, layers=2, heads=4, context_length=24, activation=activation)
    return CLIPConfig.build(24, vision, text, shapeworld_vocab(WorldConfig()))


def _logits_and_grads(forward, params: dict[str, torch.Tensor]):
    """``forward() -> logits (B_img, B_txt)``; returns the logits and the gradients of a fixed
    random weighting of them with respect to ``params`` ({name: tensor})."""
    logits = forward()
    w = torch.randn(logits.shape, generator=torch.Generator().manual_seed(7))
    grads = torch.autograd.grad((logits * w).sum(), list(params.values()))
    return logits.detach(), dict(zip(params, grads, strict=True))


def _flat(grads: dict[str, torch.Tensor], keys) -> torch.Tensor:
    return torch.cat([grads[k].flatten() for k in keys])


def _course_clip_logits(model, images, tokens):
    img, txt, scale = model(images, tokens)
    return scale.exp() * img @ txt.T


def _compare_open_clip(ours, ref, cfg, images, tokens, label: str) -> Pairs:
    from vlm_course.interop.openclip import to_open_clip

    ours.eval(), ref.eval()

    def ref_logits():
        img, txt, scale = ref(images, tokens["input_ids"])  # unit rows, exp(logit_scale)
        return scale * img @ txt.T

    ref_params = dict(ref.named_parameters())
    lo, g_ours = _logits_and_grads(lambda: _course_clip_logits(ours, images, tokens),
                                   dict(ours.named_parameters()))
    lr, g_ref = _logits_and_grads(ref_logits, ref_params)
    g_mapped = to_open_clip(g_ours, cfg)  # the converter maps gradients like weights
    assert set(g_mapped) == set(g_ref), set(g_mapped) ^ set(g_ref)
    keys = sorted(g_ref)
    return [(f"{label} logits", lo, lr),
            (f"{label} grads of all {len(keys)} parameters", _flat(g_mapped, keys),
             _flat(g_ref, keys))]


def _open_clip_both_ways(tower: str) -> Pairs:
    from vlm_course.interop.openclip import build_open_clip, from_open_clip
    from vlm_course.models.clip import CLIP

    cfg = tiny_clip_config(tower)
    torch.manual_seed(0)
    ours = CLIP(cfg)
    randomise_batchnorm(ours)
    images = torch.rand(4, 3, cfg.image_size, cfg.image_size,
                        generator=torch.Generator().manual_seed(5))
    tokens = ours.tokenize(CAPTIONS)
    ref = build_open_clip(cfg, ours.state_dict())  # course -> open_clip (to_open_clip)
    pairs = _compare_open_clip(ours, ref, cfg, images, tokens, "to_open_clip")
    torch.manual_seed(1)
    ref2 = build_open_clip(cfg)  # open_clip's own initialisation -> course (from_open_clip)
    randomise_batchnorm(ref2, seed=2)
    ours2 = CLIP(cfg)
    ours2.load_state_dict(from_open_clip(ref2.state_dict()))
    return pairs + _compare_open_clip(ours2, ref2, cfg, images, tokens, "from_open_clip")


@case("CLIP (ViT tower) vs open_clip.CLIP, both conversion directions (logits, parameter grads)",
      requires=("open_clip",))
def clip_vit_open_clip() -> Pairs:
    return _open_clip_both_ways("vit")


@case("CLIP (ResNet tower) vs open_clip.CLIP with ModifiedResNet, both directions",
      requires=("open_clip",))
def clip_resnet_open_clip() -> Pairs:
    return _open_clip_both_ways("resnet")


def _compare_hf(ours, ref, cfg, images, tokens, label: str) -> Pairs:
    from vlm_course.interop.hf import hf_input_ids, to_hf

    ours.eval(), ref.eval()
    ids = hf_input_ids(tokens["input_ids"], cfg.text.vocab_size, cfg.text.eos_id)

    def ref_logits():
        out = ref(input_ids=ids, pixel_values=images, attention_mask=tokens["attention_mask"])
        return out.logits_per_image

    lo, g_ours = _logits_and_grads(lambda: _course_clip_logits(ours, images, tokens),
                                   dict(ours.named_parameters()))
    lr, g_ref = _logits_and_grads(ref_logits, dict(ref.named_parameters()))
    g_mapped = to_hf(g_ours, cfg)
    assert set(g_mapped) == set(g_ref), set(g_mapped) ^ set(g_ref)
    keys = sorted(g_ref)
    return [(f"{label} logits", lo, lr),
            (f"{label} grads of all {len(keys)} parameters", _flat(g_mapped, keys),
             _flat(g_ref, keys))]


@case("CLIP vs Hugging Face CLIPModel (tiny local config), both directions (logits, grads)",
      requires=("transformers",))
def clip_hf() -> Pairs:
    from vlm_course.interop.hf import build_hf, from_hf
    from vlm_course.models.clip import CLIP

    cfg = tiny_clip_config("vit", activation="quick_gelu")
    torch.manual_seed(0)
    ours = CLIP(cfg)
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    tokens = ours.tokenize(CAPTIONS)
    ref = build_hf(cfg, ours.state_dict())  # course -> HF (to_hf)
    pairs = _compare_hf(ours, ref, cfg, images, tokens, "to_hf")
    torch.manual_seed(1)
    ref2 = build_hf(cfg)  # HF's own initialisation -> course (from_hf)
    ours2 = CLIP(cfg)
    ours2.load_state_dict(from_hf(ref2.state_dict(), cfg))
    return pairs + _compare_hf(ours2, ref2, cfg, images, tokens, "from_hf")


def max_abs_diff(pairs: Pairs) -> float:
    return max(float((a.double() - b.double()).abs().max()) for _, a, b in pairs)


def max_rel_diff(pairs: Pairs) -> float:
    """Largest ``max|a - b| / max(1, max|b|)`` over the pairs (the tests' tolerance scale)."""
    return max(float((a.double() - b.double()).abs().max()) / max(1.0, float(b.abs().max()))
               for _, a, b in pairs)
