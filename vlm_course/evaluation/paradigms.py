"""One task, five paradigms of visual recognition: accuracy against labels per class.

Chapter 01, after the survey's section "The development of visual recognition paradigms" (Zhang
et al., TPAMI 2024): (1) hand-crafted features + a trained linear classifier, (2) a deep network
trained from scratch on the task's labels, (3) supervised pre-training on another task then
fine-tuning, (4) self-supervised pre-training then a linear probe (SimCLR's image-image contrast,
MAE's masked reconstruction), (5) vision-language pre-training, used zero-shot (no labels) or
linearly probed.  Chapter 09 reads the same numbers
as a linear-probe benchmark.

* :class:`ClassificationTask` and the tasks: :func:`shapeworld_shapes` (8 shapes of ShapeWorld,
  clean or through chapter 10's grainy camera) and :func:`digits` (scikit-learn's handwritten
  digits, real images the machine has offline);
* :func:`probe_curve` — paradigms (1), (4), (5-probe): frozen features + the linear-probe
  protocol (:func:`~vlm_course.evaluation.linear_probe.kshot_curve`);
* :func:`train_curve` — paradigms (2), (3): a network trained on the k labelled examples
  (:func:`~vlm_course.training.finetune.fit_classifier`), built fresh for every (k, seed);
* :func:`zero_shot_accuracy` — paradigm (5) with no labels; :func:`zero_shot_crossover` — the
  number of labels per class at which a probe curve reaches a zero-shot accuracy;
* :func:`run_paradigms` — all of them on one task, given the pre-trained models.

Curves are ``{k or "full": {"mean", "std", "min", "max", "values"}}`` in both cases, so a plot or a
table treats every paradigm alike.  Models come in as arguments (encoders and factories): this
module loads no checkpoint itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlm_course.training.finetune import accuracy, fit_classifier

from .linear_probe import _spread, kshot_curve, kshot_indices

__all__ = ["PARADIGMS", "RANDOM_VIT", "SHOTS", "TRAINED", "ClassificationTask", "crossover_k",
           "digits", "mae_features", "probe_curve", "run_paradigms", "shapeworld_shapes",
           "train_curve", "zero_shot_accuracy", "zero_shot_crossover"]

#: Labels per class of the label-efficiency curve (None: the whole training pool).
SHOTS: tuple[int | None, ...] = (1, 2, 4, 8, 16, 64, None)

#: The paradigms in the survey's historical order (display names used as result keys).
PARADIGMS: tuple[str, ...] = (
    "hand-crafted (HOG) + probe",
    "CNN from scratch",
    "supervised pre-training + fine-tuning",
    "self-supervised (SimCLR) + probe",
    "self-supervised (MAE) + probe",
    "VLM (CLIP) + probe",
    "VLM (CLIP) zero-shot",
)
#: The paradigms whose networks are trained on the k labelled examples (the others probe).
TRAINED: tuple[str, ...] = PARADIGMS[1:3]
#: The control of chapter 09: the same ViT as CLIP's image tower, randomly initialised, probed.
RANDOM_VIT = "random-init ViT + probe"


@dataclass(eq=False)
class ClassificationTask:
    """A labelled pool to draw k-shot training sets from and a fixed test set.

    ``train_images`` / ``test_images``: (N, 3, H, W) float32 in [0, 1]; ``train_labels`` /
    ``test_labels``: (N,) int64 indexing ``class_names``; ``templates``: zero-shot prompt
    templates with one ``{}`` for the class name.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: tuple[str, ...]
    templates: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (f"ClassificationTask({self.name!r}, K={self.num_classes}, "
                f"train={len(self.train_labels)}, test={len(self.test_labels)}, "
                f"image={tuple(self.train_images.shape[1:])})")


def shapeworld_shapes(world_cfg=None, n_train: int = 2000, n_test: int = 1000,
                      seed: int = 0, grain: float = 0.0) -> ClassificationTask:
    """ShapeWorld shape classification on single-object scenes of ``world_cfg`` (default: the
    48x48 world of the shipped tiny CLIP).  The pool is ``n_train`` train-split scenes at indices
    drawn by a NumPy generator seeded with ``seed`` (CONTRIBUTING: small samples at random
    indices); the test set is test-split scenes ``0 .. n_test - 1``.  Templates: the shape
    ensemble of :func:`~vlm_course.evaluation.zeroshot.shapeworld_prompts`.

    ``grain`` > 0 photographs every scene through chapter 10's grainy camera
    (:func:`vlm_course.transfer.tasks.add_grain`, Gaussian noise of that standard deviation,
    seeded per scene): a domain shift the shipped CLIP's zero-shot classifier does not survive,
    so zero-shot and a few-shot probe cross (task name ``"shapeworld-shapes-grain<grain>"``).

    Raises ValueError when ``n_train`` / ``n_test`` is not an int >= 8, ``seed`` < 0 or
    ``grain`` is not a number >= 0.
    """
    from vlm_course.world import ShapeWorld, WorldConfig

    from .zeroshot import shapeworld_prompts

    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 8:
            raise ValueError(f"{name} must be an int >= 8, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if isinstance(grain, bool) or not isinstance(grain, (int, float)) or not grain >= 0:
        raise ValueError(f"grain must be a number >= 0, got {grain!r}")
    cfg = (world_cfg or WorldConfig(canvas=48)).replace(min_objects=1, max_objects=1)
    world = ShapeWorld(cfg)
    pool = np.sort(np.random.default_rng(seed).choice(1_000_000, n_train, replace=False))
    train = world.batch("train", pool.tolist(), masks=False)
    test = world.batch("test", range(n_test), masks=False)
    names, templates = shapeworld_prompts(cfg, "shape")
    train_images, test_images, name = train.images, test.images, "shapeworld-shapes"
    if grain > 0:
        from vlm_course.transfer.tasks import add_grain

        train_images = add_grain(train_images, grain, [10**8 + int(i) for i in pool])
        test_images = add_grain(test_images, grain, [2 * 10**8 + i for i in range(n_test)])
        name = f"shapeworld-shapes-grain{grain:g}"
    return ClassificationTask(name, train_images, train.labels["shape"], test_images,
                              test.labels["shape"], tuple(names), tuple(templates))


#: Zero-shot templates for the digits (every word is in the tiny CLIP's vocabulary).
DIGIT_TEMPLATES = ("a handwritten digit {}", "a picture of the number {}", "the digit {}")


def digits(image_size: int = 48, seed: int = 0) -> ClassificationTask:
    """scikit-learn's handwritten digits (1,797 8x8 images, 10 classes) upscaled to
    ``image_size``: the stratified 75/25 split of :func:`vlm_course.datasets.digits.load_digits`
    (fixed by ``seed``).  Raises what ``load_digits`` raises."""
    from vlm_course.datasets.digits import load_digits

    train = load_digits("train", image_size=image_size, seed=seed)
    test = load_digits("test", image_size=image_size, seed=seed)
    return ClassificationTask("digits", train.images, train.labels, test.images, test.labels,
                              tuple(train.class_names), DIGIT_TEMPLATES)


def probe_curve(encode: Callable[[torch.Tensor], torch.Tensor], task: ClassificationTask, *,
                shots: Sequence[int | None] = SHOTS, seeds: Sequence[int] = (0, 1, 2),
                cache: dict | None = None, key: str | None = None, **kwargs) -> dict:
    """Linear-probe accuracy vs labels per class of frozen features ``encode(images) -> (B, D)``
    on ``task`` (features extracted once, in batches, cached under ``(key, task.name, split)``
    when a ``cache`` is given).  ``kwargs`` go to :func:`~vlm_course.evaluation.linear_probe.
    fit_probe`.  Raises what ``extract_features`` and ``kshot_curve`` raise."""
    from .linear_probe import extract_features

    feats = [extract_features(encode, images, cache=cache,
                              key=None if cache is None else (key, task.name, split))
             for split, images in (("train", task.train_images), ("test", task.test_images))]
    curve = kshot_curve(feats[0], task.train_labels, feats[1], task.test_labels, shots=shots,
                        seeds=seeds, **kwargs)
    return {k: {n: v[n] for n in ("mean", "std", "min", "max", "values")}
            for k, v in curve.items()}


def train_curve(make_model: Callable[[], torch.nn.Module], task: ClassificationTask, *,
                shots: Sequence[int | None] = SHOTS, seeds: Sequence[int] = (0, 1, 2),
                steps: int = 150, lr: float = 2e-3, batch_size: int = 64) -> dict:
    """Accuracy vs labels per class of a network trained on ``k`` labelled examples per class.

    For every ``k`` and seed: the same k-shot draw as :func:`probe_curve`
    (:func:`~vlm_course.evaluation.linear_probe.kshot_indices`), ``torch.manual_seed(seed)``,
    ``model = make_model()`` (a fresh network: random init, or a pre-trained tower with a new
    ``task.num_classes``-way head), ``steps`` steps of
    :func:`~vlm_course.training.finetune.fit_classifier`, accuracy on the whole test set.
    Raises what those functions raise.
    """
    if not shots or not seeds:
        raise ValueError(f"shots and seeds must be non-empty, got {shots!r}, {seeds!r}")
    out = {}
    for k in shots:
        accs = []
        for seed in seeds:
            idx = (torch.arange(len(task.train_labels)) if k is None
                   else kshot_indices(task.train_labels, k, seed))
            torch.manual_seed(seed)
            model = make_model()
            fit_classifier(model, task.train_images[idx], task.train_labels[idx], steps=steps,
                           lr=lr, batch_size=batch_size, seed=seed)
            accs.append(accuracy(model, task.test_images, task.test_labels))
        out["full" if k is None else k] = _spread(accs)
    return out


def zero_shot_accuracy(model, task: ClassificationTask) -> float:
    """Top-1 accuracy of a VLM's zero-shot classifier (class names in ``task.templates``,
    prompt-ensembled; chapter 08) on ``task``'s test set: no labelled example is used."""
    from .classifier import ZeroShotClassifier

    clf = ZeroShotClassifier(model, list(task.class_names), list(task.templates))
    return float(clf.evaluate(task.test_labels, task.test_images, ks=(1,))["top1"])


def crossover_k(shots: Sequence[int], accuracies: Sequence[float], target: float) -> float | None:
    """Labels per class at which an accuracy curve first reaches ``target``.

    ``shots``: increasing budgets k (ints >= 1); ``accuracies``: the accuracy at each.  Between
    the last budget below ``target`` and the first at or above it the curve is interpolated
    linearly in log2(k) (the axis of a label-efficiency plot).  Returns the first budget when the
    curve starts at or above ``target`` (the crossover is at most that), None when it never
    reaches it.  Raises ValueError for budgets that are not increasing ints >= 1 or lengths that
    differ.
    """
    shots, accuracies = list(shots), [float(a) for a in accuracies]
    if (not shots or len(shots) != len(accuracies)
            or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in shots)
            or any(b <= a for a, b in zip(shots[:-1], shots[1:], strict=True))):
        raise ValueError(f"shots must be increasing ints >= 1, one per accuracy, got {shots!r} "
                         f"and {len(accuracies)} accuracies")
    for i, (k, acc) in enumerate(zip(shots, accuracies, strict=True)):
        if acc >= target:
            if i == 0:
                return float(k)
            lo, a0 = shots[i - 1], accuracies[i - 1]
            t = (target - a0) / (acc - a0)
            return float(2 ** (np.log2(lo) + t * (np.log2(k) - np.log2(lo))))
    return None


def zero_shot_crossover(curve: dict, zero_shot: float) -> dict:
    """Where a probe curve (``{k or "full": {"mean", "values"}}``, as :func:`probe_curve` gives)
    meets a zero-shot accuracy: CLIP's "zero-shot is worth k labelled examples per class".

    Returns ``{"k": crossover of the mean curve, "per_seed": [crossover of each seed's curve],
    "min", "max": over the seeds that reach it, "reached": how many seeds do, "first": the
    smallest budget}`` (None where a curve never reaches ``zero_shot`` within the numeric
    budgets; ``"full"`` is left out).  See :func:`crossover_k`.  Raises ValueError for a curve
    without numeric budgets.
    """
    ks = sorted(int(k) for k in curve if str(k) != "full")
    if not ks:
        raise ValueError(f"curve must hold numeric budgets k, got keys {list(curve)!r}")
    entry = {int(k): v for k, v in curve.items() if str(k) != "full"}
    n_seeds = len(entry[ks[0]]["values"])
    per_seed = [crossover_k(ks, [entry[k]["values"][j] for k in ks], zero_shot)
                for j in range(n_seeds)]
    reached = [v for v in per_seed if v is not None]
    return {"k": crossover_k(ks, [entry[k]["mean"] for k in ks], zero_shot),
            "per_seed": per_seed, "min": min(reached) if reached else None,
            "max": max(reached) if reached else None, "reached": len(reached), "first": ks[0]}


def mae_features(mae) -> Callable[[torch.Tensor], torch.Tensor]:
    """``images (B, 3, H, W) -> (B, D)``: what ``mae.encode_image`` computes (every patch
    visible, the mean of the encoded patch tokens), with the patches kept in their own order.
    ``encode_image`` shuffles them with fresh random noise even at mask ratio 0, which leaves the
    features equal only up to float rounding from one call to the next; fixed noise makes them
    exactly reproducible, so a live probe can be checked against a shipped one."""

    def encode(images: torch.Tensor) -> torch.Tensor:
        B, N = images.shape[0], mae.num_patches
        noise = torch.arange(N, dtype=torch.float32).expand(B, N)      # identity order
        latent, _, _ = mae.forward_encoder(images, 0.0, noise=noise)
        return latent[:, 1:].mean(dim=1)

    return encode


def _unit(encode: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    return lambda images: torch.nn.functional.normalize(encode(images).float(), dim=-1)


def run_paradigms(task: ClassificationTask, *, clip, simclr, supervised, mae=None,
                  shots: Sequence[int | None] = SHOTS, seeds: Sequence[int] = (0, 1, 2),
                  steps: int = 100, paradigms: Sequence[str] = PARADIGMS,
                  cache: dict | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Every paradigm of :data:`PARADIGMS` (or the ones named in ``paradigms``, which may include
    :data:`RANDOM_VIT`) on ``task``: ``{name: curve}`` (zero-shot: ``{"accuracy": float}``).

    ``clip``: a VLM whose image tower takes ``task``'s images (zero-shot and probe on its unit
    image embeddings); ``simclr``: an image encoder (probe on its unit outputs); ``mae``: a
    :class:`~vlm_course.models.mae.MaskedAutoencoder` (probe on its unit :func:`mae_features`, the
    mean of its encoded patches; needed only when the MAE paradigm runs); ``supervised``:
    an :class:`~vlm_course.models.classifier.ImageClassifier` pre-trained on another task (copied,
    given a new head, fine-tuned for ``steps`` steps at lr 1e-3); the CNN from scratch is the
    same architecture freshly initialised (``steps`` steps at lr 2e-3).  Every model is used in
    eval mode.  ``log`` receives one line per finished paradigm.

    Raises ValueError for an unknown name in ``paradigms``, or the MAE paradigm without ``mae``.
    """
    import contextlib
    import copy
    import time

    from vlm_course.models.classifier import ClassifierConfig, ImageClassifier
    from vlm_course.models.vit import VisionTransformer

    from .handcrafted import hog_features

    unknown = [p for p in paradigms if p not in (*PARADIGMS, RANDOM_VIT)]
    if unknown:
        raise ValueError(f"paradigms must be drawn from {(*PARADIGMS, RANDOM_VIT)}, got {unknown}")
    if mae is None and PARADIGMS[4] in paradigms:
        raise ValueError(f"mae must be a MaskedAutoencoder when {PARADIGMS[4]!r} runs, got None")
    K, size = task.num_classes, task.train_images.shape[-1]
    for m in (clip, simclr, supervised, mae):
        if m is not None:
            m.eval()

    def random_vit():
        torch.manual_seed(0)
        return VisionTransformer(clip.visual.cfg).eval()

    def fresh_cnn():
        return ImageClassifier(ClassifierConfig.tiny((K,), image_size=size))

    def pretrained_cnn():
        return copy.deepcopy(supervised).replace_head((K,))

    runs = {
        PARADIGMS[0]: lambda: probe_curve(hog_features, task, shots=shots, seeds=seeds,
                                          cache=cache, key="hog"),
        PARADIGMS[1]: lambda: train_curve(fresh_cnn, task, shots=shots, seeds=seeds,
                                          steps=steps, lr=2e-3),
        PARADIGMS[2]: lambda: train_curve(pretrained_cnn, task, shots=shots, seeds=seeds,
                                          steps=steps, lr=1e-3),
        PARADIGMS[3]: lambda: probe_curve(_unit(simclr), task, shots=shots, seeds=seeds,
                                          cache=cache, key="simclr"),
        PARADIGMS[4]: lambda: probe_curve(_unit(mae_features(mae)), task, shots=shots,
                                          seeds=seeds, cache=cache, key="mae"),
        PARADIGMS[5]: lambda: probe_curve(_unit(clip.encode_image), task, shots=shots,
                                          seeds=seeds, cache=cache, key="clip"),
        PARADIGMS[6]: lambda: {"accuracy": zero_shot_accuracy(clip, task)},
        RANDOM_VIT: lambda: probe_curve(_unit(random_vit()), task, shots=shots, seeds=seeds,
                                        cache=cache, key="random-vit"),
    }
    out = {}
    for name in paradigms:
        tic = time.process_time()
        with torch.no_grad() if name not in TRAINED else contextlib.nullcontext():
            out[name] = runs[name]()
        if log is not None:
            log(f"{task.name}: {name} done in {time.process_time() - tic:.1f} s CPU")
    return out
