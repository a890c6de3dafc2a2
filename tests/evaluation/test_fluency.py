"""steer_ui.evaluation.fluency: perplexity of neutral text under steering, and the broken-fluency warning."""

from __future__ import annotations

import math

import pytest
import torch

from steer_ui.concepts.recording import typical_norms
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.config import ASSETS
from steer_ui.evaluation.fluency import (
    BROKEN_RATIO,
    fluency_warning,
    heldout_texts,
    perplexity,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


TEXTS = ["the day is good", "i am very happy and you are not sad", "w1 w2 w3 w4 w5 w6 w7 w8", "night"]


def _vector(lm, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ConceptVector(torch.randn(lm.n_layers, lm.hidden_size, generator=g), model=lm.name, default_layer=1)


def _manual(lm, texts, add=None, layer: int = 1) -> float:
    """exp(mean NLL) over all predicted tokens, one unpadded text at a time; ``add``
    (d,) is added to layer ``layer``'s output by a hook written here, not steer_ui's."""
    def hook(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        return (h + add, *output[1:]) if isinstance(output, tuple) else h + add

    handle = lm.layers[layer].register_forward_hook(hook) if add is not None else None
    total, count = 0.0, 0
    try:
        for t in texts:
            ids = lm.tokenizer(t, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(lm.model(input_ids=ids, use_cache=False).logits[0].float(), -1)
            total -= float(sum(logp[k - 1, ids[0, k]] for k in range(1, ids.shape[1])))
            count += ids.shape[1] - 1
    finally:
        if handle is not None:
            handle.remove()
    return math.exp(total / count)


def test_perplexity_matches_manual(tiny):
    ppl = perplexity(tiny, TEXTS)
    assert ppl > 1
    assert ppl == pytest.approx(_manual(tiny, TEXTS), rel=1e-4)
    # padding in a batch changes nothing: batch size 1 and 2 agree with 16
    assert perplexity(tiny, TEXTS, batch_size=1) == pytest.approx(ppl, rel=1e-5)
    assert perplexity(tiny, TEXTS, batch_size=3) == pytest.approx(ppl, rel=1e-5)


def test_random_model_is_near_uniform(tiny):
    """A random tiny model is close to uniform over its 320-token vocabulary."""
    assert 100 < perplexity(tiny, TEXTS) < 1000


def test_intensity_zero_equals_no_vector(tiny):
    v = _vector(tiny)
    assert perplexity(tiny, TEXTS, v, 0.0) == perplexity(tiny, TEXTS)
    assert perplexity(tiny, TEXTS, v, 0.0, layer=2) == perplexity(tiny, TEXTS, None, 3.0)


def test_steered_perplexity_matches_a_hand_written_hook(tiny):
    v = _vector(tiny)
    plain = perplexity(tiny, TEXTS)
    steered = perplexity(tiny, TEXTS, v, 8.0)
    assert abs(steered - plain) / plain > 0.01
    # relative mode at 8.0: 8 x the layer's typical norm along the unit direction
    add = 8.0 * float(typical_norms(tiny)[1]) * v.unit(1)
    assert steered == pytest.approx(_manual(tiny, TEXTS, add, layer=1), rel=1e-4)
    assert perplexity(tiny, TEXTS, v, 8.0, mode="raw") == pytest.approx(
        _manual(tiny, TEXTS, 8.0 * v.directions[1], layer=1), rel=1e-4)
    assert perplexity(tiny, TEXTS, v, 8.0, mode="adaptive") != pytest.approx(steered)


def test_fluency_warning():
    assert fluency_warning(10.0, 10.0) is None
    assert fluency_warning(BROKEN_RATIO * 10.0, 10.0) is None  # exactly at the ratio: still fine
    assert fluency_warning(15.0, 10.0) is None
    msg = fluency_warning(35.0, 10.0)
    assert msg is not None and "35.0" in msg and "10.0" in msg and "3.5x" in msg
    assert fluency_warning(5.0, 10.0) is None  # steering that helps is no damage


def test_heldout_texts():
    texts = heldout_texts(5)
    lines = (ASSETS / "neutral_corpus.txt").read_text(encoding="utf-8").splitlines()
    lines = [t for t in lines if t.strip()]
    assert texts == lines[-5:]
    assert len(heldout_texts()) == 24
