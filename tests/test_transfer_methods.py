"""Chapter 10 transfer methods: equivalences with zero-shot, frozen VLM, gradients, errors."""

import copy

import pytest
import torch
import torch.nn.functional as F

from vlm_course.recipes.clip import PRESETS, build_model
from vlm_course.transfer.adapters import (
    CLIPAdapter,
    CLIPAdapterConfig,
    TipAdapter,
    TipAdapterConfig,
    cache_logits,
)
from vlm_course.transfer.fit import FitConfig, accuracy, count_trainable, fit, predict
from vlm_course.transfer.frozen import ZeroShot
from vlm_course.transfer.linear_probe import LinearProbe
from vlm_course.transfer.lora import LoRA, LoRAConfig
from vlm_course.transfer.prompt_tuning import CoCoOp, CoCoOpConfig, CoOp, CoOpConfig, insert_context
from vlm_course.transfer.visual_prompts import VPT, VPTConfig

NAMES = ["circle", "red square", "star"]


def tiny_clip(seed: int = 0, tower: str = "vit"):
    """A randomly initialised ShapeWorld CLIP of the recipe's ``tiny`` (ViT, 48 px) or
    ``tiny_resnet`` preset."""
    torch.manual_seed(seed)
    return build_model(PRESETS["tiny" if tower == "vit" else "tiny_resnet"]()).eval()


@pytest.fixture(scope="module")
def model():
    return tiny_clip()


@pytest.fixture(scope="module")
def images():
    return torch.rand(6, 3, 48, 48, generator=torch.Generator().manual_seed(1))


def zero_shot_logits(model, images, template="a photo of a {}."):
    """Zero-shot CLIP through the public VLM interface only."""
    with torch.no_grad():
        image = model.encode_image(images)
        text = model.encode_text(model.tokenize([template.format(c) for c in NAMES]))
        return model.logit_scale.exp() * image @ text.T


def make(name, model, images):
    """A fresh, small instance of every method (Tip-Adapter with a cache of ``images``)."""
    labels = torch.arange(images.shape[0]) % len(NAMES)
    with torch.no_grad():
        feats = model.encode_image(images)
    return {
        "linear probe": lambda: LinearProbe(model, NAMES),
        "CoOp": lambda: CoOp(model, NAMES, CoOpConfig(n_ctx=2, init=None)),
        "CoOp-CSC": lambda: CoOp(model, NAMES, CoOpConfig(class_specific=True)),
        "CoCoOp": lambda: CoCoOp(model, NAMES, CoCoOpConfig.tiny()),
        "VPT": lambda: VPT(model, NAMES, VPTConfig(n_tokens=2)),
        "VPT-deep": lambda: VPT(model, NAMES, VPTConfig(n_tokens=2, deep=True)),
        "CLIP-Adapter": lambda: CLIPAdapter(model, NAMES, CLIPAdapterConfig.tiny()),
        "Tip-Adapter-F": lambda: TipAdapter(model, NAMES, feats, labels,
                                            TipAdapterConfig(fine_tune=True)),
        "LoRA": lambda: LoRA(model, NAMES, LoRAConfig.tiny()),
        "LoRA-both": lambda: LoRA(model, NAMES, LoRAConfig(rank=2, tower="both",
                                                           targets=("q", "k", "v", "o"))),
        "LoRA-text": lambda: LoRA(model, NAMES, LoRAConfig(rank=2, tower="text")),
    }[name]()


TRAINED = ["linear probe", "CoOp", "CoOp-CSC", "CoCoOp", "VPT", "VPT-deep", "CLIP-Adapter",
           "Tip-Adapter-F", "LoRA", "LoRA-both", "LoRA-text"]


# ----------------------------------------------------------------------------- equivalences
def test_coop_with_photo_context_is_exactly_zero_shot(model, images):
    coop = CoOp(model, NAMES, CoOpConfig(n_ctx=4, init="a photo of a"))
    with torch.no_grad():
        logits = coop(images)
    assert torch.equal(logits, zero_shot_logits(model, images))


def test_class_specific_coop_with_photo_context_is_exactly_zero_shot(model, images):
    coop = CoOp(model, NAMES, CoOpConfig(class_specific=True))
    assert coop.ctx.shape == (3, 4, 64)
    with torch.no_grad():
        assert torch.equal(coop(images), zero_shot_logits(model, images))


def test_cocoop_with_silent_meta_net_is_zero_shot(model, images):
    cocoop = CoCoOp(model, NAMES)
    assert torch.equal(cocoop.meta_net[-1].weight, torch.zeros(64, 4))  # starts silent
    with torch.no_grad():
        torch.testing.assert_close(cocoop(images), zero_shot_logits(model, images))
        # a non-zero output must change the prompts (not a constant: LayerNorm removes those)
        cocoop.meta_net[-1].bias.copy_(torch.linspace(-1, 1, 64))
        assert (cocoop(images) - zero_shot_logits(model, images)).abs().max() > 1e-3


def test_cocoop_prompts_depend_on_the_image(model, images):
    cocoop = CoCoOp(model, NAMES, CoCoOpConfig(n_ctx=2, init=None))
    with torch.no_grad():
        feats = model.encode_image(images)
        ctx = cocoop.ctx[None] + cocoop.meta_net(feats)[:, None]
        x, eot = insert_context(cocoop.name_embeddings, cocoop.name_eot, ctx[0].expand(3, -1, -1))
        from vlm_course.transfer.internals import encode_text_embeddings
        first = model.logit_scale.exp() * feats[:1] @ encode_text_embeddings(model, x, eot).T
        torch.testing.assert_close(cocoop(images)[:1], first)


def test_zero_shot_method_matches_public_interface(model, images):
    with torch.no_grad():
        torch.testing.assert_close(ZeroShot(model, NAMES)(images), zero_shot_logits(model, images))


def test_tip_adapter_alpha_zero_is_zero_shot(model, images):
    with torch.no_grad():
        feats = model.encode_image(images)
        tip = TipAdapter(model, NAMES, feats, torch.tensor([0, 1, 2, 0, 1, 2]),
                         TipAdapterConfig(alpha=0.0, beta=3.0))
        assert torch.equal(tip(images), zero_shot_logits(model, images))


def test_tip_adapter_cache_vote_known_values():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    values = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    vote = cache_logits(f, keys, values, beta=2.0)
    e = torch.exp(torch.tensor(-2.0))
    expected = torch.stack([torch.stack([torch.tensor(1.0), e + torch.exp(torch.tensor(-0.8))]),
                            torch.stack([e, 1.0 + torch.exp(torch.tensor(-0.4))])])
    torch.testing.assert_close(vote, expected)


def test_tip_adapter_with_a_strong_cache_recalls_its_training_images(model, images):
    labels = torch.tensor([2, 2, 0, 1, 0, 1])
    with torch.no_grad():
        tip = TipAdapter(model, NAMES, model.encode_image(images), labels,
                         TipAdapterConfig(alpha=1000.0, beta=50.0))
        assert torch.equal(tip(images).argmax(1), labels)


def test_clip_adapter_ratio_zero_is_zero_shot(model, images):
    adapter = CLIPAdapter(model, NAMES, CLIPAdapterConfig(ratio=0.0))
    with torch.no_grad():
        torch.testing.assert_close(adapter(images), zero_shot_logits(model, images))
        adapter.config.ratio = 0.5  # and a non-zero ratio does use the adapter
        assert (adapter(images) - zero_shot_logits(model, images)).abs().max() > 1e-4


@pytest.mark.parametrize("deep", [False, True])
def test_vpt_without_prompt_tokens_is_the_base_model(model, images, deep):
    vpt = VPT(model, NAMES, VPTConfig(n_tokens=0, deep=deep))
    assert count_trainable(vpt) == 0
    with torch.no_grad():
        assert torch.equal(vpt.encode_image(images), model.encode_image(images))
        assert torch.equal(vpt(images), zero_shot_logits(model, images))


def test_vpt_prompts_change_the_embedding_and_deep_has_one_set_per_block(model, images):
    shallow = VPT(model, NAMES, VPTConfig(n_tokens=3))
    deep = VPT(model, NAMES, VPTConfig(n_tokens=3, deep=True))
    assert shallow.prompts.shape == (1, 3, 64) and deep.prompts.shape == (2, 3, 64)
    with torch.no_grad():
        assert (shallow.encode_image(images) - model.encode_image(images)).abs().max() > 1e-4
        deep.prompts[1].zero_()  # block 2's prompts replace block 1's prompt outputs
        a = deep.encode_image(images)
        deep.prompts[1].normal_()  # (not a constant: LayerNorm maps every constant alike)
        assert (deep.encode_image(images) - a).abs().max() > 1e-4


def test_lora_starts_at_the_base_model_and_merges_exactly(model, images):
    lora = LoRA(model, NAMES, LoRAConfig(rank=2, tower="both", targets=("q", "k", "v", "o")))
    with torch.no_grad():
        assert torch.equal(lora(images), zero_shot_logits(model, images))  # B = 0 at init
        for lora_B in lora.lora_B:
            lora_B.normal_(std=0.5)
        adapted = lora(images)
        assert (adapted - zero_shot_logits(model, images)).abs().max() > 1e-3
        merged = lora.merge_into(copy.deepcopy(model))
        torch.testing.assert_close(zero_shot_logits(merged, images), adapted)


def test_lora_q_and_v_update_only_their_rows(model):
    lora = LoRA(model, NAMES, LoRAConfig(rank=2, targets=("q", "v")))
    with torch.no_grad():
        for lora_B in lora.lora_B:
            lora_B.normal_()
        W = dict(model.visual.named_parameters())
        for name, eff in lora.effective_weights("image").items():
            delta = eff - W[name]
            D = delta.shape[1]
            assert delta[:D].abs().max() > 0 and delta[2 * D:].abs().max() > 0
            assert torch.equal(delta[D:2 * D], torch.zeros(D, D))  # k untouched


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize("name", TRAINED)
def test_fit_trains_only_the_method_and_never_the_vlm(name, model, images):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method = make(name, model, images)
    vlm_params = {id(p) for p in model.parameters()}
    assert not any(id(p) in vlm_params for p in method.parameters())
    assert all(not p.requires_grad for p in model.parameters())
    own = {k: v.clone() for k, v in method.named_parameters()}
    labels = torch.arange(images.shape[0]) % len(NAMES)
    result = fit(method, images, labels, FitConfig(steps=4, batch_size=4, lr=5e-2,
                                                   warmup_steps=0))
    assert len(result.losses) == 4 and all(torch.isfinite(torch.tensor(result.losses)))
    assert result.trainable == count_trainable(method) > 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"VLM tensor {k} changed"
    changed = [k for k, v in method.named_parameters() if not torch.equal(v, own[k])]
    assert changed, f"{name}: no parameter of the method changed"
    assert not model.training


@pytest.mark.parametrize("name", TRAINED)
def test_every_trainable_parameter_gets_a_gradient(name, model, images):
    method = make(name, model, images)
    if name in ("LoRA", "LoRA-both", "LoRA-text"):
        with torch.no_grad():  # with B = 0 at init, A's gradient is exactly zero (as in LoRA)
            for lora_B in method.lora_B:
                lora_B.normal_(std=0.1)
    if name == "CoCoOp":
        with torch.no_grad():  # the same for the meta-network, whose last layer starts at zero
            method.meta_net[-1].weight.normal_(std=0.1)
    logits = method(images)
    assert logits.shape == (6, 3) and torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.arange(6) % 3).backward()
    for n, p in method.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: {n} has no gradient"


def test_fit_is_deterministic_under_a_seed(model, images):
    labels = torch.arange(6) % 3
    runs = []
    for _ in range(2):
        torch.manual_seed(5)
        method = CoCoOp(model, NAMES, CoCoOpConfig.tiny())
        fit(method, images, labels, FitConfig(steps=3, batch_size=4, seed=7))
        runs.append(predict(method, images))
    assert torch.equal(runs[0], runs[1])


def test_linear_probe_learns_a_separable_toy_task(model):
    # features already separate the classes: one direction per class
    feats = F.normalize(torch.eye(3, 64).repeat(4, 1) + 0.05 * torch.randn(12, 64), dim=-1)
    labels = torch.arange(12) % 3
    probe = LinearProbe(model, NAMES)
    assert accuracy(probe, feats, labels) == pytest.approx(1 / 3)  # zero init: ties -> class 0
    fit(probe, feats, labels, FitConfig(steps=100, lr=5e-2))
    assert accuracy(probe, feats, labels) == 1.0


def test_training_free_fit_returns_at_once(model, images):
    tip = TipAdapter(model, NAMES, model.encode_image(images).detach(), torch.arange(6) % 3)
    result = fit(tip, images, torch.arange(6) % 3)
    assert result.losses == [] and result.trainable == 0


def test_unified_context_moves_to_new_classes(model, images):
    coop = CoOp(model, NAMES)
    coop.set_classnames(["heart", "ring"])
    assert coop.num_classes == 2 and coop(images).shape == (6, 2)
    with torch.no_grad():
        text = model.encode_text(model.tokenize(["a photo of a heart.", "a photo of a ring."]))
        ref = model.logit_scale.exp() * model.encode_image(images) @ text.T
        assert torch.equal(coop(images), ref)


# ----------------------------------------------------------------------------- errors
def test_errors_name_the_argument(model, images):
    feats = model.encode_image(images).detach()
    cases = [
        (lambda: CoOp(model, []), ValueError, "classnames"),
        (lambda: CoOp(model, "circle"), ValueError, "classnames"),
        (lambda: CoOp(model, ["circle", "circle"]), ValueError, "distinct"),
        (lambda: CoOp(model, ["circle", "dodecahedron"]), ValueError, "dodecahedron"),
        (lambda: CoOp(model, NAMES, CoOpConfig(n_ctx=3)), ValueError, "n_ctx"),
        (lambda: CoOp(model, NAMES, CoOpConfig(n_ctx=0, init=None)), ValueError, "n_ctx"),
        (lambda: CoOp(model, NAMES, CoOpConfig(n_ctx=30, init=None)), ValueError, "n_ctx=30"),
        (lambda: CoOp(model, NAMES, CoOpConfig(n_ctx=2, init=None, init_std=0)), ValueError,
         "init_std"),
        (lambda: CoOp(model, NAMES, CoOpConfig(n_ctx=1, init="zorgle")), ValueError, "zorgle"),
        (lambda: CoOp(model, NAMES, CoOpConfig(class_specific=True)).set_classnames(["star"]),
         ValueError, "class-specific"),
        (lambda: CoCoOp(model, NAMES, CoCoOpConfig(hidden_ratio=0)), ValueError,
         "hidden_ratio"),
        (lambda: CoOp(torch.nn.Linear(2, 2), NAMES), TypeError, "VLM interface"),
        (lambda: VPT(model, NAMES, VPTConfig(n_tokens=-1)), ValueError, "n_tokens"),
        (lambda: VPT(tiny_clip(tower="resnet"), NAMES), TypeError, "ViT image tower"),
        (lambda: VPT(model, NAMES).encode_image(torch.rand(3, 48, 48)), ValueError, "images"),
        (lambda: CLIPAdapter(model, NAMES, CLIPAdapterConfig(ratio=1.5)), ValueError, "ratio"),
        (lambda: CLIPAdapter(model, NAMES, CLIPAdapterConfig(reduction=0)), ValueError,
         "reduction"),
        (lambda: CLIPAdapter(model, NAMES, CLIPAdapterConfig(templates=("a photo",))),
         ValueError, "templates"),
        (lambda: TipAdapter(model, NAMES, feats, torch.tensor([0, 1, 2, 3, 0, 1])), ValueError,
         "train_labels"),
        (lambda: TipAdapter(model, NAMES, feats, torch.zeros(5, dtype=torch.long)), ValueError,
         "train_labels"),
        (lambda: TipAdapter(model, NAMES, feats[:, :10], torch.zeros(6, dtype=torch.long)),
         ValueError, "train_features"),
        (lambda: TipAdapter(model, NAMES, feats, torch.zeros(6, dtype=torch.long),
                            TipAdapterConfig(beta=0)), ValueError, "beta"),
        (lambda: TipAdapter(model, NAMES, feats, torch.zeros(6, dtype=torch.long),
                            TipAdapterConfig(alpha=-1)), ValueError, "alpha"),
        (lambda: TipAdapter(model, NAMES, feats, torch.zeros(6, dtype=torch.long))
         .set_classnames(["star"]), ValueError, "classnames"),
        (lambda: LinearProbe(model, NAMES).set_classnames(["star"]), ValueError, "classnames"),
        (lambda: LoRA(model, NAMES, LoRAConfig(rank=0)), ValueError, "rank"),
        (lambda: LoRA(model, NAMES, LoRAConfig(alpha=0)), ValueError, "alpha"),
        (lambda: LoRA(model, NAMES, LoRAConfig(tower="audio")), ValueError, "tower"),
        (lambda: LoRA(model, NAMES, LoRAConfig(targets=("q", "x"))), ValueError, "targets"),
        (lambda: LoRA(tiny_clip(tower="resnet"), NAMES), TypeError, "ViT image tower"),
        (lambda: ZeroShot(model, NAMES).logits_from_features(torch.rand(4)), ValueError,
         "image_emb"),
        (lambda: insert_context(torch.zeros(2, 5, 4), torch.tensor([2, 3]),
                                torch.zeros(2, 2, 4)), ValueError, "does not fit"),
        (lambda: insert_context(torch.zeros(2, 5, 4), torch.tensor([1, 1]),
                                torch.zeros(3, 2, 4)), ValueError, "context"),
        (lambda: fit(ZeroShot(model, NAMES), images, torch.zeros(6)), ValueError, "labels"),
        (lambda: fit(LinearProbe(model, NAMES), images, torch.full((6,), 3)), ValueError,
         "labels"),
        (lambda: fit(VPT(model, NAMES), feats, torch.zeros(6, dtype=torch.long)), ValueError,
         "inputs"),
        (lambda: fit(CoOp(model, NAMES), images[0], torch.zeros(3, dtype=torch.long)),
         ValueError, "inputs"),
        (lambda: FitConfig(steps=0), ValueError, "steps"),
        (lambda: FitConfig(lr=-1.0), ValueError, "lr"),
        (lambda: FitConfig(grad_clip=0), ValueError, "grad_clip"),
        (lambda: FitConfig(weight_decay=float("nan")), ValueError, "weight_decay"),
    ]
    for make_error, kind, pattern in cases:
        with pytest.raises(kind, match=pattern):
            make_error()


def test_insert_context_places_vectors_after_sos():
    emb = torch.arange(2 * 6 * 1, dtype=torch.float32).view(2, 6, 1)  # token i has value i
    ctx = torch.full((2, 2, 1), -1.0)
    x, eot = insert_context(emb, torch.tensor([2, 3]), ctx)
    assert x[0, :, 0].tolist() == [0, -1, -1, 1, 2, 3]
    assert x[1, :, 0].tolist() == [6, -1, -1, 7, 8, 9]
    assert eot.tolist() == [4, 5]


def test_linear_probe_solve_is_chapter_09s_logistic_regression(model):
    from vlm_course.evaluation.probe import fit_logistic_regression

    g = torch.Generator().manual_seed(4)
    feats = F.normalize(torch.randn(12, 64, generator=g), dim=-1)
    labels = torch.arange(12) % 3
    probe = LinearProbe(model, NAMES)
    probe.solve(feats, labels, C=10.0)
    weight, bias = fit_logistic_regression(feats, labels, C=10.0)
    torch.testing.assert_close(probe.head.weight, weight.float())
    torch.testing.assert_close(probe.head.bias, bias.float())
    assert accuracy(probe, feats, labels) == 1.0  # 12 points in 64-d: separable
    with pytest.raises(ValueError, match="labels must be"):
        probe.solve(feats, labels % 2, C=1.0)  # class 2 missing
