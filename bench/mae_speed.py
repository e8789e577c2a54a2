"""MAE encoder speed vs mask ratio: the encoder sees only the visible patches (chapter 05).

Run:  OMP_NUM_THREADS=1 python bench/mae_speed.py [--batch 256] [--repeats 15] [--threads 1]
                                                 [--forward-only]

He et al. (2022) note that removing 75% of the patches *before* the encoder makes pre-training
about 3x faster or more.  This script times ``MaskedAutoencoder.forward_encoder`` (patch
embedding, masking, ViT blocks, final norm) on the ``MAEConfig.tiny()`` model at mask ratios 0,
0.5, 0.75 and 0.9, interleaved in one run (round-robin, so slow phases of a shared machine hit
every ratio alike), and reports for each ratio the median wall time and the median CPU time of
this process per batch, forward + backward (or forward only), and the speed-up against ratio 0.
It also counts the encoder's FLOPs with ``torch.utils.flop_counter`` — the machine-independent
version of the same fact.  Expect >= 3x at 0.75 (37 tokens -> 10).

Results: bench/results/mae_speed.json and .md.  Speed is measured here, never asserted in a test.
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
from torch.utils.flop_counter import FlopCounterMode

from vlm_course.models.mae import MAEConfig, MaskedAutoencoder

RESULTS = Path(__file__).parent / "results"
RATIOS = (0.0, 0.5, 0.75, 0.9)


def encoder_call(model: MaskedAutoencoder, images: torch.Tensor, ratio: float,
                 backward: bool) -> None:
    """One encoder pass at ``ratio`` (and its backward pass when ``backward``)."""
    if backward:
        latent, _, _ = model.forward_encoder(images, ratio)
        latent.square().mean().backward()
    else:
        with torch.no_grad():
            model.forward_encoder(images, ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--forward-only", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = MaskedAutoencoder(MAEConfig.tiny())
    cfg = model.config.encoder
    images = torch.rand(args.batch, 3, cfg.image_size, cfg.image_size)
    backward = not args.forward_only

    flops = {}
    for ratio in RATIOS:
        counter = FlopCounterMode(display=False)
        with counter:
            encoder_call(model, images, ratio, backward)
        flops[ratio] = counter.get_total_flops()
        model.zero_grad(set_to_none=True)
    for ratio in RATIOS:  # warm-up
        encoder_call(model, images, ratio, backward)
    wall = {r: [] for r in RATIOS}
    cpu = {r: [] for r in RATIOS}
    for _ in range(args.repeats):
        for ratio in RATIOS:
            model.zero_grad(set_to_none=True)
            t0, c0 = time.perf_counter(), time.process_time()
            encoder_call(model, images, ratio, backward)
            wall[ratio].append(time.perf_counter() - t0)
            cpu[ratio].append(time.process_time() - c0)

    rows = []
    base_wall, base_cpu = statistics.median(wall[0.0]), statistics.median(cpu[0.0])
    for ratio in RATIOS:
        tokens = 1 + int(cfg.num_patches * (1 - ratio))
        w, c = statistics.median(wall[ratio]), statistics.median(cpu[ratio])
        rows.append({"mask_ratio": ratio, "encoder_tokens": tokens,
                     "median_wall_ms": round(1e3 * w, 2), "median_cpu_ms": round(1e3 * c, 2),
                     "speedup_wall": round(base_wall / w, 2), "speedup_cpu": round(base_cpu / c, 2),
                     "gflops": round(flops[ratio] / 1e9, 3),
                     "flops_ratio": round(flops[0.0] / flops[ratio], 2)})
    what = "forward" if args.forward_only else "forward+backward"
    header = (f"MAE encoder ({what}), MAEConfig.tiny(): {cfg.image_size}px, patch "
              f"{cfg.patch_size} ({cfg.num_patches} patches), width {cfg.width} x {cfg.layers}; "
              f"batch {args.batch}, {args.repeats} repeats, {args.threads} thread(s)")
    lines = [header, "",
             "| mask ratio | tokens | median wall ms | median CPU ms | speed-up (wall) | "
             "speed-up (CPU) | GFLOPs | FLOPs ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mask_ratio']} | {r['encoder_tokens']} | {r['median_wall_ms']} | "
                     f"{r['median_cpu_ms']} | {r['speedup_wall']}x | {r['speedup_cpu']}x | "
                     f"{r['gflops']} | {r['flops_ratio']}x |")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"command": "python bench/mae_speed.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                if k not in ("out", "forward_only")) + (" --forward-only" if args.forward_only
                                                       else ""),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "backward": backward, "rows": rows}
    (args.out / "mae_speed.json").write_text(json.dumps(meta, indent=1) + "\n")
    (args.out / "mae_speed.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
