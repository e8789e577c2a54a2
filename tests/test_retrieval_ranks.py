"""Chapter 08 retrieval protocol: ranks, R@1/5/10, median rank, tie and duplicate rules."""

import itertools

import pytest
import torch

from vlm_course.evaluation.retrieval import (
    caption_owner,
    duplicate_ids,
    evaluate_retrieval_ranked,
    recall_at_k,
    retrieval_metrics,
    retrieval_ranks,
)


def problem(seed=0, n_images=30, per_image=3, D=6):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n_images, D, generator=g)
    owner_idx = torch.arange(n_images).repeat_interleave(per_image)
    txt = img[owner_idx] + 1.2 * torch.randn(len(owner_idx), D, generator=g)
    owner = torch.nn.functional.one_hot(owner_idx, n_images).bool()
    owner[0, 1] = True                                   # one sentence true of two images
    return img, txt, owner


def brute_force(img, txt, owner, ks):
    """Loop over queries: sort candidates by cosine, rank of the first true one (no ties)."""
    sim = torch.nn.functional.normalize(txt.double(), dim=1) @ torch.nn.functional.normalize(
        img.double(), dim=1).T
    out = {}
    for name, s, true in (("t2i", sim, owner), ("i2t", sim.T, owner.T)):
        ranks = []
        for q in range(s.shape[0]):
            if not true[q].any():
                continue
            order = sorted(range(s.shape[1]), key=lambda c, q=q: -float(s[q, c]))
            ranks.append(1 + next(i for i, c in enumerate(order) if true[q, c]))
        for k in ks:
            out[f"{name}_R@{k}"] = sum(r <= k for r in ranks) / len(ranks)
        out[f"{name}_median_rank"] = float(torch.tensor(ranks, dtype=torch.float64).median())
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_equal_brute_force_count(seed):
    img, txt, owner = problem(seed)
    ours = retrieval_metrics(img, txt, owner, ks=(1, 5, 10))
    ref = brute_force(img, txt, owner, (1, 5, 10))
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value), key


def test_pessimistic_rule_equals_recall_at_k():
    img, txt, owner = problem(2)
    img[3] = img[4]                                      # create exact ties
    old = recall_at_k(img, txt, owner, ks=(1, 5))
    new = retrieval_metrics(img, txt, owner, ks=(1, 5), ties="pessimistic")
    for key, value in old.items():
        assert new[key] == pytest.approx(value), key


def test_perfect_and_constant_models():
    N = 8
    eye = torch.eye(N)
    perfect = retrieval_metrics(eye, eye, torch.arange(N), ks=(1,))
    assert perfect["t2i_R@1"] == 1.0 and perfect["i2t_R@1"] == 1.0
    assert perfect["t2i_median_rank"] == 1.0
    constant = retrieval_metrics(torch.ones(N, 4), torch.ones(N, 4), torch.arange(N),
                                 ks=(1, 5, 10))
    for k in (1, 5, 10):                                 # chance: K / N, capped at 1
        assert constant[f"t2i_R@{k}"] == pytest.approx(min(k, N) / N)
        assert constant[f"i2t_R@{k}"] == pytest.approx(min(k, N) / N)
    assert constant["t2i_mean_rank"] == pytest.approx((N + 1) / 2)
    pessimistic = retrieval_metrics(torch.ones(N, 4), torch.ones(N, 4), torch.arange(N),
                                    ks=(1,), ties="pessimistic")
    assert pessimistic["t2i_R@1"] == 0.0                 # every tie counts against the query


def test_expected_ties_equal_average_over_all_tie_orders():
    # one query (caption) over 5 images: 2 true images, all 5 tied except image 4 scores lower
    img = torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]])
    txt = torch.tensor([[1.0, 0.0]])
    owner = torch.tensor([[True, False, True, False, False]])
    ours = retrieval_metrics(img, txt, owner, ks=(1, 2, 3))
    t2i_rank, _ = retrieval_ranks(img, txt, owner)
    hits = {1: [], 2: [], 3: []}
    ranks = []
    for order in itertools.permutations(range(4)):      # every order of the 4 tied images
        rank = 1 + next(i for i, c in enumerate(order) if owner[0, c])
        ranks.append(rank)
        for k in hits:
            hits[k].append(rank <= k)
    for k in hits:
        assert ours[f"t2i_R@{k}"] == pytest.approx(sum(hits[k]) / len(hits[k]))
    assert float(t2i_rank[0]) == pytest.approx(sum(ranks) / len(ranks))


def test_duplicate_images_rule():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 8, 8, generator=g)
    images[2] = images[0]                                # image 2 is a twin of image 0
    groups = duplicate_ids(images)
    assert groups.tolist() == [0, 1, 0, 2]
    captions = [["a"], ["b"], ["c"], ["d", "a"]]
    flat, owner = caption_owner(captions)
    assert flat == ["a", "b", "c", "d"] and owner[0].tolist() == [True, False, False, True]
    _, merged = caption_owner(captions, groups)
    assert merged[0].tolist() == [True, False, True, True]   # "a" is also true of the twin
    assert merged[2].tolist() == [True, False, True, False]


class PixelModel(torch.nn.Module):
    """Image embedding = flattened pixels; caption "i" embeds like image i (a perfect model)."""

    def __init__(self, images):
        super().__init__()
        self.images = images

    def tokenize(self, texts):
        return list(texts)

    def encode_image(self, images):
        return images.flatten(1)

    def encode_text(self, texts):
        return torch.stack([self.images[int(t)].flatten() for t in texts])


def test_evaluate_retrieval_ranked_merges_duplicates():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(5, 3, 4, 4, generator=g)
    images[3] = images[1]
    captions = [[str(i)] for i in range(5)]
    merged = evaluate_retrieval_ranked(PixelModel(images), images, captions, ks=(1,))
    assert merged["n_duplicate_images"] == 1
    assert merged["t2i_R@1"] == 1.0 and merged["i2t_R@1"] == 1.0
    raw = evaluate_retrieval_ranked(PixelModel(images), images, captions, ks=(1,),
                                    merge_duplicate_images=False)
    assert raw["t2i_R@1"] == pytest.approx(3 / 5 + 2 * 0.5 / 5)  # twins tie: half a hit each


@pytest.mark.parametrize("bad, match", [("ties", "ties"), ("ks", "ks"), ("shape", "share D")])
def test_retrieval_metrics_errors(bad, match):
    img, txt, owner = problem(0)
    kwargs = {"ks": (1,), "ties": "expected"}
    if bad == "ties":
        kwargs["ties"] = "optimistic"
    elif bad == "ks":
        kwargs["ks"] = (0,)
    else:
        txt = txt[:, :3]
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(img, txt, owner, **kwargs)


def test_caption_owner_errors():
    with pytest.raises(ValueError, match="captions"):
        caption_owner([["a"], []])
    with pytest.raises(ValueError, match="groups"):
        caption_owner([["a"], ["b"]], torch.tensor([0, 1, 2]))
