"""One contract for every model of the course (issue 8, part 4): a later model adds one entry.

Each :class:`Entry` builds a model and its inputs; the parametrised tests check, for every entry:
output shape ``(B, output_dim)`` and finite values; every parameter receives a finite, non-zero
gradient; building and running twice under one seed gives bit-identical results; the eval output of
a sample does not depend on which other samples share its batch; a wrong input size raises a
ValueError naming the argument and the expected size.  Image towers also keep the stage API
(``forward == forward_head . forward_features``, attention returned as ``(output, [maps])``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from vlm_course.models import (
    FusionConfig,
    FusionEncoder,
    ResNet,
    ResNetConfig,
    TextConfig,
    TextEncoder,
    VisionTransformer,
    ViTConfig,
    build_image_tower,
)
from vlm_course.models.classifier import ClassifierConfig, ImageClassifier
from vlm_course.settings import seed_everything

B = 4


@dataclass(frozen=True)
class Entry:
    """``build() -> model``; ``inputs() -> tuple`` of B samples (batch-first tensors);
    ``run(model, *inputs) -> (B, output_dim)``; ``bad`` a call with a wrong input size and the
    message it must raise; ``image_tower``: check the shared stage API too."""

    build: Callable
    inputs: Callable
    output_dim: int
    bad: tuple[Callable, str]
    run: Callable = staticmethod(lambda model, *xs: model(*xs))
    image_tower: bool = False


def images(h=64, w=64):
    return lambda: (torch.rand(B, 3, h, w, generator=torch.Generator().manual_seed(5)),)


def text_inputs():
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(5, 100, (B, 10), generator=g)
    mask = torch.ones_like(ids)
    for row, n in enumerate((10, 6, 3, 8)):
        ids[row, n - 1] = 2  # [EOS]
        ids[row, n:] = 0  # [PAD]
        mask[row, n:] = 0
    return ids, mask


def clip_inputs():
    from models_oracles import CAPTIONS

    return (images(32, 32)()[0], CAPTIONS[:B])


def clip_build(tower):
    def build():
        from models_oracles import tiny_clip_config

        from vlm_course.models.clip import CLIP

        cfg = tiny_clip_config(tower)
        if tower == "resnet":
            cfg.vision = dataclasses.replace(cfg.vision, zero_init_last=False)
        return CLIP(cfg)
    return build


def clip_run(model, imgs, texts):
    """Unnormalised image and text embeddings side by side, times the logit scale (the per-row
    part of CLIP's logits, so every parameter, ``logit_scale`` included, gets a gradient)."""
    tokens = model.tokenize(texts)
    img = model.encode_image(imgs, normalize=False)
    txt = model.encode_text(tokens, normalize=False)
    return torch.cat([img, txt], dim=-1) * model.logit_scale.exp()


def siglip_build():
    import dataclasses as dc

    from models_oracles import tiny_clip_config

    from vlm_course.models.siglip import SigLIP, SigLIPConfig

    return SigLIP(SigLIPConfig(**{f.name: getattr(tiny_clip_config("vit"), f.name)
                                  for f in dc.fields(tiny_clip_config("vit"))
                                  if f.name != "init_logit_scale"}))


def siglip_run(model, imgs, texts):
    """CLIP's per-row output plus the logit bias (so ``logit_bias`` gets a gradient too)."""
    return clip_run(model, imgs, texts) + model.logit_bias


def fusion_inputs():
    g = torch.Generator().manual_seed(5)
    mask = torch.ones(B, 7, dtype=torch.long)
    for row, n in enumerate((7, 4, 2, 5)):
        mask[row, n:] = 0
    return torch.randn(B, 7, 16, generator=g), torch.randn(B, 10, 24, generator=g), mask


def itm_build():
    from models_oracles import tiny_clip_config

    from vlm_course.models.itm import ITMConfig, ITMModel

    return ITMModel(ITMConfig.for_clip(tiny_clip_config("vit"), freeze_towers=False, width=32))


def itm_run(model, imgs, texts):
    """The match logits (B, 2) and the VLM interface's unnormalised embeddings, times the logit
    scale (so the towers' heads and ``logit_scale``, which only CLIP's side uses, get gradients)."""
    tokens = model.tokenize(texts)
    out = torch.cat([model(imgs, tokens), model.encode_image(imgs, normalize=False),
                     model.encode_text(tokens, normalize=False)], dim=-1)
    return out * model.logit_scale.exp()


def two_leg_build():
    from models_oracles import tiny_clip_config

    from vlm_course.models.two_leg import TwoLegConfig, TwoLegModel

    return TwoLegModel(TwoLegConfig.for_clip(tiny_clip_config("vit"), freeze_towers=False,
                                             width=32))


def two_leg_run(model, imgs, texts):
    """``itm_run`` and the MLM head's vocabulary logits (V = 114) at the first word position."""
    tokens = model.tokenize(texts)
    words, mask = model.text_tokens(tokens)
    mlm = model.masked_word_logits(model.image_tokens(imgs), words, mask)[:, 1]   # (B, V)
    return torch.cat([itm_run(model, imgs, texts), mlm], dim=-1)
def mae_build():
    from vlm_course.models.mae import MAEConfig, MaskedAutoencoder

    enc = ViTConfig(image_size=24, patch_size=4, width=32, layers=2, heads=4)
    return MaskedAutoencoder(MAEConfig(encoder=enc, decoder_width=16, decoder_layers=1))


def mae_inputs():
    g = torch.Generator().manual_seed(5)
    return torch.rand(B, 3, 24, 24, generator=g), torch.rand(B, 36, generator=g)


def mae_run(model, imgs, noise):
    """Chapter 05's MAE, every stage: the mean encoded visible token and the mean predicted
    patch of each image (the masks come from ``noise``, one row per image)."""
    latent, _, ids_restore = model.forward_encoder(imgs, noise=noise)
    pred = model.forward_decoder(latent, ids_restore)
    return torch.cat([latent.mean(1), pred.mean(1)], dim=-1)  # (B, 32 + 48)


def multimodal_build():
    from vlm_course.models.multimodal import MultimodalConfig, MultimodalTransformer

    return MultimodalTransformer(MultimodalConfig(vocab_size=20, context_length=8, image_size=12,
                                                  patch_size=4, width=32, layers=2, heads=4))


def multimodal_inputs():
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(5, 20, (B, 8), generator=g)
    ids[:, 0] = 1
    mask = torch.ones_like(ids)
    for row, n in enumerate((8, 5, 3, 6)):
        ids[row, n - 1], ids[row, n:], mask[row, n:] = 2, 0, 0
    image_mask = (torch.rand(B, 9, generator=g) < 0.5).float()
    image_mask[:, 0] = 1.0
    return torch.rand(B, 3, 12, 12, generator=g), ids, mask, image_mask


def multimodal_run(model, imgs, ids, mask, image_mask):
    """Chapter 05's multimodal transformer, both attention patterns and all three heads."""
    out = model(imgs, ids, mask, image_mask=image_mask)
    cap = model(imgs, ids, mask, mode="prefix")
    return torch.cat([model.predict_pixels(out.image).mean(1),
                      model.predict_masked_words(out.text).mean(1),
                      model.predict_next_words(cap.text).mean(1)], dim=-1)  # (B, 48 + 20 + 20)


def one_tower_build():
    from vlm_course.models.one_tower import OneTower, OneTowerConfig

    return OneTower(OneTowerConfig(vision=ViTConfig(image_size=32, patch_size=8, width=32,
                                                    layers=2, heads=4, output_dim=24)))


def vit_bad(h, w):
    return (lambda m: m(torch.rand(2, 3, h + 8, w)),
            rf"images must have shape \(B, 3, {h}, {w}\).*got \(2, 3, {h + 8}, {w}\)")


def transfer_build(name):
    """A chapter-10 method on a frozen tiny CLIP (32x32 ViT); parts that start at zero by design
    (LoRA's B, CoCoOp's last meta-network layer) get small random values so every parameter of
    the method receives a gradient."""
    def build():
        from models_oracles import tiny_clip_config

        from vlm_course.models.clip import CLIP
        from vlm_course.transfer.lora import LoRA
        from vlm_course.transfer.prompt_tuning import CoCoOp
        from vlm_course.transfer.visual_prompts import VPT, VPTConfig

        clip = CLIP(tiny_clip_config("vit"))
        classes = ["circle", "square", "red star"]
        method = {"VPT-deep": lambda: VPT(clip, classes, VPTConfig(n_tokens=3, deep=True)),
                  "LoRA": lambda: LoRA(clip, classes),
                  "CoCoOp": lambda: CoCoOp(clip, classes)}[name]()
        with torch.no_grad():
            for p in method.parameters():
                if not p.abs().sum():
                    p.normal_(std=0.1)
        return method
    return build


def transfer_bad():
    return (lambda m: m(torch.rand(2, 3, 48, 48)),
            r"images must have shape \(B, 3, 32, 32\).*got \(2, 3, 48, 48\)")


def _distill_text():
    g = torch.Generator().manual_seed(7)
    return torch.nn.functional.normalize(torch.randn(3, 64, generator=g), dim=1)


def detector_run(model, imgs):
    """Chapter 11's student detector on one box per image: embedding, box deltas and class
    logits (so the background embedding gets a gradient too)."""
    boxes = [torch.tensor([[4.0, 6.0, 30.0, 40.0]])] * len(imgs)
    emb, deltas = model(imgs, boxes)
    return torch.cat([emb, deltas, model.class_logits(emb, _distill_text())], dim=1)


def distill_detector():
    from vlm_course.distill.detector import DetectorConfig, RegionDetector

    return RegionDetector(DetectorConfig())


def distill_segmenter():
    from vlm_course.distill.segmenter import DenseStudent, SegmenterConfig

    return DenseStudent(SegmenterConfig())


DISTILL_BAD = r"images must be a float \(B, 3, H, W\) tensor, got torch.float32 \(2, 1, 48, 48\)"


# zero_init_last=False where the zero-initialised BN would (by design) stop gradients into the
# residual branch at initialisation.
ENTRIES: dict[str, Entry] = {
    "ResNet tiny (ResNet-D, attention pool)": Entry(
        lambda: ResNet(ResNetConfig.tiny(zero_init_last=False)), images(), 64,
        (lambda m: m(torch.rand(2, 3, 32, 32)), r"expected \(B, 3, 64, 64\), got \(2, 3, 32, 32\)"),
        image_tower=True),
    "ResNet basic, average pool, no ResNet-D": Entry(
        lambda: ResNet(ResNetConfig.tiny(block="basic", pool="avg", resnet_d=False,
                                         zero_init_last=False)), images(), 64,
        (lambda m: m(torch.rand(2, 3, 40, 64)),
         r"divisible by the total stride 16, got \(2, 3, 40, 64\)"), image_tower=True),
    "ResNet plain (no skips)": Entry(
        lambda: ResNet(ResNetConfig.tiny(skip=False, layers=(2, 2))), images(), 64,
        (lambda m: m(torch.rand(2, 1, 64, 64)),
         r"images must have shape \(B, C=3, H, W\), got \(2, 1, 64, 64\)"), image_tower=True),
    "ResNet non-square (64x32)": Entry(
        lambda: ResNet(ResNetConfig.tiny(image_size=(64, 32), zero_init_last=False)),
        images(64, 32), 64,
        (lambda m: m(torch.rand(2, 3, 32, 64)), r"expected \(B, 3, 64, 32\), got \(2, 3, 32, 64\)"),
        image_tower=True),
    "VisionTransformer tiny": Entry(lambda: VisionTransformer(ViTConfig.tiny()), images(), 64,
                                    vit_bad(64, 64), image_tower=True),
    "VisionTransformer post-norm": Entry(
        lambda: VisionTransformer(ViTConfig.tiny(norm_first=False)), images(), 64,
        vit_bad(64, 64), image_tower=True),
    "VisionTransformer non-square (32x48)": Entry(
        lambda: VisionTransformer(ViTConfig.tiny(image_size=(32, 48))), images(32, 48), 64,
        vit_bad(32, 48), image_tower=True),
    "TextEncoder tiny": Entry(
        lambda: TextEncoder(TextConfig.tiny()), text_inputs, 64,
        (lambda m: m(torch.zeros(2, 40, dtype=torch.long)),
         r"input_ids must have shape \(B, L <= context_length=32\), got \(2, 40\)")),
    "ImageClassifier (ResNet + 3-task head)": Entry(
        lambda: ImageClassifier(ClassifierConfig(
            ResNetConfig(layers=(1, 1, 1), width=16, block="basic", image_size=48, pool="avg",
                         zero_init_last=False), num_classes=(3, 8, 2))), images(48, 48), 13,
        (lambda m: m(torch.rand(2, 3, 32, 32)),
         r"images must have shape \(B, 3, 48, 48\), got \(2, 3, 32, 32\)")),
    "CLIP, ViT tower": Entry(
        clip_build("vit"), clip_inputs, 48,
        (lambda m: m.encode_image(torch.rand(2, 3, 48, 48)),
         r"images must have shape \(B, 3, 32, 32\).*got \(2, 3, 48, 48\)"), clip_run),
    "CLIP, ResNet tower": Entry(
        clip_build("resnet"), lambda: (images(64, 64)()[0], clip_inputs()[1]), 48,
        (lambda m: m.encode_image(torch.rand(2, 3, 32, 32)),
         r"expected \(B, 3, 64, 64\), got \(2, 3, 32, 32\)"), clip_run),
    "SigLIP (CLIP + logit bias, chapter 12)": Entry(
        siglip_build, clip_inputs, 48,
        (lambda m: m.encode_image(torch.rand(2, 3, 48, 48)),
         r"images must have shape \(B, 3, 32, 32\).*got \(2, 3, 48, 48\)"), siglip_run),
    "FusionEncoder (ITM head)": Entry(
        lambda: FusionEncoder(FusionConfig(image_dim=24, text_dim=16, width=32)), fusion_inputs,
        2, (lambda m: m(*fusion_inputs()[:1], torch.rand(B, 10, 20)),
            r"image_tokens: expected a float \(B, N >= 1, 24\) tensor, got .*\(4, 10, 20\)")),
    "ITMModel (CLIP towers + fusion)": Entry(
        itm_build, clip_inputs, 2 + 2 * 24,
        (lambda m: m(torch.rand(2, 3, 48, 48), m.tokenize(["a", "b"])),
         r"images must have shape \(B, 3, 32, 32\).*got \(2, 3, 48, 48\)"), itm_run),
    "TwoLegModel (ITM + MLM heads, chapter 07)": Entry(
        two_leg_build, clip_inputs, 2 + 2 * 24 + 114,
        (lambda m: m(torch.rand(2, 3, 48, 48), m.tokenize(["a", "b"])),
         r"images must have shape \(B, 3, 32, 32\).*got \(2, 3, 48, 48\)"), two_leg_run),
    # chapter 10: logits (B, K) of a transfer method on a frozen CLIP; its own parameters only
    "VPT-deep on a frozen CLIP": Entry(transfer_build("VPT-deep"), images(32, 32), 3,
                                       transfer_bad()),
    "LoRA (q, v) on a frozen CLIP": Entry(transfer_build("LoRA"), images(32, 32), 3,
                                          transfer_bad()),
    "CoCoOp on a frozen CLIP": Entry(transfer_build("CoCoOp"), images(32, 32), 3,
                                     transfer_bad()),
    "distill RegionDetector (chapter 11)": Entry(
        distill_detector, images(48, 48), 64 + 4 + 4,
        (lambda m: m.forward_features(torch.rand(2, 1, 48, 48)), DISTILL_BAD), detector_run),
    "distill DenseStudent (chapter 11)": Entry(
        distill_segmenter, images(48, 48), 3,
        (lambda m: m.forward_features(torch.rand(2, 1, 48, 48)), DISTILL_BAD),
        lambda m, x: m(x, _distill_text()).mean(dim=(2, 3))),
    "MAE encoder (fixed positions, identity head)": Entry(
        lambda: mae_build().encoder, images(24, 24), 32, vit_bad(24, 24), image_tower=True),
    "MaskedAutoencoder (all stages)": Entry(
        mae_build, mae_inputs, 80,
        (lambda m: m(torch.rand(2, 3, 32, 32)),
         r"images must have shape \(B, 3, 24, 24\).*got \(2, 3, 32, 32\)"), mae_run),
    "MultimodalTransformer (full + prefix)": Entry(
        multimodal_build, multimodal_inputs, 88,
        (lambda m: m(torch.rand(2, 3, 16, 16), torch.ones(2, 8, dtype=torch.long)),
         r"images must have shape \(B, 3, 12, 12\), got \(2, 3, 16, 16\)"), multimodal_run),
    "OneTower (CLIPPO: rendered text, one shared ViT)": Entry(
        one_tower_build, clip_inputs, 2 * 24,
        (lambda m: m.encode_image(torch.rand(2, 3, 48, 48)),
         r"images must have shape \(B, 3, 32, 32\).*got \(2, 3, 48, 48\)"), clip_run),
}


def _select(xs, keep):
    return tuple(x[keep] if torch.is_tensor(x) else [x[i] for i in keep.tolist()] for x in xs)


@pytest.fixture(params=list(ENTRIES))
def entry(request):
    return ENTRIES[request.param]


def test_shape_finite_and_every_parameter_gets_a_gradient(entry):
    seed_everything(0)
    model = entry.build().train()
    y = entry.run(model, *entry.inputs())
    assert tuple(y.shape) == (B, entry.output_dim)
    assert torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_deterministic_under_seed(entry):
    outs, states = [], []
    for _ in range(2):
        seed_everything(0)
        model = entry.build().eval()
        with torch.no_grad():
            outs.append(entry.run(model, *entry.inputs()))
        states.append(model.state_dict())
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=0, msg=key)


def test_eval_output_independent_of_batch_composition(entry):
    seed_everything(0)
    model = entry.build().eval()
    xs = entry.inputs()
    with torch.no_grad():
        full = entry.run(model, *xs)
        for keep in (torch.tensor([2, 0]), torch.tensor([3]), torch.tensor([3, 1, 2, 0])):
            part = entry.run(model, *_select(xs, keep))
            torch.testing.assert_close(part, full[keep], rtol=1e-5, atol=1e-5)


def test_wrong_input_size_is_a_clear_error(entry):
    call, match = entry.bad
    model = entry.build().eval()
    with pytest.raises(ValueError, match=match):
        call(model)


@pytest.mark.parametrize("name", [n for n, e in ENTRIES.items() if e.image_tower])
def test_image_tower_stage_api(name):
    entry = ENTRIES[name]
    seed_everything(0)
    model = entry.build().eval()
    (x,) = entry.inputs()
    with torch.no_grad():
        y = model(x)
        feats = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(feats), y)
        f2, maps = model.forward_features(x, return_attention=True)
        torch.testing.assert_close(f2, feats)
        y2, all_maps = model(x, return_attention=True)
        torch.testing.assert_close(y2, y)
        _, head_maps = model.forward_head(feats, return_attention=True)
    assert isinstance(maps, list) and isinstance(head_maps, list)
    assert len(all_maps) == len(maps) + len(head_maps)
    for w in all_maps:  # (B, h, N_query, N_key), each row a distribution over the keys
        assert w.dim() == 4 and w.shape[0] == B
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
    if isinstance(model, VisionTransformer):
        assert len(maps) == model.cfg.layers and head_maps == []
    if isinstance(model, ResNet):
        assert maps == [] and len(head_maps) == (model.cfg.pool == "attention")


@pytest.mark.parametrize("cfg, cls", [(ViTConfig.tiny(), VisionTransformer),
                                      (ResNetConfig.tiny(), ResNet)])
def test_tower_type_follows_the_config_type(cfg, cls):
    assert type(build_image_tower(cfg)) is cls


def test_mismatched_config_is_a_type_error():
    from models_oracles import tiny_clip_config

    from vlm_course.models.clip import CLIP

    with pytest.raises(TypeError, match="cfg must be an image-tower config .* got TextConfig"):
        build_image_tower(TextConfig.tiny())
    cfg = tiny_clip_config("vit")
    cfg.vision = ResNetConfig.tiny(output_dim=cfg.embed_dim)  # image_tower still says "vit"
    with pytest.raises(TypeError,
                       match="config.vision must be a ViTConfig for config.image_tower='vit', "
                             "got ResNetConfig"):
        CLIP(cfg)
