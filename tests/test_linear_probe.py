"""The linear-probe protocol (vlm_course.evaluation.linear_probe; chapter 09)."""

import pytest
import torch

from vlm_course.evaluation.linear_probe import (
    DEFAULT_CS,
    FALLBACK_C,
    extract_features,
    fit_probe,
    kshot_curve,
    kshot_indices,
    probe_accuracy,
)
from vlm_course.evaluation.probe import linear_probe


def _blobs(seed, n=200, d=5, k=4, spread=0.3):
    """k far-apart Gaussian blobs (linearly separable); the centres are shared by every seed."""
    centres = 10 * torch.eye(k, d)
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    return centres[y] + spread * torch.randn(n, d, generator=g), y


def test_separable_toy_set_is_probed_to_100_percent():
    x, y = _blobs(0)
    xt, yt = _blobs(1)
    res = probe_accuracy(x, y, xt, yt)
    assert res["accuracy"] == 1.0
    assert res["C"] in DEFAULT_CS
    curve = kshot_curve(x, y, xt, yt, shots=(1, 4, None), seeds=(0, 1))
    assert all(curve[k]["mean"] == 1.0 for k in (1, 4, "full"))


def test_pure_noise_features_give_chance():
    g = torch.Generator().manual_seed(0)
    K = 4
    x, y = torch.randn(400, 16, generator=g), torch.randint(0, K, (400,), generator=g)
    xt, yt = torch.randn(4000, 16, generator=g), torch.randint(0, K, (4000,), generator=g)
    acc = probe_accuracy(x, y, xt, yt)["accuracy"]
    assert abs(acc - 1 / K) < 0.04, acc          # 4000 test points: std of chance ~0.007


def test_same_seed_same_split_other_seed_other_split():
    y = torch.arange(300) % 3
    a, b, c = kshot_indices(y, 5, seed=1), kshot_indices(y, 5, seed=1), kshot_indices(y, 5, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.bincount(y[a]), torch.tensor([5, 5, 5]))
    assert len(set(a.tolist())) == 15                  # without replacement
    x, _ = _blobs(0, n=300, k=3)
    noisy = x + 4 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    p1, p2 = fit_probe(noisy, y, seed=4), fit_probe(noisy, y, seed=4)
    assert p1.C == p2.C and p1.val_scores == p2.val_scores


def test_sweep_picks_C_on_validation_and_agrees_with_the_torch_probe():
    x, y = _blobs(0, n=300, k=3, spread=6.0)
    xt, yt = _blobs(1, n=300, k=3, spread=6.0)
    probe = fit_probe(x, y, seed=0)
    assert set(probe.val_scores) == set(DEFAULT_CS)
    best = max(probe.val_scores.values())
    assert probe.val_scores[probe.C] == best
    assert all(c >= probe.C for c, s in probe.val_scores.items() if s == best)   # ties: smaller C
    # at a fixed C and without standardisation, the scikit-learn probe and probe.py's from-scratch
    # PyTorch L-BFGS minimise the same objective: same test accuracy
    sk = probe_accuracy(x, y, xt, yt, C=0.5, standardize=False)["accuracy"]
    assert sk == pytest.approx(linear_probe(x, y, xt, yt, C=0.5), abs=1 / 300)


def test_single_example_per_class_uses_the_fallback_C():
    x, y = _blobs(0, n=4, k=4)
    probe = fit_probe(x, y)
    assert probe.C == FALLBACK_C and probe.val_scores == {}


def test_feature_extraction_is_batched_and_cached_per_key():
    calls = []

    def encode(images):
        calls.append(len(images))
        return images.flatten(1)[:, :3] * 2

    images = torch.rand(10, 3, 4, 4)
    cache = {}
    f1 = extract_features(encode, images, batch_size=4, cache=cache, key=("m", "d"))
    assert calls == [4, 4, 2] and f1.shape == (10, 3) and f1.dtype == torch.float32
    torch.testing.assert_close(f1, images.flatten(1)[:, :3] * 2)
    f2 = extract_features(encode, images, batch_size=4, cache=cache, key=("m", "d"))
    assert f2 is f1 and calls == [4, 4, 2]             # second call: from the cache
    extract_features(encode, images, batch_size=4, cache=cache, key=("other", "d"))
    assert calls == [4, 4, 2, 4, 4, 2]


def test_errors_name_the_argument():
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match=r"k must be <= the smallest class \(2 examples"):
        kshot_indices(y, 3, seed=0)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        kshot_indices(y, 0, seed=0)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        kshot_indices(y, 1, seed=-1)
    with pytest.raises(ValueError, match="labels must be a non-empty"):
        kshot_indices(y.float()[None], 1, seed=0)
    x, yy = _blobs(0, n=40)
    with pytest.raises(ValueError, match="k must be <= the smallest class"):
        kshot_curve(x, yy, x, yy, shots=(11,), seeds=(0,))
    with pytest.raises(ValueError, match="shots must be"):
        kshot_curve(x, yy, x, yy, shots=(), seeds=(0,))
    with pytest.raises(ValueError, match="seeds must be"):
        kshot_curve(x, yy, x, yy, seeds=())
    with pytest.raises(ValueError, match="labels must be"):
        fit_probe(x, yy.float())
    with pytest.raises(ValueError, match="labels must hold at least two classes"):
        fit_probe(x, torch.zeros(40, dtype=torch.long))
    with pytest.raises(ValueError, match="features must be 2-D"):
        fit_probe(x[0], yy)
    with pytest.raises(ValueError, match="C must be finite numbers > 0"):
        fit_probe(x, yy, C=0.0)
    with pytest.raises(ValueError, match="Cs must be finite numbers > 0"):
        fit_probe(x, yy, Cs=[])
    with pytest.raises(ValueError, match="val_fraction must be"):
        fit_probe(x, yy, val_fraction=1.0)
    with pytest.raises(ValueError, match="test_features must have width D=5"):
        probe_accuracy(x, yy, x[:, :2], yy)
    with pytest.raises(ValueError, match="test_labels must be"):
        probe_accuracy(x, yy, x, yy[:3])
    with pytest.raises(ValueError, match="key must name the model"):
        extract_features(lambda t: t, x, cache={})
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        extract_features(lambda t: t, x, batch_size=0)
    with pytest.raises(TypeError, match="encode must be callable"):
        extract_features(None, x)
    with pytest.raises(ValueError, match=r"encode must return \(b, D\)"):
        extract_features(lambda t: t.sum(), x)
