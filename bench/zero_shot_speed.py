"""Zero-shot inference speed of the shipped CLIP (chapter 08), measured in one run.

Run:  OMP_NUM_THREADS=1 python bench/zero_shot_speed.py [--batch 256] [--repeats 5] [--threads 1]

Three timings, each the median over ``--repeats`` runs after a warm-up:

* ``classification``: images/s of :class:`~vlm_course.evaluation.classifier.ZeroShotClassifier`
  with its text embeddings cached (built once, outside the timing) — encode a batch, score it
  against the 64 colour+shape classes, arg-max;
* ``dense segmentation``: images/s of :class:`~vlm_course.evaluation.segmentation.ZeroShotSegmenter`
  (MaskCLIP value path, 1 + 8 classes, bilinear upsampling to pixels, arg-max);
* ``retrieval ranking``: seconds to rank 1,000 images against 5,000 captions in both directions
  from cached embeddings (:func:`~vlm_course.evaluation.retrieval.retrieval_metrics`: R@1/5/10,
  median and mean ranks, expected-tie rule).

Wall-clock and per-CPU-second rates are both reported (the machine may be shared).  Results go to
bench/results/zero_shot_speed.json and .md.  Speed is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from vlm_course import pretrained
from vlm_course.evaluation.classifier import ZeroShotClassifier
from vlm_course.evaluation.retrieval import retrieval_metrics
from vlm_course.evaluation.segmentation import ZeroShotSegmenter
from vlm_course.evaluation.shapeworld_report import world_config_from_card
from vlm_course.evaluation.zeroshot import shapeworld_prompts
from vlm_course.world import ShapeWorld

RESULTS = Path(__file__).parent / "results"


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds) of ``fn()`` over ``repeats`` runs after a warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="clip_tiny_shapeworld")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = pretrained.load(args.checkpoint, device="cpu")
    cfg = world_config_from_card(pretrained.card(args.checkpoint))
    images = ShapeWorld(cfg).images("test", range(args.batch))

    classifier = ZeroShotClassifier(model, *shapeworld_prompts(cfg, "colour+shape"))
    segmenter = ZeroShotSegmenter(model, *shapeworld_prompts(cfg, "shape"))
    g = torch.Generator().manual_seed(0)
    D = model.embed_dim
    image_emb = torch.nn.functional.normalize(torch.randn(1000, D, generator=g), dim=1)
    owner = torch.arange(1000).repeat_interleave(5)                      # 5 captions per image
    text_emb = image_emb[owner] + 0.5 * torch.randn(5000, D, generator=g)

    rows = []
    for name, fn, n, unit in (
        ("classification (cached text)", lambda: classifier.predict(images), args.batch,
         "images/s"),
        ("dense segmentation (MaskCLIP)", lambda: segmenter.predict(images), args.batch,
         "images/s"),
        ("retrieval ranking 1k x 5k", lambda: retrieval_metrics(image_emb, text_emb, owner),
         1, "s per ranking"),
    ):
        wall, cpu = timed(fn, args.repeats)
        if unit == "images/s":
            rows.append({"task": name, "unit": unit, "wall": n / wall, "cpu": n / max(cpu, 1e-9)})
        else:
            rows.append({"task": name, "unit": unit, "wall": wall, "cpu": cpu})

    lines = [f"Zero-shot speed of `{args.checkpoint}` (batch {args.batch}, {args.threads} torch "
             f"thread(s), median of {args.repeats}; {platform.machine()}, "
             f"load {os.getloadavg()[0]:.1f}).", "",
             "| task | unit | wall clock | per CPU second |", "|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['unit']} | {r['wall']:.3g} | {r['cpu']:.3g} |" for r in rows]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "zero_shot_speed.md").write_text(text + "\n")
    payload = {"command": f"OMP_NUM_THREADS={args.threads} python bench/zero_shot_speed.py "
                          f"--batch {args.batch} --repeats {args.repeats} "
                          f"--threads {args.threads}",
               "torch": torch.__version__, "load_average_1min": os.getloadavg()[0], "rows": rows}
    (RESULTS / "zero_shot_speed.json").write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
