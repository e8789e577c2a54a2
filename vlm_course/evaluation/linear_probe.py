"""The linear-probe protocol: frozen features, a regularisation sweep, k-shot curves over seeds.

Chapter 09 (linear probing) and chapter 01 (paradigms); the protocol of CLIP's evaluation
(Radford et al. 2021, appendix A.3): features of a frozen encoder go into a multinomial logistic
regression fitted with L-BFGS (scikit-learn's ``LogisticRegression``), and the inverse
regularisation strength ``C`` is chosen on a validation split by a log-spaced sweep, then the
probe is refitted on all the labelled data with that ``C``.

:mod:`vlm_course.evaluation.probe` is the same model written from scratch in PyTorch (one fit at
a fixed ``C``, checked against scikit-learn there); this module adds what a *protocol* needs:

* :func:`extract_features` — encode images in batches, cached per (model, data) key;
* :func:`kshot_indices` — ``k`` labelled examples per class, drawn with a fixed seed;
* :func:`fit_probe` — the ``C`` sweep on a stratified validation split of the labelled data
  itself (no extra labels), then a refit; :func:`probe_accuracy` scores it on a test set;
* :func:`kshot_curve` — accuracy vs labels per class, mean ± spread over seeds.

Nothing here imports scikit-learn at module import; it is imported when a probe is fitted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .checks import check_embeddings, check_positive_int

__all__ = ["DEFAULT_CS", "FALLBACK_C", "Probe", "extract_features", "fit_probe", "kshot_curve",
           "kshot_indices", "probe_accuracy"]

#: The log-spaced sweep of inverse regularisation strengths (CLIP sweeps 1e-6 .. 1e6).
DEFAULT_CS: tuple[float, ...] = tuple(10.0 ** e for e in range(-3, 5))
#: ``C`` used when some class has a single labelled example (no validation split is possible).
FALLBACK_C = 1.0


def _check_labels(name: str, labels: object, n: int) -> torch.Tensor:
    if (not isinstance(labels, torch.Tensor) or labels.shape != (n,)
            or labels.is_floating_point() or (n and int(labels.min()) < 0)):
        got = (f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, torch.Tensor)
               else type(labels).__name__)
        raise ValueError(f"{name} must be ({n},) non-negative integer class ids, got {got}")
    return labels


@torch.no_grad()
def extract_features(encode: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, *,
                     batch_size: int = 256, cache: dict | None = None,
                     key: Hashable | None = None) -> torch.Tensor:
    """(N, D) float32 CPU features ``encode(images[i:i + batch_size])`` stacked over batches.

    ``encode``: a frozen encoder, images (b, 3, H, W) -> (b, D) (e.g. ``model.encode_image``; put
    the model in eval mode first).  ``cache``: a dict shared by the calls of an experiment; with
    it, ``key`` (e.g. ``("clip", "shapeworld-test")``) names the model and the data, and a second
    call with the same key returns the stored tensor without encoding again.

    Raises TypeError when ``encode`` is not callable or ``images`` not a tensor; ValueError for an
    empty ``images``, a bad ``batch_size``, a ``cache`` without ``key`` or an encoder output that
    is not (b, D).
    """
    if not callable(encode):
        raise TypeError(f"encode must be callable (images -> (B, D)), got {type(encode).__name__}")
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor (N, 3, H, W), got {type(images).__name__}")
    if images.ndim < 2 or images.shape[0] < 1:
        raise ValueError(f"images must be a non-empty batch (N, ...), got {tuple(images.shape)}")
    check_positive_int("batch_size", batch_size)
    if cache is not None and key is None:
        raise ValueError("key must name the model and data when a cache is given, got None")
    if cache is not None and key in cache:
        return cache[key]
    chunks = []
    for i in range(0, images.shape[0], batch_size):
        out = encode(images[i:i + batch_size])
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or len(out) != len(
                images[i:i + batch_size]):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"encode must return (b, D) features for b images, got {got}")
        chunks.append(out.detach().float().cpu())
    feats = torch.cat(chunks)
    if cache is not None:
        cache[key] = feats
    return feats


def kshot_indices(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """(K * k,) int64 indices into ``labels``: ``k`` examples of each class, drawn without
    replacement by a NumPy generator seeded with ``seed`` (same seed, same indices), in class
    order.  ``labels``: (N,) integer class ids; the classes are those present in ``labels``.

    Raises ValueError when ``labels`` is not (N,) non-negative integers, ``k`` is not an int >= 1
    or is larger than the smallest class, or ``seed`` is not an int >= 0.
    """
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or len(labels) == 0:
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a non-empty (N,) tensor of class ids, got {got}")
    _check_labels("labels", labels, len(labels))
    check_positive_int("k", k)
    check_positive_int("seed", seed, low=0)
    y = labels.cpu().numpy()
    classes, counts = np.unique(y, return_counts=True)
    if k > counts.min():
        raise ValueError(f"k must be <= the smallest class ({int(counts.min())} examples of class "
                         f"{int(classes[counts.argmin()])}), got {k}")
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c in classes]
    return torch.from_numpy(np.concatenate(picks).astype(np.int64))


def _validation_split(y: np.ndarray, fraction: float, seed: int) -> np.ndarray | None:
    """Boolean mask of a stratified validation split (>= 1 per class, >= 1 left to train), or
    None when some class has a single example."""
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        return None
    rng = np.random.default_rng(seed + 7919)
    val = np.zeros(len(y), dtype=bool)
    for c, n in zip(classes, counts, strict=True):
        members = rng.permutation(np.flatnonzero(y == c))
        val[members[:min(n - 1, max(1, round(fraction * n)))]] = True
    return val


@dataclass
class Probe:
    """A fitted probe: the scikit-learn ``classifier``, the chosen ``C``, the validation accuracy
    of every swept ``C`` (``val_scores``, empty when ``C`` was given or :data:`FALLBACK_C` used)
    and the standardisation (``mean`` (D,) and overall ``std`` of the training features, or
    None)."""

    classifier: object
    C: float
    val_scores: dict[float, float] = field(default_factory=dict)
    mean: np.ndarray | None = None
    std: float | None = None

    def _x(self, features: torch.Tensor) -> np.ndarray:
        x = features.detach().cpu().double().numpy()
        return x if self.mean is None else (x - self.mean) / self.std

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """(N,) int64 predicted class ids of (N, D) features."""
        return torch.from_numpy(self.classifier.predict(self._x(features)).astype(np.int64))

    def score(self, features: torch.Tensor, labels: torch.Tensor) -> float:
        """Accuracy in [0, 1] on (N, D) features with (N,) labels."""
        return float((self.predict(features) == labels.cpu()).double().mean())


def _fit(x: np.ndarray, y: np.ndarray, C: float, max_iter: int):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter).fit(x, y)


def fit_probe(features: torch.Tensor, labels: torch.Tensor, *, C: float | None = None,
              Cs: Sequence[float] = DEFAULT_CS, val_fraction: float = 0.25, seed: int = 0,
              standardize: bool = True, max_iter: int = 1000) -> Probe:
    """Fit a multinomial logistic-regression probe (L-BFGS) on frozen ``features``.

    features: (N, D) float; labels: (N,) int class ids (at least two classes).  With ``C`` given
    the probe is fitted once.  Otherwise each ``C`` in ``Cs`` is fitted on a stratified split of
    the labelled data (``val_fraction`` of every class held out, drawn with ``seed``), the one with
    the best validation accuracy wins (ties: the smaller ``C``, the stronger regularisation), and
    the probe is refitted on all ``N`` examples; a class with a single example leaves nothing to
    validate on, so :data:`FALLBACK_C` is used.  ``standardize``: centre the features with the
    training mean and divide by their overall standard deviation (one number, so a feature that
    barely varies among a few shots is not blown up) -- it puts the ``C`` grid on one scale for
    every encoder.

    Raises ValueError for bad features (not finite, not (N, D)), labels (not (N,) integers, fewer
    than two classes), a ``C`` or an entry of ``Cs`` that is not > 0, an empty ``Cs``, a
    ``val_fraction`` outside (0, 1), a ``seed`` < 0 or ``max_iter`` < 1.
    """
    check_embeddings("features", features)
    _check_labels("labels", labels, len(features))
    if len(torch.unique(labels)) < 2:
        raise ValueError(f"labels must hold at least two classes, got {torch.unique(labels)}")
    sweep = [C] if C is not None else list(Cs)
    if not sweep or not all(isinstance(c, (int, float)) and not isinstance(c, bool)
                            and 0 < c < math.inf for c in sweep):
        name = "C" if C is not None else "Cs"
        raise ValueError(f"{name} must be finite numbers > 0 (Cs non-empty), got "
                         f"{C if C is not None else Cs!r}")
    if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    check_positive_int("seed", seed, low=0)
    check_positive_int("max_iter", max_iter)
    x = features.detach().cpu().double().numpy()
    y = labels.cpu().numpy()
    mean = std = None
    if standardize:
        mean = x.mean(0)
        std = float(np.sqrt(((x - mean) ** 2).mean())) or 1.0     # one number for all dims
        x = (x - mean) / std
    scores: dict[float, float] = {}
    if C is None:
        val = _validation_split(y, val_fraction, seed)
        if val is None:
            C = FALLBACK_C
        else:
            for c in sweep:
                scores[c] = float(_fit(x[~val], y[~val], c, max_iter).score(x[val], y[val]))
            C = max(scores, key=lambda c: (scores[c], -c))
    return Probe(_fit(x, y, C, max_iter), C, scores, mean, std)


def probe_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor,
                   test_features: torch.Tensor, test_labels: torch.Tensor, **kwargs) -> dict:
    """``{"accuracy": float, "C": float}`` of :func:`fit_probe` (``kwargs`` passed on) fitted on
    the training set and scored on the test set.  Raises what :func:`fit_probe` raises, and
    ValueError for test features of another width D or bad test labels."""
    probe = fit_probe(train_features, train_labels, **kwargs)
    check_embeddings("test_features", test_features)
    if test_features.shape[1] != train_features.shape[1]:
        raise ValueError(f"test_features must have width D={train_features.shape[1]} like "
                         f"train_features, got {test_features.shape[1]}")
    _check_labels("test_labels", test_labels, len(test_features))
    return {"accuracy": probe.score(test_features, test_labels), "C": probe.C}


def _spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def kshot_curve(train_features: torch.Tensor, train_labels: torch.Tensor,
                test_features: torch.Tensor, test_labels: torch.Tensor, *,
                shots: Sequence[int | None] = (1, 2, 4, 8, 16, 64, None),
                seeds: Sequence[int] = (0, 1, 2), **kwargs) -> dict:
    """Probe accuracy vs labelled examples per class, over seeds.

    For every ``k`` in ``shots`` and every seed, ``k`` examples per class are drawn from the
    training pool (:func:`kshot_indices`) and a probe is fitted on them (:func:`fit_probe`, the
    seed also fixes its validation split; ``kwargs`` passed on) and scored on the whole test set.
    ``None`` in ``shots`` means all the training pool ("full"; the seeds then only change the
    validation split).  Returns ``{key: {"mean", "std", "min", "max", "values", "C"}}`` with
    ``key`` = ``k`` or ``"full"``; ``std`` is the sample standard deviation over seeds.

    Raises ValueError for an empty ``shots`` or ``seeds``, and what :func:`kshot_indices` and
    :func:`probe_accuracy` raise (e.g. ``k`` larger than the smallest class).
    """
    if not shots:
        raise ValueError(f"shots must be a non-empty list of ints (or None for all), got {shots!r}")
    if not seeds:
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}")
    out = {}
    for k in shots:
        accs, Cs = [], []
        for seed in seeds:
            idx = (torch.arange(len(train_labels)) if k is None
                   else kshot_indices(train_labels, k, seed))
            res = probe_accuracy(train_features[idx], train_labels[idx], test_features,
                                 test_labels, seed=seed, **kwargs)
            accs.append(res["accuracy"])
            Cs.append(res["C"])
        out["full" if k is None else k] = {**_spread(accs), "C": Cs}
    return out
