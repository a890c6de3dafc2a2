"""``steer_ui.app.actions.evaluate.evaluate_for_download``: after an evaluation the
result JSON and both plots (standalone HTML) are offered as files, on the tiny pair."""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import pytest

from conftest import FIXTURES, TINY_CONTRAST_LISTS, tiny_pair
from steer_ui.app.actions import concept as concept_actions
from steer_ui.app.actions import evaluate as actions
from steer_ui.app.state import SessionState
from steer_ui.concepts import contrast


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


@pytest.fixture
def no_png(monkeypatch):
    """PNG export failing fast, as without kaleido's Chromium: the HTML must come anyway."""
    def fail(self, *a, **k):
        raise RuntimeError("no chromium")

    monkeypatch.setattr(go.Figure, "write_image", fail)


def test_evaluation_files_are_valid_json_and_standalone_html(tmp_path, no_png):
    wb, state = tiny_pair(), SessionState()
    concept_actions.extract_both(wb, state, contrast.from_lists(*TINY_CONTRAST_LISTS), "mean-diff", "last")
    table, fig1, fig2, files = actions.evaluate_for_download(
        wb, state, "", str(FIXTURES / "ab_small.json"), "ab", ["native", "random control"], "dev-sweep",
        "0, 0.5", 12, folder=tmp_path)
    names = [Path(f).name for f in files]
    assert all(n.startswith("evaluation-custom-ab-") for n in names), names
    assert [n.rsplit("-", 1)[-1] for n in names] == ["report.json", "accuracy.html", "p_match.html"]
    result = json.load(open(files[0]))
    assert list(result["arms"]) == ["baseline", "native", "random control"]
    assert result["vectors"] == {"native": "custom", "random control": "random(custom)"}
    assert any("PNG for accuracy skipped" in n for n in result["notes"])
    for path, fig in zip(files[1:], (fig1, fig2)):
        html = Path(path).read_text(encoding="utf-8")
        # plotly.js is inside (megabytes of it), not fetched from a CDN: the file opens offline
        assert 'src="https://cdn' not in html and len(html) > 1_000_000 and "Plotly.newPlot" in html
        assert fig.layout.title.text in html and "random control" in html
    assert "| native | custom |" in table


def test_each_run_gets_its_own_folder(no_png):
    wb, state = tiny_pair(), SessionState()
    concept_actions.extract_both(wb, state, contrast.from_lists(*TINY_CONTRAST_LISTS), "mean-diff", "last")
    runs = [actions.evaluate_for_download(wb, state, "", str(FIXTURES / "ab_small.json"), "ab", ["native"],
                                          "dev-sweep", "0", 12)[3] for _ in range(2)]
    assert Path(runs[0][0]).parent != Path(runs[1][0]).parent
    assert all(Path(f).is_file() for f in runs[0] + runs[1])
