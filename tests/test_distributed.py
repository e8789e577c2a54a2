"""Distributed CLIP loss: two CPU processes (gloo) must match one process on the whole batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from vlm_course.objectives.contrastive import clip_loss
from vlm_course.training.distributed import (
    distributed_clip_loss,
    gather_features,
    rank_and_world_size,
)

B_LOCAL, D_IN, D = 3, 5, 4


def _setup(seed: int = 0):
    """Identical on every rank: the global batch, two projection layers and the log-scale."""
    g = torch.Generator().manual_seed(seed)
    world_batch = 2 * B_LOCAL
    x_img = torch.randn(world_batch, D_IN, generator=g, dtype=torch.float64)
    x_txt = torch.randn(world_batch, D_IN, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    img_proj = nn.Linear(D_IN, D).double()
    txt_proj = nn.Linear(D_IN, D).double()
    logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07), dtype=torch.float64))
    return x_img, x_txt, img_proj, txt_proj, logit_scale


def _params(img_proj, txt_proj, logit_scale):
    return [img_proj.weight, img_proj.bias, txt_proj.weight, txt_proj.bias, logit_scale]


def _single_process():
    """Reference: loss, feature gradients and parameter gradients on the concatenated batch."""
    x_img, x_txt, img_proj, txt_proj, logit_scale = _setup()
    f_img, f_txt = img_proj(x_img), txt_proj(x_txt)
    f_img.retain_grad()
    f_txt.retain_grad()
    loss = clip_loss(f_img, f_txt, logit_scale)
    loss.backward()
    params = [p.grad.clone() for p in _params(img_proj, txt_proj, logit_scale)]
    return loss.detach(), f_img.grad, f_txt.grad, params


def _one_rank(local_loss: bool, gather_with_grad: bool):
    rank, world = rank_and_world_size()
    x_img, x_txt, img_proj, txt_proj, logit_scale = _setup()
    rows = slice(rank * B_LOCAL, (rank + 1) * B_LOCAL)
    f_img, f_txt = img_proj(x_img[rows]), txt_proj(x_txt[rows])
    f_img.retain_grad()
    f_txt.retain_grad()
    loss = distributed_clip_loss(
        f_img, f_txt, logit_scale, local_loss=local_loss, gather_with_grad=gather_with_grad
    )
    loss.backward()
    grads = [p.grad.clone() for p in _params(img_proj, txt_proj, logit_scale)]
    for g in grads:  # what DDP does: sum over ranks (divide by W to average)
        dist.all_reduce(g)
    total = loss.detach().clone()
    dist.all_reduce(total)
    return rows, loss.detach(), total, f_img.grad, f_txt.grad, grads


def _mark_done(init_file: str, rank: int) -> None:
    """Each worker leaves a marker once all its checks passed (a failure raises before it)."""
    (Path(init_file).parent / f"rank{rank}.done").write_text("ok")


def _run_on_ranks(worker, folder: Path, world: int = 2) -> bool:
    """Run ``worker(rank, world, init_file)`` on ``world`` gloo processes; True if all finished."""
    mp.spawn(worker, args=(world, str(folder / "rendezvous")), nprocs=world, join=True)
    return all((folder / f"rank{r}.done").exists() for r in range(world))


needs_gloo = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="no gloo")


def _worker(rank: int, world: int, init_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        close = dict(rtol=1e-10, atol=1e-12)
        ref_loss, ref_gi, ref_gt, ref_params = _single_process()

        # local loss + differentiable gather (the recommended setting): the mean of the ranks'
        # losses is the global loss; DDP's average of the parameter gradients is exact; the
        # feature gradient of a rank is W times the global one (each rank's loss is a 1/W share).
        rows, loss, total, gi, gt, grads = _one_rank(local_loss=True, gather_with_grad=True)
        torch.testing.assert_close(total / world, ref_loss, **close)
        torch.testing.assert_close(gi / world, ref_gi[rows], **close)
        torch.testing.assert_close(gt / world, ref_gt[rows], **close)
        for g, ref in zip(grads, ref_params, strict=True):
            torch.testing.assert_close(g / world, ref, **close)

        # full loss on every rank + "put the local shard back": the loss and the feature
        # gradients are exactly the single-process ones; the parameter gradients *sum* to them.
        rows, loss, total, gi, gt, grads = _one_rank(local_loss=False, gather_with_grad=False)
        torch.testing.assert_close(loss, ref_loss, **close)
        torch.testing.assert_close(gi, ref_gi[rows], **close)
        torch.testing.assert_close(gt, ref_gt[rows], **close)
        for g, ref in zip(grads[:4], ref_params[:4], strict=True):
            torch.testing.assert_close(g, ref, **close)
        torch.testing.assert_close(grads[4] / world, ref_params[4], **close)  # shared scalar

        # full loss + differentiable gather: DDP's average is exact for every parameter.
        rows, loss, total, gi, gt, grads = _one_rank(local_loss=False, gather_with_grad=True)
        torch.testing.assert_close(loss, ref_loss, **close)
        for g, ref in zip(grads, ref_params, strict=True):
            torch.testing.assert_close(g / world, ref, **close)

        # the gather itself, in rank order, and its check of equal shapes across ranks
        x = torch.full((2, 3), float(rank))
        torch.testing.assert_close(gather_features(x)[:, 0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
        with pytest.raises(ValueError, match="same shape"):
            gather_features(torch.zeros(2 + rank, 3), name="image_features")
        _mark_done(init_file, rank)
    finally:
        dist.destroy_process_group()


@needs_gloo
def test_two_processes_match_one_process(tmp_path):
    assert _run_on_ranks(_worker, tmp_path), "a worker returned without running all its checks"


def test_single_process_falls_back_to_plain_loss():
    assert rank_and_world_size() == (0, 1)
    g = torch.Generator().manual_seed(1)
    img, txt = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    assert gather_features(img) is img
    torch.testing.assert_close(distributed_clip_loss(img, txt, 2.0), clip_loss(img, txt, 2.0))


def test_errors_name_the_argument():
    img = torch.randn(4, 3)
    with pytest.raises(ValueError, match="gather_with_grad"):
        distributed_clip_loss(img, img, 1.0, local_loss=True, gather_with_grad=False)
    with pytest.raises(ValueError, match="text_features"):
        distributed_clip_loss(img, torch.randn(5, 3), 1.0)
    with pytest.raises(ValueError, match="image_features"):
        distributed_clip_loss(torch.randn(4), img, 1.0)
    with pytest.raises(ValueError, match="feats"):
        gather_features(torch.randn(2, 3, 4), name="feats")
    with pytest.raises(TypeError, match="feats must be a torch.Tensor"):
        gather_features([[1.0, 2.0]], name="feats")
    with pytest.raises(ValueError, match="logit_scale"):
        distributed_clip_loss(img, img, torch.ones(2))


def _loss_mean_worker(rank: int, world: int, init_file: str) -> None:
    import datetime

    from vlm_course.training.loop import _mean_over_ranks

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=20))
    try:
        # one rank's loss is not finite: every rank must still take part in the reduction,
        # so the logged loss is NaN everywhere and the ranks' collectives stay paired.
        value = float("nan") if rank == 1 else 2.0
        mean = _mean_over_ranks(value, torch.device("cpu"), world)
        assert math.isnan(mean), (rank, mean)
        assert _mean_over_ranks(1.0 + rank, torch.device("cpu"), world) == pytest.approx(1.5)
        _mark_done(init_file, rank)
    finally:
        dist.destroy_process_group()


@needs_gloo
def test_logged_loss_mean_stays_collective_when_one_rank_is_not_finite(tmp_path):
    assert _run_on_ranks(_loss_mean_worker, tmp_path), (
        "a worker returned without running all its checks")


def _tiny_clip_and_world():
    from vlm_course.models.clip import CLIP, CLIPConfig
    from vlm_course.models.text_encoder import TextConfig
    from vlm_course.models.vit import ViTConfig
    from vlm_course.recipes.clip import shapeworld_vocab
    from vlm_course.world import ShapeWorld, WorldConfig

    world = ShapeWorld(WorldConfig.tiny())
    torch.manual_seed(0)
    model = CLIP(CLIPConfig.build(16, ViTConfig(image_size=32, patch_size=8, width=16, layers=1,
                                                heads=2),
                                  TextConfig(width=16, layers=1, heads=2, context_length=24),
                                  shapeworld_vocab(world.cfg)))
    return model, world


def _train_clip(model, world):
    from vlm_course.recipes import clip as clip_recipe
    from vlm_course.training.loop import TrainConfig, train

    cfg = TrainConfig(steps=3, batch_size=8, lr=3e-3, warmup_steps=1)
    return train(model, clip_recipe.batches(world, model, cfg), clip_recipe.step, cfg,
                 after_step=clip_recipe.after_step)


def _loop_worker(rank: int, world: int, init_file: str) -> None:
    import json

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model, shape_world = _tiny_clip_and_world()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        history = _train_clip(ddp, shape_world)
        (Path(init_file).parent / f"losses{rank}.json").write_text(
            json.dumps([r["loss"] for r in history]))
        _mark_done(init_file, rank)
    finally:
        dist.destroy_process_group()


@needs_gloo
def test_the_training_loop_on_two_gloo_ranks_matches_one_process(tmp_path):
    """train() with a DDP model on 2 ranks (each its own half of every batch, the CLIP loss
    gathered over ranks) logs the losses of one process on the whole batch."""
    import json

    assert _run_on_ranks(_loop_worker, tmp_path), "a worker returned without running all its checks"
    single = [r["loss"] for r in _train_clip(*_tiny_clip_and_world())]
    for rank in range(2):
        ranks = json.loads((tmp_path / f"losses{rank}.json").read_text())
        assert ranks == pytest.approx(single, rel=1e-5, abs=1e-6), (rank, ranks, single)
