"""steer_ui.evaluation.report: report.json round-trips; plots are written as HTML (PNG when possible)."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from steer_ui.evaluation import report


def _ab_report():
    return {
        "arms": {
            "baseline": {"intensity": 0.0, "layer": None, "test": {"accuracy": 0.5, "accuracy_ci": [0.25, 0.75]},
                         "curve": {"intensity": [0.0], "accuracy": [0.5], "p_match": [0.52]}},
            "native": {"intensity": 1.0, "layer": 2, "test": {"accuracy": 0.75, "accuracy_ci": [0.5, 1.0],
                                                               "delta_vs_baseline": 0.25, "delta_ci": [0.0, 0.5]},
                       "curve": {"intensity": [-1.0, 0.0, 1.0], "accuracy": [0.25, 0.5, 0.75],
                                 "p_match": [0.4, 0.52, 0.7]}},
        },
        "n_dev": 4, "n_test": 4, "seed": 0, "scaling": "dev-sweep", "intensities": [-1.0, 0.0, 1.0],
    }


@pytest.fixture
def no_png(monkeypatch):
    """No Chromium in tests: make PNG export fail fast, as it does without kaleido's browser."""
    def fail(self, *a, **k):
        raise RuntimeError("no chromium")

    monkeypatch.setattr(go.Figure, "write_image", fail)


def test_write_ab(tmp_path, no_png):
    rep = _ab_report()
    files = report.write(rep, tmp_path / "out", "ab")
    assert files[0] == tmp_path / "out" / "report.json"
    loaded = json.loads(files[0].read_text())
    assert loaded["arms"] == _ab_report()["arms"]
    assert loaded["intensities"] == [-1.0, 0.0, 1.0]
    html = [f for f in files if f.suffix == ".html"]
    assert {f.name for f in html} == {"accuracy.html", "p_match.html"}
    assert all(f.is_file() and f.stat().st_size > 1000 for f in html)
    # the skipped PNGs are noted, in the returned dict and in the file
    assert len(rep["notes"]) == 2 and all("PNG" in n for n in rep["notes"])
    assert loaded.get("notes") == rep["notes"]


def test_curves_figure_aligns_arms_on_the_grid():
    fig = report.curves_figure(_ab_report(), "accuracy", "t")
    by_name = {tr.name: list(tr.y) for tr in fig.data}
    assert by_name["native"] == [0.25, 0.5, 0.75]
    assert by_name["baseline"] == [0.5, 0.5, 0.5]  # an unsteered arm is flat across the grid
    assert list(fig.data[0].x) == [-1.0, 0.0, 1.0]


def test_write_generation_skips_missing_metric(tmp_path, no_png):
    rep = {"arms": {"baseline": {"curve": {"intensity": [0.0], "efficacy": [0.4], "perplexity": None}},
                    "native": {"curve": {"intensity": [0.0, 1.0], "efficacy": [0.4, 0.6], "perplexity": None}}},
           "intensities": [0.0, 1.0]}
    files = report.write(rep, tmp_path, "generation")
    assert [f.name for f in files if f.suffix == ".html"] == ["efficacy.html"]
    assert json.loads((tmp_path / "report.json").read_text())["arms"]["native"]["curve"]["efficacy"] == [0.4, 0.6]
