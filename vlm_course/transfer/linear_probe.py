"""The linear probe: a logistic-regression head on frozen image features (chapter 10 baseline).

CLIP (Radford et al. 2021) and CoOp (Zhou et al. 2022) compare prompt learning with a linear probe:
a linear classifier ``W f + b`` trained on the frozen, L2-normalised image features of the few-shot
set.  It knows nothing of the class *names* — at one shot per class it usually loses to zero-shot
CLIP, and it cannot classify a class it has no example of, but with enough shots it catches up.
Trained here with the same loop as the other methods (cross-entropy with weight decay, i.e.
L2-regularised multinomial logistic regression; chapter 09 sweeps the regularisation with
scikit-learn instead).
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
