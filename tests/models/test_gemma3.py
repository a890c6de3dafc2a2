"""Gemma 3 270M, the bundled base model with sliding-window attention, end to end:
layer discovery, BOS on plain text, raw completion without a chat template, the
prefix-sharing KV cache of ``record`` past the 512-token window, greedy generation
through our scheduler against transformers' own ``generate`` (float32: exact), and the
llama.cpp engine serving it (its kernels differ: agreement, not identity)."""

from __future__ import annotations

import pytest
import torch

from conftest import llama_tool, shared_prefix
from steer_ui.concepts import recording
from steer_ui.models.tokens import add_special_tokens, encode, token_ids
from steer_ui.steering import engines
from steer_ui.steering.generation import Sampling, generate
from steer_ui.steering.scheduler import _full_attention

pytestmark = pytest.mark.real

WINDOW = 512
WORDS = "river stone cloud lantern harbor meadow copper violin orchard window".split()


def _prefix(lm, tokens: int) -> str:
    """Plain text of at least ``tokens`` tokens (BOS included)."""
    words = []
    while len(lm.tokenizer(" ".join(words))["input_ids"]) < tokens:
        words += [f"{WORDS[(len(words) * 7) % 10]}{len(words)}" for _ in range(20)]
    return " ".join(words)


def _long_texts(lm) -> list[str]:
    """Two texts of 600+ tokens sharing a 550+-token prefix: past the window."""
    prefix = _prefix(lm, 550)
    tails = ("then the happy child laughed " * 12, "after that a sad old man cried quietly " * 9)
    return [f"{prefix} {t}" for t in tails]


def _alone(lm, text: str, start: int) -> torch.Tensor:
    """(layers, 2, d): the mean from ``start`` and the last token of ``text`` at every
    layer, run alone: no batch, no prefix cache."""
    batch = encode(lm, [text])
    n = batch["attention_mask"].sum(1)
    out: list = [None] * lm.n_layers
    with torch.inference_mode(), recording._capture(lm.layers, recording._mean_and_last, n,
                                                    torch.full_like(n, start), out):
        lm.model(**batch, use_cache=False, logits_to_keep=1)  # 262k-word vocabulary: one row
    return torch.stack([o.float() for o in out], 1)[0]


def _rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    return float(((got - want).norm(dim=-1) / want.norm(dim=-1)).max())


def test_layers_hidden_size_and_sliding_window(gemma32):
    lm = gemma32
    assert lm.family == "gemma3_text"
    assert lm.n_layers == 18 and lm.hidden_size == 640
    assert lm.layers is lm.model.model.layers
    assert lm.model.config.sliding_window == WINDOW
    assert not _full_attention(lm)  # so its scheduler runs one request at a time


def test_plain_text_gets_bos(gemma32):
    tok = gemma32.tokenizer
    assert tok.bos_token == "<bos>"
    assert add_special_tokens(tok, "The weather today")
    assert token_ids(gemma32, ["The weather today"])[0][0] == tok.bos_token_id
    assert not add_special_tokens(tok, "<bos>The weather today")  # already has it: no second BOS


def test_raw_completion_is_plain_text(gemma32):
    assert not getattr(gemma32.tokenizer, "chat_template", None)
    assert gemma32.chat("The weather today") == "The weather today\n"
    assert gemma32.chat("Go on.", system="Be brief.") == "Be brief.\nGo on.\n"


def test_shared_prefix_past_the_window_equals_each_text_alone(gemma32):
    lm = gemma32
    texts = _long_texts(lm)
    ids = token_ids(lm, texts)
    shared = recording.shared_prefix(ids)
    assert shared > WINDOW + 30 and min(map(len, ids)) > 600
    before = lm.forward_passes
    # batch_size 1: two suffix batches each continue a copy of the one prefix cache
    last = recording.record(lm, texts, "last", batch_size=1)
    assert lm.forward_passes - before == 3  # the prefix once, then two batches
    starts = [shared + 2] * len(texts)  # a mean read past the prefix shares it too
    mean = recording.record(lm, texts, "mean", starts=starts, batch_size=1)
    want = torch.stack([_alone(lm, t, shared + 2) for t in texts])  # (texts, layers, 2, d)
    assert _rel_err(last, want[:, :, 1]) < 1e-4
    assert _rel_err(mean, want[:, :, 0]) < 1e-4


@pytest.mark.parametrize("tokens", [8, 560])
def test_greedy_generation_equals_transformers_generate(gemma32, tokens):
    """A short prompt, and one past the window (the sliding layers drop old keys)."""
    lm = gemma32
    prompt = "The weather today" if tokens < 10 else _prefix(lm, tokens) + " The weather today"
    ours = generate(lm, prompt, None, [0.0], None, Sampling(16), chat=False)[0]
    batch = encode(lm, [prompt])
    with torch.inference_mode():
        out = lm.model.generate(**batch, max_new_tokens=16, do_sample=False)
    theirs = lm.tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert ours == theirs and len(theirs.split()) >= 3


def test_llama_cpp_serves_it_and_agrees_with_torch(gemma32):
    llama_tool()  # skips (saying why) where llama.cpp could not be built
    lm, prompt = gemma32, "The weather today"
    slow = generate(lm, prompt, None, [0.0], None, Sampling(12), chat=False)[0]
    try:
        engines.switch(lm, "llamacpp")
        assert lm.engine == "llamacpp", lm.engine_note  # sliding windows and all: no fallback
        fast = generate(lm, prompt, None, [0.0], None, Sampling(12), chat=False)[0]
    finally:
        engines.switch(lm, "torch")
    assert shared_prefix(lm, fast, slow) >= 6, (fast, slow)
