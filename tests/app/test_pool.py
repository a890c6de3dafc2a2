"""steer_ui.app.pool: the shared model pair keeps the app's loading settings for every load."""

from __future__ import annotations

from conftest import make_tiny
from steer_ui.app import pool
from steer_ui.app.pool import ModelPool


def test_loads_keep_the_apps_device_map_and_remote_code_settings(monkeypatch):
    seen = []
    monkeypatch.setattr(pool, "load_model", lambda spec, progress=None: seen.append(spec) or make_tiny())
    wb = ModelPool("cpu", "float32", device_map="auto", trust_remote_code=True)
    wb.load("slm", "smollm2-135m")
    wb.load("llm", "qwen2.5-0.5b", dtype="bfloat16")
    assert [(s.device_map, s.trust_remote_code, s.device) for s in seen] == [("auto", True, "cpu")] * 2
    assert [s.dtype for s in seen] == ["float32", "bfloat16"]


def test_a_layers_path_given_at_start_is_kept(monkeypatch):
    seen = []
    monkeypatch.setattr(pool, "load_model", lambda spec, progress=None: seen.append(spec) or make_tiny())
    ModelPool(layers_path="model.layers").load("slm", "smollm2-135m")
    assert seen[0].layers_path == "model.layers"


# ---------- per-session pairs and the memory budget ----------

def _pool(monkeypatch, budget=None, sizes=None):
    """A pool whose loads build tiny models named after the source (sizes in bytes by name)."""
    sizes = sizes or {}

    def load(spec, progress=None):
        lm = make_tiny("llama")
        lm.name = spec.source
        if spec.source in sizes:
            lm.memory_bytes = lambda n=sizes[spec.source]: n
        return lm

    monkeypatch.setattr(pool, "load_model", load)
    return ModelPool(budget_bytes=budget)


def test_one_sessions_load_never_changes_anothers_pair(monkeypatch):
    wb = _pool(monkeypatch)
    wb.load("llm", "big"), wb.load("slm", "small")
    a, b = "session-a", "session-b"
    assert wb.pair(a).get("slm").name == wb.pair(b).get("slm").name == "small"
    wb.load_for(a, "slm", "other")
    assert wb.pair(a).get("slm").name == "other" and wb.pair(b).get("slm").name == "small"
    assert wb.pair(a).get("llm") is wb.pair(b).get("llm")  # shared, loaded once
    assert wb.load_for(b, "slm", "other") is wb.pair(a).get("slm")  # the same source: the same model
    assert wb.users_of("other") == 2 and wb.users_of("small") == 0
    table = {row[0]: row for row in wb.table()}
    assert table["other"][4] == 2 and table["big"][5] == "LLM" and table["small"][5] == "SLM"
    wb.forget(a)
    assert wb.users_of("other") == 1


def test_the_budget_evicts_unused_models_least_recently_used_first(monkeypatch):
    wb = _pool(monkeypatch, budget=300, sizes={"base": 100, "a": 100, "b": 100, "c": 100, "huge": 500})
    wb.load("slm", "base")
    wb.load_for("s1", "llm", "a")
    wb.load_for("s2", "llm", "b")
    wb.forget("s1"), wb.forget("s2")  # both sessions gone: a and b are unused, a the older
    wb.load_for("s3", "llm", "c")
    assert set(wb.loaded) == {"base", "b", "c"}  # a went first
    import pytest

    from steer_ui.errors import ModelError

    with pytest.raises(ModelError, match=r"huge needs 0 MiB, more than the memory budget"):
        wb.load_for("s3", "slm", "huge")
    assert "huge" not in wb.loaded and wb.pair("s3").get("slm").name == "base"
