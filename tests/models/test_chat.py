"""steer_ui.models.chat: prompts in the model's chat template, or plain text."""

from __future__ import annotations

import pytest

from conftest import make_tiny, tiny_tokenizer
from steer_ui.models.chat import format_chat, format_messages


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


def test_format_chat_without_template_is_plain_text():
    tok = tiny_tokenizer()
    assert not getattr(tok, "chat_template", None)
    assert format_chat(tok, "hello") == "hello\n"
    assert format_chat(tok, "hello", system="be nice") == "be nice\nhello\n"
    assert format_chat(tok, "hello", assistant_prefix="Sure") == "hello\nSure"


TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")


def test_format_chat_with_template():
    tok = tiny_tokenizer()
    tok.chat_template = TEMPLATE
    assert format_chat(tok, "hi") == "<user>hi</user><assistant>"
    assert format_chat(tok, "hi", system="sys", assistant_prefix="I am") == \
        "<system>sys</system><user>hi</user><assistant>I am"


def test_format_messages_and_loaded_model_chat():
    lm = make_tiny("llama")
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}]
    assert format_messages(lm.tokenizer, msgs) == "a\nb\nc\n"
    assert lm.chat("x", assistant_prefix="y") == "x\ny"
    lm.tokenizer.chat_template = TEMPLATE
    assert lm.chat_messages(msgs) == "<user>a</user><assistant>b</assistant><user>c</user><assistant>"
