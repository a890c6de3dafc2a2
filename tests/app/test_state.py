"""steer_ui.app.state: what a session holds is what the UI lists; newer runs supersede older ones."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import TINY_CONTRAST_LISTS, random_vector, tiny_pair
from steer_ui.app.actions import concept as concept_actions
from steer_ui.app.state import SessionState
from steer_ui.concepts import contrast
from steer_ui.errors import SteerError
from steer_ui.concepts.files import save_vector


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


CS = contrast.from_lists(*TINY_CONTRAST_LISTS)




def test_re_extracting_keeps_transferred_and_uploaded_vectors(tmp_path):
    wb, state = tiny_pair(), SessionState()
    concept_actions.extract_both(wb, state, CS, "mean-diff", "last")
    path = save_vector(random_vector(wb.models["slm"]), tmp_path / "mine.safetensors")
    kind, message = concept_actions.upload_vector(wb, state, str(path))
    assert kind == "uploaded:mine"
    assert message == "uploaded **uploaded:mine**: 3 layers x 32, made for tiny-llama, default layer 1"
    state.add("transferred:ridge:custom", random_vector(wb.models["slm"], "custom"))
    before = state.vector_kinds()
    concept_actions.extract_both(wb, state, CS, "mean-diff", "last")  # the same set again: 0 forward passes
    concept_actions.extract_both(wb, state, replace(CS, name="other"), "pca", "last")
    assert state.vector_kinds() == before == ["native", "random control", "uploaded:mine",
                                              "transferred:ridge:custom"]
    assert state.vector("slm", "uploaded:mine").name == "mine"
    assert state.files() == ["LLM native", "SLM native", "SLM uploaded:mine", "SLM transferred:ridge:custom"]
    # a second upload of the same name gets its own entry; removing one leaves the rest
    assert concept_actions.upload_vector(wb, state, str(path))[0] == "uploaded:mine#2"
    state.remove("uploaded:mine")
    assert state.vector_kinds() == ["native", "random control", "transferred:ridge:custom", "uploaded:mine#2"]
    with pytest.raises(SteerError, match="holds no SLM vector 'uploaded:mine' \\(it holds: native, random"):
        state.vector("slm", "uploaded:mine")
    with pytest.raises(SteerError, match="not a vector you transferred or uploaded"):
        state.remove("native")


def test_a_new_run_supersedes_the_sessions_previous_run_of_the_same_action():
    state = SessionState()
    first, sweep = state.new_stop("steer"), state.new_stop("sweep-slm")
    second = state.new_stop("steer")
    assert first.is_set() and not second.is_set() and not sweep.is_set()
    state.stop_all()
    assert second.is_set() and sweep.is_set()
