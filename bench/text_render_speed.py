"""Rendering captions to pixels vs the one-tower training step (chapter 07, CLIPPO).

Run:  OMP_NUM_THREADS=1 python bench/text_render_speed.py [--batch 64] [--repeats 5]

Times, as medians of ``--repeats`` batches of fresh ShapeWorld captions (CPU seconds of this
process, so the machine's other load counts little):

* ``render (cold)``: :class:`~vlm_course.text.rasterise.TextRasteriser` with its cache off —
  every caption drawn by FreeType;
* ``render (cached)``: the same captions again from the cache (a training run sees each distinct
  caption many times);
* ``one-tower step``: forward + backward + AdamW of the tiny one-tower model on a batch of
  ``--batch`` pairs whose captions are already rendered.

The issue's target: rendering must not dominate the step.  Results go to
bench/results/text_render_speed.json and .md.  Speed is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from vlm_course.models.one_tower import OneTower, OneTowerConfig
from vlm_course.objectives.contrastive import clip_loss
from vlm_course.text.rasterise import TextRasteriser
from vlm_course.world import ShapeWorld, WorldConfig

RESULTS = Path(__file__).parent / "results"


def cpu_time(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    world = ShapeWorld(WorldConfig(canvas=48, max_objects=2))
    cold = TextRasteriser(48, 7, cache_size=0)
    cached = TextRasteriser(48, 7)
    torch.manual_seed(0)
    model = OneTower(OneTowerConfig.tiny()).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = {"render (cold)": [], "render (cached)": [], "one-tower step": []}
    for r in range(args.repeats + 1):
        images, captions = world.pairs("train", range(r * args.batch, (r + 1) * args.batch))
        t_cold = cpu_time(lambda c=captions: cold(c))
        cached(captions)
        t_cached = cpu_time(lambda c=captions: cached(c))
        pixels = cached(captions)

        def step(images=images, pixels=pixels):
            loss = clip_loss(*model(images, {"pixels": pixels}))
            opt.zero_grad()
            loss.backward()
            opt.step()

        t_step = cpu_time(step)
        if r:                                                   # round 0: warm-up
            for key, t in zip(times, (t_cold, t_cached, t_step), strict=True):
                times[key].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    step_s = med["one-tower step"]
    rows = [(k, v * 1e3, v / args.batch * 1e6, v / step_s) for k, v in med.items()]
    lines = [f"# Rendering captions vs the one-tower step (batch {args.batch}, CPU time, 1 thread)",
             "", f"`OMP_NUM_THREADS=1 python bench/text_render_speed.py --batch {args.batch}`", "",
             "| what | ms per batch | µs per caption | share of a step |", "|---|---|---|---|"]
    lines += [f"| {k} | {ms:.1f} | {us:.0f} | {share:.1%} |" for k, ms, us, share in rows]
    md = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "text_render_speed.json").write_text(json.dumps(
        {"batch": args.batch, "repeats": args.repeats, "median_cpu_s": med}, indent=2) + "\n")
    (RESULTS / "text_render_speed.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
