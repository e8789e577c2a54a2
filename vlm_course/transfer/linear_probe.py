"""The linear probe: a logistic-regression head on frozen image features (chapter 10 baseline).

CLIP (Radford et al. 2021) and CoOp (Zhou et al. 2022) compare prompt learning with a linear probe:
a linear classifier ``W f + b`` on the frozen, L2-normalised image features of the few-shot set,
with its L2 regularisation chosen on held-out data.  It knows nothing of the class *names* — at
one shot per class it barely beats chance, and it cannot classify a class it has no example of,
but with enough shots it catches up.  :meth:`LinearProbe.solve` sets the head to the optimum of
the regularised logistic regression by chapter 09's solver
(:func:`vlm_course.evaluation.probe.fit_logistic_regression`, the objective of scikit-learn's
``LogisticRegression(C)``); the head is also an ordinary trainable layer for
:func:`vlm_course.transfer.fit.fit`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .frozen import FrozenVLM

__all__ = ["LinearProbe"]


class LinearProbe(FrozenVLM):
    """Logistic regression on frozen image features: ``logits = head(f)`` (B, E) -> (B, K).

    Trainable: ``head`` (E -> K, with bias), initialised at zero (uniform predictions).  Cannot
    change its classes (``set_classnames`` raises ValueError: it has no weights for a new class).
    """

    uses_image_features = True

    def __init__(self, model, classnames: Sequence[str]):
        super().__init__(model, classnames)
        with torch.no_grad():
            E = int(model.encode_text(model.tokenize(["a"])).shape[-1])
        self.head = nn.Linear(E, self.num_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.to(self.device)

    def set_classnames(self, classnames: Sequence[str]) -> None:
        raise ValueError("classnames cannot change: a linear probe has weights only for the "
                         "classes it was trained on")

    def logits_from_features(self, image_emb: torch.Tensor) -> torch.Tensor:
        return self.head(self.check_features(image_emb))

    @torch.no_grad()
    def solve(self, features: torch.Tensor, labels: torch.Tensor, C: float = 1.0) -> None:
        """Set the head to the regularised logistic-regression optimum on ``(features, labels)``.

        features: (N, E) float image features; labels: (N,) long in ``[0, K)``, every class
        present; C: inverse L2 strength (> 0).  Raises ValueError for bad shapes, labels or C.
        """
        from vlm_course.evaluation.probe import fit_logistic_regression

        features = self.check_features(features)
        present = sorted(set(labels.tolist())) if torch.is_tensor(labels) else labels
        if not torch.is_tensor(labels) or labels.shape != features.shape[:1] or \
                present != list(range(self.num_classes)):
            raise ValueError(f"labels must be ({features.shape[0]},) ids covering every class "
                             f"0 .. {self.num_classes - 1}, got {present}")
        weight, bias = fit_logistic_regression(features.cpu(), labels.cpu(), C=C)
        self.head.weight.copy_(weight.to(self.head.weight))
        self.head.bias.copy_(bias.to(self.head.bias))
