"""One task, five paradigms: the label-efficiency table of chapters 01 and 09.

Runs :func:`vlm_course.evaluation.paradigms.run_paradigms` on ShapeWorld shape classification
and on scikit-learn's digits, at 1, 2, 4, 8, 16, 64 labels per class and the full pool, over
several seeds, with the shipped checkpoints: ``clip_tiny_shapeworld`` (VLM), ``simclr_tiny48_
shapeworld`` (self-supervised), ``supervised_tiny_shapeworld`` (labels of another ShapeWorld task:
count, colour, size; used for the ShapeWorld task) and ``supervised_shape_shapeworld`` (ShapeWorld
shape labels; the pre-training for the digits).  MAE (chapter 05) joins when it ships.

    OMP_NUM_THREADS=1 python bench/paradigms.py [--seeds 0 1 2] [--steps 100]

Prints Markdown tables and writes bench/results/<name>.{json,md} (one file per task when the
tasks run as separate processes: ``--tasks digits --name paradigms_digits``).  Chapters 01
and 09 re-run seed 0 of a few cells live and compare with these files.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from vlm_course import pretrained
from vlm_course.evaluation.paradigms import (
    PARADIGMS,
    RANDOM_VIT,
    SHOTS,
    digits,
    run_paradigms,
    shapeworld_shapes,
)

RESULTS = Path(__file__).parent / "results"
#: Task name -> (task builder, supervised checkpoint); shared with the notebooks.
POOL = {"n_train": 1000, "n_test": 1000, "seed": 0}
SUPERVISED = {"shapeworld-shapes": "supervised_tiny_shapeworld",
              "digits": "supervised_shape_shapeworld"}


def cell(entry: dict, k) -> str:
    if "accuracy" in entry:
        return f"{entry['accuracy']:.3f}"
    v = entry[k]
    return f"{v['mean']:.3f} ± {v['std']:.3f}"


def table(task: str, res: dict, shots) -> str:
    keys = ["full" if k is None else k for k in shots]
    rows = [f"### {task}", "", "| paradigm | " + " | ".join(f"{k}" for k in keys) + " |",
            "|---|" + "---|" * len(keys)]
    for name, entry in res.items():
        if "accuracy" in entry:
            rows.append(f"| {name} (no labels) | " + " | ".join([cell(entry, None)] * len(keys))
                        + " |")
        else:
            rows.append(f"| {name} | " + " | ".join(cell(entry, k) for k in keys) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--tasks", nargs="+", default=list(SUPERVISED))
    parser.add_argument("--name", default="paradigms", help="results file stem")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clip = pretrained.load("clip_tiny_shapeworld", device="cpu")
    simclr = pretrained.load("simclr_tiny48_shapeworld", device="cpu")
    builders = {"shapeworld-shapes": lambda: shapeworld_shapes(**POOL), "digits": digits}
    out = {"command": "OMP_NUM_THREADS=1 python bench/paradigms.py "
                      f"--seeds {' '.join(map(str, args.seeds))} --steps {args.steps} "
                      f"--tasks {' '.join(args.tasks)} --name {args.name}",
           "seeds": args.seeds, "steps": args.steps, "shots": [k or "full" for k in SHOTS],
           "pool": POOL, "torch_threads": torch.get_num_threads(),
           "load_average": list(os.getloadavg()), "tasks": {}}
    tables = []
    for name in args.tasks:
        tic = time.process_time()
        task = builders[name]()
        res = run_paradigms(task, clip=clip, simclr=simclr,
                            supervised=pretrained.load(SUPERVISED[name], device="cpu"),
                            seeds=args.seeds, steps=args.steps,
                            paradigms=(*PARADIGMS, RANDOM_VIT), log=print)
        out["tasks"][name] = {"results": res, "cpu_seconds": time.process_time() - tic,
                              "train": len(task.train_labels), "test": len(task.test_labels),
                              "classes": task.num_classes}
        tables.append(table(f"{name} (test {len(task.test_labels)}, chance "
                            f"{1 / task.num_classes:.3f})", res, SHOTS))
        print(tables[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(out, indent=1) + "\n")
    header = (f"Accuracy (mean ± std over seeds {args.seeds}) vs labelled examples per class; "
              f"networks trained {args.steps} steps.\n\nCommand: `{out['command']}`\n\n")
    (RESULTS / f"{args.name}.md").write_text(header + "\n\n".join(tables) + "\n")


if __name__ == "__main__":
    main()
