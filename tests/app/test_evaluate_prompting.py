"""The Evaluate tab's prompting arm: the SLM unsteered, told the preset's persona in its
system prompt, offered once a concept is extracted (tiny pair, no gradio events)."""

from __future__ import annotations

import pytest

from conftest import TINY_CONTRAST_LISTS, tiny_pair
from steer_ui.app.actions import concept as concept_actions
from steer_ui.app.actions import evaluate as evaluate_actions
from steer_ui.app.actions.evaluate import PROMPTING
from steer_ui.app.state import SessionState
from steer_ui.app.tabs.common import lists
from steer_ui.concepts import contrast
from steer_ui.concepts.contrast import load_preset
from steer_ui.errors import DatasetError


def test_the_prompting_arm_tells_the_slm_the_presets_persona():
    wb, state = tiny_pair(), SessionState()
    assert PROMPTING not in lists(state)[1]["choices"]  # nothing extracted: no arms at all
    concept_actions.extract_both(wb, state, contrast.from_preset("happy-sad", 4), "mean-diff", "last")
    assert PROMPTING in lists(state)[1]["choices"] and PROMPTING not in lists(state)[1]["value"]
    arms = evaluate_actions.session_arms(wb, state, ["native", PROMPTING])
    assert [a.name for a in arms] == ["baseline", "native", "prompting"]
    prompting = arms[-1]
    assert prompting.vector is None and prompting.system == f"Answer as {load_preset('happy-sad')['positive_persona']}."


def test_a_concept_from_typed_lists_has_no_persona_to_tell():
    wb, state = tiny_pair(), SessionState()
    concept_actions.extract_both(wb, state, contrast.from_lists(*TINY_CONTRAST_LISTS), "mean-diff", "last")
    with pytest.raises(DatasetError, match="extract a preset concept"):
        evaluate_actions.session_arms(wb, state, [PROMPTING])
