"""Execute each chapter notebook and record its wall time, the kernel's CPU time and peak memory.

This is how the course watches its runtime budget (<= 2 minutes per notebook on a 2-core CPU) —
not a timed test.  Each notebook runs in a fresh child process that executes it with nbclient; when
the kernel has been shut down, the child reads the kernel's CPU time (user + system) and peak
resident memory from ``getrusage``.  On a machine shared with other jobs the wall time grows with
the load (printed with the results) while the CPU time barely moves: it is the work itself, and on
an idle machine the wall time is about the CPU time (less where both cores are busy at once).

    python bench/notebook_times.py                 # every notebook, results to bench/results/
    python bench/notebook_times.py 00_start_here   # only the named chapters (stems),
                                                   # results not written
    python bench/notebook_times.py --repeat 3      # median of three runs per notebook

Writes ``bench/results/notebook_times.json`` and ``.md`` (a full run only) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "bench" / "results"
BUDGET_S = 120.0


def run_one(path: Path, timeout: int) -> dict:
    """Execute one notebook in this process's kernel child; return seconds and peak kernel MiB."""
    import resource

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    # ru_maxrss is in KiB on Linux, bytes on macOS; covers children that have been waited for
    # (the kernel, shut down by execute()).
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mib = usage.ru_maxrss / 2**20 if sys.platform == "darwin" else usage.ru_maxrss / 1024
    return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_mib": peak_mib}


def measure(path: Path, timeout: int) -> dict:
    env = {**os.environ, "CI": "true", "PYTHONHASHSEED": "0"}
    env.pop("MPLBACKEND", None)  # a non-inline backend would swallow every figure
    out = subprocess.run([sys.executable, __file__, "--one", str(path), "--timeout", str(timeout)],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{path.name} failed to execute:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = ["| notebook | wall time (s) | kernel CPU time (s) | peak kernel memory (MiB) "
             "| within 2-min budget |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        ok = "yes" if r["seconds"] <= BUDGET_S else "NO"
        lines.append(f"| {r['notebook']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} "
                     f"| {r['peak_mib']:.0f} | {ok} |")
    total = sum(r["seconds"] for r in rows)
    total_cpu = sum(r["cpu_seconds"] for r in rows)
    lines.append(f"| **total** | **{total:.1f}** | **{total_cpu:.1f}** | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stems", nargs="*",
                        help="notebook stems, e.g. 00_start_here (default: all)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per notebook; the median is kept")
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.timeout)))
        return
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")

    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.stems:
        known = {p.stem: p for p in paths}
        unknown = [s for s in args.stems if s not in known]
        if unknown:
            parser.error(f"unknown notebook(s) {unknown}; expected some of {sorted(known)}")
        paths = [known[s] for s in args.stems]

    rows = []
    for path in paths:
        runs = [measure(path, args.timeout) for _ in range(args.repeat)]
        row = {"notebook": path.stem,
               "seconds": statistics.median(r["seconds"] for r in runs),
               "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
               "load_1min": os.getloadavg()[0],
               "peak_mib": max(r["peak_mib"] for r in runs),
               "runs": len(runs)}
        rows.append(row)
        print(f"{row['notebook']}: {row['seconds']:.1f} s wall, {row['cpu_seconds']:.1f} s CPU, "
              f"{row['peak_mib']:.0f} MiB, load {row['load_1min']:.1f}", flush=True)

    text = table(rows)
    print(text)
    if not args.stems:
        RESULTS.mkdir(parents=True, exist_ok=True)
        meta = {"python": platform.python_version(), "machine": platform.machine(),
                "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
        (RESULTS / "notebook_times.json").write_text(json.dumps({"meta": meta, "rows": rows},
                                                                indent=2) + "\n")
        (RESULTS / "notebook_times.md").write_text(
            "# Notebook run times\n\n"
            f"Measured by `python bench/notebook_times.py` on {meta['date']} "
            f"({meta['cpus']} CPUs, Python {meta['python']}, CI=true).\n"
            "1-minute load average after each notebook: "
            + ", ".join(f"{r['notebook']} {r['load_1min']:.1f}" for r in rows)
            + " (a load above the 2 CPUs stretches the wall time; the CPU time barely moves).\n\n"
            f"{text}\n")


if __name__ == "__main__":
    main()
