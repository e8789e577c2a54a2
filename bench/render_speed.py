"""ShapeWorld rendering speed: scenes per second at 64x64 and 32x32 (chapter 03).

Run:  OMP_NUM_THREADS=1 python bench/render_speed.py [--batches 256 1024] [--repeats 7]
                                                     [--threads 1]

Three paths are timed, each as the median over ``--repeats`` batches of fresh scene indices:

* ``images``: ``ShapeWorld.images`` -- sampling + rendering only (what a pre-training stream needs);
* ``images+masks``: rendering plus instance/semantic masks and boxes
  (``render(..., with_masks=True)``);
* ``full batch``: ``ShapeWorld.batch`` -- everything, including per-object dicts and 5 captions.

Both wall-clock scenes/s and scenes per CPU-second of this process are reported: on a shared
machine the wall-clock rate drops with other people's load, the CPU-time rate much less. One torch
thread by default (a DataLoader worker per core is the way to use both cores of a 2-core CPU).

Results go to bench/results/render_speed.json and are printed as a table. Speed is measured here,
never asserted in a test; the target from the issue is >= 10,000 scenes/s at 64x64 on a 2-core CPU.
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

from vlm_course.world import ShapeWorld, WorldConfig
from vlm_course.world.render import render

RESULTS = Path(__file__).parent / "results" / "render_speed.json"


def time_path(fn, batch: int, repeats: int) -> tuple[float, float]:
    """Median scenes/s of ``fn(indices)`` over ``repeats`` runs (after one warm-up run), by
    wall-clock time and by this process's CPU time (robust to other jobs on a shared machine)."""
    fn(range(batch))
    wall, cpu = [], []
    for r in range(repeats):
        indices = range((r + 1) * batch, (r + 2) * batch)
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(indices)
        wall.append(batch / (time.perf_counter() - start))
        cpu.append(batch / max(time.process_time() - start_cpu, 1e-9))
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for canvas in (64, 32):
        for background in ("plain", "textured"):
            world = ShapeWorld(WorldConfig(canvas=canvas, background=background))
            cfg = world.cfg
            paths = {
                "images": lambda idx, w=world: w.images("train", idx),
                "images+masks": lambda idx, c=cfg, w=world: render(c, w.sample("train", idx)),
                "full batch": lambda idx, w=world: w.batch("train", idx),
            }
            for name, fn in paths.items():
                for batch in args.batches:
                    rate, cpu_rate = time_path(fn, batch, args.repeats)
                    rows.append({"canvas": canvas, "background": background, "path": name,
                                 "batch": batch, "scenes_per_s": round(rate),
                                 "scenes_per_cpu_s": round(cpu_rate)})
                    print(f"{canvas:>3}x{canvas:<3} {background:<9} {name:<13} B={batch:<5} "
                          f"{rate:>10,.0f} scenes/s (wall) {cpu_rate:>10,.0f} scenes/CPU-s",
                          flush=True)

    report = {
        "command": f"OMP_NUM_THREADS={args.threads} python bench/render_speed.py --batches "
                   f"{' '.join(map(str, args.batches))} --repeats {args.repeats} "
                   f"--threads {args.threads}",
        "repeats": args.repeats, "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "platform": platform.platform(terse=True),
        "cpu": platform.processor() or platform.machine(),
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
        "note": "median scenes/s over fresh batches; the machine was shared with other jobs",
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
