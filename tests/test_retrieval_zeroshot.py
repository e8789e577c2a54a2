"""Retrieval R@K and zero-shot prompt ensembles on hand-made embeddings with known answers."""

import pytest
import torch
import torch.nn.functional as F

from vlm_course.evaluation.retrieval import evaluate_retrieval, recall_at_k
from vlm_course.evaluation.zeroshot import (
    accuracy,
    build_classifier,
    ensemble_embeddings,
    zeroshot_logits,
    zeroshot_predict,
)


def test_recall_perfect_and_known_misses():
    img = torch.eye(4)
    # captions 0,1 -> image 0; 2 -> image 1; 3 -> image 2; 4 -> image 3
    txt = torch.stack([img[0], img[0] + 0.1 * img[1], img[1], img[2], img[2] + 0.01 * img[3]])
    owner = torch.tensor([0, 0, 1, 2, 3])
    r = recall_at_k(img, txt, owner, ks=(1, 2))
    # caption 4 looks like image 2 (its own is image 3): t2i misses at 1, hits at 2.
    assert r["t2i_R@1"] == pytest.approx(4 / 5)
    assert r["t2i_R@2"] == pytest.approx(1.0)
    # image 3: its only caption (4) ranks behind caption 3? sim(img3, cap3)=0, cap4 ~ 0.01 -> best.
    assert r["i2t_R@1"] == pytest.approx(1.0)


def test_i2t_counts_best_ranked_caption():
    img = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    # image 0 has two captions: a bad one and a perfect one; only the best counts.
    txt = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.1, 1.0]])
    owner = torch.tensor([0, 0, 1])
    r = recall_at_k(img, txt, owner, ks=(1,))
    assert r["i2t_R@1"] == 1.0
    assert r["t2i_R@1"] == pytest.approx(2 / 3)  # caption 0 points at image 1


def test_recall_random_is_near_chance():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(200, 16, generator=g), torch.randn(200, 16, generator=g)
    r = recall_at_k(img, txt, torch.arange(200), ks=(1, 5))
    assert r["t2i_R@1"] < 0.05 and r["t2i_R@5"] < 0.1


@pytest.mark.parametrize("bad", ["shape", "dtype", "range", "k"])
def test_recall_errors(bad):
    img, txt, owner, ks = torch.eye(3), torch.eye(3), torch.arange(3), (1,)
    if bad == "shape":
        txt = torch.ones(3, 4)
    elif bad == "dtype":
        owner = owner.float()
    elif bad == "range":
        owner = torch.tensor([0, 1, 3])
    else:
        ks = (0,)
    with pytest.raises(ValueError):
        recall_at_k(img, txt, owner, ks)


def test_ensemble_normalises_each_prompt_before_averaging():
    # class 0: one long prompt vector along x, one short along y -> the average must be diagonal.
    prompts = torch.tensor([[[10.0, 0.0], [0.0, 0.1]], [[-1.0, 0.0], [-1.0, 0.0]]])
    cls = ensemble_embeddings(prompts)
    torch.testing.assert_close(cls[0], torch.tensor([2**-0.5, 2**-0.5]))
    torch.testing.assert_close(cls.norm(dim=-1), torch.ones(2))
    with pytest.raises(ValueError):
        ensemble_embeddings(torch.ones(2, 2))


class LookupModel(torch.nn.Module):
    """A VLM whose text embedding is a fixed vector per word and image embedding is the pixels."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def tokenize(self, texts):
        return list(texts)

    def encode_text(self, tokens):
        out = []
        for text in tokens:
            vec = sum(self.table.get(w, torch.zeros(3)) for w in text.split())
            out.append(F.normalize(torch.as_tensor(vec, dtype=torch.float32), dim=-1))
        return torch.stack(out)

    def encode_image(self, images):
        return F.normalize(images.flatten(1)[:, :3], dim=-1)


def test_zeroshot_with_lookup_model_and_errors():
    table = {"red": torch.tensor([1.0, 0, 0]), "green": torch.tensor([0, 1.0, 0]),
             "blue": torch.tensor([0, 0, 1.0]), "a": torch.tensor([0.1, 0.1, 0.1])}
    model = LookupModel(table)
    images = torch.zeros(3, 3, 1, 1)
    images[0, 0], images[1, 1], images[2, 2] = 1, 1, 1   # red, green, blue "images"
    classes = ["red", "green", "blue"]
    pred = zeroshot_predict(model, images, classes, ["a {}", "{}"])
    assert pred.tolist() == [0, 1, 2]
    clf = build_classifier(model, classes, ["a {} thing"])
    logits = zeroshot_logits(images.flatten(1), clf)
    assert accuracy(logits, torch.tensor([0, 1, 2])) == 1.0
    assert accuracy(logits, torch.tensor([1, 2, 0])) == 0.0
    with pytest.raises(ValueError, match="placeholder"):
        build_classifier(model, classes, ["no slot"])
    with pytest.raises(ValueError):
        build_classifier(model, [], ["{}"])
    with pytest.raises(ValueError):
        accuracy(logits, torch.tensor([0, 1]))
    r = evaluate_retrieval(model, images, [["red"], ["a green", "green"], ["blue"]])
    assert r["t2i_R@1"] == 1.0 and r["i2t_R@1"] == 1.0
    with pytest.raises(ValueError):
        evaluate_retrieval(model, images, [["red"], []])


def test_shared_sentences_count_for_every_image():
    img = torch.eye(3)
    txt = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    owner = torch.tensor([[True, True, False], [False, False, True]])
    r = recall_at_k(img, txt, owner, ks=(1,))
    assert r["t2i_R@1"] == 1.0 and r["i2t_R@1"] == 1.0
    with pytest.raises(ValueError, match="at least one"):
        recall_at_k(img, txt, torch.zeros(2, 3, dtype=torch.bool), ks=(1,))
    with pytest.raises(ValueError, match=r"\(M, N\)"):
        recall_at_k(img, txt, torch.ones(2, 2, dtype=torch.bool), ks=(1,))


def test_shapeworld_prompts_and_evaluation_protocol():
    from vlm_course.evaluation.zeroshot import evaluate_shapeworld, shapeworld_prompts
    from vlm_course.models.clip import CLIP, CLIPConfig
    from vlm_course.models.text_encoder import TextConfig
    from vlm_course.models.vit import ViTConfig
    from vlm_course.recipes.clip import shapeworld_vocab
    from vlm_course.world import WorldConfig

    cfg = WorldConfig.tiny()
    names, templates = shapeworld_prompts(cfg, "shape")
    assert names == list(cfg.shapes) and len(templates) == len(cfg.sizes) * len(cfg.colours)
    names, templates = shapeworld_prompts(cfg, "colour+shape")
    assert len(names) == len(cfg.shapes) * len(cfg.colours) and names[0] == "red circle"
    with pytest.raises(ValueError, match="task"):
        shapeworld_prompts(cfg, "size")
    torch.manual_seed(0)
    model = CLIP(CLIPConfig.build(16, ViTConfig(image_size=32, patch_size=8, width=16, layers=1,
                                                heads=2),
                                  TextConfig(width=16, layers=1, heads=2, context_length=24),
                                  shapeworld_vocab(cfg)))
    out = evaluate_shapeworld(model, cfg, n=40, batch_size=16)
    assert out["n_all"] == 40 and out["n_seen"] + out["n_heldout"] == 40 and out["n_heldout"] > 0
    for task in ("shape", "colour", "colour+shape"):
        assert 0.0 <= out[f"all_{task}"] <= 1.0
        mixed = (out[f"seen_{task}"] * out["n_seen"] + out[f"heldout_{task}"] * out["n_heldout"])
        assert out[f"all_{task}"] == pytest.approx(mixed / 40)
    with pytest.raises(ValueError, match="n must"):
        evaluate_shapeworld(model, cfg, n=0)


def test_evaluation_runs_in_eval_mode_and_restores_the_mode():
    """A BatchNorm image tower left in train mode must not change the numbers or its statistics."""
    import copy

    from vlm_course.evaluation.zeroshot import evaluate_shapeworld
    from vlm_course.models.clip import CLIP, CLIPConfig
    from vlm_course.models.resnet import ResNetConfig
    from vlm_course.models.text_encoder import TextConfig
    from vlm_course.recipes.clip import shapeworld_vocab
    from vlm_course.world import ShapeWorld, WorldConfig

    torch.manual_seed(0)
    world = WorldConfig.tiny()
    cfg = CLIPConfig.build(16, ResNetConfig.tiny(image_size=32, width=8, heads=2),
                           TextConfig(width=16, layers=1, heads=2, context_length=24),
                           shapeworld_vocab(world), image_tower="resnet")
    model = CLIP(cfg).train()
    frozen = copy.deepcopy(model).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = evaluate_shapeworld(model, world, n=12, batch_size=5)
    assert out == evaluate_shapeworld(frozen, world, n=12, batch_size=12)
    batch = ShapeWorld(world).batch("test", range(6), masks=False)
    assert evaluate_retrieval(model, batch.images, batch.captions, batch_size=4) == \
        evaluate_retrieval(frozen, batch.images, batch.captions, batch_size=6)
    assert model.training and not frozen.training
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)
