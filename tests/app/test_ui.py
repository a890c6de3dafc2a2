"""UI wiring, read from the built Blocks config (no server, no model)."""

from __future__ import annotations


def test_generate_click_supersedes_a_pending_slider_release():
    """Typing an intensity then pressing Generate fires the slider's release first; the
    click must cancel that run (one generation, not two), and Stop cancels both."""
    from steer_ui.app.pool import ModelPool
    from steer_ui.app.ui import build

    deps = build(ModelPool()).config["dependencies"]
    steer = next(d for d in deps if d["api_name"] == "steer")
    release = next(d for d in deps if d["targets"][0][1] == "release" and d["inputs"] == steer["inputs"])
    cancels_on_click = [d["cancels"] for d in deps if d["types"]["cancel"] and d["targets"] == steer["targets"]]
    assert cancels_on_click == [[release["id"]]]
    stop = next(d for d in deps if d["api_name"] == "stop")
    stop_cancels = next(d["cancels"] for d in deps if d["types"]["cancel"] and d["targets"] == stop["targets"])
    assert {steer["id"], release["id"]} <= set(stop_cancels)
