"""steer_ui.app.actions.chat: the Steer tab's multi-turn chat, unsteered beside steered,
each side with its own history, on a tiny pair."""

from __future__ import annotations

import threading

import pytest

from conftest import TINY_CONTRAST_LISTS, tiny_pair
from steer_ui.app.actions import chat
from steer_ui.app.actions import concept as concept_actions
from steer_ui.app.state import SessionState
from steer_ui.concepts import contrast
from steer_ui.errors import SteerError
from steer_ui.steering.generation import Sampling, generate


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


SAMPLING = Sampling(5)


@pytest.fixture(scope="module")
def session():
    wb, state = tiny_pair(), SessionState()
    concept_actions.extract_both(wb, state, contrast.from_lists(*TINY_CONTRAST_LISTS), "mean-diff", "last")
    wb.models["slm"].model.generation_config.eos_token_id = None  # full-length replies
    return wb, state


def _turn(wb, state, message, plain, steered, how=chat.ChatSteer("native", 1.5, 1)):
    out = list(chat.chat_turn(wb, state, message, plain, steered, how, "be brief", SAMPLING, threading.Event()))
    return out[-1]


def test_two_turns_each_side_answers_after_its_own_history(session):
    wb, state = session
    slm, v = wb.models["slm"], state.vector("slm")
    plain, steered, status = _turn(wb, state, "the day", [], [])
    assert [m["role"] for m in plain] == [m["role"] for m in steered] == ["user", "assistant"]
    assert plain[1]["content"] != steered[1]["content"]
    assert status.startswith("chat: SLM steered by **custom** (native) +1.50 relative at layer 1") and "turn 1" in status
    # the second turn, with Gradio 6's content parts as the Chatbot sends them back
    as_sent = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in steered]
    plain2, steered2, status = _turn(wb, state, "i am very happy", plain, as_sent)
    assert len(plain2) == len(steered2) == 4 and "turn 2" in status
    user = {"role": "user", "content": "i am very happy"}
    own = chat.conversation(slm, [*steered, user], "be brief")  # the steered side's own first reply in it
    assert steered[1]["content"] in own
    assert steered2[3]["content"] == generate(slm, own, v, [1.5], 1, SAMPLING, chat=False)[0]
    unsteered = chat.conversation(slm, [*plain, user], "be brief")
    assert plain2[3]["content"] == generate(slm, unsteered, None, [0.0], sampling=SAMPLING, chat=False)[0]


def test_an_empty_message_is_refused(session):
    wb, state = session
    with pytest.raises(SteerError, match="Type a message to send: the chat box is empty"):
        _turn(wb, state, "   ", [], [])
