"""steer_ui.app.actions.steer: both models side by side, each to its own end, with a status line."""

from __future__ import annotations

import threading

import pytest
import torch

from conftest import TINY_CONTRAST_LISTS, random_vector, tiny_pair
from steer_ui.app.actions import concept as concept_actions
from steer_ui.app.actions import steer as steer_actions
from steer_ui.app.state import SessionState
from steer_ui.concepts import contrast
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.errors import LayerError, SteerError, VectorError
from steer_ui.models.tokens import encode
from steer_ui.steering import generation
from steer_ui.steering.generation import Sampling
from steer_ui.steering.hooks import Push, steer


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




# ---------- layers, system prompt, raw completion, composition (issue 16) ----------

def _slm_session():
    """A tiny pair with the concept extracted and a second SLM vector held as "uploaded:mine"."""
    wb, state = tiny_pair(), SessionState()
    concept_actions.extract_both(wb, state, CS, "mean-diff", "last")
    for lm in wb.models.values():
        lm.model.generation_config.eos_token_id = None  # full-length texts: compared token for token
    state.add("uploaded:mine", random_vector(wb.models["slm"]))
    return wb, state


def _slm_run(wb, state, **kw):
    args = dict(layers={"slm": 1}, style=steer_actions.PromptStyle(), extra=())
    args.update(kw)
    out = list(steer_actions.steer_texts(wb, state, ["slm"], "the day", 0.8, args["layers"], "native", "relative",
                                         "all", Sampling(6), threading.Event(), args["style"], args["extra"]))
    return out[-1]


def test_steer_at_a_layer_range_typed_apart_from_the_concept_layer():
    wb, state = _slm_session()
    slm, v = wb.models["slm"], state.vector("slm")
    layers = steer_actions.steer_layers("1-2", {"llm": 0, "slm": 0})  # the Concept tab shows layer 0
    assert layers == {"llm": [1, 2], "slm": [1, 2]}
    assert steer_actions.steer_layers("", {"llm": 0, "slm": 2}) == {"llm": 0, "slm": 2}
    texts, status = _slm_run(wb, state, layers=layers)
    assert texts[3] == generation.generate(slm, slm.chat("the day"), v, [0.8], [1, 2], Sampling(6), chat=False)[0]
    assert "SLM: **custom** (native) at layers 1-2; intensity +0.80" in status
    with pytest.raises(LayerError, match=r"Steer at layer\(s\) 'x' is not a layer"):
        steer_actions.steer_layers("x", {"slm": 1})


def test_system_prompt_and_raw_completion_reach_the_model():
    wb, state = _slm_session()
    slm = wb.models["slm"]
    texts, status = _slm_run(wb, state, style=steer_actions.PromptStyle("be glad"))
    assert texts[2] == generation.generate(slm, slm.chat("the day", system="be glad"), None, [0.0], sampling=Sampling(6),
                                           chat=False)[0]
    assert "; system prompt; intensity" in status
    texts, status = _slm_run(wb, state, style=steer_actions.PromptStyle(raw=True))
    assert texts[2] == generation.generate(slm, "the day", None, [0.0], sampling=Sampling(6), chat=False)[0]
    assert "; raw completion; intensity" in status
    with pytest.raises(SteerError, match="A system prompt needs the chat template"):
        steer_actions.PromptStyle("be glad", raw=True).text(slm, "the day")


def test_composed_vectors_steer_the_slm_steered_pane_only():
    wb, state = _slm_session()
    slm, v = wb.models["slm"], state.vector("slm")
    layers, extra = steer_actions.settings(state, "", {"slm": 1}, "relative",
                                           ["uploaded:mine", -0.3, "2", None, 0.5, ""])  # row 3: no vector
    assert extra == (Push(state.vector("slm", "uploaded:mine"), -0.3, (2,), "relative"),)
    assert steer_actions.settings(state, "", {"slm": 1}, "relative", ["uploaded:mine", 0, "", None, 0, ""])[1] == ()
    texts, status = _slm_run(wb, state, layers=layers, extra=extra)
    alone, _ = _slm_run(wb, state, layers=layers)
    assert texts[2] == alone[2]  # the unsteered pane stays unsteered
    assert texts[3] == generation.generate(slm, slm.chat("the day"), v, [0.8], 1, Sampling(6), chat=False,
                                           extra=extra)[0] != alone[3]
    assert "at layer 1 + **mine -0.30 at layer 2**; intensity" in status
    with pytest.raises(LayerError, match="Compose vector 2: layers"):
        steer_actions.settings(state, "", {"slm": 1}, "relative", ["uploaded:mine", 0.2, "two", None, 0, ""])


def test_a_composed_vector_of_another_model_is_refused_by_name():
    wb, state = _slm_session()
    state.add("uploaded:big", ConceptVector(torch.randn(3, 100), "other-model", name="big", default_layer=1))
    _, extra = steer_actions.settings(state, "", {"slm": 1}, "relative", ["uploaded:big", 0.2, "", None, 0, ""])
    with pytest.raises(VectorError, match="Vector 'big' was made for other-model"):
        _slm_run(wb, state, extra=extra)
