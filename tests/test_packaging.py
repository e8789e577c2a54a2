"""pyproject.toml, environment.yml, the Makefile and CI agree with each other and with the
README."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_runtime_dependencies_are_in_environment_yml():
    deps = {requirement_name(d) for d in pyproject()["project"]["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for item in env["dependencies"]:
        if isinstance(item, dict):
            names |= {requirement_name(d) for d in item["pip"]}
        else:
            names.add(requirement_name(item))
    missing = deps - names
    assert not missing, f"environment.yml lacks {sorted(missing)} that pyproject.toml requires"


def test_environment_yml_installs_the_course_itself():
    """Conda and Binder users get `import vlm_course` from the pip section (editable install)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert "-e ." in pip, "environment.yml's pip section must install the package: add `- -e .`"
    assert env["channels"] == ["conda-forge"]


def test_extras_hold_test_and_reference_tools():
    extras = pyproject()["project"]["optional-dependencies"]
    dev = {requirement_name(d) for d in extras["dev"]}
    ref = {requirement_name(d) for d in extras["ref"]}
    assert {"pytest", "nbval", "jupyter-book", "ruff"} <= dev
    assert "open-clip-torch" in ref
    assert any(d.startswith("jupyter-book>=1.0.4") and "<2" in d for d in extras["dev"])


def test_make_installs_what_ci_needs_and_ci_calls_make_test():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -e '.[dev,ref]'" in makefile
    assert re.search(r"^\$\(STAMP\): pyproject.toml", makefile, re.M), "venv must track pyproject"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme


def test_md_chapters_open_as_notebooks_in_make_lab_and_binder():
    import json

    override = ROOT / "jupyter-config" / "labconfig" / "default_setting_overrides.json"
    viewers = json.loads(override.read_text())["@jupyterlab/docmanager-extension:plugin"]
    assert viewers["defaultViewers"]["markdown"] == "Jupytext Notebook"
    makefile = (ROOT / "Makefile").read_text()
    assert 'JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config' in makefile
    post_build = (ROOT / "postBuild").read_text()
    assert "jupyter-config/labconfig/default_setting_overrides.json" in post_build
    deps = {requirement_name(d) for d in pyproject()["project"]["dependencies"]}
    assert "jupyterlab-myst" in deps, "JupyterLab needs the MyST renderer"


def test_outputs_are_stripped_by_a_git_filter_that_make_installs():
    assert "*.ipynb filter=nbstripout" in (ROOT / ".gitattributes").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^setup: .*hooks", makefile, re.M) and re.search(r"^lab: .*hooks", makefile,
                                                                       re.M)
    assert "git config filter.nbstripout.clean" in makefile and "--keep-id" in makefile
    assert re.search(r"^\t\$\(PY\) tools/plain_edition.py", makefile, re.M), "make sync: Colab"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install" in ci and "chromium" in ci, "CI needs Chromium for the browser test"
