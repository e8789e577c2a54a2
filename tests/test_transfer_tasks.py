"""Chapter 10's downstream task (grainy ShapeWorld), its splits, and the experiment protocol."""

import pytest
import torch

from vlm_course.recipes.clip import PRESETS, build_model
from vlm_course.transfer import protocol
from vlm_course.transfer.tasks import FewShotTask, TaskConfig, add_grain
from vlm_course.world import ShapeWorld, WorldConfig

WORLD = WorldConfig(canvas=48, size_scale=(0.3, 0.44))


@pytest.fixture(scope="module")
def task():
    return FewShotTask(WORLD, TaskConfig(grain=0.1, pool_size=300, test_size=120))


def test_few_shot_sets_are_balanced_deterministic_and_nested(task):
    images, labels = task.few_shot(4, seed=3)
    assert images.shape == (8 * 4, 3, 48, 48) and images.dtype == torch.float32
    assert torch.equal(labels, torch.arange(8).repeat_interleave(4))
    again, _ = task.few_shot(4, seed=3)
    assert torch.equal(images, again)
    other, _ = task.few_shot(4, seed=4)
    assert not torch.equal(images, other)
    bigger, big_labels = task.few_shot(8, seed=3)
    first4 = torch.cat([bigger[8 * c: 8 * c + 4] for c in range(8)])  # nested in the 8-shot set
    assert torch.equal(first4, images)


def test_labels_are_the_worlds_ground_truth(task):
    world = ShapeWorld(WORLD.replace(min_objects=1, max_objects=1))
    batch = world.batch("test", range(40), masks=False)
    assert torch.equal(task.labels("test", 40), batch.labels["shape"])
    colour = FewShotTask(WORLD, TaskConfig(label="colour", pool_size=50, test_size=40))
    assert torch.equal(colour.labels("test", 40), batch.labels["colour"])
    assert colour.classnames == list(WORLD.colours)


def test_few_shot_images_show_their_class(task):
    """The picked scenes really are of the labelled class (checked on the clean renderings)."""
    clean = FewShotTask(WORLD, TaskConfig(grain=0.0, pool_size=300))
    images, labels = clean.few_shot(2, seed=0, classes=[5, 1])
    assert labels.tolist() == [0, 0, 1, 1]
    world = ShapeWorld(WORLD.replace(min_objects=1, max_objects=1))
    pool = world.batch("train", range(300), masks=False)
    for image, label in zip(images, labels, strict=True):
        match = [i for i in range(300) if torch.equal(pool.images[i], image)]
        assert match and int(pool.labels["shape"][match[0]]) == [5, 1][int(label)]


def test_grain_is_deterministic_per_scene_and_zero_grain_is_clean(task):
    a = task.images("train", [3, 7])
    b = task.images("train", [7])
    torch.testing.assert_close(a[1:], b, rtol=0, atol=0)  # same scene, same noise, any batch
    clean = ShapeWorld(WORLD.replace(min_objects=1, max_objects=1)).images("train", [3, 7])
    noise = a - clean
    assert 0.05 < float(noise.std()) < 0.1 and a.min() >= 0 and a.max() <= 1
    assert torch.equal(add_grain(clean, 0.0, [0, 1]), clean)
    assert not torch.equal(task.images("val", [3]), task.images("train", [3])[:1])


def test_test_set_and_base_to_new_split(task):
    images, labels = task.test_set()
    assert images.shape[0] == 120 and labels.shape == (120,)
    base, new = task.base_new()
    assert base == [0, 1, 2, 3] and new == [4, 5, 6, 7]
    new_images, new_labels = task.test_set(new)
    all_labels = task.labels("test", 120)
    assert new_labels.tolist() == [int(c) - 4 for c in all_labels if c >= 4]
    assert task.names(new) == ["cross", "star", "heart", "ring"]


def test_task_errors_name_the_argument(task):
    cases = [
        (lambda: task.few_shot(0), "shots"),
        (lambda: task.few_shot(1000), "shots=1000"),
        (lambda: task.few_shot(1, classes=[0, 8]), "classes"),
        (lambda: task.few_shot(1, classes=[1, 1]), "classes"),
        (lambda: task.labels("holdout", 3), "split"),
        (lambda: TaskConfig(label="texture"), "label"),
        (lambda: TaskConfig(grain=-0.1), "grain"),
        (lambda: TaskConfig(pool_size=0), "pool_size"),
        (lambda: add_grain(torch.rand(2, 3, 8, 8), 0.1, [1]), "seeds"),
    ]
    for make_error, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            make_error()
    with pytest.raises(TypeError, match="world_cfg"):
        FewShotTask({"canvas": 48})


# ----------------------------------------------------------------------------- protocol
def test_summarise_and_harmonic_mean():
    rows = [{"method": "a", "shots": 1, "accuracy": 0.5}, {"method": "a", "shots": 1,
                                                            "accuracy": 0.7},
            {"method": "b", "shots": 1, "accuracy": 0.2}]
    table = protocol.summarise(rows)
    assert table[0] == pytest.approx({"method": "a", "shots": 1, "mean": 0.6, "std": 0.1, "n": 2})
    assert table[1]["std"] == 0.0 and table[1]["n"] == 1
    assert protocol.harmonic_mean(0.5, 1.0) == pytest.approx(2 / 3)
    assert protocol.harmonic_mean(0.0, 0.0) == 0.0


def test_protocol_runs_every_method_on_a_tiny_task():
    torch.manual_seed(0)
    model = build_model(PRESETS["tiny"]()).eval()
    small = FewShotTask(WORLD, TaskConfig(grain=0.05, pool_size=200, test_size=40))
    rows = protocol.run_few_shot(model, small, shots=(1,), seeds=(0,), steps_scale=0.02)
    assert [r["method"] for r in rows] == list(protocol.METHODS)
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and r["shots"] == 1
        assert (r["trainable"] == 0) == (r["method"] in ("zero-shot", "Tip-Adapter"))
    b2n = protocol.run_base_to_new(model, small, ["zero-shot", "CoOp"], shots=1, seeds=(0,),
                                   steps_scale=0.02)
    assert [r["method"] for r in b2n] == ["zero-shot", "CoOp"]
    assert all(r["hm"] == pytest.approx(protocol.harmonic_mean(r["base"], r["new"])) for r in b2n)
    with pytest.raises(ValueError, match="cannot classify new classes"):
        protocol.run_base_to_new(model, small, ["Tip-Adapter"], shots=1, seeds=(0,))
    with pytest.raises(ValueError, match="methods"):
        protocol.run_few_shot(model, small, ["CoOp", "prompt magic"])
