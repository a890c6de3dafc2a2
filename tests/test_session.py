"""Session helpers on a tiny model: method switches re-use what was recorded."""

from __future__ import annotations

import pytest

from conftest import make_tiny
from steer_ui import activations, contrast, session, vectors
from steer_ui.workbench import Workbench


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


def test_rescore_switches_method_without_forward_pass_or_cv(monkeypatch):
    wb = Workbench()
    wb.models["slm"] = make_tiny("llama")
    state = session.SessionState()
    cs = contrast.from_lists("the happy day\ni am very happy\nyou are good", "the sad night\ni am very sad\nyou are bad")
    session.extract_both(wb, state, cs, "mean-diff", "last")
    before = state.extractions["slm"].vector
    passes = activations.FORWARD_PASSES[wb.models["slm"].name]
    calls = []
    monkeypatch.setattr(vectors, "separability", lambda *a, **k: calls.append(1) or 0.5)
    text = session.rescore(state, "pca")
    after = state.extractions["slm"].vector
    assert "pca" in text and after.method == "pca"
    assert activations.FORWARD_PASSES[wb.models["slm"].name] == passes
    assert calls == []  # the separability scores were carried over, not cross-validated again
    assert after.separability == before.separability and after.default_layer == before.default_layer
    assert after.provenance == before.provenance and after.provenance["pairs"] == 3
    assert not (after.directions == before.directions).all()
