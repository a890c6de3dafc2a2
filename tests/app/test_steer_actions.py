"""steer_ui.app.actions.steer: both models side by side, each to its own end, with a status line."""

from __future__ import annotations

import threading

import pytest
import torch

from conftest import TINY_CONTRAST_LISTS, tiny_pair
from steer_ui.app.actions import concept as concept_actions
from steer_ui.app.actions import steer as steer_actions
from steer_ui.app.state import SessionState
from steer_ui.concepts import contrast
from steer_ui.models.tokens import encode
from steer_ui.steering import generation
from steer_ui.steering.generation import Sampling
from steer_ui.steering.hooks import steer


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


CS = contrast.from_lists(*TINY_CONTRAST_LISTS)



def test_both_mode_runs_each_model_to_its_own_end():
    """The SLM ends after one token; the LLM must still write all of its tokens (a shared
    stop event that the first to finish set used to cut the LLM short)."""
    wb, state = tiny_pair(), SessionState()
    concept_actions.extract_both(wb, state, CS, "mean-diff", "last")
    llm, slm = wb.models["llm"], wb.models["slm"]
    llm.model.generation_config.eos_token_id = None
    batch = encode(slm, [slm.chat("the day")])
    firsts = []
    for x in (0.0, 1.0):  # the first token of each SLM row is made its end of text
        with steer(slm, state.vector("slm"), x, 1), torch.inference_mode():
            firsts.append(int(slm.model(**batch).logits[0, -1].argmax()))
    slm.model.generation_config.eos_token_id = firsts
    out = list(steer_actions.steer_texts(wb, state, ["llm", "slm"], "the day", 1.0, {"llm": 1, "slm": 1}, "native",
                                   "relative", "all", Sampling(12), threading.Event()))
    texts, status = out[-1]
    solo = generation.generate(llm, "the day", None, [0.0], sampling=Sampling(12))[0]
    assert texts[0] == solo  # the LLM's unsteered pane ran to the end
    assert "LLM 12 tokens" in status and "SLM 0 tokens" in status, status  # its first token ended it
    assert status.startswith("steering LLM: **custom** (native) at layer 1 · SLM: **custom** (native) at layer 1; "
                             "intensity +1.00 relative, all positions")
    assert all(s.endswith("generating…") for _, s in out[:-1])


