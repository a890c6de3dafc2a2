"""steer_ui.app.session_file and the Models tab's save/restore actions: a session goes
into one zip and comes back whole; a file that does not fit or is bad is refused or
skipped with a message, and the session is left as it was."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open

from conftest import TINY_CONTRAST_LISTS, make_tiny, random_vector, tiny_pair
from steer_ui.app import session_file
from steer_ui.app.actions import concept as concept_actions
from steer_ui.app.actions import models as actions
from steer_ui.app.pool import Pair
from steer_ui.app.state import SessionState
from steer_ui.concepts import contrast
from steer_ui.errors import VectorError

SETTINGS = {"prompt": "Tell me a story.", "intensity": 0.65, "mode": "raw", "positions": "generated",
            "max_new_tokens": 20, "temperature": 0.5, "top_p": 0.9, "seed": 7}


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A tiny pair, a session with native vectors in both models, a transfer-like, an
    uploaded and an arithmetic vector, saved once: (pair, state, path, status)."""
    wb, state = tiny_pair(), SessionState()
    concept_actions.extract_both(wb, state, contrast.from_lists(*TINY_CONTRAST_LISTS), "pca", "mean")
    slm = wb.models["slm"]
    moved = replace(random_vector(slm, "concept", layer=2),
                    provenance={"transferred_from": "tiny-qwen2", "map": "ridge", "source_layer": 1})
    state.add("transferred:ridge:concept", moved)
    state.add("uploaded:mine", random_vector(slm, "mine"))
    state.add("arithmetic:sum", state.vector("slm", "native") + moved)
    path, status = actions.save_session(wb, state, SETTINGS, tmp_path_factory.mktemp("saved"))
    return wb, state, path, status


def test_round_trip_restores_every_vector_and_the_settings(session):
    wb, state, path, status = session
    assert path.split("/")[-1].startswith("steer-ui-session-custom-") and path.endswith(".zip")
    assert status.startswith(f"saved **{path.split('/')[-1]}**: LLM native, SLM native, SLM transferred")
    fresh = SessionState()
    text, settings = actions.restore_session(wb, fresh, path)
    assert settings == SETTINGS
    assert fresh.vector_kinds() == state.vector_kinds() and fresh.files() == state.files()
    for kind in state.vector_kinds():
        a, b = state.vector("slm", kind), fresh.vector("slm", kind)
        assert torch.equal(a.directions, b.directions), kind
        assert (a.name, a.model, a.method, a.default_layer, a.provenance, a.created) == \
            (b.name, b.model, b.method, b.default_layer, b.provenance, b.created), kind
        assert a.separability == pytest.approx(b.separability, nan_ok=True)
    for role, ex in state.extractions.items():  # the extraction whole: PCA plot and transfer work at once
        back = fresh.extractions[role]
        assert torch.equal(back.pos, ex.pos) and torch.equal(back.neg, ex.neg)
        assert back.contrast == ex.contrast and back.vector.provenance["position"] == "mean"
    assert concept_actions.pca_figure(fresh, "slm", 1) is not None
    assert text.startswith(f"restored from **{path.split('/')[-1]}** (concept custom, saved ")
    assert "LLM native, SLM native, SLM transferred:ridge:concept, SLM uploaded:mine, SLM arithmetic:sum" in text
    assert "skipped" not in text


def test_the_file_is_what_the_format_says_read_with_plain_libraries(session):
    wb, state, path, _ = session
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
        names = set(z.namelist())
        assert manifest["format"] == "steer-ui-session" and manifest["format_version"] == 1
        assert manifest["models"] == {"llm": "tiny-qwen2", "slm": "tiny-llama"}
        assert manifest["settings"] == SETTINGS and manifest["concept"] == "custom"
        kinds = [(e["slot"], e["role"], e["kind"]) for e in manifest["vectors"]]
        assert kinds == [("native", "llm", "native"), ("native", "slm", "native"),
                         ("extra", "slm", "transferred:ridge:concept"), ("extra", "slm", "uploaded:mine"),
                         ("extra", "slm", "arithmetic:sum")]
        assert names == {"manifest.json", "activations/llm.safetensors", "activations/slm.safetensors",
                         *[e["file"] for e in manifest["vectors"]]}
        entry = manifest["vectors"][2]
        z.extract(entry["file"], path + ".out")
        z.extract("activations/slm.safetensors", path + ".out")
    with safe_open(f"{path}.out/{entry['file']}", "pt") as f:  # an ordinary steer-ui vector file
        meta = json.loads(f.metadata()["steer_ui"])
        assert torch.equal(f.get_tensor("directions"), state.extra["transferred:ridge:concept"].directions)
    assert meta["provenance"]["map"] == "ridge" and meta["default_layer"] == 2
    with safe_open(f"{path}.out/activations/slm.safetensors", "pt") as f:
        assert torch.equal(f.get_tensor("pos"), state.extractions["slm"].pos)
    assert manifest["vectors"][1]["contrast"]["positive"][0] == {"user": "the happy day", "answer": ""}


def test_restoring_onto_models_of_another_size_skips_those_vectors(session):
    wb, _, path, _ = session
    other = Pair()
    other.models["llm"] = wb.models["llm"]  # the LLM fits; the SLM is missing
    state = SessionState()
    text, _ = actions.restore_session(other, state, path)
    assert list(state.extractions) == ["llm"] and state.extra == {}
    assert "⚠ skipped SLM native (no SLM is loaded: load tiny-llama and restore again)" in text
    wide = Pair()
    wide.models["slm"] = _wide_tiny()
    text, _ = actions.restore_session(wide, state, path)
    assert "⚠ skipped SLM transferred:ridge:concept (3 layers x 32 for tiny-llama, but the loaded SLM " \
           "tiny-wide has 3 x 48: load tiny-llama and restore again)" in text
    assert list(state.extractions) == ["llm"] and state.extra == {}  # what was there stays


def test_restoring_onto_another_model_of_the_same_shape_says_so(session):
    wb, _, path, _ = session
    other = Pair()
    other.models["slm"] = make_tiny("gpt2")  # 3 layers x 32 too
    state = SessionState()
    text, _ = actions.restore_session(other, state, path)
    assert "SLM uploaded:mine was made with tiny-llama, restored onto tiny-gpt2 (same shape)" in text
    assert state.vector_kinds() == ["native", "random control", "transferred:ridge:concept", "uploaded:mine",
                                    "arithmetic:sum"]


def _wide_tiny():
    lm = make_tiny("llama")
    lm.model.config.hidden_size = 48  # what LoadedModel reports; no forward pass needed here
    lm.name = "tiny-wide"
    return lm


def test_a_session_too_big_for_the_cap_leaves_out_activations_and_records_them_again(session, tmp_path,
                                                                                       monkeypatch):
    wb, state, full, _ = session
    with zipfile.ZipFile(full) as z:  # a cap that holds everything but one role's activations
        sizes = {i.filename: i.file_size for i in z.infolist()}
    cap = sum(sizes.values()) - sizes["activations/llm.safetensors"] + 2048
    monkeypatch.setattr(session_file, "max_upload_bytes", lambda: cap)
    path, status = actions.save_session(wb, state, SETTINGS, tmp_path)
    assert "the LLM activations were left out to fit the upload cap" in status and "SLM activations" not in status
    with zipfile.ZipFile(path) as z:
        assert "activations/slm.safetensors" in z.namelist() and "activations/llm.safetensors" not in z.namelist()
    fresh = SessionState()
    text, _ = actions.restore_session(wb, fresh, path)
    assert "its activations were not in the file, so its prompts were recorded again" in text
    for role, ex in state.extractions.items():
        assert torch.equal(fresh.extractions[role].vector.directions, ex.vector.directions)
        assert torch.allclose(fresh.extractions[role].pos, ex.pos, atol=1e-5)


def _rezip(src: str, dst, edit) -> str:
    """A copy of session file ``src`` with ``edit(members)`` applied (tampering)."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    edit(members)
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return str(dst)


def _set_version(members):
    manifest = json.loads(members["manifest.json"])
    members["manifest.json"] = json.dumps({**manifest, "format_version": 99}).encode()


def _flip_a_vector(members):
    name = next(n for n in members if n.startswith("vectors/"))
    members[name] = members[name][:-4] + b"\x00\x00\x80\x7f"


BAD = [
    ("random bytes", lambda p, t: (t / "x.zip").write_bytes(b"\x01\x02 not a zip" * 50) and str(t / "x.zip"),
     "not a steer-ui session file (not a zip)"),
    ("no manifest", lambda p, t: _rezip(p, t / "x.zip", lambda m: m.pop("manifest.json")),
     "lacks manifest.json: the session file is incomplete"),
    ("wrong version", lambda p, t: _rezip(p, t / "x.zip", _set_version), "session format version 99"),
    ("missing vector", lambda p, t: _rezip(p, t / "x.zip", lambda m: m.pop("vectors/3.safetensors")),
     "lacks vectors/3.safetensors"),
    ("tampered vector", lambda p, t: _rezip(p, t / "x.zip", _flip_a_vector), "does not match its checksum"),
]


@pytest.mark.parametrize("what,make,message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_file_is_refused_and_the_session_is_untouched(session, tmp_path, what, make, message):
    wb, state, path, _ = session
    before = (state.vector_kinds(), dict(state.extractions), dict(state.extra))
    with pytest.raises(VectorError, match=re.escape(message)):
        actions.restore_session(wb, state, make(path, tmp_path))
    assert (state.vector_kinds(), dict(state.extractions), dict(state.extra)) == before


def test_an_oversize_file_is_refused_before_it_is_read(session, tmp_path, monkeypatch):
    wb, _, _, _ = session
    monkeypatch.setenv("STEER_UI_MAX_UPLOAD_MB", "1")
    big = tmp_path / "big.zip"
    with open(big, "wb") as f:
        f.truncate(2 * 2**20)  # sparse: nothing is written
    state = SessionState()
    with pytest.raises(VectorError, match="big.zip is over the 1 MiB upload cap"):
        actions.restore_session(wb, state, str(big))
    assert state.vector_kinds() == []


def test_restore_outputs_every_list_and_the_steer_settings():
    """The Restore event writes every list built from the session and each saved setting."""
    from steer_ui.app.pool import ModelPool
    from steer_ui.app.tabs.models import SETTINGS as KEYS
    from steer_ui.app.ui import build

    demo = build(ModelPool())
    deps = demo.config["dependencies"]
    restore = next(d for d in deps if d["api_name"] == "restore_session")
    save = next(d for d in deps if d["api_name"] == "save_session")
    by_label = {b._id: getattr(b, "label", None) for b in demo.blocks.values()}
    labels = [by_label[i] for i in restore["outputs"]]
    assert "SLM vector" in labels and "Prompt" in labels and "Seed" in labels
    assert {"Steer at layer(s)", "System prompt (empty = none)", "Raw completion (no chat template)"} <= set(labels)
    upload = next(d for d in deps if d["api_name"] == "upload_vector")  # it refreshes every list too
    assert set(upload["outputs"][2:]) <= set(restore["outputs"])
    assert restore["outputs"][-len(KEYS):] == save["inputs"][1:] and len(save["inputs"]) == 1 + len(KEYS)


def test_a_saved_setting_goes_back_only_where_the_component_accepts_it():
    import gradio as gr

    from steer_ui.app.tabs.models import _setting_update

    radio, slider = gr.Radio(["relative", "raw"], value="relative"), gr.Slider(-2, 2, value=0.4)
    assert _setting_update(radio, "raw")["value"] == "raw"
    assert "value" not in _setting_update(radio, "sideways") and "value" not in _setting_update(radio, None)
    assert _setting_update(slider, 9)["value"] == 2 and "value" not in _setting_update(slider, "lots")
    assert _setting_update(gr.Textbox(), "hello")["value"] == "hello"
    assert _setting_update(gr.Checkbox(), True)["value"] is True
    assert "value" not in _setting_update(gr.Checkbox(), "yes")
