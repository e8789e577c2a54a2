"""Chapter 12 sweep: the survey's scaling trends in miniature on ShapeWorld.

Run:  OMP_NUM_THREADS=1 nice -n 10 python bench/scaling_sweep.py [--seeds 0 1] [--samples N]

One tiny CLIP (or SigLIP) per point of :mod:`vlm_course.recipes.scaling`, four axes around one
base point (CLIP, width 32, fresh scenes, batch 64, ``--samples`` pairs seen):

* data: the number of distinct training pairs (``--scenes``; the base point's fresh stream
  is the largest, ``samples`` distinct pairs);
* model: the width of both towers (``--widths``);
* batch: the batch size at the same number of pairs seen (``--batches``, same compute);
* objective: CLIP's softmax InfoNCE vs SigLIP's sigmoid loss at each ``--objective-batches``.

Each point is trained for every seed and measured by zero-shot colour+shape accuracy (64
classes, held-out compositions separately) and retrieval R@1.  Writes
``bench/results/scaling_sweep.json`` (every row, the settings, the command, the machine's load)
and ``bench/results/scaling_sweep.md`` (the tables, mean ± std over seeds), and prints them.
``notebooks/12_benchmarks.md`` plots the JSON and re-runs a few points live against it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from vlm_course.recipes.scaling import ScalingPoint, run_point, world_config

RESULTS = Path(__file__).parent / "results"
METRICS = ("zs_colour_shape", "zs_heldout", "zs_shape", "r1_i2t", "r1_t2i", "final_loss")


def grid(args) -> dict[str, list[ScalingPoint]]:
    """The points of each axis (the base point appears on every axis it belongs to)."""
    base = ScalingPoint(samples=args.samples)

    def at(**kw) -> ScalingPoint:
        return ScalingPoint(**{**base.to_dict(), **kw})

    return {
        "data": [at(scenes=n) for n in args.scenes] + [base],
        "width": [at(width=w) for w in args.widths],
        "batch": [at(batch_size=b) for b in args.batches],
        "objective": [at(objective=o, batch_size=b) for b in args.objective_batches
                      for o in ("clip", "siglip")],
    }


def _run(job: tuple[dict, int, int]) -> dict:
    """Worker: one point of the grid (a process of its own, one thread)."""
    torch.set_num_threads(1)
    point, eval_scenes, retrieval_scenes = job
    return run_point(ScalingPoint(**point), eval_scenes=eval_scenes,
                     retrieval_scenes=retrieval_scenes)


def summary(rows: list[dict], point: ScalingPoint) -> dict:
    """Mean and std over seeds of every metric of ``point``."""
    key = {k: v for k, v in point.to_dict().items() if k != "seed"}
    mine = [r for r in rows if all(r[k] == v for k, v in key.items())]
    out = {**key, "steps": point.steps, "parameters": mine[0]["parameters"], "n_seeds": len(mine)}
    for m in METRICS:
        values = [r[m] for r in mine]
        out[m] = statistics.fmean(values)
        out[m + "_std"] = statistics.pstdev(values)
    out["cpu_seconds"] = statistics.fmean(r["cpu_seconds"] for r in mine)
    return out


def table(summaries: list[dict], axis_key: str) -> str:
    lines = [f"| {axis_key} | steps | parameters | zero-shot colour+shape (%) | held-out (%) | "
             "shape (%) | R@1 i→t (%) | R@1 t→i (%) | final loss | CPU s/run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summaries:
        label = s[axis_key] if s[axis_key] is not None else f"fresh ({s['samples']:,})"
        if axis_key == "objective":
            label = f"{s['objective']}, batch {s['batch_size']}"
        cells = [f"{100 * s[m]:.1f} ± {100 * s[m + '_std']:.1f}" for m in METRICS[:-1]]
        lines.append(f"| {label} | {s['steps']} | {s['parameters']:,} | " + " | ".join(cells)
                     + f" | {s['final_loss']:.3f} | {s['cpu_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--samples", type=int, default=ScalingPoint.samples)
    parser.add_argument("--scenes", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--objective-batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--eval-scenes", type=int, default=1000)
    parser.add_argument("--retrieval-scenes", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start, start_cpu, load_before = time.perf_counter(), time.process_time(), os.getloadavg()

    axes = grid(args)
    points = list(dict.fromkeys(p for ps in axes.values() for p in ps))
    jobs = [({**p.to_dict(), "seed": seed}, args.eval_scenes, args.retrieval_scenes)
            for seed in args.seeds for p in points]
    rows = []
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / "scaling_sweep.partial.jsonl"        # rows as they come (removed at end)
    partial.write_text("")
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for row in pool.imap(_run, jobs):
            rows.append(row)
            with partial.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"  {row['objective']:<6} w{row['width']:<3} scenes {str(row['scenes']):>5} "
                  f"B{row['batch_size']:<4} seed {row['seed']}: colour+shape "
                  f"{row['zs_colour_shape']:.3f} held-out {row['zs_heldout']:.3f} R@1 "
                  f"{row['r1_i2t']:.3f}/{row['r1_t2i']:.3f} cpu {row['cpu_seconds']:.0f}s",
                  flush=True)
    wall = time.perf_counter() - start
    cpu = time.process_time() - start_cpu + sum(r["cpu_seconds"] for r in rows)
    summaries = {axis: [summary(rows, p) for p in ps] for axis, ps in axes.items()}
    keys = {"data": "scenes", "width": "width", "batch": "batch_size", "objective": "objective"}
    tables = {axis: table(summaries[axis], keys[axis]) for axis in axes}
    command = ("OMP_NUM_THREADS=1 nice -n 10 python bench/scaling_sweep.py --seeds "
               + " ".join(map(str, args.seeds)) + f" --samples {args.samples} --scenes "
               + " ".join(map(str, args.scenes)) + " --widths " + " ".join(map(str, args.widths))
               + " --batches " + " ".join(map(str, args.batches)) + " --objective-batches "
               + " ".join(map(str, args.objective_batches))
               + f" --eval-scenes {args.eval_scenes} --retrieval-scenes {args.retrieval_scenes}"
               + f" --jobs {args.jobs}")
    result = {
        "command": command, "world": world_config().to_dict(), "seeds": args.seeds,
        "samples": args.samples,
        "eval_scenes": args.eval_scenes, "retrieval_scenes": args.retrieval_scenes,
        "axes": {axis: [p.to_dict() for p in ps] for axis, ps in axes.items()},
        "torch": torch.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "wall_time_s": round(wall, 1), "cpu_time_s": round(cpu, 1),
        "rows": rows, "summaries": summaries,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scaling_sweep.json").write_text(json.dumps(result, indent=1) + "\n")
    titles = {"data": "Data: distinct training pairs (same pairs seen)",
              "width": "Model: width of both towers",
              "batch": "Batch size (same pairs seen, so fewer steps for bigger batches)",
              "objective": "Objective: CLIP (softmax InfoNCE) vs SigLIP (sigmoid)"}
    md = (f"# Chapter 12 scaling sweep\n\n`{command}`\n\nShapeWorld (canvas 32, one or two "
          f"objects), base point CLIP width 32, batch 64, {args.samples:,} pairs seen; seeds "
          f"{args.seeds}; zero-shot on {args.eval_scenes} single-object test scenes (64 "
          f"colour+shape classes, chance 1.6%; held-out = compositions never seen in training), "
          f"retrieval on {args.retrieval_scenes} test scenes. Mean ± std over seeds. "
          f"{wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU (one thread per worker, "
          f"{args.jobs} worker(s)) on a shared "
          f"{os.cpu_count()}-core CPU (load average {load_before[0]:.1f} at the start).\n\n"
          + "\n\n".join(f"## {titles[a]}\n\n{tables[a]}" for a in axes) + "\n")
    (args.out / "scaling_sweep.md").write_text(md)
    partial.unlink()
    print("\n" + md)


if __name__ == "__main__":
    main()
