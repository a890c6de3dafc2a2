"""steer_ui.concepts.lens: the logit lens of a direction and the accessibility score.

The oracle is the model's own forward pass: read through our lens, the last layer's
output must give the logits transformers computes."""

from __future__ import annotations

import pytest
import torch

from conftest import make_tiny, random_vector
from steer_ui.concepts import lens
from steer_ui.concepts.recording import record
from steer_ui.errors import VectorError


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2", "gemma3"])
def test_lens_of_the_last_layer_is_the_models_own_logits(arch):
    lm = make_tiny(arch)
    text = "the happy day i am very happy"
    acts = record(lm, [text], "last")  # (1, layers, d): decoder layer outputs, before the final norm
    ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        want = lm.model(input_ids=ids).logits[0, -1].float()
    got = lens.read_out(lm, acts[:, -1])[0]
    if arch == "gemma3":  # gemma applies its own final soft-capping after the unembedding
        cap = lm.model.config.final_logit_softcapping
        got = torch.tanh(got / cap) * cap if cap else got
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_vector_lens_ranks_tokens_by_what_the_direction_adds():
    lm = make_tiny("llama")
    head = lm.model.get_output_embeddings().weight  # (vocab, d)
    v = random_vector(lm)
    token = 7
    # a direction that is exactly the unembedding row of one token: it must top the list
    v = type(v)(head[token].detach()[None].repeat(lm.n_layers, 1), lm.name, default_layer=1)
    rows = lens.vector_lens(lm, v, [1, 2], k=3)
    assert [r.layer for r in rows] == [1, 2]
    assert all(r.promoted[0][0] == lm.tokenizer.decode([token]) for r in rows)
    assert all(len(r.promoted) == len(r.suppressed) == 3 for r in rows)
    assert rows[0].promoted[0][1] > rows[0].promoted[-1][1] > rows[0].suppressed[-1][1]


def test_vector_lens_refuses_a_vector_of_another_model():
    from steer_ui.concepts.vectors import ConceptVector

    with pytest.raises(VectorError, match="was made for"):
        lens.vector_lens(make_tiny("llama"), ConceptVector(torch.randn(5, 16), "other"))


def test_accessibility_is_high_where_the_output_tells_the_sides_apart():
    lm = make_tiny("llama")
    n, layers, d = 12, lm.n_layers, lm.hidden_size
    g = torch.Generator().manual_seed(0)
    head = lm.model.get_output_embeddings().weight.detach()
    shift = head[10] - head[20]  # pushes token 10 up and 20 down: a concept readable as output
    base = torch.randn(2 * n, layers, d, generator=g)
    pos, neg = base[:n].clone(), base[n:].clone()
    pos[:, -1] += 3 * shift / shift.norm()  # only at the last layer; layer 0 carries no concept
    scores = lens.accessibility(lm, pos, neg, tokens=3)
    assert len(scores) == layers
    assert scores[-1] > 0.9 and scores[0] < 0.8


def test_accessibility_needs_four_pairs():
    lm = make_tiny("llama")
    with pytest.raises(VectorError, match="at least 4"):
        lens.accessibility(lm, torch.randn(3, lm.n_layers, lm.hidden_size), torch.randn(3, lm.n_layers, lm.hidden_size))
