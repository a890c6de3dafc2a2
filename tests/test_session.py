"""Session helpers on a tiny model: method switches re-use what was recorded."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from conftest import make_tiny
from steer_ui import activations, contrast, generation, session, vectors
from steer_ui.errors import SteerError
from steer_ui.activations import encode
from steer_ui.formats import save_vector
from steer_ui.steering import steer
from steer_ui.generation import Sampling
from steer_ui.vectors import ConceptVector
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


# ---------- what the session holds is what the UI lists ----------

CS = contrast.from_lists("the happy day\ni am very happy\nyou are good", "the sad night\ni am very sad\nyou are bad")


def _pair():
    wb = Workbench()
    wb.models["llm"], wb.models["slm"] = make_tiny("qwen2", seed=1), make_tiny("llama")
    return wb


def _vector(lm, name="mine", layer=1):
    g = torch.Generator().manual_seed(3)
    return ConceptVector(torch.randn(lm.n_layers, lm.hidden_size, generator=g), lm.name, name=name,
                         default_layer=layer)


def test_re_extracting_keeps_transferred_and_uploaded_vectors(tmp_path):
    wb, state = _pair(), session.SessionState()
    session.extract_both(wb, state, CS, "mean-diff", "last")
    path = save_vector(_vector(wb.models["slm"]), tmp_path / "mine.safetensors")
    kind, message = session.upload_vector(wb, state, str(path))
    assert kind == "uploaded:mine"
    assert message == "uploaded **uploaded:mine**: 3 layers x 32, made for tiny-llama, default layer 1"
    state.add("transferred:ridge:custom", _vector(wb.models["slm"], "custom"))
    before = state.vector_kinds()
    session.extract_both(wb, state, CS, "mean-diff", "last")  # the same set again: 0 forward passes
    session.extract_both(wb, state, replace(CS, name="other"), "pca", "last")
    assert state.vector_kinds() == before == ["native", "random control", "uploaded:mine",
                                              "transferred:ridge:custom"]
    assert state.vector("slm", "uploaded:mine").name == "mine"
    assert state.files() == ["LLM native", "SLM native", "SLM uploaded:mine", "SLM transferred:ridge:custom"]
    # a second upload of the same name gets its own entry; removing one leaves the rest
    assert session.upload_vector(wb, state, str(path))[0] == "uploaded:mine#2"
    state.remove("uploaded:mine")
    assert state.vector_kinds() == ["native", "random control", "transferred:ridge:custom", "uploaded:mine#2"]
    with pytest.raises(SteerError, match="holds no SLM vector 'uploaded:mine' \\(it holds: native, random"):
        state.vector("slm", "uploaded:mine")
    with pytest.raises(SteerError, match="not a vector you transferred or uploaded"):
        state.remove("native")


def test_the_concept_has_the_name_the_user_typed():
    cs = session.contrast_from_inputs("Two lists", "happy-sad", "a b\nc d\ne f", "a x\nc y\ne z", None, None, " joy ")
    assert cs.name == "joy" and len(cs) == 3
    assert session.contrast_from_inputs("Preset", "happy-sad", "", "", None, 4, "").name == "happy-sad"
    assert len(session.contrast_from_inputs("Two lists", "", "a b\nc d\ne f", "a x\nc y\ne z", None, 2)) == 2


def test_both_mode_runs_each_model_to_its_own_end():
    """The SLM ends after one token; the LLM must still write all of its tokens (a shared
    stop event that the first to finish set used to cut the LLM short)."""
    wb, state = _pair(), session.SessionState()
    session.extract_both(wb, state, CS, "mean-diff", "last")
    llm, slm = wb.models["llm"], wb.models["slm"]
    llm.model.generation_config.eos_token_id = None
    batch = encode(slm, [slm.chat("the day")])
    firsts = []
    for x in (0.0, 1.0):  # the first token of each SLM row is made its end of text
        with steer(slm, state.vector("slm"), x, 1), torch.inference_mode():
            firsts.append(int(slm.model(**batch).logits[0, -1].argmax()))
    slm.model.generation_config.eos_token_id = firsts
    out = list(session.steer_texts(wb, state, ["llm", "slm"], "the day", 1.0, {"llm": 1, "slm": 1}, "native",
                                   "relative", "all", Sampling(12), threading.Event()))
    texts, status = out[-1]
    solo = generation.generate(llm, "the day", None, [0.0], sampling=Sampling(12))[0]
    assert texts[0] == solo  # the LLM's unsteered pane ran to the end
    assert "LLM 12 tokens" in status and "SLM 1 tokens" in status, status
    assert status.startswith("steering LLM: **custom** (native) at layer 1 · SLM: **custom** (native) at layer 1; "
                             "intensity +1.00 relative, all positions")
    assert all(s.endswith("generating…") for _, s in out[:-1])


def test_downloads_are_named_for_what_they_are_with_true_metadata(tmp_path):
    wb, state = _pair(), session.SessionState()
    session.extract_both(wb, state, CS, "mean-diff", "last")
    t = replace(_vector(wb.models["slm"], "custom"), method="transfer:ridge",
                provenance={"family": "llama", "transferred_from": "tiny-qwen2", "map": "ridge", "source_layer": 2})
    state.add("transferred:ridge:custom", t)
    native = session.save_vectors(state, "SLM native", tmp_path)
    carried = session.save_vectors(state, "SLM transferred:ridge:custom", tmp_path)
    llm = session.save_vectors(state, "LLM native", tmp_path)
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
        session.save_vectors(state, "", tmp_path)


def _metadata(path: str) -> dict:
    import json

    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(json.loads(f.read(n))["__metadata__"]["steer_ui"])


def test_a_new_run_supersedes_the_sessions_previous_run_of_the_same_action():
    state = session.SessionState()
    first, sweep = state.new_stop("steer"), state.new_stop("sweep-slm")
    second = state.new_stop("steer")
    assert first.is_set() and not second.is_set() and not sweep.is_set()
    state.stop_all()
    assert second.is_set() and sweep.is_set()
