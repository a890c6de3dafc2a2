"""steer_ui.models.tokens: BOS where the model expects one, padding without touching the shared tokenizer, pad tokens."""

from __future__ import annotations

import pytest

from conftest import make_tiny, tiny_tokenizer
from steer_ui.concepts import recording
from steer_ui.models.tokens import encode, ensure_pad_token


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


def test_ensure_pad_token_uses_eos():
    tok = tiny_tokenizer()
    assert tok.pad_token is None
    ensure_pad_token(tok)
    assert tok.pad_token == "<eos>"
    assert tok.pad_token_id == tok.convert_tokens_to_ids("<eos>")


def test_ensure_pad_token_keeps_existing():
    tok = tiny_tokenizer()
    tok.pad_token = "<pad>"
    ensure_pad_token(tok)
    assert tok.pad_token == "<pad>"
    assert tok.pad_token_id == 0


def test_ensure_pad_token_without_eos_or_unk_adds_one():
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tmodels
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(tmodels.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw)
    assert tok.pad_token is None and tok.eos_token is None and tok.unk_token is None
    ensure_pad_token(tok)
    assert tok.pad_token == "<|pad|>"
    assert tok.pad_token_id is not None
    batch = tok(["a", "a b"], padding=True)
    assert batch["input_ids"][0][-1] == tok.pad_token_id


def test_tiny_model_batches_with_padding():
    lm = make_tiny("llama")
    batch = lm.tokenizer(["the day", "the happy sad day"], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == (2, 4)
    assert batch["attention_mask"][0].tolist() == [1, 1, 0, 0]


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Tiny models share names across tests; start each test with an empty cache."""
    recording._CACHE.clear()
    yield


def test_encode_right_and_left_padding(tiny):
    right = encode(tiny, ["the day", "the happy sad day"])
    assert right["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    left = encode(tiny, ["the day", "the happy sad day"], padding_side="left")
    assert left["attention_mask"].tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]


def _bos_tiny():
    """A tiny model whose tokenizer adds a BOS to plain text (as Llama-3 and Gemma do)."""
    from tokenizers import processors

    lm = make_tiny("llama")
    tok = lm.tokenizer
    tok.add_special_tokens({"bos_token": "<bos>"})
    bos = tok.convert_tokens_to_ids("<bos>")
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos)])
    return lm, bos


def test_plain_text_gets_the_bos_the_model_expects():
    from steer_ui.models.tokens import token_ids

    lm, bos = _bos_tiny()
    plain, templated = token_ids(lm, ["the happy day", "<bos> the happy day"])
    assert plain[0] == bos and plain[1:] == templated[1:]
    assert templated.count(bos) == 1  # a text that already starts with BOS gets no second one
    assert encode(lm, ["the happy day"])["input_ids"][0, 0] == bos


def test_chat_formatted_text_gets_no_second_bos():
    from steer_ui.models.tokens import add_special_tokens, template_opening

    lm, bos = _bos_tiny()
    lm.tokenizer.chat_template = "{% for m in messages %}<|u|> {{ m['content'] }}\n{% endfor %}<|a|>"
    assert template_opening(lm.tokenizer) == "<|u|> "
    assert add_special_tokens(lm.tokenizer, lm.chat("the day")) is False
    assert add_special_tokens(lm.tokenizer, "the day") is True


def test_encode_never_changes_the_shared_tokenizers_padding_side(tiny):
    tiny.tokenizer.padding_side = "right"
    left = encode(tiny, ["the day", "the happy sad day"], padding_side="left")
    assert tiny.tokenizer.padding_side == "right"
    assert left["attention_mask"][0].tolist() == [0, 0, 1, 1]
    tiny.tokenizer.padding_side = "left"  # another user's setting: still left alone
    right = encode(tiny, ["the day", "the happy sad day"])
    assert tiny.tokenizer.padding_side == "left"
    assert right["attention_mask"][0].tolist() == [1, 1, 0, 0]
