"""steer_ui.concepts.extraction: a concept extracted in a loaded model; mean pooling windows."""

from __future__ import annotations

import pytest
import torch

from conftest import make_tiny
from steer_ui.concepts import contrast, recording
from steer_ui.concepts.extraction import extract_concept, mean_starts


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


# Pairs that differ only in their last word, each pair with its own opening: the first
# token after the shared prefix is the same within a pair, so a "mean" that fell back to
# that one token found no direction at all.
POS = ["w1 w2 w3 happy", "w4 w5 happy", "w6 w7 w8 w9 happy", "w10 w11 happy"]
NEG = ["w1 w2 w3 sad", "w4 w5 sad", "w6 w7 w8 w9 sad", "w10 w11 sad"]


def test_mean_pooling_averages_each_prompts_own_tokens():
    lm = make_tiny("llama")
    cs = contrast.from_lists(POS, NEG)
    starts = mean_starts(lm, cs)
    assert all(s >= 1 for s in starts)  # never the attention-sink first token
    ex = extract_concept(lm, cs, "mean-diff", "mean")
    assert ex.vector.directions.abs().sum() > 0
    # the mean is over tokens start..end of each prompt: check one row by hand
    texts = cs.texts(lm)[0] + cs.texts(lm)[1]
    ids = recording.token_ids(lm, texts)
    full = recording.record(lm, [texts[1]], "mean", [starts[1]])[0]
    assert starts[1] <= len(ids[1]) - 1
    assert (ex.pos[1] - full).abs().max() < 1e-5


def test_mean_pooling_with_a_shared_chat_header_starts_after_it():
    lm = make_tiny("llama")
    lm.tokenizer.chat_template = "{% for m in messages %}w150 w151 w152 {{ m['content'] }} {% endfor %}w153"
    cs = contrast.from_lists(POS, NEG)
    starts = mean_starts(lm, cs)
    assert set(starts) == {3}  # the three header tokens every prompt shares are left out
    assert extract_concept(lm, cs, "mean-diff", "mean").vector.directions.abs().sum() > 0


def _mean_by_hand(lm, text: str, start: int) -> torch.Tensor:
    """Every layer's output averaged over tokens ``start``.. of ``text`` alone, read with
    hooks of our own (no batching, no shared-prefix cache): (layers, d)."""
    ids = recording.token_ids(lm, [text])[0]
    outputs = [None] * lm.n_layers

    def keep(i):
        def hook(module, args, output):
            outputs[i] = (output[0] if isinstance(output, tuple) else output)[0, start:].mean(0)
        return hook

    handles = [layer.register_forward_hook(keep(i)) for i, layer in enumerate(lm.layers)]
    try:
        with torch.inference_mode():
            lm.model(input_ids=torch.tensor([ids]))
    finally:
        for h in handles:
            h.remove()
    return torch.stack(outputs)


def test_mean_pooling_of_ab_items_averages_the_answer():
    lm = make_tiny("llama")
    items = [{"question": f"w{i} w{i + 1} day", "answer_matching_behavior": "very happy day",
              "answer_not_matching_behavior": "not sad night"} for i in range(0, 8, 2)]
    cs = contrast.from_ab_items(items, balance=False)
    starts = mean_starts(lm, cs)
    q_len = [len(recording.token_ids(lm, [lm.chat(p.user)])[0]) for p in cs.positive]
    assert starts == q_len * 2  # each side's window opens where its answer does
    ex = extract_concept(lm, cs, "mean-diff", "mean")
    pos_texts, neg_texts = cs.texts(lm)
    for i, (text, start) in enumerate(zip(pos_texts + neg_texts, starts)):
        row = (ex.pos if i < len(cs) else ex.neg)[i % len(cs)]
        assert len(recording.token_ids(lm, [text])[0]) - start == 3  # the three answer tokens
        assert torch.allclose(row, _mean_by_hand(lm, text, start), atol=1e-5)
        # not the last token alone, nor the question and answer together
        assert not torch.allclose(row, _mean_by_hand(lm, text, -1), atol=1e-3)
        assert not torch.allclose(row, _mean_by_hand(lm, text, 1), atol=1e-3)
