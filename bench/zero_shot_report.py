"""The shipped CLIP's zero-shot numbers on ShapeWorld (chapter 08's closing table).

Classification (top-1 / top-5, seen and held-out compositions), retrieval (R@1/5/10 both ways,
median rank), semantic segmentation (mIoU, MaskCLIP value path vs naive patch tokens) and
detection (COCO box mAP on all, base and held-out colour-shape classes), each beside its chance
level, measured by :func:`vlm_course.evaluation.shapeworld_report.zero_shot_report` on the test
split of the checkpoint's own world.

    python bench/zero_shot_report.py [--checkpoint clip_tiny_shapeworld]

Prints a Markdown table and writes bench/results/zero_shot_report.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vlm_course import pretrained
from vlm_course.evaluation.shapeworld_report import world_config_from_card, zero_shot_report

ROWS = [  # (task, metric label, section, key, chance key)
    ("classification", "shape top-1 / top-5", "classification", ("shape_top1", "shape_top5"),
     "chance_shape_top1"),
    ("classification", "colour top-1 / top-5", "classification", ("colour_top1", "colour_top5"),
     "chance_colour_top1"),
    ("classification", "colour+shape top-1 / top-5", "classification",
     ("colour+shape_top1", "colour+shape_top5"), "chance_colour+shape_top1"),
    ("classification", "colour+shape top-1, seen pairs", "classification",
     ("seen_colour+shape_top1",), "chance_colour+shape_top1"),
    ("classification", "colour+shape top-1, held-out pairs", "classification",
     ("heldout_colour+shape_top1",), "chance_colour+shape_top1"),
    ("retrieval", "text->image R@1 / R@5 / R@10", "retrieval", ("t2i_R@1", "t2i_R@5", "t2i_R@10"),
     "chance_t2i_R@1"),
    ("retrieval", "image->text R@1 / R@5 / R@10", "retrieval", ("i2t_R@1", "i2t_R@5", "i2t_R@10"),
     None),
    ("retrieval", "median rank text->image / image->text", "retrieval",
     ("t2i_median_rank", "i2t_median_rank"), None),
    ("segmentation", "mIoU, MaskCLIP value path", "segmentation", ("miou_maskclip",),
     "chance_miou_all_background"),
    ("segmentation", "mIoU, naive patch tokens", "segmentation", ("miou_naive",),
     "chance_miou_all_background"),
    ("detection", "box mAP@[.5:.95] / mAP@.5, all classes", "detection", ("map", "map_50"),
     "chance_map"),
    ("detection", "box mAP, seen (base) pairs", "detection", ("map_base",), "chance_map"),
    ("detection", "box mAP, held-out (novel) pairs", "detection", ("map_novel",),
     "chance_map_novel"),
]


def fmt(key: str, x: float) -> str:
    return f"{x:.1f}" if "rank" in key else f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="clip_tiny_shapeworld")
    parser.add_argument("--n-classify", type=int, default=2000)
    parser.add_argument("--n-retrieval", type=int, default=1000)
    parser.add_argument("--n-dense", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = pretrained.load(args.checkpoint, device="cpu")
    cfg = world_config_from_card(pretrained.card(args.checkpoint))
    start = time.perf_counter()
    report = zero_shot_report(model, cfg, n_classify=args.n_classify,
                              n_retrieval=args.n_retrieval, n_dense=args.n_dense)
    seconds = time.perf_counter() - start
    lines = [f"Zero-shot numbers of `{args.checkpoint}` on its ShapeWorld test split "
             f"({args.n_classify} single-object scenes for classification, {args.n_retrieval} "
             f"scenes for retrieval, {args.n_dense} for segmentation and detection; "
             f"{seconds:.0f} s on 1 CPU thread).", "",
             "| task | metric | value | chance |", "|---|---|---|---|"]
    for task, label, section, keys, chance in ROWS:
        vals = " / ".join(fmt(k, report[section][k]) for k in keys)
        ch = fmt(chance, report[section][chance]) if chance else ""
        lines.append(f"| {task} | {label} | {vals} | {ch} |")
    lines += ["", "Reproduce: `python bench/zero_shot_report.py --checkpoint "
              f"{args.checkpoint}`"]
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "zero_shot_report.md").write_text(text + "\n")
    payload = {"checkpoint": args.checkpoint, "seconds": seconds, "torch": torch.__version__,
               **{k: v for k, v in report.items()}}
    (out / "zero_shot_report.json").write_text(json.dumps(payload, indent=1, default=float))


if __name__ == "__main__":
    main()
