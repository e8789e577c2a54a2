"""Chapter 07's comparison: two-tower, two-leg and one-tower models trained on the same data.

Run:  OMP_NUM_THREADS=1 python bench/frameworks.py [--rounds 5] [--captions 1000]

The three models are the shipped checkpoints ``frameworks_two_tower``, ``frameworks_two_leg`` and
``frameworks_one_tower``, trained by the course CLI with the one protocol of
:mod:`vlm_course.recipes.frameworks` (same ShapeWorld scenes in the same order, same caption per
scene, same step budget, batch, schedule and seed) and shipped by :func:`vlm_course.pretrained.ship`
(commands in their cards; see :data:`SHIP`).  The table's columns:

* ``parameters`` of each loaded model;
* training throughput, pairs per CPU-second (and per wall-second in the JSON): one full step of
  each recipe (batch source + forward + backward + AdamW) on fresh models, the three interleaved
  for ``--rounds`` rounds after a warm-up, medians — measured side by side here;
* the quality columns of :func:`vlm_course.evaluation.frameworks.framework_report`, measured when
  each checkpoint was shipped (the card's ``evaluation``; the same report, the same scenes for
  all three; the notebook re-measures part of it live): zero-shot colour / shape accuracy, the
  same with misspelt class names, retrieval R@1 both ways and Winoground in miniature (group
  accuracy); the two-leg model is scored by its fusion encoder's match probability;
* the cost of ranking ``--captions`` captions for one image, measured here: two-tower and
  one-tower encode the captions once (an index) and rank by a dot product; the two-leg model's
  fusion encoder must run on every (image, caption) pair.

Results: bench/results/frameworks.json and frameworks.md; with ``--ship`` also
frameworks_two_leg_training.json, the two-leg run's training curve (and its ``tiny_itm``
ablation's, trained into ``RUN_ROOT/two_leg_itm`` when present).  Speed is measured here,
never asserted in a test.
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
from vlm_course.cli import preset_of
from vlm_course.evaluation.frameworks import index_captions, score_captions
from vlm_course.evaluation.winoground import KINDS
from vlm_course.recipes.frameworks import FRAMEWORKS
from vlm_course.world import ShapeWorld, WorldConfig

RESULTS = Path(__file__).parent / "results"
CHECKPOINT = "frameworks_{}"          # framework name with "-" -> "_"


def checkpoint_name(framework: str) -> str:
    return CHECKPOINT.format(framework.replace("-", "_"))


def throughput(rounds: int) -> dict:
    """Pairs per CPU-second and per wall-second of one training step of each framework."""
    runs = {}
    for name, (recipe, preset) in FRAMEWORKS.items():
        module, spec = preset_of(recipe, preset)
        torch.manual_seed(0)
        model = module.build_model(spec).train()
        source = module.batches(ShapeWorld(spec.world), model, spec.train, **spec.options)
        runs[name] = (module, model, source, torch.optim.AdamW(model.parameters(), lr=1e-4))
    times = {name: {"cpu": [], "wall": [], "data_cpu": []} for name in runs}
    for r in range(rounds + 1):                       # round 0 is the warm-up
        for name, (module, model, source, opt) in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            batch = source(r)
            data_cpu = time.process_time() - cpu
            loss, _ = module.step(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if r:
                times[name]["cpu"].append(time.process_time() - cpu)
                times[name]["wall"].append(time.perf_counter() - wall)
                times[name]["data_cpu"].append(data_cpu)
    B = preset_of(*FRAMEWORKS["two-tower"])[1].train.batch_size
    return {name: {"pairs_per_cpu_s": B / statistics.median(t["cpu"]),
                   "pairs_per_wall_s": B / statistics.median(t["wall"]),
                   "data_share": statistics.median(t["data_cpu"]) / statistics.median(t["cpu"])}
            for name, t in times.items()}


def ranking_cost(models: dict, world: ShapeWorld, n_captions: int, repeats: int = 3) -> dict:
    """CPU seconds to build the caption index and to rank ``n_captions`` for one image."""
    batch = world.batch("test", range(n_captions // 5 + 1), masks=False)
    captions = [c for caps in batch.captions for c in caps][:n_captions]
    image = batch.images[:1]
    out = {}
    for name, model in models.items():
        fused = name == "two-leg"          # every pair through the fusion encoder
        score_captions(model, image, index_captions(model, captions[:8], fused=fused),
                       fused=fused)       # warm-up (first calls allocate)
        cpu = time.process_time()
        index = index_captions(model, captions, fused=fused)
        index_s = time.process_time() - cpu
        per_query = []
        for _ in range(repeats):
            cpu = time.process_time()
            score_captions(model, image, index, fused=fused).argsort(descending=True)
            per_query.append(time.process_time() - cpu)
        out[name] = {"index_cpu_s": index_s, "query_cpu_s": statistics.median(per_query)}
    return out


#: How the three checkpoints were shipped (after training each with
#: ``python -m vlm_course.cli RECIPE --preset tiny --out runs/NAME``).
SHIP = {"n_zeroshot": 300, "n_retrieval": 300, "n_winoground": 100}

#: What each framework's run trains, for its card.
OBJECTIVES = {
    "two-tower": "chapter 04's CLIP: symmetric InfoNCE between the two towers' embeddings",
    "two-leg": ("ALBEF-style: InfoNCE between the towers + image-text matching on the fusion "
                "encoder (random negatives for the first vlm_course.recipes.itm.RANDOM_STEPS = "
                "200 steps, chapter 06's warm-up, then hard negatives drawn by the towers' "
                "similarity, word-swapped captions among the candidates) + masked language "
                "modelling of 15% of the caption words given the image (chapter 05's "
                "bert_masking and mlm_loss on an MLM head over the fused tokens)"),
    "one-tower": ("CLIPPO: chapter 04's InfoNCE, the captions rendered to pixels and read by "
                  "the same ViT as the images"),
}


def training_curves(run_root: str, every: int = 20) -> dict:
    """The two-leg run's training curve (means over ``every`` steps of its ``metrics.jsonl``),
    and that of the ``tiny_itm`` ablation (same run without MLM) when ``run_root/two_leg_itm``
    holds one: what chapter 07 plots to show where the matching head stalls."""
    out = {"every": every}
    for folder, preset in (("two_leg", "tiny"), ("two_leg_itm", "tiny_itm")):
        path = Path(run_root) / folder / "metrics.jsonl"
        if not path.exists():
            continue
        records = [json.loads(line) for line in path.read_text().splitlines() if line]
        keys = [k for k in ("contrastive", "itm", "itm_accuracy", "mlm", "mlm_accuracy")
                if k in records[0]]
        bins = [records[i:i + every] for i in range(0, len(records), every)]
        out[preset] = {"step": [b[0]["step"] for b in bins],
                       **{k: [sum(r[k] for r in b) / len(b) for b in bins] for k in keys}}
    return out


def ship_all(run_root: str) -> None:
    """Ship the three runs under ``run_root`` (``run_root/<framework>``, e.g. ``two_tower``)."""
    for name, (recipe, preset) in FRAMEWORKS.items():
        folder = name.replace("-", "_")
        command = (f"python -m vlm_course.cli {recipe} --preset {preset} --out runs/{folder}; "
                   f"python bench/frameworks.py --ship runs")
        spec = preset_of(recipe, preset)[1]
        description = (
            f"Chapter 07's {name} model ({OBJECTIVES[name]}), trained from scratch on the "
            f"shared framework-comparison protocol (vlm_course.recipes.frameworks: "
            f"{spec.train.steps} steps of {spec.train.batch_size} ShapeWorld pairs, the same "
            f"scenes and captions for all three frameworks, seed {spec.train.seed}) by the course "
            "CLI, one thread, on a shared 2-core CPU (load average 2-16 from other jobs: "
            "wall_time_s and sum_step_seconds say little about cost; bench/frameworks.py "
            "measures throughput side by side). Re-shipped for issue 11: the first shipped "
            "version had 100 steps (too few for the two-leg fusion encoder to learn anything; "
            "its ITM negatives were hard from step 0) and no MLM.")
        card = pretrained.ship(f"{run_root}/{folder}", checkpoint_name(name), command=command,
                               description=description, **SHIP)
        print(name, json.dumps(card["evaluation"]["winoground"]["binding"]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "frameworks_two_leg_training.json").write_text(
        json.dumps(training_curves(run_root), indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--captions", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ship", metavar="RUN_ROOT",
                        help="first ship the three runs found under RUN_ROOT/<framework>")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.ship:
        ship_all(args.ship)

    models, cards = {}, {}
    for name in FRAMEWORKS:
        models[name] = pretrained.load(checkpoint_name(name), device="cpu")
        cards[name] = pretrained.card(checkpoint_name(name))
    world = ShapeWorld(WorldConfig.from_dict(cards["two-tower"]["world_config"]))
    speed = throughput(args.rounds)
    ranking = ranking_cost(models, world, args.captions)

    rows = []
    for name, model in models.items():
        r, card = cards[name]["evaluation"], cards[name]
        rows.append({
            "framework": name, "checkpoint": checkpoint_name(name),
            "parameters": sum(p.numel() for p in model.parameters()),
            "steps": card["steps"], "batch_size": card["batch_size"],
            **{f"train_{k}": v for k, v in speed[name].items()},
            "zeroshot_colour": r["zeroshot"]["colour"], "zeroshot_shape": r["zeroshot"]["shape"],
            "misspelt_colour": r["misspelt"]["colour"]["mean"],
            "misspelt_shape": r["misspelt"]["shape"]["mean"],
            "i2t_R@1": r["retrieval"]["i2t_R@1"], "t2i_R@1": r["retrieval"]["t2i_R@1"],
            **{f"{k}_group": r["winoground"][k]["group"] for k in KINDS},
            **{f"binding_{k}": r["winoground"]["binding"][k] for k in ("text", "image")},
            **({"binding_group_towers": r["winoground_towers"]["binding"]["group"]}
               if "winoground_towers" in r else {}),
            **{f"rank_{k}": v for k, v in ranking[name].items()},
        })
    result = {"rows": rows, "ranking_captions": args.captions, "ship": SHIP,
              "protocol": cards["two-tower"]["evaluation"]["protocol"], "args": vars(args),
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "torch": torch.__version__, "threads": args.threads}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "frameworks.json").write_text(json.dumps(result, indent=2) + "\n")
    header = ["framework", "params", "pairs/CPU-s", "colour", "shape", "colour (typo)",
              "shape (typo)", "i2t R@1", "t2i R@1", "binding", "relation", "count",
              f"index {args.captions} captions (CPU s)", "rank them for 1 image (CPU s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["framework"], f"{row['parameters']:,}", f"{row['train_pairs_per_cpu_s']:.0f}",
                 *(f"{row[k]:.3f}" for k in ("zeroshot_colour", "zeroshot_shape",
                                             "misspelt_colour", "misspelt_shape", "i2t_R@1",
                                             "t2i_R@1", "binding_group", "relation_group",
                                             "count_group")),
                 f"{row['rank_index_cpu_s']:.3f}", f"{row['rank_query_cpu_s']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    towers = next(row for row in rows if "binding_group_towers" in row)
    md = (f"# Chapter 07: the three frameworks compared\n\n"
          f"`OMP_NUM_THREADS=1 python bench/frameworks.py` ({args.rounds} interleaved "
          f"training-step rounds, 1 thread; quality columns from the cards, shipped with "
          f"`--ship` = framework_report({SHIP}))\n\n" + "\n".join(lines) + "\n\n"
          f"Winoground columns: group accuracy on {SHIP['n_winoground']} items of each kind "
          "(chance 1/6); the two-leg row is scored by its fusion encoder's match probability "
          f"(its towers' cosine alone: binding {towers['binding_group_towers']:.3f}). Typo "
          "columns: mean zero-shot accuracy over three one-letter typos of every class name "
          f"(chance 1/8). Training: {rows[0]['steps']} steps of {rows[0]['batch_size']} pairs "
          "each, same data and seed; the objectives are in each card's description.\n")
    (RESULTS / "frameworks.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
