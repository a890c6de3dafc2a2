"""Transfer on a real bundled pair: qwen2.5-0.5b -> smollm2-135m, happy/sad."""

import numpy as np
import pytest
import torch

from steer_ui.concepts import contrast
from steer_ui.concepts.extraction import extract_concept
from steer_ui.concepts.vectors import random_like
from steer_ui.steering.hooks import steer
from steer_ui.transfer import diagnostics, paired
from steer_ui.transfer import maps as transfer

pytestmark = pytest.mark.real

POS = [" happy", " great", " wonderful", " love", " excited"]
NEG = [" sad", " terrible", " awful", " bad", " lonely"]


@pytest.fixture(scope="module")
def carried(request):
    from conftest import real_model

    llm, slm = real_model("qwen2.5-0.5b"), real_model("smollm2-135m")
    cs = contrast.from_preset("happy-sad", 16)
    native = extract_concept(slm, cs)
    source = extract_concept(llm, cs)
    pairs = paired.collect(llm, slm, ("concept",), leave_out="happy-sad", per_preset=8)
    vec, maps, _ = transfer.transfer(source.vector, llm, slm, pairs, "ridge", "depth")
    report = diagnostics.diagnose(vec, maps, native.vector, native.pos.numpy(), native.neg.numpy())
    return slm, native.vector, vec, report


def _pos_neg_logratio(lm, vector, intensity, layer):
    ids = [lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in POS + NEG]
    text = lm.chat("Tell me about your weekend.", assistant_prefix="I feel")
    batch = lm.tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with steer(lm, vector, intensity, layer), torch.inference_mode():
        p = lm.model(**batch).logits[0, -1].float().softmax(-1)[ids]
    return float(torch.log(p[: len(POS)].sum() / p[len(POS):].sum()))


def test_transferred_vector_is_closer_to_native_than_chance(carried):
    slm, native, vec, report = carried
    j = report.layer
    assert report.cos_native[j] > report.chance_mapped[j] > 0
    assert report.cos_native[j] > report.chance_slm[j]
    assert report.arrived(), report.verdict
    rng = np.random.default_rng(1)
    randoms = [abs(np.dot(r, native.directions[j].numpy())) / np.linalg.norm(r) / native.directions[j].norm().item()
               for r in rng.standard_normal((50, slm.hidden_size))]
    assert report.cos_native[j] > max(randoms)


def test_transferred_vector_shifts_next_token_more_than_random(carried):
    slm, native, vec, report = carried
    layer = report.layer
    base = _pos_neg_logratio(slm, None, 0.0, layer)
    shift_t = _pos_neg_logratio(slm, vec, 0.5, layer) - base
    shift_r = _pos_neg_logratio(slm, random_like(vec, seed=3), 0.5, layer) - base
    shift_n = _pos_neg_logratio(slm, native, 0.5, layer) - base
    assert shift_n > 0, "the native vector itself should push towards happy words"
    assert shift_t > 0.5, f"transferred shift {shift_t:.2f} too small"
    assert shift_t > abs(shift_r) + 0.5, f"transferred {shift_t:.2f} vs random {shift_r:.2f}"
