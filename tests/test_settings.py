"""vlm_course.settings: device choice, scale switch, seeding, progress bars, offline defaults."""

import os
import subprocess
import sys

import pytest
import torch

from vlm_course import settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("VLM_COURSE_DEVICE", "VLM_COURSE_SCALE", "VLM_COURSE_QUIET", "CI"):
        monkeypatch.delenv(name, raising=False)


def test_default_device_is_best_available():
    device = settings.get_device()
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert device.type == expected


def test_device_argument_and_env_override(monkeypatch):
    assert settings.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("VLM_COURSE_DEVICE", "CPU")
    assert settings.get_device() == torch.device("cpu")


@pytest.mark.parametrize("value", ["tpu", "gpu", "cuda:x", "cpu:0", ""])
def test_unknown_device_lists_accepted_values(monkeypatch, value):
    if value == "":
        # An empty variable means "not set": the default applies.
        default = settings.get_device()
        monkeypatch.setenv("VLM_COURSE_DEVICE", value)
        assert settings.get_device() == default
        return
    monkeypatch.setenv("VLM_COURSE_DEVICE", value)
    with pytest.raises(ValueError, match=r"VLM_COURSE_DEVICE=.*expected one of cpu, cuda, mps"):
        settings.get_device()


def test_unknown_device_argument_names_the_argument():
    with pytest.raises(ValueError, match=r"^device='npu'.*expected one of cpu, cuda, mps"):
        settings.get_device("npu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error message")
def test_cuda_requested_without_gpu_is_an_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        settings.get_device("cuda")


def test_scale_default_and_values(monkeypatch):
    assert settings.get_scale() == "cpu"
    assert settings.by_scale(cpu=1, gpu=2) == 1
    monkeypatch.setenv("VLM_COURSE_SCALE", "GPU")
    assert settings.get_scale() == "gpu"
    assert settings.by_scale(cpu=1, gpu=2) == 2


def test_unknown_scale_lists_accepted_values(monkeypatch):
    monkeypatch.setenv("VLM_COURSE_SCALE", "huge")
    with pytest.raises(ValueError, match=r"VLM_COURSE_SCALE='huge'.*expected one of cpu, gpu"):
        settings.get_scale()


def test_seed_everything_repeats_all_generators():
    import random

    import numpy as np

    def draw():
        return random.random(), float(np.random.rand()), torch.randn(4)

    settings.seed_everything(7)
    a = draw()
    settings.seed_everything(7)
    b = draw()
    settings.seed_everything(8)
    c = draw()
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    assert not torch.equal(a[2], c[2])
    assert torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_seed_must_be_non_negative_int(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        settings.seed_everything(seed)


@pytest.mark.parametrize(
    "env, quiet",
    [({}, False), ({"CI": "true"}, True), ({"CI": "false"}, False), ({"CI": "0"}, False),
     ({"VLM_COURSE_QUIET": "1"}, True)],
)
def test_progress_is_quiet_under_ci(monkeypatch, env, quiet):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert settings.is_quiet() is quiet
    bar = settings.progress(range(3))
    assert bar.disable is quiet  # read before iterating: tqdm sets disable when it closes
    assert list(bar) == [0, 1, 2]


def test_environment_report_has_the_essentials():
    report = settings.environment_report()
    for key in ("python", "torch", "device", "scale", "torch threads"):
        assert report[key]
    assert report["torch"] == torch.__version__


def test_import_is_offline_and_light():
    """Importing the package sets Hugging Face offline and imports neither torch nor
    transformers."""
    code = (
        "import os, sys\n"
        "for k in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'): os.environ.pop(k, None)\n"
        "import vlm_course.settings\n"
        "assert os.environ['HF_HUB_OFFLINE'] == '1', os.environ.get('HF_HUB_OFFLINE')\n"
        "assert os.environ['TRANSFORMERS_OFFLINE'] == '1'\n"
        "heavy = [m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_user_choice_to_go_online_is_kept():
    code = "import os; import vlm_course.settings; print(os.environ['HF_HUB_OFFLINE'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "0"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_repo_path_is_the_repository_wherever_the_process_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = settings.repo_path()
    assert (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir()
    assert settings.repo_path("data", "cifar10") == root / "data" / "cifar10"
    with pytest.raises(TypeError, match="parts"):
        settings.repo_path("data", 3)
