"""Chapter 10 sweep: few-shot curves and base-to-new generalisation of every transfer method.

Run:  OMP_NUM_THREADS=1 nice -n 10 python bench/transfer_sweep.py
          [--shots 1 2 4 8 16] [--seeds 0 1 2] [--grain 0.05] [--test-size 600]

On the shipped ``clip_tiny_shapeworld`` and the grainy-ShapeWorld task of
:mod:`vlm_course.transfer.tasks` (shape classification, 8 classes), with the protocol of
:mod:`vlm_course.transfer.protocol`:

* few-shot: zero-shot, linear probe, CoOp, CoCoOp, VPT (shallow, deep), CLIP-Adapter,
  Tip-Adapter, Tip-Adapter-F and LoRA at each number of shots and seed;
* base-to-new (CoCoOp's protocol): fit on the 4 base shapes at 16 shots, test on base and new.

Writes ``bench/results/transfer_sweep.json`` (every row, the settings, the checkpoint's sha256,
the machine's load) and ``bench/results/transfer_sweep.md`` (the tables), and prints the tables.
Training time is measured per fit as wall-clock and CPU seconds of this process; on a shared
machine the CPU seconds are the comparable number.  ``notebooks/10_transfer.md`` re-runs part of
this grid live and checks it against the JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import torch

from vlm_course import pretrained
from vlm_course.transfer import protocol
from vlm_course.transfer.tasks import FewShotTask, TaskConfig
from vlm_course.world import WorldConfig

RESULTS = Path(__file__).parent / "results"
CHECKPOINT = "clip_tiny_shapeworld"


def few_shot_table(rows: list[dict], shots: list[int]) -> str:
    """Markdown: accuracy (mean ± std over seeds, %) per method and number of shots."""
    stats = {(s["method"], s["shots"]): s for s in protocol.summarise(rows)}
    lines = ["| method | " + " | ".join(f"{k} shot{'s' if k > 1 else ''}" for k in shots) + " |",
             "|---|" + "---:|" * len(shots)]
    for method in dict.fromkeys(r["method"] for r in rows):
        cells = [f"{100 * stats[method, k]['mean']:.1f} ± {100 * stats[method, k]['std']:.1f}"
                 for k in shots]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_table(rows: list[dict]) -> str:
    """Markdown: trainable parameters and mean training time per fit at the largest shot count."""
    top = max(r["shots"] for r in rows)
    lines = [f"| method | trainable parameters | train s/fit (CPU) at {top} shots | wall s |",
             "|---|---:|---:|---:|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method and r["shots"] == top]
        cpu = sum(r["cpu_seconds"] for r in mine) / len(mine)
        wall = sum(r["seconds"] for r in mine) / len(mine)
        lines.append(f"| {method} | {mine[0]['trainable']:,} | {cpu:.1f} | {wall:.1f} |")
    return "\n".join(lines)


def base_new_table(rows: list[dict]) -> str:
    """Markdown: base, new and harmonic-mean accuracy (mean ± std over seeds, %)."""
    lines = ["| method | base | new | harmonic mean |", "|---|---:|---:|---:|"]
    parts = {p: {s["method"]: s for s in protocol.summarise(rows, p, ("method",))}
             for p in ("base", "new", "hm")}
    for method in parts["base"]:
        cells = [f"{100 * parts[p][method]['mean']:.1f} ± {100 * parts[p][method]['std']:.1f}"
                 for p in ("base", "new", "hm")]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(protocol.METHODS))
    parser.add_argument("--grain", type=float, default=TaskConfig.grain)
    parser.add_argument("--test-size", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start, start_cpu, load_before = time.perf_counter(), time.process_time(), os.getloadavg()

    card = pretrained.card(CHECKPOINT)
    model = pretrained.load(CHECKPOINT, device="cpu")
    task_config = TaskConfig(grain=args.grain, test_size=args.test_size)
    task = FewShotTask(WorldConfig.from_dict(card["world_config"]), task_config)
    print(f"{task}; {len(task.test_set()[1])} test images")

    def show(row: dict) -> None:
        keys = ("accuracy",) if "accuracy" in row else ("base", "new")
        scores = " ".join(f"{k} {100 * row[k]:5.1f}" for k in keys)
        print(f"  {row['method']:<14} shots {row['shots']:>2} seed {row['seed']}  {scores}  "
              f"cpu {row['cpu_seconds']:5.1f}s", flush=True)

    few = protocol.run_few_shot(model, task, args.methods, args.shots, args.seeds, on_row=show)
    generalising = [m for m in args.methods if m in protocol.GENERALISE]
    b2n = protocol.run_base_to_new(model, task, generalising, shots=max(args.shots),
                                   seeds=args.seeds, on_row=show)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu

    tables = {"few_shot": few_shot_table(few, args.shots), "cost": cost_table(few),
              "base_to_new": base_new_table(b2n)}
    command = ("OMP_NUM_THREADS=1 nice -n 10 python bench/transfer_sweep.py --shots "
               + " ".join(map(str, args.shots)) + " --seeds " + " ".join(map(str, args.seeds))
               + f" --grain {args.grain} --test-size {args.test_size}")
    result = {
        "command": command, "checkpoint": CHECKPOINT, "checkpoint_sha256": card["sha256"],
        "task": dataclasses.asdict(task_config), "classes": task.classnames,
        "base_new": [task.names(ids) for ids in task.base_new()],
        "shots": args.shots, "seeds": args.seeds,
        "fit": {name: dataclasses.asdict(c) for name, c in protocol.FIT.items()},
        "torch": torch.__version__, "torch_threads": args.threads,
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "wall_time_s": round(wall, 1), "cpu_time_s": round(cpu, 1),
        "note": "accuracy on the fixed test set; seconds are per fit (training only); the "
                "machine was shared with other jobs, so CPU seconds are the comparable time",
        "few_shot": few, "base_to_new": b2n,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transfer_sweep.json").write_text(json.dumps(result, indent=1) + "\n")
    md = (f"# Chapter 10 transfer sweep\n\n`{command}` — {CHECKPOINT} "
          f"(sha256 {card['sha256'][:12]}…), grainy ShapeWorld (grain {args.grain}), "
          f"{len(task.test_set()[1])} test images, seeds {args.seeds}; "
          f"{wall / 60:.1f} min wall ({cpu / 60:.1f} min CPU, one thread) on a shared "
          f"{os.cpu_count()}-core CPU (load average {load_before[0]:.1f} at the start).\n\n"
          f"## Few-shot accuracy (%)\n\n{tables['few_shot']}\n\n"
          f"## Trainable parameters and training time\n\n{tables['cost']}\n\n"
          f"## Base-to-new ({max(args.shots)} shots on the base classes)\n\n"
          f"{tables['base_to_new']}\n")
    (args.out / "transfer_sweep.md").write_text(md)
    print("\n" + md)


if __name__ == "__main__":
    main()
