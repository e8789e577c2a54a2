"""One task, five paradigms: the label-efficiency table of chapters 01 and 09.

Runs :func:`vlm_course.evaluation.paradigms.run_paradigms` on ShapeWorld shape classification
(clean, and through chapter 10's grainy camera, where zero-shot CLIP is imperfect) and on
scikit-learn's digits, at 1, 2, 4, 8, 16, 64 labels per class and the full pool, over several
seeds, with the shipped checkpoints: ``clip_tiny_shapeworld`` (VLM), ``simclr_tiny48_shapeworld``
and ``mae_tiny_shapeworld`` (self-supervised), ``supervised_shifted_shapeworld`` (shape labels of
another image distribution: textured backgrounds, four colours; the pre-training for both
ShapeWorld tasks) and ``supervised_shape_shapeworld`` (ShapeWorld shape labels; the pre-training
for the digits).  The clean ShapeWorld task adds one control row: pre-training on labels that
share nothing with shape (``supervised_tiny_shapeworld``: count, colour, size) + fine-tuning.
Every task records where the CLIP probe's curve meets zero-shot (``crossover``, labels per class,
interpolated in log2 k; :func:`~vlm_course.evaluation.paradigms.zero_shot_crossover`).

    OMP_NUM_THREADS=1 nice -n 10 python bench/paradigms.py --tasks shapeworld-shapes \
        --name paradigms_shapeworld                  # and: shapeworld-grainy / digits

Prints Markdown tables and writes bench/results/<name>.{json,md} (one file per task when the
tasks run as separate processes).  Chapters 01 and 09 re-run seed 0 of a few cells live and
compare with these files.
"""

from __future__ import annotations

import argparse
import copy
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
    train_curve,
    zero_shot_crossover,
)

RESULTS = Path(__file__).parent / "results"
#: Task name -> (task builder, supervised checkpoint); shared with the notebooks.
POOL = {"n_train": 1000, "n_test": 1000, "seed": 0}
#: Chapter 10's sensor grain (bench/transfer_sweep.py --grain 0.03).
GRAIN = 0.03
SUPERVISED = {"shapeworld-shapes": "supervised_shifted_shapeworld",
              "shapeworld-grainy": "supervised_shifted_shapeworld",
              "digits": "supervised_shape_shapeworld"}
#: The control row of the clean ShapeWorld task: pre-training on labels unrelated to shape.
UNRELATED = "supervised pre-training on count/colour/size + fine-tuning"


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


def crossing(cross: dict) -> str:
    """One line: the labels per class at which the CLIP probe reaches zero-shot."""
    if cross["k"] is None:
        return "The CLIP probe never reaches zero-shot within 64 labels per class."
    seeds = ", ".join("never" if v is None else f"{v:.2f}" for v in cross["per_seed"])
    return (f"The CLIP probe reaches zero-shot at k = {cross['k']:.2f} labels per class "
            f"(mean curve; per seed: {seeds}; {cross['first']} means at or below the smallest "
            f"budget).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--tasks", nargs="+", default=list(SUPERVISED))
    parser.add_argument("--name", default="paradigms", help="results file stem")
    parser.add_argument("--run", nargs="+", help="rows to compute (default: every row)")
    parser.add_argument("--reuse-from", help="a previous results file (same protocol, pool and "
                        "seeds): the rows not in --run are copied from it, for rows whose "
                        "checkpoints did not change")
    parser.add_argument("--rename", nargs="*", default=[], metavar="NEW=OLD",
                        help="with --reuse-from: row NEW is the previous file's row OLD")
    args = parser.parse_args()
    every = (*PARADIGMS, RANDOM_VIT, UNRELATED)
    run = tuple(args.run or every)
    if any(r not in every for r in run):
        parser.error(f"--run takes rows of {every}, got {run}")
    old = json.loads(Path(args.reuse_from).read_text()) if args.reuse_from else None
    rename = dict(pair.split("=", 1) for pair in args.rename)
    torch.set_num_threads(1)
    clip = pretrained.load("clip_tiny_shapeworld", device="cpu")
    simclr = pretrained.load("simclr_tiny48_shapeworld", device="cpu")
    mae = pretrained.load("mae_tiny_shapeworld", device="cpu")
    builders = {"shapeworld-shapes": lambda: shapeworld_shapes(**POOL),
                "shapeworld-grainy": lambda: shapeworld_shapes(**POOL, grain=GRAIN),
                "digits": digits}
    command = ("OMP_NUM_THREADS=1 nice -n 10 python bench/paradigms.py "
               f"--seeds {' '.join(map(str, args.seeds))} --steps {args.steps} "
               f"--tasks {' '.join(args.tasks)} --name {args.name}")
    if args.run:
        command += " --run " + " ".join(f"'{r}'" for r in run)
    if old:
        command += (f" --reuse-from {args.reuse_from}"
                    + "".join(f" --rename '{p}'" for p in args.rename))
    out = {"command": command,
           "seeds": args.seeds, "steps": args.steps, "shots": [k or "full" for k in SHOTS],
           "pool": POOL, "grain": GRAIN, "torch_threads": torch.get_num_threads(),
           "load_average": list(os.getloadavg()), "tasks": {},
           "checkpoints": {n: pretrained.card(n)["sha256"] for n in sorted(
               {"clip_tiny_shapeworld", "simclr_tiny48_shapeworld", "mae_tiny_shapeworld",
                "supervised_tiny_shapeworld", *(SUPERVISED[t] for t in args.tasks)})}}
    tables = []
    for name in args.tasks:
        tic = time.process_time()
        task = builders[name]()
        res = run_paradigms(task, clip=clip, simclr=simclr, mae=mae,
                            supervised=pretrained.load(SUPERVISED[name], device="cpu"),
                            seeds=args.seeds, steps=args.steps,
                            paradigms=[r for r in run if r != UNRELATED], log=print)
        if old:
            prev = old["tasks"][name]["results"]
            assert old["seeds"] == args.seeds and old["pool"] == POOL, "another protocol"
            for row in every:
                if row not in run and rename.get(row, row) in prev:
                    res[row] = {k if k in ("full", "accuracy") else int(k): v   # JSON keys
                                for k, v in prev[rename.get(row, row)].items()}
            res = {row: res[row] for row in every if row in res}
            out["reused"] = {"from_command": old["command"], "from_reused": old.get("reused"),
                             "rows": {
                row: rename.get(row, row) for row in every if row not in run and row in res}}
        if name == "shapeworld-shapes" and UNRELATED in run:
            unrelated = pretrained.load("supervised_tiny_shapeworld", device="cpu").eval()
            res[UNRELATED] = train_curve(
                lambda m=unrelated, k=task.num_classes: copy.deepcopy(m).replace_head((k,)), task,
                seeds=args.seeds, steps=args.steps, lr=1e-3)
        cross = zero_shot_crossover(res["VLM (CLIP) + probe"],
                                    res["VLM (CLIP) zero-shot"]["accuracy"])
        out["tasks"][name] = {"results": res, "crossover": cross,
                              "cpu_seconds": time.process_time() - tic,
                              "train": len(task.train_labels), "test": len(task.test_labels),
                              "classes": task.num_classes, "task_name": task.name}
        tables.append(table(f"{name} (test {len(task.test_labels)}, chance "
                            f"{1 / task.num_classes:.3f})", res, SHOTS) + "\n\n"
                      + crossing(cross))
        print(tables[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(out, indent=1) + "\n")
    header = (f"Accuracy (mean ± std over seeds {args.seeds}) vs labelled examples per class; "
              f"networks trained {args.steps} steps.\n\nCommand: `{out['command']}`\n\n")
    (RESULTS / f"{args.name}.md").write_text(header + "\n\n".join(tables) + "\n")


if __name__ == "__main__":
    main()
