"""Property-based tests (hypothesis) of the core API on a tiny model: whatever the
contrast set, intensity, layer or exception, no hook is left behind, nothing but a
``SteerError`` escapes, and the unsteered output is unchanged afterwards."""


import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_tiny
from steer_ui import contrast, generation
from steer_ui.errors import SteerError
from steer_ui.generation import Sampling
from steer_ui.steering import hooks_left, steer
from steer_ui.vectors import ConceptVector
from steer_ui.workbench import extract_concept

LM = make_tiny("llama")
WORDS = "the a happy sad good bad day night i am you are is was very not and".split()
BASELINE = generation.generate(LM, "the happy day", None, [0.0], sampling=Sampling(6))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sentences = st.lists(st.sampled_from(WORDS), min_size=0, max_size=6).map(" ".join)
intensities = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5000, 5000),
                        st.sampled_from(["abc", None, "1.5"]))
layers = st.one_of(st.integers(-3, 6), st.lists(st.integers(-1, 4), max_size=3), st.none())


class Boom(Exception):
    pass


def _unchanged():
    assert hooks_left(LM) == 0
    assert generation.generate(LM, "the happy day", None, [0.0], sampling=Sampling(6)) == BASELINE


@SETTINGS
@given(pos=st.lists(sentences, max_size=5), neg=st.lists(sentences, max_size=5),
       method=st.sampled_from(["mean-diff", "pca", "probe", "nope"]))
def test_random_contrast_sets(pos, neg, method):
    try:
        cs = contrast.from_lists(pos, neg)
        ex = extract_concept(LM, cs, method)
        assert ex.vector.directions.shape == (LM.n_layers, LM.hidden_size)
        assert torch.isfinite(ex.vector.directions).all()
    except SteerError:
        pass
    _unchanged()


@SETTINGS
@given(x=intensities, layer=layers, mode=st.sampled_from(["relative", "raw", "adaptive", "bogus"]),
       raise_inside=st.booleans())
def test_random_intensities_layers_and_exceptions(x, layer, mode, raise_inside):
    v = ConceptVector(torch.randn(LM.n_layers, LM.hidden_size), LM.name, default_layer=1)
    try:
        with steer(LM, v, x, layer, mode):
            LM.model(**LM.tokenizer(["the day"], return_tensors="pt"))
            if raise_inside:
                raise Boom()
    except (SteerError, Boom):
        pass
    _unchanged()


@SETTINGS
@given(xs=st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=4), tokens=st.integers(1, 5))
def test_generation_rows_match_their_solo_runs(xs, tokens):
    v = ConceptVector(torch.randn(LM.n_layers, LM.hidden_size), LM.name, default_layer=1)
    batched = generation.generate(LM, "the happy day", v, xs, sampling=Sampling(tokens))
    for x, text in zip(xs, batched):
        assert generation.generate(LM, "the happy day", v, [x], sampling=Sampling(tokens)) == [text]
    _unchanged()
