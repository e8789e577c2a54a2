"""The shipped checkpoint: registry, sha256 verification, and its card's numbers re-measured."""

import json
import math
import shutil

import pytest
import torch

from vlm_course import pretrained
from vlm_course.evaluation.zeroshot import evaluate_shapeworld
from vlm_course.world import WorldConfig

NAME = "clip_tiny_shapeworld"


def test_registry_lists_and_describes_the_shipped_model():
    assert NAME in pretrained.available()
    card = pretrained.card(NAME)
    for key in ("command", "seed", "steps", "wall_time_s", "hardware", "final_loss", "sha256",
                "evaluation", "model_config", "world_config"):
        assert key in card, key
    with pytest.raises(KeyError, match="available"):
        pretrained.card("no_such_model")


def test_load_and_re_measure_zero_shot_on_a_fresh_sample():
    """Fresh test scenes (never used for the card) agree with the card within 4 sigma."""
    card = pretrained.card(NAME)
    model = pretrained.load(NAME, device="cpu")
    assert not model.training
    assert model.tokenizer.to_dict() == card["tokenizer"]        # the card's own vocabulary
    n = 600
    fresh = evaluate_shapeworld(model, WorldConfig.from_dict(card["world_config"]), n=n,
                                split="test", start=500_000)
    shipped = card["evaluation"]["zeroshot"]
    for key in ("all_shape", "all_colour", "all_colour+shape", "heldout_colour+shape"):
        n_fresh = fresh["n_heldout"] if key.startswith("heldout") else fresh["n_all"]
        n_card = shipped["n_heldout"] if key.startswith("heldout") else shipped["n_all"]
        p = (fresh[key] * n_fresh + shipped[key] * n_card) / (n_fresh + n_card)
        p = min(max(p, 1 / n_fresh), 1 - 1 / n_fresh)      # never a zero-width bound
        sigma = math.sqrt(p * (1 - p) * (1 / n_fresh + 1 / n_card))
        assert abs(fresh[key] - shipped[key]) <= 4 * sigma, (key, fresh[key], shipped[key], sigma)


def test_sha256_mismatch_is_refused(tmp_path):
    src = pretrained.checkpoint_dir()
    for suffix in (".json", ".safetensors"):
        shutil.copy(src / f"{NAME}{suffix}", tmp_path / f"{NAME}{suffix}")
    model = pretrained.load(NAME, device="cpu", root=tmp_path)     # an intact copy loads
    assert model.encode_text(model.tokenize(["a red circle"])).shape == (1, model.embed_dim)
    weights = tmp_path / f"{NAME}.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(pretrained.ChecksumError, match="sha256"):
        pretrained.load(NAME, root=tmp_path)


def test_ship_writes_weights_and_card(tmp_path):
    """``ship`` turns a (tiny) run folder into a loadable checkpoint whose card matches it."""
    from vlm_course.cli import main

    run = tmp_path / "run"
    assert main(["clip", "--preset", "tiny", "--out", str(run), "--steps", "2",
                 "--batch-size", "8"]) == 0
    card = pretrained.ship(run, "unit", command="test", root=tmp_path / "ckpts", eval_scenes=40,
                           retrieval_scenes=20)
    assert card["steps"] == 2 and pretrained.available(tmp_path / "ckpts") == ["unit"]
    run_info = json.loads((run / "run.json").read_text())
    assert card["wall_time_s"] == round(run_info["wall_time_s_total"], 1)
    assert "summed over every call" in card["wall_time_note"]
    assert card["recipe"] == "clip" and card["preset"] == "tiny"
    stored = json.loads((tmp_path / "ckpts" / "unit.json").read_text())
    assert stored["sha256"] == card["sha256"]
    model = pretrained.load("unit", device="cpu", root=tmp_path / "ckpts")
    assert torch.isfinite(model.logit_scale)
    for key, value in card["evaluation"]["zeroshot"].items():
        assert key.startswith("n_") or math.isnan(value) or 0.0 <= value <= 1.0


def test_missing_folder_or_name_says_how_to_find_the_checkpoints(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(KeyError) as err:
        pretrained.card(NAME, root=missing)
    text = err.value.args[0]
    assert f"checkpoint folder {str(missing)!r} does not exist" in text
    assert "pip install -e ." in text and "make" in text and "VLM_COURSE_CHECKPOINTS" in text
    monkeypatch.setenv("VLM_COURSE_CHECKPOINTS", str(tmp_path))         # exists, but empty
    assert pretrained.checkpoint_dir() == tmp_path and pretrained.available() == []
    with pytest.raises(KeyError) as err:
        pretrained.load("no_such_model", device="cpu")
    text = err.value.args[0]
    assert f"'no_such_model' in {str(tmp_path)!r}" in text and "available: (none)" in text
    assert "pip install -e ." in text and "VLM_COURSE_CHECKPOINTS" in text


def test_the_shipped_card_is_the_tiny_preset_in_the_vocab_format():
    """The re-shipped card: the config holds the vocabulary (no shapes/colours) and equals
    today's tiny preset and world, and the weights file has the card's sha256."""
    from vlm_course.recipes import clip as clip_recipe
    from vlm_course.training.checkpoint import sha256_of

    card = pretrained.card(NAME)
    assert card["recipe"] == "clip" and card["preset"] == "tiny"
    assert "shapes" not in card["model_config"] and "colours" not in card["model_config"]
    assert card["model_config"]["vocab"] == card["tokenizer"]["words"]
    assert sha256_of(pretrained.checkpoint_dir() / f"{NAME}.safetensors") == card["sha256"]
    preset = clip_recipe.PRESETS["tiny"]()
    assert card["model_config"] == json.loads(json.dumps(preset.model.to_dict()))
    assert WorldConfig.from_dict(card["world_config"]) == preset.world


def test_migrate_card_converts_an_old_card_once():
    from vlm_course.recipes.clip import migrate_card

    new = pretrained.card(NAME)
    old = json.loads(json.dumps(new))
    old["model_config"].pop("vocab")
    old["model_config"].update(shapes=["circle", "square"], colours=["red", "blue"])
    for key in ("recipe", "preset", "migrated"):
        old.pop(key, None)
    migrated = migrate_card(old)
    assert migrated["model_config"] == new["model_config"] and migrated["recipe"] == "clip"
    assert "migrated" in migrated and "shapes" in old["model_config"]    # input left untouched
    assert migrate_card(migrated) == migrated
    del old["tokenizer"]
    with pytest.raises(ValueError, match="card lacks tokenizer.words"):
        migrate_card(old)
