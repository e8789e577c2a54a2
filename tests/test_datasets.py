"""Real-data adapters: bundled digits and photos load offline; missing local data fails clearly."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vlm_course.datasets import (
    CIFAR10_CLASSES,
    DIGIT_NAMES,
    ImageClassificationSet,
    load_cifar10,
    load_digits,
    load_image_folder,
    load_photos,
    to_square,
)
from vlm_course.text import Tokenizer


def test_digits_splits_shapes_and_captions():
    train, test = load_digits("train", image_size=24), load_digits("test", image_size=24)
    assert len(train) + len(test) == 1797 == len(load_digits("all", image_size=8))
    assert train.images.shape[1:] == (3, 24, 24) and train.images.dtype == torch.float32
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) <= 1.0
    assert torch.equal(train.images[:, 0], train.images[:, 2])  # grey repeated to RGB
    for part in (train, test):
        counts = torch.bincount(part.labels, minlength=10)
        assert (counts > 0).all()
    frac = len(test) / 1797
    assert abs(frac - 0.25) < 0.01
    assert train.class_names == DIGIT_NAMES
    assert train.captions[0] == f"a handwritten digit {DIGIT_NAMES[int(train.labels[0])]}"
    again = load_digits("train", image_size=24)
    assert torch.equal(again.images, train.images)  # deterministic split
    assert Tokenizer.from_world().unknown_words(train.captions) == []
    image, label = train[0]
    assert image.shape == (3, 24, 24) and label.dtype == torch.long
    batch = next(iter(DataLoader(train, batch_size=8)))
    assert batch[0].shape == (8, 3, 24, 24)


def test_digit_images_keep_their_class_information():
    d = load_digits("all", image_size=16)
    means = torch.stack([d.images[d.labels == c].mean(0) for c in range(10)])
    # nearest class-mean classifier on the upscaled images is far above chance (10 %)
    dist = torch.cdist(d.images.flatten(1), means.flatten(1))
    accuracy = (dist.argmin(1) == d.labels).float().mean().item()
    assert accuracy > 0.8


def test_photos_load_offline():
    photos = load_photos(image_size=48)
    assert len(photos) == 4 and photos.images.shape == (4, 3, 48, 48)
    assert photos.class_names == ("astronaut", "coffee", "cat", "rocket")
    assert torch.isfinite(photos.images).all() and photos.images.std() > 0.1
    assert photos.prompts()[2] == "a photo of a cat"
    assert Tokenizer.from_world().unknown_words(photos.captions) == []
    assert load_photos(("rocket",), image_size=32).captions == ["a photo of a rocket"]
    with pytest.raises(ValueError, match="names"):
        load_photos(("moon",))


def test_cifar10_missing_gives_instructions(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path)
    message = str(info.value)
    assert "cifar-10-binary.tar.gz" in message and "never downloads" in message


def test_cifar10_binary_reader(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    records = rng.integers(0, 256, size=(7, 3073), dtype=np.uint8)
    records[:, 0] = np.arange(7) % 10
    records.tofile(folder / "test_batch.bin")
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n\n")
    data = load_cifar10(tmp_path, train=False)
    assert data.images.shape == (7, 3, 32, 32) and data.labels.tolist() == list(range(7))
    expected = torch.from_numpy(records[3, 1:].reshape(3, 32, 32).astype(np.float32) / 255)
    torch.testing.assert_close(data.images[3], expected)
    assert data.captions[1] == "a photo of an automobile" and data.class_names == CIFAR10_CLASSES
    assert len(load_cifar10(tmp_path, train=False, limit=3)) == 3
    with pytest.raises(FileNotFoundError):
        load_cifar10(tmp_path, train=True)


def test_image_folder(tmp_path):
    from PIL import Image

    for name, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (40, 30), colour).save(tmp_path / name / f"{i}.png")
    data = load_image_folder(tmp_path, image_size=16)
    assert data.class_names == ("blue", "red") and data.images.shape == (4, 3, 16, 16)
    red = data.images[data.labels == 1]
    torch.testing.assert_close(red[:, 0], torch.ones(2, 16, 16))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_image_folder(tmp_path / "missing")


def test_validation():
    with pytest.raises(ValueError, match="split"):
        load_digits("dev")
    with pytest.raises(ValueError, match="image_size"):
        to_square(torch.zeros(1, 3, 8, 8), 4)
    with pytest.raises(ValueError, match="images"):
        ImageClassificationSet(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long), ("a",),
                               ["x", "y"])
    square = to_square(torch.rand(2, 3, 10, 20), 10)
    assert square.shape == (2, 3, 10, 10)
