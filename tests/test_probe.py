"""Linear probe (vlm_course.evaluation.probe): same optimum as scikit-learn's LogisticRegression."""

import pytest
import torch

from vlm_course.evaluation.probe import fit_logistic_regression, linear_probe


def _data(seed=0, n=300, d=6, k=3):
    centres = 2 * torch.randn(k, d, generator=torch.Generator().manual_seed(100))  # shared
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    return centres[y] + torch.randn(n, d, generator=g), y


@pytest.mark.parametrize("C", [0.1, 1.0])
def test_same_optimum_as_sklearn(C):
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, y = _data()
    w, b = fit_logistic_regression(x, y, C=C)
    ref = sklearn.LogisticRegression(C=C, max_iter=5000, tol=1e-10).fit(x.double().numpy(),
                                                                        y.numpy())
    # multinomial logits are defined up to a shared shift: compare centred parameters
    ref_w = torch.from_numpy(ref.coef_)
    ref_b = torch.from_numpy(ref.intercept_)
    torch.testing.assert_close(w - w.mean(0), ref_w - ref_w.mean(0), atol=2e-4, rtol=1e-3)
    torch.testing.assert_close(b - b.mean(), ref_b - ref_b.mean(), atol=2e-4, rtol=1e-3)
    xt, yt = _data(seed=1)
    expected = ref.score(xt.double().numpy(), yt.numpy())
    assert linear_probe(x, y, xt, yt, C=C) == pytest.approx(expected)


def test_separable_classes_are_probed_perfectly_and_noise_at_chance():
    x, y = _data()
    xt, yt = _data(seed=1)
    assert linear_probe(x, y, xt, yt) > 0.95
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(600, 6, generator=g)
    assert linear_probe(noise[:300], y, noise[300:], yt) < 0.5


def test_bad_input():
    x, y = _data()
    with pytest.raises(ValueError, match="features: expected a non-empty"):
        linear_probe(x[0], y, x, y)
    with pytest.raises(ValueError, match=r"labels: expected \(300,\) non-negative integer"):
        linear_probe(x, y.float(), x, y)
    with pytest.raises(ValueError, match="C: expected > 0"):
        linear_probe(x, y, x, y, C=0)
    with pytest.raises(ValueError, match="test_features: expected width 6"):
        linear_probe(x, y, x[:, :3], y)
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="features: expected finite"):
        linear_probe(bad, y, x, y)
