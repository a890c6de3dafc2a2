"""steer_ui.app.actions.explore on the tiny pair: heatmaps of both models, the lens
view, Calibrate's answer for the Steer tab, and what each says without a concept."""

from __future__ import annotations

import pytest

from conftest import TINY_CONTRAST_LISTS, tiny_pair
from steer_ui.app.actions import concept as concept_actions
from steer_ui.app.actions import explore
from steer_ui.app.state import SessionState
from steer_ui.concepts import contrast
from steer_ui.errors import ContrastError, IntensityError, SteerError

LISTS = ("\n".join(TINY_CONTRAST_LISTS[0].splitlines() * 2), "\n".join(TINY_CONTRAST_LISTS[1].splitlines() * 2))


@pytest.fixture(scope="module")
def session():
    wb, state = tiny_pair(), SessionState()
    concept_actions.extract_both(wb, state, contrast.from_lists(*LISTS), "mean-diff", "last")
    return wb, state


def test_heatmaps_of_both_models_at_their_viewed_layers(session):
    wb, state = session
    llm, slm, status = explore.heatmaps(wb, state, "the happy day and the sad night", {"llm": 1, "slm": 2})
    assert "layer 1" in llm and "tiny-qwen2" in llm
    assert "layer 2" in slm and "tiny-llama" in slm
    assert llm.count('class="hm-tok"') == slm.count('class="hm-tok"') == 7
    assert "LLM 7 tokens" in status and "SLM 7 tokens" in status


def test_fill_text_from_the_contrast_set_and_the_panes(session):
    _, state = session
    assert explore.fill_text(state, "first positive contrast prompt", [""] * 4, "") == "the happy day"
    assert explore.fill_text(state, "SLM steered pane", ["a", "b", "c", "d"], "") == "d"
    assert explore.fill_text(state, "typed", [""] * 4, "mine") == "mine"
    with pytest.raises(SteerError, match="is empty: generate first"):
        explore.fill_text(state, "LLM unsteered pane", [""] * 4, "")


def test_lens_view_has_both_curves_and_every_layer(session):
    wb, state = session
    fig, table, status = explore.lens_view(wb, state, "slm", 1)
    names = {t.name for t in fig.data if t.name}
    assert {"separability (probe AUC)", "accessibility (logit-lens AUC)"} <= names
    assert [row[0] for row in table] == [0, 1, 2]
    assert "accessibility peaks at layer" in status


def test_calibrate_answers_for_the_steer_tab(session):
    wb, state = session
    fig, reason, intensity, layer = explore.calibrate(wb, state, "slm", "native", "the day\nthe night",
                                                      "1-2", "0.3, 0.6", 50.0)
    assert (layer is None) == (intensity is None)
    if layer is not None:
        assert layer in (1, 2) and intensity in (0.3, 0.6) and f"layer {layer}" in reason
    assert fig.data[0].type == "heatmap"


def test_without_a_concept_each_view_says_extract_first():
    wb, state = tiny_pair(), SessionState()
    with pytest.raises(SteerError, match="Extract a concept first"):
        explore.heatmaps(wb, state, "the day", {"llm": 1, "slm": 1})
    with pytest.raises(ContrastError, match="Extract a concept in the SLM first"):
        explore.lens_view(wb, state, "slm", 1)
    with pytest.raises(ContrastError, match="Extract a concept in the SLM first"):
        explore.calibrate(wb, state, "slm", "native", "a\nb", "", "0.4", 1.0)


def test_calibrate_bad_grids(session):
    wb, state = session
    with pytest.raises(ContrastError, match="at least 2 neutral prompts"):
        explore.calibrate(wb, state, "slm", "native", "only one", "", "0.4", 1.0)
    with pytest.raises(ContrastError, match="at least 2 neutral prompts"):
        explore.calibrate(wb, state, "slm", "native", "  \n ", "", "0.4", 1.0)
    with pytest.raises(IntensityError):
        explore.calibrate(wb, state, "slm", "native", "a\nb", "", "0.4, x", 1.0)
