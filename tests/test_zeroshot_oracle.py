"""Zero-shot and retrieval evaluation with models whose answers are known in advance.

An oracle that encodes the ground truth must score exactly 100%; a model that gives every image the
same embedding must score exactly the frequency of the class it always picks, so the mean over the
K possible constant models is exactly chance, 1/K (chapter 08).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vlm_course.evaluation.retrieval import evaluate_retrieval
from vlm_course.evaluation.zeroshot import evaluate_shapeworld, zeroshot_predict
from vlm_course.world import ShapeWorld, WorldConfig

N = 60


@pytest.fixture(scope="module")
def cfg():
    return WorldConfig(canvas=32, shapes=("circle", "square", "star"),
                       colours=("red", "green", "blue"), max_objects=2)


@pytest.fixture(scope="module")
def truth(cfg):
    """The labels evaluate_shapeworld's scenes carry, read from the world independently."""
    batch = ShapeWorld(cfg.replace(min_objects=1, max_objects=1)).batch("test", range(N))
    return batch


class GroundTruthModel:
    """encode_image: one-hot shape ++ one-hot colour of the single object, looked up by pixels;
    encode_text: the shape and colour words the prompt contains.  ``constant`` = (shape, colour)
    makes every image embed as that pair instead."""

    def __init__(self, cfg, batch, constant=None):
        self.shapes, self.colours = cfg.shapes, cfg.colours
        self.table = {img.numpy().tobytes(): (int(s), int(c)) for img, s, c in
                      zip(batch.images, batch.labels["shape"], batch.labels["colour"],
                          strict=True)}
        self.constant = constant

    def _vector(self, shape, colour):
        v = torch.zeros(len(self.shapes) + len(self.colours))
        if shape is not None:
            v[shape] = 1.0
        if colour is not None:
            v[len(self.shapes) + colour] = 1.0
        return v

    def tokenize(self, texts):
        return list(texts)

    def encode_text(self, texts):
        rows = []
        for text in texts:
            words = text.split()
            shape = next((self.shapes.index(w) for w in words if w in self.shapes), None)
            colour = next((self.colours.index(w) for w in words if w in self.colours), None)
            rows.append(self._vector(shape, colour))
        return F.normalize(torch.stack(rows), dim=-1)

    def encode_image(self, images):
        pairs = [self.constant or self.table[img.numpy().tobytes()] for img in images]
        return F.normalize(torch.stack([self._vector(s, c) for s, c in pairs]), dim=-1)


def test_oracle_scores_exactly_one(cfg, truth):
    out = evaluate_shapeworld(GroundTruthModel(cfg, truth), cfg, n=N, batch_size=16)
    assert out["n_heldout"] > 0 and out["n_seen"] > 0
    for task in ("shape", "colour", "colour+shape"):
        for part in ("all", "seen", "heldout"):
            assert out[f"{part}_{task}"] == 1.0, (part, task)


def test_constant_models_score_class_frequency_and_exact_chance(cfg, truth):
    S, C = len(cfg.shapes), len(cfg.colours)
    shape, colour = truth.labels["shape"], truth.labels["colour"]
    by_task = {"shape": [], "colour": [], "colour+shape": []}
    for s in range(S):
        for c in range(C):
            model = GroundTruthModel(cfg, truth, constant=(s, c))
            out = evaluate_shapeworld(model, cfg, n=N, batch_size=32)
            assert out["all_shape"] == pytest.approx(float((shape == s).float().mean()), abs=1e-7)
            assert out["all_colour"] == pytest.approx(float((colour == c).float().mean()),
                                                      abs=1e-7)
            both = ((shape == s) & (colour == c)).float().mean()
            assert out["all_colour+shape"] == pytest.approx(float(both), abs=1e-7)
            for task in by_task:
                by_task[task].append(out[f"all_{task}"])
    # averaged over every constant answer, each class is picked equally often: exactly 1/K
    assert sum(by_task["shape"]) / (S * C) == pytest.approx(1 / S, abs=1e-7)
    assert sum(by_task["colour"]) / (S * C) == pytest.approx(1 / C, abs=1e-7)
    assert sum(by_task["colour+shape"]) / (S * C) == pytest.approx(1 / (S * C), abs=1e-7)


def test_zeroshot_predict_oracle_and_constant(cfg, truth):
    oracle = GroundTruthModel(cfg, truth)
    pred = zeroshot_predict(oracle, truth.images, list(cfg.shapes), ["a {}", "a large {}"])
    assert torch.equal(pred, truth.labels["shape"])
    constant = GroundTruthModel(cfg, truth, constant=(2, 0))
    pred = zeroshot_predict(constant, truth.images, list(cfg.colours), ["a {} shape"])
    assert pred.tolist() == [0] * N


class IdentityModel:
    """Retrieval oracle: image i embeds as e_i; a caption as the sum of e_i over the images it is
    a true caption of (shared sentences point at all their images).  ``constant``: all images and
    texts embed as the same vector."""

    def __init__(self, images, captions, constant=False):
        self.index = {img.numpy().tobytes(): i for i, img in enumerate(images)}
        self.owners: dict[str, list[int]] = {}
        for i, caps in enumerate(captions):
            for c in caps:
                self.owners.setdefault(c, []).append(i)
        self.n, self.constant = len(images), constant

    def tokenize(self, texts):
        return list(texts)

    def encode_text(self, texts):
        out = torch.zeros(len(texts), self.n)
        for row, text in enumerate(texts):
            out[row, self.owners[text]] = 1.0
        return torch.ones_like(out) if self.constant else F.normalize(out, dim=-1)

    def encode_image(self, images):
        idx = torch.tensor([self.index[img.numpy().tobytes()] for img in images])
        out = F.one_hot(idx, self.n).float()
        return torch.ones_like(out) if self.constant else out


def test_retrieval_oracle_is_perfect_and_constant_model_ranks_last(cfg):
    batch = ShapeWorld(cfg).batch("test", range(80))
    first = {}  # identical images would make the oracle's answer ambiguous: keep one of each
    for i, img in enumerate(batch.images):
        first.setdefault(img.numpy().tobytes(), i)
    keep = sorted(first.values())[:40]
    assert len(keep) == 40
    images, captions = batch.images[keep], [batch.captions[i] for i in keep]
    shared = sum(len(v) > 1 for v in IdentityModel(images, captions).owners.values())
    assert shared > 0  # the protocol's shared-sentence case is exercised
    oracle = evaluate_retrieval(IdentityModel(images, captions), images, captions, ks=(1, 5),
                                batch_size=16)
    assert oracle == {"t2i_R@1": 1.0, "i2t_R@1": 1.0, "t2i_R@5": 1.0, "i2t_R@5": 1.0}
    # a constant model ties everything and ties count against the query: an image query ranks
    # behind every wrong caption; a caption with m true images ranks 1 + (40 - m)
    owners = IdentityModel(images, captions).owners
    const = evaluate_retrieval(IdentityModel(images, captions, constant=True), images, captions,
                               ks=(1, 39, 1000))
    assert const["i2t_R@1"] == 0.0 and const["i2t_R@39"] == 0.0 and const["i2t_R@1000"] == 1.0
    for k in (1, 39, 1000):
        expected = sum(1 + 40 - len(m) <= k for m in owners.values()) / len(owners)
        assert const[f"t2i_R@{k}"] == pytest.approx(expected, abs=1e-7)
