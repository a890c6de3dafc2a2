"""steer_ui.steering.generation: composed steering, several vectors added to one row
(``extra`` pushes), on a tiny random model."""

from __future__ import annotations

import pytest
import torch

from conftest import make_tiny, random_vector
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.errors import VectorError
from steer_ui.steering.generation import Sampling, generate, layers_label, push_label, rows_for
from steer_ui.steering.hooks import Push, hooks_left, push_deltas


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


PROMPT = "i am very happy and the day is good"
SAMPLING = Sampling(8)


@pytest.fixture(scope="module")
def lm():
    lm = make_tiny("llama")
    lm.model.generation_config.eos_token_id = None  # full-length runs: texts compare token for token
    return lm


@pytest.fixture(scope="module")
def a(lm):
    return random_vector(lm, "a", layer=1)


@pytest.fixture(scope="module")
def b(lm):
    g = torch.Generator().manual_seed(7)
    return ConceptVector(torch.randn(lm.n_layers, lm.hidden_size, generator=g), lm.name, name="b", default_layer=1)


def test_rows_for_adds_extra_pushes_to_rows_with_a_vector_only(a, b):
    extra = (Push(b, -0.2, (2,)),)
    rows = rows_for([None, a, a], [0.0, 0.4, 0.0], 1, extra=extra)
    assert rows == [(), (Push(a, 0.4, (1,)), *extra), extra]  # intensity 0 of A keeps B
    assert rows_for(a, [0.0, 0.4], 1) == [(), (Push(a, 0.4, (1,)),)]  # without extra: as before


def test_a_composed_row_adds_the_summed_deltas(lm, a, b):
    """A at 0.4 plus B at -0.2 is exactly one raw vector holding the sum of their deltas."""
    pushes = [Push(a, 0.4, (1,)), Push(b, -0.2, (1, 2))]
    total = push_deltas(lm, pushes)  # (n_layers, d): what the two add at each layer
    summed = ConceptVector(total, lm.name, name="sum", default_layer=1)
    composed = generate(lm, PROMPT, a, [0.4], [1], SAMPLING, extra=pushes[1:])[0]
    assert composed == generate(lm, PROMPT, summed, [1.0], [1, 2], SAMPLING, mode="raw")[0]
    assert composed != generate(lm, PROMPT, a, [0.4], [1], SAMPLING)[0]  # B changed something
    assert hooks_left(lm) == 0


def test_the_unsteered_row_stays_unsteered_beside_a_composed_one(lm, a, b):
    plain, steered = generate(lm, PROMPT, [None, a], [0.0, 0.4], [1], SAMPLING, extra=[Push(b, -0.2)])
    assert plain == generate(lm, PROMPT, None, [0.0], sampling=SAMPLING)[0]
    assert steered != plain


def test_a_composed_vector_of_another_model_is_named(lm, a):
    foreign = ConceptVector(torch.randn(lm.n_layers, 100), "other-model", name="foreign", default_layer=1)
    with pytest.raises(VectorError, match=r"Vector 'foreign' was made for other-model \(3 layers x 100\)"):
        generate(lm, PROMPT, a, [0.4], [1], SAMPLING, extra=[Push(foreign, 0.2)])
    with pytest.raises(VectorError, match="'foreign'"):  # even where no row has a vector to add it to
        generate(lm, PROMPT, None, [0.0], sampling=SAMPLING, extra=[Push(foreign, 0.2)])
    assert hooks_left(lm) == 0


def test_labels_say_what_each_push_adds(a):
    assert push_label(Push(a, 0.4)) == "a +0.40 at layer 1"
    assert push_label(Push(a, -0.2, (8, 9, 10))) == "a -0.20 at layers 8-10"
    assert layers_label([12, 8]) == "layers 8, 12" and layers_label(15) == "layer 15"
