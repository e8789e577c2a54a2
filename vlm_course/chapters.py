"""The course map: every chapter, the survey section it teaches and the package modules it uses.

One list, read by chapter 00 (the map a student sees), by ``tests/test_course_map.py`` (which checks
that every notebook on disk is in this list, in the book's table of contents and in the README's
chapter table) and by ``bench/notebook_times.py``.  Adding a chapter starts here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Chapter:
    """One chapter of the course.

    ``number`` is the two-digit prefix of the notebook, ``slug`` the rest of its file name
    (``notebooks/{number}_{slug}.md``), ``survey`` the section of Zhang et al. (TPAMI 2024) it
    covers, ``modules`` the parts of ``vlm_course`` it exercises, and ``section`` /
    ``section_title`` the survey's section number and title as they appear in the paper
    (arXiv:2304.00685v2, the TPAMI 2024 version): every chapter opens with them.
    """

    number: str
    slug: str
    title: str
    survey: str
    demo: str
    modules: str
    section: str
    section_title: str

    @property
    def section_line(self) -> str:
        """The line that opens the chapter, right under its title."""
        return f"*Survey § {self.section} — {self.section_title}*"

    @property
    def stem(self) -> str:
        return f"{self.number}_{self.slug}"


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("00", "start_here", "Start here", "Overview; how to use the course",
            "environment check, course map, a first widget", "settings",
            "1", "Introduction"),
    Chapter("01", "paradigms", "Paradigms of visual recognition",
            "Development of visual recognition paradigms",
            "one task solved five ways, accuracy vs number of labels",
            "evaluation.paradigms, evaluation.handcrafted, models.classifier, recipes.supervised, "
            "training.finetune",
            "2.1", "Training Paradigms for Visual Recognition"),
    Chapter("02", "architectures", "Foundations: network architectures",
            "VLM overview: CNN (ResNet, attention pooling), ViT, text encoder",
            "gradient flow with and without skips; GAP vs attention pooling; pre- vs post-norm",
            "models",
            "3.1", "Network Architectures"),
    Chapter("03", "datasets", "Datasets for VLM pre-training and evaluation",
            "Datasets for pre-training and evaluation",
            "the survey's dataset tables; ShapeWorld gallery, ground truth, held-out compositions",
            "world, text, datasets",
            "4", "Datasets"),
    Chapter("04", "contrastive", "Contrastive objectives",
            "Image, image-text and image-text-label contrastive objectives",
            "temperature widget; batch-size effect; a tiny CLIP trained live; the shipped CLIP",
            "objectives.contrastive, models.clip, training",
            "3.2.1", "Contrastive Objectives"),
    Chapter("05", "generative", "Generative objectives",
            "Masked image, language and cross-modal modelling; image-to-text generation",
            "masks step by step; a shipped MAE's reconstructions with a mask-ratio widget; BERT "
            "masking; a hidden colour word read off the image; captions checked against the scene",
            "objectives.masking, objectives.generative, models.mae, models.multimodal",
            "3.2.2", "Generative Objectives"),
    Chapter("06", "alignment", "Alignment objectives",
            "Image-text matching; region-word alignment",
            "hard negatives; Winoground in miniature; word-to-region heat maps",
            "objectives.alignment, models.fusion, evaluation.winoground",
            "3.2.3", "Alignment Objectives"),
    Chapter("07", "frameworks", "Pre-training frameworks",
            "Two-tower, two-leg and one-tower frameworks",
            "the three frameworks trained on the same data; rendered text; the cost of ranking "
            "1,000 captions", "models.one_tower, models.two_leg, text.rasterise, "
            "recipes.two_tower, recipes.two_leg, recipes.one_tower, evaluation.frameworks",
            "3.3", "VLM Pre-training Frameworks"),
    Chapter("08", "zero_shot", "Zero-shot prediction",
            "Zero-shot classification, segmentation, detection, retrieval",
            "prompt editor; ensembles; dense maps; boxes; R@K", "evaluation",
            "3.4.1", "Zero-shot Prediction"),
    Chapter("09", "linear_probe", "Linear probing", "Linear probing",
            "frozen features + logistic regression vs zero-shot vs few-shot",
            "evaluation.linear_probe, evaluation.layers",
            "3.4.2", "Linear Probing"),
    Chapter("10", "transfer", "Transfer learning", "Prompt tuning; visual adaptation",
            "learnable context, adapters, cache model, visual prompts", "transfer",
            "6", "VLM Transfer Learning"),
    Chapter("11", "distillation", "Knowledge distillation",
            "Knowledge distillation to detection and segmentation",
            "KD temperature widget; a detector with vs without ViLD distillation, base vs novel "
            "AP; a segmenter from pseudo-labels; student vs teacher speed",
            "distill, evaluation",
            "7", "VLM Knowledge Distillation"),
    Chapter("12", "benchmarks", "Benchmarks", "Benchmarking analysis",
            "published zero-shot accuracy vs data and model; the same trends in miniature (data, "
            "width, batch, objective) with a sweep re-run live",
            "evaluation.published, recipes.scaling, recipes.siglip, models.siglip",
            "8", "Performance Comparison"),
    Chapter("13", "real_models", "Real models and real scale", "(bridge to practice)",
            "chapter 08 on a Hugging Face CLIP; export/reload; bf16; torchrun = one process",
            "hub, interop, training.distributed",
            "5", "Vision-Language Model Pre-training"),
    Chapter("14", "challenges", "Challenges and future directions",
            "Challenges and future directions",
            "each challenge beside a measured miniature (binding vs relations, typos, French "
            "names, pairs seen, compute, zero-shot pseudo-labels); open questions",
            "transfer.pseudo_label, evaluation.winoground, evaluation.frameworks, exercises",
            "9", "Future Directions"),
)


def notebooks_dir() -> Path:
    """The ``notebooks/`` folder of a source checkout (the package is installed editable)."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def available(chapter: Chapter, folder: Path | None = None) -> bool:
    """True when the chapter's notebook exists in ``folder`` (default: the checkout's
    notebooks/)."""
    folder = notebooks_dir() if folder is None else folder
    return (folder / f"{chapter.stem}.ipynb").exists()


def markdown_table(folder: Path | None = None) -> str:
    """The course map as a Markdown table: number, chapter, status, survey §, what it covers,
    live demo."""
    rows = ["| # | chapter | status | survey § | what it covers | live demo |",
            "|---|---|---|---|---|---|"]
    for ch in CHAPTERS:
        status = "ready" if available(ch, folder) else "planned"
        rows.append(f"| {ch.number} | {ch.title} | {status} | § {ch.section} {ch.section_title} "
                    f"| {ch.survey} | {ch.demo} |")
    return "\n".join(rows)
