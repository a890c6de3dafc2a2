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
