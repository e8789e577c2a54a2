"""Unsupervised transfer by pseudo-labelling (vlm_course.transfer.pseudo_label, chapter 14)."""

import pytest
import torch

from vlm_course.transfer.pseudo_label import class_balanced_pseudo_labels, pseudo_label_probe


def test_top_k_per_class_by_hand():
    # 6 images, 2 classes; class 0's two likeliest images are 0 and 1, class 1's are 4 and 5
    logits = torch.tensor([[5.0, 0.0], [4.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 4.0],
                           [0.0, 5.0]])
    indices, labels = class_balanced_pseudo_labels(logits, 2)
    assert indices.tolist() == [0, 1, 4, 5]
    assert labels.tolist() == [0, 0, 1, 1]
    assert indices.dtype == labels.dtype == torch.int64


def test_balanced_even_when_every_argmax_is_one_class():
    # every image's argmax is class 0 (a biased zero-shot classifier), yet class 1 gets the
    # images where it is least unlikely
    logits = torch.tensor([[9.0, 0.0], [9.0, 1.0], [9.0, 8.0], [9.0, 7.0]])
    assert (logits.argmax(1) == 0).all()
    indices, labels = class_balanced_pseudo_labels(logits, 1)
    assert indices.tolist() == [0, 2]
    assert labels.tolist() == [0, 1]


def test_an_image_chosen_twice_is_kept_once_for_its_likelier_class():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 0.0, 0.0]])
    # class 0's top-1 is image 0; class 1's top-1 is image 0 too (softmax 0.24 > image 2's 0.21)
    indices, labels = class_balanced_pseudo_labels(logits, 1)
    assert indices.tolist() == [0, 1]
    assert labels.tolist() == [0, 2]
    assert len(set(indices.tolist())) == len(indices)


def test_selection_invariants_on_random_logits():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 5, generator=g) * 3
    for k in (1, 7, 40, 200):
        indices, labels = class_balanced_pseudo_labels(logits, k)
        assert len(indices) <= 5 * k and len(set(indices.tolist())) == len(indices)
        assert torch.all(indices[1:] > indices[:-1])
        probs = logits.softmax(1)
        for i, c in zip(indices.tolist(), labels.tolist(), strict=True):
            # the label is a class whose top k holds the image
            assert i in probs[:, c].topk(k).indices.tolist()
    indices, _ = class_balanced_pseudo_labels(logits, 200)
    assert len(indices) == 200       # k = N: every image, once


def test_probe_on_pseudo_labels_undoes_a_biased_zero_shot_classifier():
    # two well-separated clusters; the "zero-shot" logits prefer class 0 for almost everything
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat_interleave(100)
    features = torch.randn(200, 8, generator=g) * 0.3
    features[:, 0] += labels.float() * 2 - 1                     # class 0 at -1, class 1 at +1
    logits = torch.stack([torch.full((200,), 2.0), features[:, 0]], dim=1)
    zero_shot = float((logits.argmax(1) == labels).float().mean())
    probe, indices, pseudo = pseudo_label_probe(features, logits, 20)
    adapted = probe.score(features, labels)
    assert zero_shot < 0.6 and adapted > 0.95
    assert float((labels[indices] == pseudo).float().mean()) > 0.9


@pytest.mark.parametrize("logits, k, match", [
    ([[1.0, 2.0]], 1, "logits"),
    (torch.zeros(4), 1, "logits"),
    (torch.zeros(4, 2, dtype=torch.long), 1, "logits"),
    (torch.tensor([[float("nan"), 0.0]]), 1, "logits"),
    (torch.zeros(4, 2), 0, "k"),
    (torch.zeros(4, 2), 5, "k"),
    (torch.zeros(4, 2), 1.5, "k"),
])
def test_selection_errors_name_the_argument(logits, k, match):
    with pytest.raises((TypeError, ValueError), match=match):
        class_balanced_pseudo_labels(logits, k)


def test_probe_errors_name_the_argument():
    with pytest.raises(ValueError, match="features"):
        pseudo_label_probe(torch.zeros(5, 3), torch.zeros(4, 2), 1)
    with pytest.raises(ValueError, match="features"):
        pseudo_label_probe(torch.zeros(5), torch.zeros(5, 2), 1)
    with pytest.raises(ValueError, match="single class"):
        # one class only: K = 1
        pseudo_label_probe(torch.randn(5, 3), torch.zeros(5, 1), 2)
