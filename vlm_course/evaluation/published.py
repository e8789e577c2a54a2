"""Published zero-shot ImageNet accuracies of contrastive VLMs, typed from their papers.

Chapter 12 (benchmarks; survey § 8, "Performance Comparison").  The survey reads its comparison
tables as three trends: zero-shot accuracy grows with the pre-training data, with the model, and
(for contrastive objectives) with the batch.  These rows are the numbers behind the first two,
each with the paper (a key of ``book/references.bib``) and the place in it the number comes from.

Only numbers the course could check against the source are here; models whose numbers could not be
checked (e.g. CLIP ViT-B/16, FILIP, LiT's data size, EVA-CLIP) are left out rather than quoted
from memory.  One caveat: CLIP's ViT-B/32 and ViT-L/14 rows (63.2, 75.3) are the widely quoted
figures of the paper's per-model appendix table, which could not be re-opened offline when they
were typed; the ViT-L/14@336px row (76.2) was checked against a second paper.

``pairs`` is the size of the pre-training set in image-text pairs (not the number
of pairs *seen*, which counts epochs); ``top1`` is zero-shot top-1 accuracy (%) on the ImageNet-1k
validation set as the source reports it.  Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PUBLISHED", "Published", "rows"]


@dataclass(frozen=True)
class Published:
    """One published result: ``model`` (as the source names it), ``family`` (the series it is
    plotted with), ``data`` (pre-training set), ``pairs`` (its size, image-text pairs),
    ``top1`` (zero-shot ImageNet top-1, %), ``key`` (citation key in ``book/references.bib``)
    and ``source`` (where in the paper or release the number is)."""

    model: str
    family: str
    data: str
    pairs: float
    top1: float
    key: str
    source: str


_CLIP_TABLE = "Radford et al. 2021, appendix table of zero-shot results per CLIP model, ImageNet"
_CLIP_BEST = ("Radford et al. 2021, Table 1 (CLIP vs Visual N-Grams, ImageNet column); also "
              "quoted by Pham et al. 2023, section 1")
_OPENCLIP = ("OpenCLIP release v0.2.1 'Pretrained Weights' table (In1k zero-shot top-1), also in "
             "the repository's docs/PRETRAINED.md")

#: The rows, grouped by family.  ``family`` "CLIP (WIT-400M)" and "OpenCLIP (LAION-400M)" hold
#: the data fixed and vary the model; "largest model of each paper" varies the data.
PUBLISHED: tuple[Published, ...] = (
    Published("CLIP ViT-B/32", "CLIP (WIT-400M)", "WIT", 400e6, 63.2, "radford2021clip",
              _CLIP_TABLE),
    Published("CLIP ViT-L/14", "CLIP (WIT-400M)", "WIT", 400e6, 75.3, "radford2021clip",
              _CLIP_TABLE),
    Published("CLIP ViT-L/14@336px", "CLIP (WIT-400M)", "WIT", 400e6, 76.2, "radford2021clip",
              _CLIP_BEST),
    Published("OpenCLIP ViT-B/32", "OpenCLIP (LAION-400M)", "LAION-400M", 400e6, 62.96,
              "ilharco2021openclip", _OPENCLIP + ", checkpoint laion400m_e31"),
    Published("OpenCLIP ViT-B/16", "OpenCLIP (LAION-400M)", "LAION-400M", 400e6, 67.07,
              "ilharco2021openclip", _OPENCLIP + ", checkpoint laion400m_e32"),
    Published("OpenCLIP ViT-L/14", "OpenCLIP (LAION-400M)", "LAION-400M", 400e6, 72.77,
              "ilharco2021openclip", _OPENCLIP + ", checkpoint laion400m_e32"),
    Published("OpenCLIP ViT-B/32", "OpenCLIP ViT-B/32", "LAION-2B", 2e9, 65.62,
              "ilharco2021openclip", _OPENCLIP + ", checkpoint laion2b_e16 (LAION-2B: the "
              "English subset of LAION-5B, Schuhmann et al. 2022)"),
    Published("CLIP ViT-L/14@336px", "largest model of each paper", "WIT", 400e6, 76.2,
              "radford2021clip", _CLIP_BEST),
    Published("ALIGN (EfficientNet-L2 + BERT-Large)", "largest model of each paper",
              "ALIGN alt-text", 1.8e9, 76.4, "jia2021align",
              "Jia et al. 2021, Table 4 (zero-shot ImageNet top-1); 1.8B pairs: section 3"),
    Published("BASIC-L", "largest model of each paper", "ALIGN + JFT", 6.6e9, 85.7,
              "pham2023basic", "Pham et al. 2023, abstract (85.7% top-1 zero-shot on the "
              "ILSVRC-2012 validation set; 6.6B noisy image-text pairs)"),
)


def rows(family: str | None = None) -> list[Published]:
    """The rows of ``family`` (all rows for ``None``), in table order.

    Raises:
        ValueError: ``family`` names no family of :data:`PUBLISHED` (the known ones are listed).
    """
    families = list(dict.fromkeys(r.family for r in PUBLISHED))
    if family is None:
        return list(PUBLISHED)
    if family not in families:
        raise ValueError(f"family must be one of {families}, got {family!r}")
    return [r for r in PUBLISHED if r.family == family]
