"""steer_ui.app.actions.concept: method switches re-use what was recorded; names and downloads."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import TINY_CONTRAST_LISTS, make_tiny, random_vector, tiny_pair
from steer_ui.app.actions import concept as concept_actions
from steer_ui.app.pool import Pair
from steer_ui.app.state import SessionState
from steer_ui.concepts import contrast, vectors
from steer_ui.errors import SteerError


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


def test_rescore_switches_method_without_forward_pass_or_cv(monkeypatch):
    wb = Pair()
    wb.models["slm"] = make_tiny("llama")
    state = SessionState()
    cs = contrast.from_lists("the happy day\ni am very happy\nyou are good", "the sad night\ni am very sad\nyou are bad")
    concept_actions.extract_both(wb, state, cs, "mean-diff", "last")
    before = state.extractions["slm"].vector
    passes = wb.models["slm"].forward_passes
    calls = []
    monkeypatch.setattr(vectors, "separability", lambda *a, **k: calls.append(1) or 0.5)
    text = concept_actions.rescore(state, "pca")
    after = state.extractions["slm"].vector
    assert "pca" in text and after.method == "pca"
    assert wb.models["slm"].forward_passes == passes
    assert calls == []  # the separability scores were carried over, not cross-validated again
    assert after.separability == before.separability and after.default_layer == before.default_layer
    assert after.provenance == before.provenance and after.provenance["pairs"] == 3
    assert not (after.directions == before.directions).all()


CS = contrast.from_lists(*TINY_CONTRAST_LISTS)




def test_the_concept_has_the_name_the_user_typed():
    cs = concept_actions.contrast_from_inputs("Two lists", "happy-sad", "a b\nc d\ne f", "a x\nc y\ne z", None, None, " joy ")
    assert cs.name == "joy" and len(cs) == 3
    assert concept_actions.contrast_from_inputs("Preset", "happy-sad", "", "", None, 4, "").name == "happy-sad"
    assert len(concept_actions.contrast_from_inputs("Two lists", "", "a b\nc d\ne f", "a x\nc y\ne z", None, 2)) == 2


def test_downloads_are_named_for_what_they_are_with_true_metadata(tmp_path):
    wb, state = tiny_pair(), SessionState()
    concept_actions.extract_both(wb, state, CS, "mean-diff", "last")
    t = replace(random_vector(wb.models["slm"], "custom"), method="transfer:ridge",
                provenance={"family": "llama", "transferred_from": "tiny-qwen2", "map": "ridge", "source_layer": 2})
    state.add("transferred:ridge:custom", t)
    native = concept_actions.save_vectors(state, "SLM native", tmp_path)
    carried = concept_actions.save_vectors(state, "SLM transferred:ridge:custom", tmp_path)
    llm = concept_actions.save_vectors(state, "LLM native", tmp_path)
    assert [p.rsplit("/", 1)[1] for p in native] == ["custom_native_tiny-llama_mean-diff.safetensors",
                                                    "custom_native_tiny-llama_mean-diff.gguf"]
    assert carried[0].endswith("custom_transferred-ridge-from-tiny-qwen2_tiny-llama_transfer_ridge.safetensors")
    assert llm[0].endswith("custom_native_tiny-qwen2_mean-diff.safetensors")
    meta = _metadata(native[0])
    assert meta["model"] == "tiny-llama" and meta["family"] == "llama" and meta["method"] == "mean-diff"
    meta = _metadata(carried[0])
    assert meta["family"] == "llama" and meta["provenance"]["transferred_from"] == "tiny-qwen2"
    assert meta["default_layer"] == 1 and meta["provenance"]["source_layer"] == 2
    assert _metadata(llm[0])["family"] == "qwen2"
    with pytest.raises(SteerError, match="Pick a vector to download"):
        concept_actions.save_vectors(state, "", tmp_path)


def _metadata(path: str) -> dict:
    import json

    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(json.loads(f.read(n))["__metadata__"]["steer_ui"])


# ---------- vector arithmetic: a·A + b·B as a new SLM vector ----------

def test_arithmetic_makes_a_named_vector_with_its_provenance():
    import torch

    state = SessionState()
    slm = make_tiny("llama")
    a = random_vector(slm, "joy", layer=2)
    b = replace(random_vector(slm, "calm", layer=1), directions=torch.ones(slm.n_layers, slm.hidden_size))
    state.add("uploaded:joy", a), state.add("uploaded:calm", b)
    kind, message = concept_actions.combine_vectors(state, "uploaded:joy", 1.0, "uploaded:calm", -0.5, "joy-calm")
    v = state.vector("slm", kind)
    assert kind == "arithmetic:joy-calm" and kind in state.vector_kinds()  # listed with every other vector
    assert torch.allclose(v.directions, a.directions - 0.5 * b.directions)
    assert (v.name, v.method, v.default_layer, v.model) == ("joy-calm", "arithmetic", 2, slm.name)
    assert v.provenance == {"arithmetic": "1·uploaded:joy - 0.5·uploaded:calm",
                            "from": ["uploaded:joy", "uploaded:calm"]}
    assert message.startswith("made **arithmetic:joy-calm** = 1·uploaded:joy - 0.5·uploaded:calm")
    assert a.provenance == {} and a.name == "joy"  # the inputs are untouched (vectors are immutable)


def test_arithmetic_refuses_vectors_of_different_models_and_zero_weights():
    import torch

    from steer_ui.errors import VectorError

    state = SessionState()
    slm = make_tiny("llama")
    state.add("uploaded:mine", random_vector(slm))
    state.add("uploaded:big", vectors.ConceptVector(torch.randn(3, 100), "other-model", name="big"))
    with pytest.raises(VectorError, match=r"'uploaded:mine' was made for tiny-llama \(3 layers x 32\) and "
                                          r"'uploaded:big' for other-model \(3 x 100\)"):
        concept_actions.combine_vectors(state, "uploaded:mine", 1, "uploaded:big", 1)
    with pytest.raises(SteerError, match="Both weights are 0"):
        concept_actions.combine_vectors(state, "uploaded:mine", 0, "uploaded:mine", 0)
    with pytest.raises(SteerError, match="Pick vectors A and B"):
        concept_actions.combine_vectors(state, "uploaded:mine", 1, None, 1)
