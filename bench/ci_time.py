"""Time each stage of `make test` (the CI job) and keep the running total against CI's limit.

CI runs `bash .ci/run` (= `make test`) on a clean clone with a 90-minute limit; the course aims for
under 45 minutes with every chapter in.  This script runs the stages one by one and records how long
each took, so a chapter that eats the budget shows up here, not as a CI time-out.

    python bench/ci_time.py           # stages in this checkout (the environment already installed)
    python bench/ci_time.py --fresh   # clone HEAD into a temporary folder first:
                                      # includes the install

Writes ``bench/results/ci_time.json`` and ``.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
STAGES = ("setup", "lint", "unit", "notebooks", "book-check")
LIMIT_S, AIM_S = 90 * 60, 45 * 60


def run_stage(target: str, cwd: Path) -> float:
    start = time.perf_counter()
    out = subprocess.run(["make", target], cwd=cwd, env={**os.environ, "CI": "true"},
                         capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"`make {target}` failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true",
                        help="time a clean clone of HEAD, install included")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vlm-course-ci-") as tmp:
        cwd = ROOT
        if args.fresh:
            cwd = Path(tmp) / "clone"
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(cwd)], check=True)
        rows = [{"stage": s, "seconds": run_stage(s, cwd)} for s in STAGES]

    total = sum(r["seconds"] for r in rows)
    lines = ["| stage of `make test` | seconds |", "|---|---:|"]
    lines += [f"| {r['stage']} | {r['seconds']:.0f} |" for r in rows]
    lines.append(f"| **total** | **{total:.0f}** ({total / 60:.1f} min) |")
    table = "\n".join(lines)
    verdict = (f"{100 * total / LIMIT_S:.0f}% of CI's 90-minute limit; "
               f"{'within' if total <= AIM_S else 'OVER'} the 45-minute aim")
    print(table)
    print(verdict)

    meta = {"fresh_clone": args.fresh, "python": platform.python_version(),
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ci_time.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "total_s": total}, indent=2) + "\n")
    setup_note = ("a fresh clone: `setup` is the whole install" if args.fresh
                  else "an installed checkout: `setup` only checks the environment is current")
    (RESULTS / "ci_time.md").write_text(
        "# CI time budget\n\n"
        f"Measured by `python bench/ci_time.py{' --fresh' if args.fresh else ''}`"
        f" on {meta['date']} ({meta['cpus']} CPUs, Python {meta['python']}), in {setup_note}.\n\n"
        f"{table}\n\n{verdict}.\n")


if __name__ == "__main__":
    main()
