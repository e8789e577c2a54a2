"""Inference speed of the chapter-11 students against their teacher, measured side by side.

Run:  OMP_NUM_THREADS=1 python bench/distill_speed.py [--images 64] [--repeats 3] [--threads 1]

* **detection** — the student :class:`~vlm_course.distill.detector.RegionDetector` (one CNN pass
  per image, ``roi_align`` per region) against chapter 08's
  :class:`~vlm_course.evaluation.detection.ZeroShotDetector` with ``region="crop"`` (the shipped
  CLIP run on every proposal's crop), on the same images and proposals: the connected-region
  proposals (one or two per scene), then padded with random boxes to 8 and 32 per image, the
  regime of a real detector's hundreds of proposals;
* **segmentation** — the student :class:`~vlm_course.distill.segmenter.DenseStudent` against the
  teacher's MaskCLIP segmenter (:class:`~vlm_course.evaluation.segmentation.ZeroShotSegmenter`).

Speed does not depend on the weights, so the students are freshly initialised (the notebook
trains them).  Each number is the median wall and CPU time over ``--repeats`` runs after a
warm-up; results go to bench/results/distill_speed.json and .md.  Never asserted in a test.
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
from vlm_course.distill.detector import DetectorConfig, RegionDetector, detect
from vlm_course.distill.segmenter import DenseStudent, SegmenterConfig
from vlm_course.distill.shapeworld import class_text
from vlm_course.distill.shapeworld_seg import teacher_segmenter
from vlm_course.evaluation.detection import ZeroShotDetector
from vlm_course.evaluation.proposals import propose_boxes
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


def padded(proposals: list[torch.Tensor], per_image: int, size: int, seed: int = 0):
    """Each image's proposals plus random boxes up to ``per_image`` (at least its own)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for p in proposals:
        extra = max(per_image - len(p), 0)
        xy = torch.rand(extra, 2, generator=g) * (size - 12)
        wh = 4 + torch.rand(extra, 2, generator=g) * 8
        out.append(torch.cat([p, torch.cat([xy, xy + wh], dim=1)]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="clip_tiny_shapeworld")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    teacher = pretrained.load(args.checkpoint, device="cpu")
    cfg = world_config_from_card(pretrained.card(args.checkpoint))
    images = ShapeWorld(cfg).images("test", range(args.images))
    text = class_text(teacher, cfg)
    student = RegionDetector(DetectorConfig(embed_dim=text.shape[1])).eval()
    zero_shot = ZeroShotDetector(teacher, *shapeworld_prompts(cfg, "shape"))
    own = propose_boxes(images)

    rows = []
    for label, props in (("connected regions", own), ("8 per image", padded(own, 8, cfg.canvas)),
                         ("32 per image", padded(own, 32, cfg.canvas))):
        n = sum(len(p) for p in props)
        s_wall, s_cpu = timed(lambda p=props: detect(student, images, p, text), args.repeats)
        t_wall, t_cpu = timed(lambda p=props: zero_shot.detect(images, p), args.repeats)
        rows.append({"task": f"detection, {label}", "proposals": n,
                     "student_ms_per_image": 1e3 * s_wall / args.images,
                     "teacher_ms_per_image": 1e3 * t_wall / args.images,
                     "ratio_wall": t_wall / s_wall, "ratio_cpu": t_cpu / max(s_cpu, 1e-9)})
    seg_student = DenseStudent(SegmenterConfig(embed_dim=text.shape[1],
                                               channels=(16, 32, 32, 32))).eval()
    seg_teacher = teacher_segmenter(teacher, cfg)
    s_wall, s_cpu = timed(lambda: seg_student.predict(images, seg_teacher.text), args.repeats)
    t_wall, t_cpu = timed(lambda: seg_teacher.predict(images), args.repeats)
    rows.append({"task": "segmentation (MaskCLIP teacher)", "proposals": 0,
                 "student_ms_per_image": 1e3 * s_wall / args.images,
                 "teacher_ms_per_image": 1e3 * t_wall / args.images,
                 "ratio_wall": t_wall / s_wall, "ratio_cpu": t_cpu / max(s_cpu, 1e-9)})

    header = ("| task | proposals | student ms/image | teacher ms/image | teacher/student "
              "(wall) | (CPU) |\n|---|---|---|---|---|---|")
    lines = [f"| {r['task']} | {r['proposals']} | {r['student_ms_per_image']:.2f} | "
             f"{r['teacher_ms_per_image']:.2f} | {r['ratio_wall']:.1f} | {r['ratio_cpu']:.1f} |"
             for r in rows]
    table = "\n".join([header, *lines])
    print(table)
    meta = {"images": args.images, "repeats": args.repeats, "threads": args.threads,
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "checkpoint": args.checkpoint}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "distill_speed.json").write_text(json.dumps({"meta": meta, "rows": rows},
                                                           indent=2) + "\n")
    (RESULTS / "distill_speed.md").write_text(
        "# Chapter 11: student vs teacher inference speed\n\n"
        f"`OMP_NUM_THREADS=1 python bench/distill_speed.py` ({args.images} test images, median of "
        f"{args.repeats}, {args.threads} thread(s), shared CPU).\n\n" + table + "\n")


if __name__ == "__main__":
    main()
