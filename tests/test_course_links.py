"""One repository URL, written everywhere from book/_config.yml; every chapter's install cell
(issue 17, part 4).

``tools/course_links.py`` (run by ``make sync``) writes the URL into the README, chapter 00,
pyproject.toml and the install cell that opens every chapter; these tests fail when one of them
is stale, when a placeholder URL is left, or when the install cell would not bring the course
(with its shipped checkpoints and benchmark results) to a Colab runtime.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from tools import course_links as cl

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.md"))
URL, BRANCH = cl.repository()


def install_cell_source() -> str:
    """The install cell's code, as jupytext reads it from a chapter."""
    return "\n".join(cl.install_cell(URL, BRANCH).split("\n")[3:-1])


def test_generated_files_are_fresh():
    assert cl.main(["--check"]) == 0, f"README/chapters/pyproject are stale: {cl.FIX}"


def test_the_url_is_a_github_repository_and_used_by_the_book():
    assert URL.startswith("https://github.com/") and BRANCH
    import yaml

    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")
    assert config["repository"]["path_to_book"] == "", "the book's source root is the repo root"


def test_a_fork_changes_one_line(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text((ROOT / "book" / "_config.yml").read_text().replace(
        URL, "https://github.com/someone/fork").replace("branch: main", "branch: spring"))
    url, branch = cl.repository(config)
    assert (url, branch) == ("https://github.com/someone/fork", "spring")
    cell = cl.install_cell(url, branch)
    assert '"https://github.com/someone/fork"' in cell and '"spring"' in cell
    assert cl.colab_url(url, branch, "04_x").endswith("/github/someone/fork/blob/spring/colab/"
                                                      "04_x.ipynb")


def test_a_non_github_url_is_refused(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: <repository-url>\n")
    with pytest.raises(ValueError, match="repository.url"):
        cl.repository(config)


def test_no_placeholder_url_anywhere():
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "pyproject.toml",
             *(ROOT / "book").glob("*.md"), *CHAPTERS, *(ROOT / "colab").glob("*.ipynb")]
    left = [str(p.relative_to(ROOT)) for p in files if "<repository-url>" in p.read_text()]
    assert not left, f"{left} still say <repository-url>: use the URL from book/_config.yml"
    for name in ("README.md", "pyproject.toml"):
        assert URL in (ROOT / name).read_text(), f"{name} does not name {URL}: {cl.FIX}"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_the_install_cell(source):
    """The first code cell of the source, the .ipynb and the Colab edition is the install cell,
    tagged so the book hides it."""
    for path in (source, source.with_suffix(".ipynb"), ROOT / "colab" / f"{source.stem}.ipynb"):
        nb = jupytext.read(path)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.source == install_cell_source(), f"{path.name}: {cl.FIX}"
        assert "remove-cell" in first.metadata.get("tags", []), f"{path.name}: tag remove-cell"


def run_install_cell(monkeypatch, tmp_path, missing: bool) -> list[list[str]]:
    """Execute the install cell in ``tmp_path`` with vlm_course importable or not; git clone is
    served from this repository (offline), pip is recorded, not run."""
    calls: list[list[str]] = []
    real_find_spec, real_run = importlib.util.find_spec, subprocess.run

    def find_spec(name, *args):
        return None if (missing and name == "vlm_course") else real_find_spec(name, *args)

    def run(cmd, check):
        calls.append(list(cmd))
        if cmd[:2] == ["git", "clone"]:
            target = cmd[-1]
            real_run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), target], check=True)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(install_cell_source(), "install cell", "exec"), {})
    return calls


def test_install_cell_does_nothing_where_the_course_imports(monkeypatch, tmp_path):
    assert run_install_cell(monkeypatch, tmp_path, missing=False) == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs git and a git checkout")
def test_install_cell_brings_the_course_with_its_data(monkeypatch, tmp_path):
    calls = run_install_cell(monkeypatch, tmp_path, missing=True)
    course = (tmp_path / "vlm-course").resolve()
    assert calls[0] == ["git", "clone", "--depth", "1", "--branch", BRANCH, URL, str(course)]
    assert calls[1] == [sys.executable, "-m", "pip", "install", "--quiet", "-e", str(course)]
    assert sys.path[0] == str(course)
    # What the chapters read from the repository arrives with the clone: every shipped
    # checkpoint (real safetensors, not LFS pointers) and the benchmark results.
    from vlm_course import pretrained

    names = pretrained.available()
    assert names and set(names) <= set(pretrained.available(course / "data" / "checkpoints")), (
        "a shipped checkpoint is not committed: git add data/checkpoints")
    for name in names:
        weights = (course / "data" / "checkpoints" / f"{name}.safetensors").read_bytes()
        header = int.from_bytes(weights[:8], "little")
        assert json.loads(weights[8:8 + header]), f"{name}.safetensors is not a safetensors file"
    assert (course / "bench" / "results").is_dir() and (course / "notebooks").is_dir()
