"""Chapter 02 models equal their reference implementations (ORACLES.md, "Architectures").

Weights are copied from the reference into the course module; both run in eval mode on the same
input; outputs (and input gradients where cheap) must match, to float32 rounding relative to the
size of the compared values.  The whole-CLIP cases convert with :mod:`vlm_course.interop` both ways
and compare logits and every parameter's gradient.  Each test prints the largest
absolute difference it saw (``pytest -s``); ``bench/oracle_diffs.py`` collects them in a table.
"""

from __future__ import annotations

import pytest
import torch
from models_oracles import CASES, max_abs_diff


@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference(name):
    entry = CASES[name]
    for module in entry.requires:
        pytest.importorskip(module, reason=f"reference library {module} (extra 'ref') missing")
    pairs = entry.fn()
    assert pairs, "a case must compare something"
    for label, ours, ref in pairs:
        assert ours.shape == ref.shape, f"{label}: {tuple(ours.shape)} vs {tuple(ref.shape)}"
        # float32 rounding grows with the values: whole-model gradients reach ~1e3 here
        atol = 1e-5 * max(1.0, float(ref.abs().max()))
        torch.testing.assert_close(ours, ref, atol=atol, rtol=1.3e-6,
                                   msg=lambda m, label=label: f"{name} / {label}: {m}")
    print(f"{name}: largest |difference| = {max_abs_diff(pairs):.2e}")
