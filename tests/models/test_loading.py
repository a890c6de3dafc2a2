"""steer_ui.models.loading: what a ModelSpec names, and LoadedModel facts."""

from __future__ import annotations

import pytest

from conftest import make_tiny
from steer_ui.concepts.recording import typical_norms
from steer_ui.errors import ModelError
from steer_ui.models import zoo
from steer_ui.models.loading import ModelSpec


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


def test_kind_bundled():
    for name in zoo.BUNDLED:
        assert ModelSpec(name).kind() == "bundled"
    assert ModelSpec("  smollm2-135m ").kind() == "bundled"


def test_kind_folder_with_config(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert ModelSpec(str(tmp_path)).kind() == "folder"


def test_kind_folder_without_config(tmp_path):
    with pytest.raises(ModelError, match="is a folder but not a model: it has no config.json"):
        ModelSpec(str(tmp_path)).kind()


def test_kind_gguf_file(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    assert ModelSpec(str(f)).kind() == "gguf"


def test_kind_other_file(tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file but not a .gguf model file"):
        ModelSpec(str(f)).kind()


def test_kind_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so "org/name" is surely not a local path
    assert ModelSpec("org/name").kind() == "hub"
    assert ModelSpec("Qwen/Qwen2.5-0.5B-Instruct").kind() == "hub"


@pytest.mark.parametrize("src", ["nope", "a/b/c", "org/", "org name/x"])
def test_kind_unknown_lists_bundled_names(tmp_path, monkeypatch, src):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as info:
        ModelSpec(src).kind()
    msg = str(info.value)
    assert "Unknown bundled model" in msg and repr(src) in msg
    for name in zoo.BUNDLED:
        assert name in msg


@pytest.mark.parametrize("src", ["", "   "])
def test_kind_empty(src):
    with pytest.raises(ModelError, match="No model given"):
        ModelSpec(src).kind()


def test_loaded_model_facts_and_norms():
    lm = make_tiny("gpt2")
    facts = lm.facts()
    assert facts["layers"] == 3 and facts["hidden size"] == 32
    assert facts["dtype"] == "float32" and facts["device"] == "cpu"
    assert lm.family == "gpt2"
    assert lm.n_params() == sum(p.numel() for p in lm.model.parameters())
    assert lm.memory_bytes() == 4 * lm.n_params()
    norms = typical_norms(lm)
    assert norms.shape == (3,)
    assert typical_norms(lm) is norms  # computed once
