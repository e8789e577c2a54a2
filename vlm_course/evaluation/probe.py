"""Linear probe: multinomial logistic regression on frozen features (chapters 04 and 09; the
linear-probe protocol of SimCLR, Chen et al. 2020, and CLIP, Radford et al. 2021).

The probe minimises ``0.5 * |W|^2 + C * sum_i cross_entropy(x_i W^T + b, y_i)`` (the bias is not
penalised) with full-batch L-BFGS in float64: the objective scikit-learn's
``LogisticRegression(C=C)`` minimises, so both find the same (unique) optimum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(features: torch.Tensor, labels: torch.Tensor, name: str) -> None:
    if not isinstance(features, torch.Tensor) or features.ndim != 2 or len(features) == 0:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
        raise ValueError(f"{name}features: expected a non-empty (B, D) tensor, got {shape}")
    if not torch.isfinite(features).all():
        raise ValueError(f"{name}features: expected finite values, got NaN or inf")
    if (not isinstance(labels, torch.Tensor) or labels.shape != (len(features),)
            or labels.is_floating_point() or (labels < 0).any()):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"{name}labels: expected ({len(features)},) non-negative integer class "
                         f"ids, got {got}")


def fit_logistic_regression(features: torch.Tensor, labels: torch.Tensor, C: float = 1.0,
                            max_iter: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit the probe: returns (weight (K, D), bias (K,)) float64, K = labels.max() + 1.

    features: (B, D) float (frozen features); labels: (B,) int class ids; C: inverse L2 strength
    (> 0); max_iter: L-BFGS iterations. Raises ValueError for bad shapes, non-finite features,
    negative or float labels, C <= 0 or max_iter < 1.
    """
    _check(features, labels, "")
    if not C > 0:
        raise ValueError(f"C: expected > 0, got {C}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter: expected an int >= 1, got {max_iter!r}")
    x = features.detach().to(torch.float64)
    y = labels.detach().long()
    K, D = int(y.max()) + 1, x.shape[1]
    w = torch.zeros(K, D, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10,
                            tolerance_change=1e-14, history_size=20, line_search_fn="strong_wolfe")

    def objective():
        opt.zero_grad()
        loss = 0.5 * (w * w).sum() + C * F.cross_entropy(x @ w.T + b, y, reduction="sum")
        loss.backward()
        return loss

    opt.step(objective)
    return w.detach(), b.detach()


def linear_probe(train_features: torch.Tensor, train_labels: torch.Tensor,
                 test_features: torch.Tensor, test_labels: torch.Tensor, C: float = 1.0,
                 max_iter: int = 500) -> float:
    """Accuracy in [0, 1] on the test set of a probe fitted on the training set (see
    :func:`fit_logistic_regression`). Features (B, D) float, labels (B,) int. Raises ValueError as
    :func:`fit_logistic_regression`, and when the two sets' widths D differ."""
    w, b = fit_logistic_regression(train_features, train_labels, C, max_iter)
    _check(test_features, test_labels, "test_")
    if test_features.shape[1] != w.shape[1]:
        raise ValueError(f"test_features: expected width {w.shape[1]} like train_features, got "
                         f"{test_features.shape[1]}")
    pred = (test_features.detach().to(torch.float64) @ w.T + b).argmax(1)
    return float((pred == test_labels).double().mean())
