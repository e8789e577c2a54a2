"""vlm_course.hub (chapter 13): a course CLIP exported as a Hugging Face folder and a Hugging Face
CLIP folder loaded into the course classes give the same logits and gradients; the adapters give
real models the course's VLM interface; from_pretrained fails fast and clearly when offline.

Every model and tokenizer file is built here (no hub, no network)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from models_oracles import CAPTIONS, tiny_clip_config

from vlm_course.hub import hf_folder, loading
from vlm_course.hub.adapters import HFCLIP, OpenCLIP
from vlm_course.hub.preprocess import ImagePreprocess, photo_tensor
from vlm_course.interop import hf as hf_interop
from vlm_course.models.clip import CLIP

transformers = pytest.importorskip("transformers")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
TOL = dict(rtol=1e-5, atol=1e-5)


def _logits(image_emb, text_emb, logit_scale):
    return logit_scale.exp() * image_emb @ text_emb.T       # (B_img, B_txt)


def _course_model(seed: int = 0) -> CLIP:
    torch.manual_seed(seed)
    return CLIP(tiny_clip_config("vit", activation="quick_gelu")).eval()


def _images(n: int, size: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _course_model()
    folder = hf_folder.save_hf_pretrained(model, tmp_path_factory.mktemp("hf") / "course_clip")
    return model, folder


def _weighted(logits: torch.Tensor) -> torch.Tensor:
    w = torch.randn(logits.shape, generator=torch.Generator().manual_seed(7))
    return (logits * w).sum()


def _same_gradients(ours: dict, hf) -> None:
    """Every parameter's gradient, converted to HF names, equals HF's at fp32 tolerance
    (scaled by the largest gradient: whole-model gradients reach 1e2..1e3 here)."""
    theirs = {k: p.grad for k, p in hf.named_parameters()}
    assert set(ours) == set(theirs), set(ours) ^ set(theirs)
    keys = sorted(theirs)
    a = torch.cat([ours[k].flatten() for k in keys])
    b = torch.cat([theirs[k].flatten() for k in keys])
    torch.testing.assert_close(a, b, rtol=1.3e-6, atol=1e-5 * max(1.0, float(b.abs().max())))


def test_export_reloads_with_plain_transformers_with_equal_logits_and_gradients(exported):
    model, folder = exported
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors",
                                                   "tokenizer.json", "preprocessor_config.json",
                                                   hf_folder.COURSE_CONFIG}
    hf = transformers.CLIPModel.from_pretrained(folder, local_files_only=True).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    proc = transformers.AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    cfg = model.config
    L = cfg.text.context_length
    enc = tok(CAPTIONS, padding="max_length", max_length=L, truncation=True, return_tensors="pt")
    ours_tok = model.tokenize(CAPTIONS)
    # the locally made tokenizer files give exactly the ids the converted weights expect
    assert torch.equal(enc["input_ids"], hf_interop.hf_input_ids(
        ours_tok["input_ids"], cfg.text.vocab_size, cfg.text.eos_id))
    assert torch.equal(enc["attention_mask"], ours_tok["attention_mask"])
    uint8 = (_images(3, cfg.vision.image_size) * 255).round().to(torch.uint8)
    pixels = proc(images=list(uint8), return_tensors="pt")["pixel_values"]
    images = uint8.float() / 255
    torch.testing.assert_close(pixels, images, rtol=0, atol=1e-6)   # mean 0, std 1, no resize

    out = hf(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
             pixel_values=pixels)
    ours = _logits(*model(images, ours_tok))
    torch.testing.assert_close(out.logits_per_image, ours, **TOL)
    _weighted(out.logits_per_image).backward()
    _weighted(ours).backward()
    _same_gradients(hf_interop.to_hf({k: p.grad for k, p in model.named_parameters()}, cfg),
                    hf)
    model.zero_grad()


def test_word_level_tokenizer_file_splits_and_truncates_like_the_course_tokenizer(exported):
    model, folder = exported
    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    cfg = model.config
    L = cfg.text.context_length
    texts = ["A Red-circle!", "zebra, a  blue\tsquare; left?", "a" + " big red circle" * 12,
             "", "Ünïcode star.", "2 objects: 3 circles"]
    enc = tok(texts, padding="max_length", max_length=L, truncation=True, return_tensors="pt")
    ours = model.tokenize(texts)
    assert torch.equal(enc["input_ids"], hf_interop.hf_input_ids(
        ours["input_ids"], cfg.text.vocab_size, cfg.text.eos_id))
    assert torch.equal(enc["attention_mask"], ours["attention_mask"])


def test_export_loads_back_into_the_course_classes_bit_exactly(exported):
    model, folder = exported
    back = hf_folder.load_hf_folder(folder)
    assert back.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def _bpe_files(folder) -> None:
    """A real CLIP BPE tokenizer with a tiny vocabulary: letters, end-of-word letters, a few
    merges, then <|startoftext|> and <|endoftext|> last (as in OpenAI's 49408-token one)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {c: i for i, c in enumerate(letters)}
    vocab.update({c + "</w>": 26 + i for i, c in enumerate(letters)})
    merges = ["r e", "re d</w>", "c i", "ci r", "a t</w>", "a r", "ar e</w>"]
    for m in merges:
        vocab["".join(m.split())] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


@pytest.fixture(scope="module", params=["eos", "legacy_eos_2"])
def hf_folder_with_bpe(request, tmp_path_factory):
    """A tiny random ``CLIPModel`` + ``CLIPTokenizer`` + ``CLIPImageProcessor`` saved with
    ``save_pretrained``; ``legacy_eos_2``: the config's eos_token_id is 2, as in OpenAI's
    original configs (HF then pools at the largest id, which is <|endoftext|>)."""
    folder = tmp_path_factory.mktemp("bpe")
    _bpe_files(folder)
    tok = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    V = len(tok)
    eos = 2 if request.param == "legacy_eos_2" else tok.eos_token_id
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16,
                         hidden_act="quick_gelu", eos_token_id=eos, bos_token_id=V - 2,
                         pad_token_id=V - 1),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=48, intermediate_size=96,
                           num_hidden_layers=2, num_attention_heads=4, hidden_act="quick_gelu"),
        projection_dim=24)
    torch.manual_seed(0)
    model = transformers.CLIPModel(cfg).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32},
                                    crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return model, tok, folder


def test_hf_clip_folder_loads_into_the_course_clip_with_equal_logits_and_gradients(
        hf_folder_with_bpe):
    hf, tok, folder = hf_folder_with_bpe
    ours = hf_folder.load_hf_folder(folder)
    assert isinstance(ours.tokenizer, hf_folder.HFTokenizer)
    assert ours.config.text.eos_id == tok.eos_token_id == len(tok) - 1
    texts = ["a red cat", "circles are red", "a"]
    tokens = ours.tokenize(texts)
    assert tokens["input_ids"].shape == (3, 16)
    pixels = _images(2, 32) * 2 - 1                 # the course model takes pixels as given
    out = hf(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
             pixel_values=pixels)
    logits = _logits(*ours(pixels, tokens))
    torch.testing.assert_close(logits, out.logits_per_image, **TOL)
    _weighted(out.logits_per_image).backward()
    _weighted(logits).backward()
    _same_gradients(hf_interop.to_hf({k: p.grad for k, p in ours.named_parameters()},
                                     ours.config), hf)
    hf.zero_grad()


def test_hf_adapter_matches_the_model_and_its_processor(hf_folder_with_bpe):
    hf, tok, folder = hf_folder_with_bpe
    adapter = loading.from_pretrained(folder)
    assert isinstance(adapter, HFCLIP)
    assert adapter.preprocess == ImagePreprocess(32, (32, 32), OPENAI_MEAN, OPENAI_STD)
    from skimage import data

    proc = transformers.CLIPImageProcessor.from_pretrained(folder, local_files_only=True)
    for photo in (data.rocket(), data.astronaut(), data.chelsea()[:, :200]):  # wide, square, tall
        pixels = proc(images=photo, return_tensors="pt")["pixel_values"]       # (1, 3, 32, 32)
        ours = adapter.preprocess(photo_tensor(photo)[None])
        # the same resize, crop and normalisation, up to the processor's uint8 rounding: a
        # mean difference of ~0.004 (about 1/255 of a pixel / std), rare edges up to ~0.07
        diff = (ours - pixels).abs()
        assert diff.mean() < 0.01 and diff.max() < 0.15, (diff.mean(), diff.max())
    with torch.no_grad():
        image_emb = adapter.encode_image(photo_tensor(photo)[None], normalize=False)
        ref = hf.get_image_features(pixel_values=adapter.preprocess(photo_tensor(photo)[None]))
        torch.testing.assert_close(image_emb, getattr(ref, "pooler_output", ref), **TOL)
        tokens = adapter.tokenize(["a red cat"])
        ref = hf.get_text_features(**tok(["a red cat"], padding="max_length", max_length=16,
                                         return_tensors="pt"))
        torch.testing.assert_close(adapter.encode_text(tokens, normalize=False),
                                   getattr(ref, "pooler_output", ref), **TOL)
        assert torch.allclose(adapter.encode_text(tokens).norm(dim=-1), torch.ones(1))
    assert adapter.logit_scale is hf.logit_scale or torch.equal(adapter.logit_scale,
                                                                 hf.logit_scale)


def test_chapter_08_classifier_gives_the_same_answers_on_the_exported_hf_model(exported):
    from vlm_course.evaluation.classifier import ZeroShotClassifier

    model, folder = exported
    adapter = loading.from_pretrained(folder)
    names, templates = ["circle", "square", "star"], ["a {}", "a red {}"]
    images = _images(6, model.config.vision.image_size)
    ours = ZeroShotClassifier(model, names, templates)
    theirs = ZeroShotClassifier(adapter, names, templates)
    torch.testing.assert_close(theirs.weights, ours.weights, **TOL)
    assert theirs.scale == pytest.approx(ours.scale)
    torch.testing.assert_close(theirs.logits(images), ours.logits(images), rtol=1e-4, atol=1e-4)


def test_open_clip_adapter_matches_the_course_model():
    pytest.importorskip("open_clip")
    from vlm_course.interop.openclip import build_open_clip

    model = _course_model()
    oc = build_open_clip(model.config, model.state_dict()).eval()
    L = model.config.text.context_length
    adapter = OpenCLIP(oc, lambda texts: model.tokenizer(texts, context_length=L),
                       ImagePreprocess(32, 32))
    images = _images(3, 32)
    with torch.no_grad():
        torch.testing.assert_close(adapter.encode_image(images), model.encode_image(images), **TOL)
        torch.testing.assert_close(adapter.encode_text(adapter.tokenize(CAPTIONS)),
                                   model.encode_text(model.tokenize(CAPTIONS)), **TOL)
    assert ImagePreprocess.from_open_clip(oc).crop == (32, 32)


def test_offline_lookup_fails_fast_with_the_download_command(tmp_path):
    start = time.perf_counter()
    with pytest.raises(loading.NotDownloadedError) as err:
        loading.from_pretrained("openai/clip-vit-base-patch32", cache_dir=tmp_path)
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"the offline failure took {elapsed:.1f} s"
    msg = str(err.value)
    assert "hf download openai/clip-vit-base-patch32" in msg and "download=True" in msg
    assert isinstance(err.value, FileNotFoundError)
    assert not any(tmp_path.iterdir()), "an offline lookup must not write into the cache"


def test_open_clip_offline_lookup_fails_fast(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    assert "ViT-B-32" in open_clip.list_models()      # open_clip imported before timing
    start = time.perf_counter()
    with pytest.raises(loading.NotDownloadedError, match="hf download .*download=True"):
        loading.open_clip_from_pretrained("ViT-B-32", "laion2b_s34b_b79k", cache_dir=tmp_path)
    assert time.perf_counter() - start < 5
    with pytest.raises(ValueError, match="pretrained must be a weight file or one of"):
        loading.open_clip_from_pretrained("ViT-B-32", "no_such_tag", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="arch must be an open_clip architecture"):
        loading.open_clip_from_pretrained("ViT-Q-99", "openai")


def test_a_named_model_is_found_in_a_local_hf_cache(exported, tmp_path):
    """The cache layout of huggingface_hub: models--org--name/{refs/main, snapshots/<rev>/}."""
    model, folder = exported
    repo = tmp_path / "models--course--tiny-clip"
    rev = "0" * 40
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    for f in folder.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    assert loading.locate("course/tiny-clip", cache_dir=tmp_path) == snap
    (snap / "model.safetensors").unlink()       # a snapshot without weights is not usable
    with pytest.raises(loading.NotDownloadedError, match="without config.json or "):
        loading.locate("course/tiny-clip", cache_dir=tmp_path)
    (snap / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    back = loading.from_pretrained("course/tiny-clip", into="course", cache_dir=tmp_path)
    assert torch.equal(back.logit_scale, model.logit_scale)


def test_bad_input_is_refused_with_a_clear_message(exported, tmp_path):
    model, folder = exported
    adapter = loading.from_pretrained(folder)
    with pytest.raises(TypeError, match="images must be a float tensor"):
        adapter.encode_image(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"images must be \(B, 3, H, W\), got \(3, 32, 32\)"):
        adapter.encode_image(torch.zeros(3, 32, 32))
    with pytest.raises(TypeError, match="texts must be a non-empty list of strings"):
        adapter.tokenize([1, 2])
    with pytest.raises(TypeError, match="tokens must be the dict returned by tokenize"):
        adapter.encode_text([1, 2])
    with pytest.raises(TypeError, match="preprocess must be an ImagePreprocess"):
        HFCLIP(adapter.model, adapter.tokenizer, preprocess=None)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        hf_folder.save_hf_pretrained(model, folder)
    with pytest.raises(TypeError, match="model must be a vlm_course CLIP"):
        hf_folder.save_hf_pretrained(adapter, tmp_path / "x")
    with pytest.raises(ValueError, match="config.image_tower must be 'vit'"):
        hf_folder.save_hf_pretrained(CLIP(tiny_clip_config("resnet")), tmp_path / "r")
    assert not (tmp_path / "r").exists() and not list(tmp_path.glob(".r.*"))
    with pytest.raises(FileNotFoundError, match="holds no config.json"):
        hf_folder.load_hf_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="name './nowhere' is not a folder"):
        loading.locate("./nowhere")
    with pytest.raises(TypeError, match="name must be a model id"):
        loading.locate(3)
    with pytest.raises(ValueError, match="name must be a folder or a model id"):
        loading.locate("not a valid//id", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="into must be 'adapter' or 'course', got 'x'"):
        loading.from_pretrained(folder, into="x")
    with pytest.raises(ValueError, match=r"size must be >= the crop \(64, 64\)"):
        ImagePreprocess(32, 64)
    with pytest.raises(ValueError, match="interpolation must be 'bicubic' or 'bilinear'"):
        ImagePreprocess(32, 32, interpolation="nearest")
    with pytest.raises(ValueError, match=r"photo must be \(H, W\) or \(H, W, 3\|4\)"):
        photo_tensor(np.zeros((4, 4, 2), dtype=np.uint8))
    with pytest.raises(TypeError, match="photo must be uint8, bool or float"):
        photo_tensor(np.zeros((4, 4, 3), dtype=np.int16))
    with pytest.raises(ValueError, match="photos must be a non-empty list"):
        ImagePreprocess(32, 32).photos([])


def test_preprocess_resizes_the_short_side_and_crops_the_centre():
    pre = ImagePreprocess(8, 8)
    x = torch.zeros(1, 3, 16, 32)
    x[..., 8:24] = 1.0                  # a bright vertical band in the middle half of the width
    out = pre.resize_crop(x)
    assert out.shape == (1, 3, 8, 8)
    assert out[..., 1:-1].min() > 0.99   # the centre crop sees only the band
    same = torch.rand(2, 3, 8, 8)
    assert pre.resize_crop(same) is same
    photos = pre.photos([np.zeros((10, 20), dtype=bool), np.ones((30, 9, 4), dtype=np.uint8)])
    assert photos.shape == (2, 3, 8, 8) and photos.dtype == torch.float32


def test_importing_the_hub_loads_no_reference_library():
    code = ("import sys, vlm_course.hub, vlm_course.hub.adapters, vlm_course.hub.loading, "
            "vlm_course.hub.hf_folder, vlm_course.hub.preprocess; "
            "bad = [m for m in ('transformers', 'open_clip', 'tokenizers', 'huggingface_hub') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-c", "import sys, vlm_course; "
                          "sys.exit('vlm_course.hub' in sys.modules or 'torch' in sys.modules)"])
    assert out.returncode == 0
