"""Vendor the JavaScript the book needs so the built HTML makes no request outside its folder.

The published book typesets math with MathJax 3 and renders the widget demos with the ipywidgets
HTML manager (loaded through require.js). Sphinx and myst-nb point at CDNs for all three by default;
a book read offline (or behind a firewall, or in ten years) then shows raw TeX and no widgets.

This script downloads each npm package at a pinned version from the npm registry, checks the
tarball against the registry's ``integrity`` hash (sha512; a pinned expected hash below as well),
keeps the tarball in a cache (``$VLM_COURSE_NPM_CACHE``, default ``~/.cache/vlm-course/npm``) and
unpacks only the files the book uses into ``book/_static/vendor/`` (git-ignored, rebuilt by
``make``; ``book/_config.yml`` points Sphinx and myst-nb at it):

- ``mathjax/``: MathJax 3's ``tex-chtml.js`` component, its TeX extensions (loaded on demand)
  and the CHTML woff fonts;
- ``require.js``: RequireJS, which the HTML manager's ``embed-amd.js`` needs;
- ``html-manager/``: ``@jupyter-widgets/html-manager``'s ``dist/`` (``embed-amd.js`` and the chunks
  and fonts it loads), the version that matches ipywidgets 8.1 (widget protocol 2.0).

Usage: ``python tools/vendor_js.py [--out DIR]``. Re-running with everything in place does nothing
(a stamp file records the versions). Only Python's standard library is used (no node on CI).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "https://registry.npmjs.org"
# name -> (version, sha512 integrity as npm records it, [(path in the tarball, path in the output)])
PACKAGES = {
    "mathjax": ("3.2.2", [
        ("package/es5/tex-chtml.js", "mathjax/tex-chtml.js"),
        ("package/es5/input/tex/extensions/", "mathjax/input/tex/extensions/"),
        ("package/es5/output/chtml/fonts/woff-v2/", "mathjax/output/chtml/fonts/woff-v2/"),
        ("package/es5/a11y/", "mathjax/a11y/"),  # loaded only when a reader turns it on
        ("package/LICENSE", "mathjax/LICENSE"),
    ]),
    "requirejs": ("2.3.8", [
        ("package/require.js", "require.js"),
    ]),
    "@jupyter-widgets/html-manager": ("1.0.15", [
        # embed-amd.js bundles base, controls and output; the rest of dist/ is its icon fonts.
        ("package/dist/", "html-manager/dist/"),
        ("package/package.json", "html-manager/package.json"),  # licence and version
    ]),
}
# Checked in addition to the registry's own record, so a changed upstream tarball is noticed.
INTEGRITY = {
    "mathjax": "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/"
               "O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
    "requirejs": "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+"
                 "Jd5otXKGNehIonFlyQXSowL6Mw==",
    "@jupyter-widgets/html-manager": "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/"
                                     "c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
}
# Never copied: source maps and the bundles the book does not load (it loads embed-amd.js).
SKIP = (".map", "/dist/embed.js", "/dist/libembed-amd.js")
DEFAULT_OUT = ROOT / "book" / "_static" / "vendor"
STAMP = ".vendored.json"


def cache_dir() -> Path:
    return Path(os.environ.get("VLM_COURSE_NPM_CACHE",
                               Path.home() / ".cache" / "vlm-course" / "npm"))


def registry_record(name: str, version: str) -> dict:
    url = f"{REGISTRY}/{name.replace('/', '%2F')}/{version}"
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def check_integrity(data: bytes, integrity: str, what: str) -> None:
    """Raises ValueError unless ``data`` has the sha512 of an npm ``integrity`` string."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise ValueError(f"{what}: expected a sha512 integrity, got {integrity!r}")
    got = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != expected:
        raise ValueError(f"{what}: tarball sha512 {got} does not match the registry's {expected}")


def tarball(name: str, version: str) -> bytes:
    """The package's tarball, from the cache or the registry, integrity-checked."""
    cached = cache_dir() / f"{name.replace('/', '__')}-{version}.tgz"
    record_file = cached.with_suffix(".json")
    if cached.is_file() and record_file.is_file():
        data, integrity = cached.read_bytes(), json.loads(record_file.read_text())["integrity"]
    else:
        dist = registry_record(name, version)["dist"]
        integrity = dist["integrity"]
        print(f"downloading {dist['tarball']}", file=sys.stderr)
        with urllib.request.urlopen(dist["tarball"], timeout=300) as response:
            data = response.read()
    check_integrity(data, integrity, f"{name}@{version}")
    pinned = INTEGRITY.get(name)
    if pinned and pinned != integrity:
        raise ValueError(f"{name}@{version}: the registry's integrity {integrity} differs from the "
                         f"one pinned in tools/vendor_js.py ({pinned})")
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tgz.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, cached)
        record_file.write_text(json.dumps({"integrity": integrity}))
    return data


def unpack(data: bytes, files: list[tuple[str, str]], out: Path) -> int:
    """Copies the members named by ``files`` (a trailing '/' takes a folder) into ``out``;
    returns how many files were written. Raises ValueError when a named member is missing."""
    count = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        for source, target in files:
            chosen = [m for m in members if not m.name.endswith(SKIP)
                      and (m.name.startswith(source) if source.endswith("/") else m.name == source)]
            if not chosen:
                raise ValueError(f"{source} is not in the tarball")
            for m in chosen:
                rel = m.name[len(source):] if source.endswith("/") else ""
                dest = out / target / rel if rel else out / target
                if ".." in Path(rel).parts:
                    raise ValueError(f"unsafe path in the tarball: {m.name}")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(tar.extractfile(m).read())
                count += 1
    return count


def vendor(out: Path = DEFAULT_OUT) -> Path:
    """Fills ``out`` with the pinned packages' files (see the module docstring); returns ``out``."""
    wanted = {name: version for name, (version, _) in PACKAGES.items()}
    stamp = out / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return out
    if out.exists():
        shutil.rmtree(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, (version, files) in PACKAGES.items():
        n = unpack(tarball(name, version), files, tmp)
        print(f"{name}@{version}: {n} files", file=sys.stderr)
    (tmp / STAMP).write_text(json.dumps(wanted))
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    print(f"vendored JavaScript in {vendor(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
