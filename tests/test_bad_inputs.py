"""Bad input across the public API (issue 8, part 10): one table, one row per bad call.

Each row is ``Case(callable, args, kwargs, exception type, regex)``; the test calls
``callable(*args, **kwargs)`` and asserts the exception type and that the message matches the regex,
which names the argument (and, where it helps, what was expected).  ``args`` may be a function of
``tmp_path`` for rows that need files (bad checkpoints).  To cover a new entry point, append rows to
``CASES`` (or a new ``*_CASES`` list added to ``CASES``); the training loop, CLI and model-stage
rows belong to the modules that own those APIs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from vlm_course import settings
from vlm_course.datasets import ImageClassificationSet, load_digits, load_photos, to_square
from vlm_course.evaluation import retrieval, zeroshot
from vlm_course.objectives import augment as aug
from vlm_course.objectives import contrastive as con
from vlm_course.text import Tokenizer
from vlm_course.training import checkpoint as ckpt
from vlm_course.training import distributed as dist_
from vlm_course.training import optim
from vlm_course.world import ShapeWorld, ShapeWorldDataset, WorldConfig, collate_scenes
from vlm_course.world import splits as splits_


@dataclass
class Case:
    fn: Callable
    args: tuple | Callable = ()
    kwargs: dict = field(default_factory=dict)
    exc: type[BaseException] = ValueError
    match: str = ""
    id: str = ""


def case(fn, *args, exc=ValueError, match, id, **kwargs) -> Case:
    """One row.  A single ``files(builder)`` argument means: call ``builder(tmp_path)`` for the
    positional arguments (rows that need files on disk)."""
    if len(args) == 1 and isinstance(args[0], files):
        return Case(fn, args[0].builder, kwargs, exc, match, id)
    return Case(fn, args, kwargs, exc, match, id)


@dataclass
class files:
    """Marks a function ``tmp_path -> args`` that writes the files a row needs."""

    builder: Callable


# ----------------------------------------------------------------------------- shared inputs
X = torch.randn(4, 3)
NAN = X.clone()
NAN[0, 0] = float("nan")
INF = X.clone()
INF[1, 1] = float("inf")
IMAGES = torch.rand(2, 3, 8, 8)
LONG = torch.zeros(4, dtype=torch.long)
WORLD = ShapeWorld(WorldConfig.tiny())
TOK = Tokenizer.from_world(WorldConfig.tiny())


class FakeVLM:
    """Just enough of the VLM interface for the argument checks to run first."""

    def tokenize(self, texts):
        return list(texts)

    def encode_text(self, texts):
        return torch.ones(len(texts), 3)

    def encode_image(self, images):
        return torch.ones(images.shape[0], 3)


VLM = FakeVLM()
CkptError = ckpt.CheckpointError

OBJECTIVES = [
    case(con.clip_loss, X, torch.randn(5, 3), 1.0, match=r"image_features and text_features "
         r"must have the same shape.*\(4, 3\).*\(5, 3\)", id="clip_loss mismatched batch"),
    case(con.clip_loss, torch.randn(4), X, 1.0, match=r"image_features must have shape \(B, D\)",
         id="clip_loss 1-D image"),
    case(con.clip_loss, X, X.long(), 1.0, exc=TypeError, match=r"text_features must be a "
         r"floating-point tensor, got dtype torch.int64", id="clip_loss int text"),
    case(con.clip_loss, X.tolist(), X, 1.0, exc=TypeError, match="image_features must be a "
         "torch.Tensor.*got list", id="clip_loss list image"),
    case(con.clip_loss, torch.zeros(0, 3), torch.zeros(0, 3), 1.0,
         match=r"image_features must have B >= 1 rows", id="clip_loss empty batch"),
    case(con.clip_loss, torch.zeros(4, 0), torch.zeros(4, 0), 1.0,
         match=r"image_features must have B >= 1 rows and D >= 1 columns", id="clip_loss D=0"),
    case(con.clip_loss, X, X, float("nan"), match="logit_scale must be finite, got nan",
         id="clip_loss nan scale"),
    case(con.clip_loss, X, X, float("inf"), match="logit_scale must be finite", id="clip inf"),
    case(con.clip_loss, X, X, torch.ones(2), match=r"logit_scale must be a scalar.*\(2,\)",
         id="clip_loss vector scale"),
    case(con.clip_loss, X, X, "2.0", exc=TypeError, match="logit_scale must be a float",
         id="clip_loss str scale"),
    case(con.clip_loss, X, X, True, exc=TypeError, match="logit_scale must be a float",
         id="clip_loss bool scale"),
    case(con.clip_logits, X, torch.randn(4, 3, 1), 1.0, match="text_features must have shape",
         id="clip_logits 3-D text"),
    case(con.clip_loss_written_out, X, torch.randn(3, 3), 1.0, match="text_features",
         id="clip_written_out mismatched"),
    case(con.siglip_loss, X, X, 1.0, torch.zeros(3), match=r"logit_bias must be a scalar",
         id="siglip vector bias"),
    case(con.siglip_loss, X, X, 1.0, float("nan"), match="logit_bias must be finite",
         id="siglip nan bias"),
    case(con.siglip_loss, X, X, None, 0.0, exc=TypeError, match="logit_scale must be a float",
         id="siglip None scale"),
    case(con.unicl_loss, X, X, torch.zeros(3, dtype=torch.long), 1.0,
         match=r"labels must have shape \(B,\) = \(4,\), got \(3,\)", id="unicl short labels"),
    case(con.unicl_loss, X, X, torch.zeros(4), 1.0, exc=TypeError,
         match="labels must be an integer tensor", id="unicl float labels"),
    case(con.unicl_loss, X, X, [0, 1, 2, 3], 1.0, exc=TypeError, match="labels must be a "
         "torch.Tensor.*got list", id="unicl list labels"),
    case(con.unicl_targets, torch.zeros(2, 2, dtype=torch.long), match=r"labels must have shape "
         r"\(B,\) \(1-D\)", id="unicl_targets 2-D"),
    case(con.unicl_targets, torch.zeros(0, dtype=torch.long), match="labels must hold at least "
         "one", id="unicl_targets empty"),
    case(con.unicl_targets, LONG, torch.int64, exc=TypeError, match="dtype must be a floating",
         id="unicl_targets int dtype"),
    case(con.nt_xent_loss, X, torch.randn(3, 3), match="z1 and z2 must have the same shape",
         id="nt_xent mismatched"),
    case(con.nt_xent_loss, X, X, 0.0, match="temperature must be a finite float > 0, got 0.0",
         id="nt_xent zero temperature"),
    case(con.nt_xent_loss, X, X, float("inf"), match="temperature must be a finite float",
         id="nt_xent inf temperature"),
    case(con.nt_xent_loss, X, X, -0.5, match="temperature", id="nt_xent negative temperature"),
    case(con.nt_xent_loss, X, X, "0.5", match="temperature must be a finite float > 0, got '0.5'",
         id="nt_xent str temperature"),
    case(con.nt_xent_loss, X, X, True, match="temperature must be a finite float > 0, got True",
         id="nt_xent bool temperature"),
    case(con.check_pair, "a", X, "b", torch.randn(2, 3), match=r"a and b must have the same "
         r"shape.*got a \(4, 3\) and b \(2, 3\)", id="check_pair"),
    case(con.check_scalar, "tau", [1.0], exc=TypeError, match="tau must be a float.*got list",
         id="check_scalar list"),
    case(dist_.distributed_clip_loss, X, X, 1.0, gather_with_grad=False,
         match="gather_with_grad=False with local_loss=True", id="distributed bad combination"),
    case(dist_.distributed_clip_loss, X, torch.randn(2, 3), 1.0, match="text_features",
         id="distributed mismatched"),
    case(dist_.gather_features, torch.ones(3), name="image_features",
         match=r"image_features must be a 2-D tensor \(B, D\)", id="gather 1-D"),
    case(dist_.gather_features, LONG[:, None], name="text_features", exc=TypeError,
         match="text_features must be a floating-point tensor", id="gather int"),
    case(dist_.gather_features, [1.0], exc=TypeError, match="x must be a torch.Tensor",
         id="gather list"),
]

AUGMENT = [
    case(aug.augment, torch.rand(3, 8, 8), match=r"images must have shape \(B, 3, H, W\), got "
         r"\(3, 8, 8\)", id="augment 3-D"),
    case(aug.augment, torch.rand(2, 1, 8, 8), match=r"images must have shape \(B, 3, H, W\)",
         id="augment one channel"),
    case(aug.augment, (IMAGES * 255).byte(), exc=TypeError, match="images must be floating "
         "point", id="augment uint8"),
    case(aug.augment, torch.rand(0, 3, 8, 8), match="images must hold B >= 1", id="augment empty"),
    case(aug.augment, IMAGES * 255, match=r"images must lie in \[0, 1\]", id="augment 0..255"),
    case(aug.augment, torch.full((1, 3, 4, 4), float("nan")), match=r"images must lie in "
         r"\[0, 1\] \(finite\)", id="augment nan"),
    case(aug.augment, IMAGES, 0, exc=TypeError, match="generator must be a torch.Generator",
         id="augment int generator"),
    case(aug.augment, IMAGES, config={"flip_p": 0.5}, exc=TypeError, match="config must be an "
         "AugmentConfig", id="augment dict config"),
    case(aug.AugmentConfig, flip_p=1.5, match=r"AugmentConfig.flip_p must be a number in "
         r"\[0.0, 1.0\], got 1.5", id="AugmentConfig flip_p"),
    case(aug.AugmentConfig, jitter_p=float("nan"), match="AugmentConfig.jitter_p",
         id="AugmentConfig nan jitter_p"),
    case(aug.AugmentConfig, hue=0.7, match=r"AugmentConfig.hue must be a number in \[0.0, 0.5\]",
         id="AugmentConfig hue"),
    case(aug.AugmentConfig, brightness=-1, match="AugmentConfig.brightness", id="Config bright"),
    case(aug.AugmentConfig, crop_scale=(0.5,), match=r"AugmentConfig.crop_scale must be a pair",
         id="AugmentConfig crop_scale length"),
    case(aug.AugmentConfig, crop_ratio=(2.0, 1.0), match="AugmentConfig.crop_ratio",
         id="AugmentConfig crop_ratio order"),
    case(aug.random_resized_crop, IMAGES, scale=(0.0, 1.0), match=r"scale must be a pair.*"
         r"got \(0.0, 1.0\)", id="crop zero scale"),
    case(aug.random_resized_crop, IMAGES, scale="big", match="scale must be a pair",
         id="crop str scale"),
    case(aug.random_resized_crop, IMAGES, ratio=(2.0, 1.0), match="ratio must be a pair",
         id="crop ratio order"),
    case(aug.random_horizontal_flip, IMAGES, p=1.5, match=r"p must be a probability in "
         r"\[0, 1\], got 1.5", id="flip p"),
    case(aug.random_grayscale, IMAGES, p=-0.1, match=r"p must be a probability", id="gray p"),
    case(aug.random_grayscale, IMAGES, p=True, match=r"p must be a probability, ?|p must be a "
         r"probability in", id="gray bool p"),
    case(aug.adjust_brightness, IMAGES, torch.ones(3), match=r"factor must be a tensor of shape "
         r"\(B,\) = \(2,\), got \(3,\)", id="brightness factor shape"),
    case(aug.adjust_contrast, IMAGES, torch.tensor([1.0, float("nan")]), match="factor must be "
         "finite", id="contrast nan factor"),
    case(aug.adjust_saturation, IMAGES, torch.ones(2, dtype=torch.long), exc=TypeError,
         match="factor must be a floating-point tensor", id="saturation int factor"),
    case(aug.adjust_hue, IMAGES, torch.full((2,), 0.6), match=r"shift must lie in "
         r"\[-0.5, 0.5\]", id="hue shift range"),
    case(aug.adjust_hue, IMAGES, 0.1, match=r"shift must be a tensor of shape \(B,\)",
         id="hue float shift"),
    case(aug.colour_jitter, IMAGES, hue=0.7, match=r"hue must be a number in \[0.0, 0.5\]",
         id="jitter hue"),
    case(aug.colour_jitter, IMAGES, brightness=-0.1, match="brightness must be a number",
         id="jitter brightness"),
    case(aug.colour_jitter, IMAGES, contrast="lots", match="contrast must be a number",
         id="jitter str contrast"),
    case(aug.two_views, IMAGES.tolist(), exc=TypeError, match="images must be a torch.Tensor",
         id="two_views list"),
]

EVALUATION = [
    case(retrieval.recall_at_k, torch.eye(3), torch.ones(3, 4), torch.arange(3),
         match=r"image_emb \(N,D\) and text_emb \(M,D\) must share D", id="recall widths"),
    case(retrieval.recall_at_k, torch.eye(3), torch.eye(3), torch.arange(3).float(),
         match=r"text_to_image must be a long tensor of shape \(3,\)", id="recall float owner"),
    case(retrieval.recall_at_k, torch.eye(3), torch.eye(3), torch.tensor([0, 1, 3]),
         match=r"text_to_image values must lie in \[0, 3\), got \[0, 3\]", id="recall owner oob"),
    case(retrieval.recall_at_k, torch.eye(3), torch.eye(3), torch.tensor([0, -1, 2]),
         match=r"text_to_image values must lie in \[0, 3\)", id="recall owner negative"),
    case(retrieval.recall_at_k, torch.eye(3), torch.eye(3), [0, 1, 2], exc=TypeError,
         match="text_to_image must be a torch.Tensor", id="recall list owner"),
    case(retrieval.recall_at_k, torch.eye(3), torch.eye(3), torch.arange(3), (0,),
         match=r"ks must be positive integers, got \[0\]", id="recall k=0"),
    case(retrieval.recall_at_k, torch.eye(3), torch.eye(3), torch.arange(3), (),
         match="ks must be a non-empty sequence", id="recall no ks"),
    case(retrieval.recall_at_k, torch.eye(3), torch.eye(3), torch.arange(3), (1.5,),
         match="ks must be positive integers", id="recall float k"),
    case(retrieval.recall_at_k, torch.eye(3), torch.eye(3), torch.arange(3), 5,
         match="ks must be a non-empty sequence", id="recall int ks"),
    case(retrieval.recall_at_k, torch.zeros(0, 3), torch.eye(3), torch.arange(3),
         match=r"image_emb must be non-empty \(N, D\)", id="recall no images"),
    case(retrieval.recall_at_k, torch.eye(3), torch.zeros(0, 3), torch.zeros(0, dtype=torch.long),
         match=r"text_emb must be non-empty \(M, D\)", id="recall no texts"),
    case(retrieval.recall_at_k, NAN, X, torch.arange(4), match="image_emb must be finite",
         id="recall nan"),
    case(retrieval.recall_at_k, torch.eye(3).long(), torch.eye(3), torch.arange(3),
         exc=TypeError, match="image_emb must be a floating-point tensor", id="recall int emb"),
    case(retrieval.recall_at_k, torch.ones(3), torch.eye(3), torch.arange(3),
         match=r"image_emb must be 2-D \(N, D\)", id="recall 1-D emb"),
    case(retrieval.recall_at_k, torch.eye(3), torch.eye(3), torch.ones(2, 2, dtype=torch.bool),
         match=r"a bool text_to_image must have shape \(M, N\) = \(3, 3\)", id="recall bool shape"),
    case(retrieval.recall_at_k, torch.eye(3), torch.eye(3), torch.zeros(3, 3, dtype=torch.bool),
         match=r"every caption \(row of text_to_image\) needs at least one", id="recall no owner"),
    case(retrieval.evaluate_retrieval, VLM, IMAGES, [["a"]], match=r"images must be "
         r"\(N,3,H,W\) with one caption list per image.*1 caption lists", id="retrieval count"),
    case(retrieval.evaluate_retrieval, VLM, IMAGES, [["a"], []], match="every image needs at "
         "least one caption", id="retrieval empty caption list"),
    case(retrieval.evaluate_retrieval, VLM, IMAGES, ["a", "b"], exc=TypeError,
         match=r"captions must hold one list of strings per image", id="retrieval flat captions"),
    case(retrieval.evaluate_retrieval, VLM, IMAGES[0], [["a"]], match=r"images must be a "
         r"non-empty \(N, 3, H, W\)", id="retrieval 3-D images"),
    case(retrieval.evaluate_retrieval, VLM, IMAGES, [["a"], ["b"]], batch_size=0,
         match="batch_size must be an int >= 1, got 0", id="retrieval batch_size"),
    case(zeroshot.ensemble_embeddings, torch.ones(2, 2), match=r"prompt_emb must be a "
         r"non-empty \(K, T, D\), got \(2, 2\)", id="ensemble 2-D"),
    case(zeroshot.ensemble_embeddings, torch.ones(2, 2, 2, dtype=torch.long), exc=TypeError,
         match="prompt_emb must be a float tensor", id="ensemble int"),
    case(zeroshot.ensemble_embeddings, torch.full((1, 1, 2), float("inf")),
         match="prompt_emb must be finite", id="ensemble inf"),
    case(zeroshot.zeroshot_logits, X, torch.randn(2, 5), match=r"image_emb \(B,D\) and "
         r"classifier \(K,D\) must share D", id="zs logits widths"),
    case(zeroshot.zeroshot_logits, X, torch.randn(2, 3), 0.0, match="scale must be a finite "
         "number > 0, got 0.0", id="zs logits scale"),
    case(zeroshot.zeroshot_logits, INF, torch.randn(2, 3), match="image_emb must be finite",
         id="zs logits inf"),
    case(zeroshot.zeroshot_logits, X, torch.zeros(0, 3), match=r"classifier must be non-empty "
         r"\(K, D\)", id="zs logits no classes"),
    case(zeroshot.accuracy, torch.randn(3, 2), torch.tensor([0, 1]), match=r"logits must be "
         r"\(B,K\) and labels \(B,\), got \(3, 2\) and \(2,\)", id="accuracy mismatched"),
    case(zeroshot.accuracy, torch.randn(3, 2), torch.tensor([0, 1, 2]), match=r"labels must lie "
         r"in \[0, K\) = \[0, 2\), got \[0, 2\]", id="accuracy label oob"),
    case(zeroshot.accuracy, torch.randn(3, 2), torch.zeros(3), exc=TypeError,
         match="labels must be an integer tensor", id="accuracy float labels"),
    case(zeroshot.accuracy, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long),
         match=r"logits must be non-empty \(B, K\)", id="accuracy empty"),
    case(zeroshot.build_classifier, VLM, ["red"], ["no slot"], match=r"every template needs a "
         r"'\{\}' placeholder", id="classifier template"),
    case(zeroshot.build_classifier, VLM, [], ["{}"], match="classnames must be a non-empty list",
         id="classifier no classes"),
    case(zeroshot.build_classifier, VLM, "red", ["{}"], match="classnames must be a non-empty "
         "list of strings, got 'red'", id="classifier str classnames"),
    case(zeroshot.build_classifier, VLM, ["red", 3], ["{}"], exc=TypeError,
         match=r"classnames must hold only strings, got \[3\]", id="classifier int class"),
    case(zeroshot.build_classifier, VLM, ["red"], "a {}", match="templates must be a non-empty "
         "list", id="classifier str templates"),
    case(zeroshot.build_classifier, VLM, ["red"], [None], exc=TypeError,
         match="templates must hold only strings", id="classifier None template"),
    case(zeroshot.encode_images, VLM, IMAGES, 0, match="batch_size must be an int >= 1",
         id="encode_images batch_size"),
    case(zeroshot.encode_images, VLM, IMAGES.numpy(), exc=TypeError, match="images must be a "
         "torch.Tensor", id="encode_images numpy"),
    case(zeroshot.zeroshot_predict, VLM, torch.rand(0, 3, 8, 8), ["a"], ["{}"],
         match=r"images must be a non-empty \(N, 3, H, W\)", id="predict empty images"),
    case(zeroshot.shapeworld_prompts, WorldConfig.tiny(), "size", match="task must be 'shape', "
         "'colour' or 'colour\\+shape', got 'size'", id="prompts task"),
    case(zeroshot.shapeworld_prompts, {"canvas": 32}, "shape", exc=TypeError,
         match="world_cfg must be a WorldConfig, got dict", id="prompts dict cfg"),
    case(zeroshot.evaluate_shapeworld, VLM, WorldConfig.tiny(), 0, match=r"n must be >= 1",
         id="evaluate n=0"),
    case(zeroshot.evaluate_shapeworld, VLM, WorldConfig.tiny(), 4, split="dev",
         match=r"split must be one of \('train', 'val', 'test', 'heldout'\), got 'dev'",
         id="evaluate split"),
    case(zeroshot.evaluate_shapeworld, VLM, WorldConfig.tiny(), 4, start=-1,
         match="start must be an int >= 0, got -1", id="evaluate start"),
    case(zeroshot.evaluate_shapeworld, VLM, WorldConfig.tiny(), 4, batch_size=0,
         match="batch_size must be an int >= 1", id="evaluate batch_size"),
]


def _model():
    return nn.Linear(2, 2)


def _saved(tmp_path, **kw):
    """A good checkpoint of nn.Linear(2, 2) in tmp_path; returns tmp_path."""
    torch.manual_seed(0)
    model = _model()
    opt = optim.build_optimizer(model, lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    ckpt.save_checkpoint(tmp_path, 1, model, opt, model_config={"width": 2}, **kw)
    return tmp_path


def _edit_pointer(**changes):
    def build(tmp_path):
        _saved(tmp_path)
        pointer = json.loads((tmp_path / "latest.json").read_text())
        pointer.update(changes)
        (tmp_path / "latest.json").write_text(json.dumps(pointer))
        return (tmp_path, _model())
    return build


def _truncated(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "ckpt-0000001.safetensors"
    data = path.read_bytes()[:40]
    path.write_bytes(data)
    pointer = json.loads((tmp_path / "latest.json").read_text())
    pointer["sha256"] = ckpt.sha256_of(path)  # sha matches: the format itself is broken
    (tmp_path / "latest.json").write_text(json.dumps(pointer))
    return (tmp_path, _model())


def _not_safetensors(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "ckpt-0000001.safetensors"
    path.write_bytes(b"\x80\x02}q\x00." * 20)  # a pickle, never loaded
    pointer = json.loads((tmp_path / "latest.json").read_text())
    pointer["sha256"] = ckpt.sha256_of(path)
    (tmp_path / "latest.json").write_text(json.dumps(pointer))
    return (tmp_path, _model())


def _pointer_text(text):
    def build(tmp_path):
        _saved(tmp_path)
        (tmp_path / "latest.json").write_text(text)
        return (tmp_path, _model())
    return build


def _without_rng(tmp_path):
    torch.manual_seed(0)
    model = _model()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    digest = ckpt.atomic_save_safetensors(tensors, tmp_path / "ckpt-0000001.safetensors")
    ckpt.atomic_save_json({"step": 1, "file": "ckpt-0000001.safetensors", "sha256": digest,
                           "model_config": None}, tmp_path / "latest.json")
    return (tmp_path, _model())


TRAINING = [
    case(optim.build_optimizer, _model(), 0.0, match="lr must be a finite number > 0.0, got 0.0",
         id="optimizer lr 0"),
    case(optim.build_optimizer, _model(), float("nan"), match="lr must be a finite number",
         id="optimizer nan lr"),
    case(optim.build_optimizer, _model(), 1e-3, betas=(0.9, 1.0), match=r"betas must be two "
         r"numbers in \[0, 1\), got \(0.9, 1.0\)", id="optimizer betas"),
    case(optim.build_optimizer, _model(), 1e-3, eps=0.0, match="eps must be a finite number > 0",
         id="optimizer eps"),
    case(optim.build_optimizer, _model(), 1e-3, weight_decay=-0.1, match="weight_decay must be a "
         "finite number >= 0.0, got -0.1", id="optimizer weight_decay"),
    case(optim.param_groups, "model", 0.1, exc=TypeError, match="model must be a "
         "torch.nn.Module, got str", id="param_groups model"),
    case(optim.param_groups, _model(), float("inf"), match="weight_decay must be a finite",
         id="param_groups inf decay"),
    case(optim.lr_at, -1, 1.0, 0, 10, match="step must be an int >= 0, got -1", id="lr_at step"),
    case(optim.lr_at, 0, 1.0, 0, 0, match="total_steps must be an int >= 1, got 0",
         id="lr_at total"),
    case(optim.lr_at, 0, 1.0, -2, 10, match="warmup_steps must be an int >= 0, got -2",
         id="lr_at warmup"),
    case(optim.lr_at, 0, 1.0, 0, 10, 1.5, match=r"min_ratio must be a finite number >= 0.0 and "
         r"<= 1.0, got 1.5", id="lr_at min_ratio"),
    case(optim.lr_at, 0, -1.0, 0, 10, match="base_lr must be a finite number >= 0.0",
         id="lr_at base_lr"),
    case(optim.lr_at, 2.5, 1.0, 0, 10, match="step must be an int >= 0, got 2.5",
         id="lr_at float step"),
    case(optim.set_lr, torch.optim.SGD(_model().parameters(), lr=0.1), float("nan"),
         match="lr must be a finite number >= 0.0, got nan", id="set_lr nan"),
    case(ckpt.save_checkpoint, ".", -1, _model(), match="step must be a non-negative int, got -1",
         id="save step"),
    case(ckpt.save_checkpoint, ".", 1, _model(), keep=0, match="keep must be an int >= 1",
         id="save keep"),
    case(ckpt.save_checkpoint, ".", 1, {"w": torch.ones(1)}, exc=TypeError,
         match="model must be a torch.nn.Module, got dict", id="save state dict as model"),
    case(ckpt.save_checkpoint, ".", 1, _model(), "adam", exc=TypeError,
         match="optimizer must be a torch.optim.Optimizer or None, got str", id="save optimizer"),
    case(ckpt.save_checkpoint, ".", 1, _model(), model_config=[1], exc=TypeError,
         match="model_config must be a dict or None, got list", id="save model_config"),
    case(ckpt.load_checkpoint, files(lambda p: (p / "nowhere", _model())), exc=CkptError,
         match="latest.json is missing", id="load no pointer"),
    case(ckpt.load_checkpoint, files(_pointer_text("{not json")), exc=CkptError,
         match=r"latest.json' is corrupted", id="load pointer not JSON"),
    case(ckpt.load_checkpoint, files(_pointer_text("[1, 2]")), exc=CkptError,
         match="corrupted: expected a JSON object, got list", id="load pointer list"),
    case(ckpt.load_checkpoint, files(_pointer_text('{"step": 1}')), exc=CkptError,
         match=r"lacks the fields \['file', 'model_config', 'sha256'\]", id="load pointer fields"),
    case(ckpt.load_checkpoint, files(_edit_pointer(step="one")), exc=CkptError,
         match="step must be an int >= 0, got 'one'", id="load pointer step"),
    case(ckpt.load_checkpoint, files(_edit_pointer(file="../../etc/passwd")), exc=CkptError,
         match=r"file must be a bare \*.safetensors file name", id="load pointer escapes"),
    case(ckpt.load_checkpoint, files(_edit_pointer(file="weights.pt")), exc=CkptError,
         match=r"file must be a bare \*.safetensors file name, got 'weights.pt'",
         id="load pointer pickle file"),
    case(ckpt.load_checkpoint, files(_edit_pointer(sha256="abc")), exc=CkptError,
         match="sha256 must be 64 lower-case hex digits, got 'abc'", id="load pointer sha"),
    case(ckpt.load_checkpoint, files(_edit_pointer(model_config=[2])), exc=CkptError,
         match="model_config must be an object or null", id="load pointer model_config"),
    case(ckpt.load_checkpoint, files(_edit_pointer(file="ckpt-0000009.safetensors")),
         exc=CkptError, match="ckpt-0000009.safetensors' named by latest.json is "
         "missing", id="load tensor file missing"),
    case(ckpt.load_checkpoint, files(_edit_pointer(sha256="0" * 64)), exc=CkptError,
         match="is corrupted: sha256 .* does not match the recorded 0000", id="load sha mismatch"),
    case(ckpt.load_checkpoint, files(_truncated), exc=CkptError,
         match=r"ckpt-0000001.safetensors' is corrupted", id="load truncated safetensors"),
    case(ckpt.load_checkpoint, files(_not_safetensors), exc=CkptError,
         match=r"ckpt-0000001.safetensors' is corrupted", id="load not safetensors"),
    case(ckpt.load_checkpoint, files(lambda p: (_saved(p), nn.Linear(3, 2))), exc=CkptError,
         match=r"shape mismatches \['weight: file \(2, 2\) vs model \(2, 3\)'", id="load shapes"),
    case(ckpt.load_checkpoint, files(lambda p: (_saved(p), nn.Linear(2, 2, bias=False))),
         exc=CkptError, match=r"unexpected \['bias'\]", id="load unexpected keys"),
    case(ckpt.load_checkpoint, files(lambda p: (_saved(p), nn.Sequential(nn.Linear(2, 2)))),
         exc=CkptError, match=r"missing \['0.bias', '0.weight'\]", id="load wrong keys"),
    case(ckpt.load_checkpoint, files(lambda p: (_saved(p), _model())), model_config={"width": 3},
         exc=CkptError, match="width: checkpoint has 2, current config has 3",
         id="load config mismatch"),
    case(ckpt.load_checkpoint, files(_without_rng), exc=CkptError,
         match="has no 'rng.torch' state; pass restore_rng=False", id="load no rng"),
    case(ckpt.load_checkpoint, files(lambda p: (*_without_rng(p),
                                                torch.optim.AdamW(_model().parameters()))),
         restore_rng=False, exc=CkptError, match="holds no optimizer state",
         id="load no optimizer state"),
    case(ckpt.load_checkpoint, files(lambda p: (_saved(p), _model(), "adam")), exc=TypeError,
         match="optimizer must be a torch.optim.Optimizer or None, got str",
         id="load optimizer type"),
    case(ckpt.config_differences, {}, "x", exc=TypeError, match="current must be a dict or None, "
         "got str", id="config_differences str current"),
    case(ckpt.save_checkpoint, ".", True, _model(), match="step must be a non-negative int, got "
         "True", id="save bool step"),
    case(ckpt.save_checkpoint, ".", 1, _model(), keep=True, match="keep must be an int >= 1",
         id="save bool keep"),
    case(ckpt.save_checkpoint, ".", 1, _model(), extra="notes", exc=TypeError,
         match="extra must be a dict or None, got str", id="save extra"),
    case(ckpt.load_checkpoint, files(_edit_pointer(sha256="X" * 64)), exc=CkptError,
         match="sha256 must be 64 lower-case hex digits", id="load pointer sha letters"),
    case(ckpt.load_checkpoint, files(lambda p: (*_edit_pointer(optimizer_param_groups=[])(p),
                                                torch.optim.AdamW(_model().parameters()))),
         exc=CkptError, match="holds no optimizer state matching 1 parameter group",
         id="load optimizer groups missing"),
    case(ckpt.load_checkpoint, files(lambda p: ("x", "model")), exc=TypeError,
         match="model must be a torch.nn.Module, got str", id="load model type"),
    case(ckpt.config_differences, [1], {}, exc=TypeError,
         match="saved must be a dict or None, got list", id="config_differences list"),
    case(ckpt.atomic_save_safetensors, {"w": [1.0]}, "x.safetensors", exc=TypeError,
         match=r"tensors must be a dict of str -> torch.Tensor, got \[\"'w': list\"\]",
         id="save_safetensors list"),
    case(ckpt.atomic_write_bytes, "x.bin", "text", exc=TypeError,
         match="data must be bytes, got str", id="write_bytes str"),
]

WORLD_CASES = [
    case(WorldConfig, canvas=16, match=r"WorldConfig.canvas: expected an int in \[32, 128\], "
         r"got 16", id="config canvas small"),
    case(WorldConfig, canvas=64.0, match=r"WorldConfig.canvas: expected an int", id="canvas 64.0"),
    case(WorldConfig, max_objects=10, match=r"WorldConfig.max_objects: expected an int in "
         r"\[1, 9\], got 10", id="config max_objects"),
    case(WorldConfig, min_objects=3, max_objects=2, match=r"WorldConfig.max_objects: expected an "
         r"int in \[3, 9\]", id="config min > max"),
    case(WorldConfig, n_captions=0, match=r"WorldConfig.n_captions: expected an int in \[5, 8\]",
         id="config n_captions"),
    case(WorldConfig, size_scale=(0.3, float("nan")), match="WorldConfig.size_scale",
         id="config nan size"),
    case(WorldConfig, shapes="circle", match="WorldConfig.shapes: expected a tuple of at least 2",
         id="config str shapes"),
    case(WorldConfig, caption_noise=float("nan"), match=r"WorldConfig.caption_noise: expected a "
         r"number in \[0, 1\]", id="config nan noise"),
    case(WorldConfig, heldout=5, match=r"WorldConfig.heldout: expected None or a tuple of "
         r"\(colour, shape\) pairs, got 5", id="config heldout int"),
    case(WorldConfig, heldout=(("red",),), match="WorldConfig.heldout", id="config heldout pair"),
    case(WorldConfig, seed=2**64, match="WorldConfig.seed", id="config seed overflow"),
    case(WorldConfig().replace, canvas=8, match="WorldConfig.canvas", id="config replace"),
    case(splits_.split_id, "dev", match=r"split: expected one of \('train', 'val', 'test', "
         r"'heldout'\), got 'dev'", id="split_id"),
    case(splits_.composition_pools, WorldConfig.tiny(), "valid", match="split: expected one of",
         id="composition_pools split"),
    case(splits_.composition_pools, WorldConfig(heldout=()), "heldout", match="split: 'heldout' "
         "needs WorldConfig.heldout", id="heldout split without pairs"),
    case(splits_.composition_pools, {"seed": 0}, "train", exc=TypeError,
         match="cfg must be a WorldConfig, got dict", id="composition_pools cfg"),
    case(splits_.is_heldout, WorldConfig.tiny(), "mauve", "circle", match="colour: expected one "
         "of", id="is_heldout colour"),
    case(splits_.is_heldout, WorldConfig.tiny(), "red", "blob", match="shape: expected one of",
         id="is_heldout shape"),
    case(ShapeWorld, {"canvas": 32}, exc=TypeError, match="cfg: expected a WorldConfig, got dict",
         id="ShapeWorld dict"),
    case(WORLD.batch, "dev", [0], match="split: expected one of", id="batch split"),
    case(WORLD.batch, "train", [-1], match=r"indices: expected ints in \[0, 2\*\*48\), got min "
         "-1", id="batch negative index"),
    case(WORLD.batch, "train", [1.5], exc=TypeError, match="indices: expected a 1-D sequence of "
         "ints", id="batch float index"),
    case(WORLD.images, "test", [-3], match=r"indices: expected ints in \[0, 2\*\*48\)",
         id="images negative index"),
    case(WORLD.images, "valid", [0], match="split: expected one of", id="images split"),
    case(WORLD.compose, [], match=r"objects: expected 1..9 object dicts, got 0",
         id="compose empty"),
    case(WORLD.compose, [{"shape": "blob", "colour": "red", "size": "small",
                          "position": "centre"}], match=r"objects\[0\]\['shape'\]: expected "
         "one of", id="compose shape"),
    case(WORLD.compose, [{"shape": "circle", "colour": "red", "size": "small",
                          "position": "centre"}] * 2, match="objects: expected distinct "
         "positions", id="compose same cell"),
    case(ShapeWorldDataset, WORLD, "dev", match="split: expected one of", id="dataset split"),
    case(ShapeWorldDataset, WORLD, size=0, match="size: expected an int >= 1, got 0",
         id="dataset size"),
    case(ShapeWorldDataset, WORLD, start=-1, match="start: expected an int >= 0, got -1",
         id="dataset start"),
    case(ShapeWorldDataset, WORLD, caption=9, match=r"caption: expected one of \('first', "
         r"'random'\) or an int in \[0, 5\), got 9", id="dataset caption"),
    case(ShapeWorldDataset, WORLD, context_length=2, match="context_length: expected an int >= 3",
         id="dataset context_length"),
    case(ShapeWorldDataset, WORLD, masks="yes", exc=TypeError, match="masks: expected a bool",
         id="dataset masks"),
    case(ShapeWorldDataset, "world", exc=TypeError, match="world: expected a ShapeWorld or "
         "WorldConfig, got str", id="dataset world"),
    case(ShapeWorldDataset(WORLD, size=3).__getitem__, 3, exc=IndexError,
         match="index 3 out of range for a dataset of size 3", id="dataset index"),
    case(ShapeWorldDataset(WORLD, size=3).set_epoch, -1, match="epoch: expected an int >= 0",
         id="dataset epoch"),
    case(collate_scenes, [], match="samples: expected a non-empty list", id="collate empty"),
    case(collate_scenes, [1, 2], exc=TypeError, match=r"samples: expected dicts from "
         r"ShapeWorldDataset, got \['int', 'int'\]", id="collate ints"),
]

TEXT = [
    case(TOK, 5, exc=TypeError, match="texts: expected a str or a sequence of str",
         id="tokenizer int"),
    case(TOK, ["a red circle", 3], exc=TypeError, match="texts: expected a str or a sequence",
         id="tokenizer int in list"),
    case(TOK, ["a red circle"], context_length=2, match="context_length: expected an int >= 3, "
         "got 2", id="tokenizer context_length"),
    case(TOK.decode, torch.zeros(2, 2, dtype=torch.long), match=r"ids: expected a 1-D sequence, "
         r"got shape \(2, 2\)", id="decode 2-D"),
    case(TOK.decode, [10**6], match=r"ids: expected ids in \[0, \d+\), got 1000000",
         id="decode out of range"),
    case(TOK.encode, 3, exc=TypeError, match="text: expected a str, got int", id="encode int"),
    case(Tokenizer, ["Red"], match="words: expected lower-case words", id="tokenizer words"),
]

OTHER = [
    case(settings.get_device, "tpu", match=r"device='tpu' is not a device the course knows; "
         "expected one of cpu, cuda, mps", id="device unknown"),
    case(settings.get_device, 0, exc=TypeError, match="device must be a str", id="device int"),
    case(settings.seed_everything, -1, match="seed must be a non-negative int, got -1",
         id="seed negative"),
    case(settings.seed_everything, 1.5, match="seed must be a non-negative int, got 1.5",
         id="seed float"),
    case(load_digits, "dev", match=r"split: expected one of \('all', 'train', 'test'\)",
         id="digits split"),
    case(load_digits, "train", test_fraction=1.0, match=r"test_fraction: expected a number in "
         r"\(0, 1\), got 1.0", id="digits test_fraction"),
    case(load_digits, "all", 4, match=r"image_size: expected an int in \[8, 1024\], got 4",
         id="digits image_size"),
    case(load_digits, "train", seed=-1, match="seed: expected an int >= 0", id="digits seed"),
    case(load_photos, ("moon",), match="names: expected names from", id="photos unknown"),
    case(load_photos, "rocket", match=r"names: expected a tuple of names.*\('rocket',\)",
         id="photos str names"),
    case(load_photos, (), match="names: expected names from", id="photos empty"),
    case(to_square, torch.rand(3, 8, 8), 8, match=r"images: expected a non-empty float "
         r"\(N, C, H, W\) tensor", id="to_square 3-D"),
    case(to_square, torch.rand(1, 3, 8, 8), 8.0, match="image_size: expected an int",
         id="to_square float size"),
    case(ImageClassificationSet, torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long),
         ("a",), ["x", "y"], match=r"images: expected \(N, 3, H, W\), got \(2, 1, 8, 8\)",
         id="image set channels"),
    case(ImageClassificationSet, torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]), ("a",),
         ["x", "y"], match=r"labels: expected values in \[0, 1\)", id="image set label oob"),
    case(ImageClassificationSet, torch.zeros(2, 3, 8, 8), torch.zeros(2), ("a",), ["x", "y"],
         exc=TypeError, match="labels: expected an int64 tensor", id="image set float labels"),
    case(ImageClassificationSet, torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.long),
         ("a",), ["x"], match="captions: expected 2, got 1", id="image set captions"),
    case(ImageClassificationSet, torch.zeros(2, 3, 8, 8, dtype=torch.uint8),
         torch.zeros(2, dtype=torch.long), ("a",), ["x", "y"], exc=TypeError,
         match="images: expected a float tensor", id="image set uint8"),
]



def _one_tower():
    from vlm_course.models.one_tower import OneTower, OneTowerConfig
    from vlm_course.models.vit import ViTConfig

    return OneTower(OneTowerConfig(vision=ViTConfig(image_size=32, patch_size=8, width=16,
                                                    layers=1, heads=2, output_dim=16)))


def _call(method: str):
    """``fn(*args)`` = ``getattr(tiny one-tower model, method)(*args)``."""
    return lambda *args, **kwargs: getattr(_one_tower(), method)(*args, **kwargs)


def _frameworks_cases() -> list[Case]:
    from vlm_course.evaluation import frameworks as fw
    from vlm_course.models.one_tower import OneTowerConfig
    from vlm_course.text.rasterise import TextRasteriser
    from vlm_course.text.typos import misspell

    return [
        case(TextRasteriser, 0, match=r"size: expected an int >= 8, got 0", id="raster size"),
        case(TextRasteriser, (48, 48, 3), match=r"size: expected an int or \(H, W\)",
             id="raster size 3-tuple"),
        case(TextRasteriser, 48, 3.5, match="font_size: expected an int >= 4",
             id="raster font_size float"),
        case(TextRasteriser, 48, 8, "Missing.ttf", exc=FileNotFoundError,
             match="name: no font 'Missing.ttf'", id="raster font"),
        case(OneTowerConfig, font_size=0, match="font_size: expected an int >= 4",
             id="one-tower font_size"),
        case(_call("encode_text"), "a red circle", exc=TypeError,
             match=r"tokens: expected the dict returned by tokenize\(\)", id="one-tower str"),
        case(_call("tokenize"), [1, 2], exc=TypeError, match="texts: expected a list of str",
             id="one-tower tokenize ints"),
        case(misspell, "circle", "flip", match="kind: expected one of", id="misspell kind"),
        case(fw.score_captions, None, torch.rand(3, 32, 32), None,
             match=r"image: expected one \(1, 3, H, W\) image, got \(3, 32, 32\)",
             id="score_captions image"),
        case(fw.index_captions, None, "a red circle", exc=TypeError,
             match="captions: expected a list of str", id="index_captions str"),
        case(fw.framework_report, None, WorldConfig(canvas=32), n_zeroshot=0,
             match="n_zeroshot must be an int >= 1", id="framework_report n"),
        case(fw.zeroshot_misspelt, None, "world", exc=TypeError,
             match="world: expected a ShapeWorld or WorldConfig", id="misspelt world"),
    ]


FRAMEWORKS_CASES = _frameworks_cases()

CASES: list[Case] = (OBJECTIVES + AUGMENT + EVALUATION + TRAINING + WORLD_CASES + TEXT + OTHER
                     + FRAMEWORKS_CASES)


def test_the_table_is_large_and_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert len(CASES) >= 80


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_a_message_naming_the_argument(c: Case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # rows that would write a file write it here
    args: Any = c.args(tmp_path) if callable(c.args) else c.args
    with pytest.raises(c.exc, match=c.match):
        c.fn(*args, **c.kwargs)
