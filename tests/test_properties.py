"""Property-based tests (hypothesis) of the core API on a tiny model: whatever the
contrast set, intensity, layer or exception, no hook is left behind, nothing but a
``SteerError`` escapes, and the unsteered output is unchanged afterwards."""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_tiny
from steer_ui.concepts import contrast
from steer_ui.concepts.extraction import extract_concept
from steer_ui.concepts.vectors import METHODS, ConceptVector
from steer_ui.errors import ContrastError, SteerError
from steer_ui.steering import generation
from steer_ui.steering.generation import Sampling
from steer_ui.steering.hooks import MAX_INTENSITY, MODES, hooks_left, steer

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
    """Usable lists always extract; unusable ones always raise the matching error."""
    p, n = [s for s in pos if s.strip()], [s for s in neg if s.strip()]
    usable = len(p) == len(n) >= 2 and p != n
    if usable and method in METHODS and sorted(p) == sorted(n):
        # the same texts on both sides, only paired differently: their differences may cancel
        try:
            extract_concept(LM, contrast.from_lists(pos, neg), method)
        except ContrastError as exc:
            assert "identical activations" in str(exc)
    elif usable and method in METHODS:
        ex = extract_concept(LM, contrast.from_lists(pos, neg), method)
        assert ex.vector.directions.shape == (LM.n_layers, LM.hidden_size)
        assert torch.isfinite(ex.vector.directions).all() and ex.vector.directions.abs().sum() > 0
    else:
        with pytest.raises(ContrastError):
            extract_concept(LM, contrast.from_lists(pos, neg), method)
    _unchanged()


@SETTINGS
@given(x=intensities, layer=layers, mode=st.sampled_from(["relative", "raw", "adaptive", "bogus"]),
       raise_inside=st.booleans())
def test_random_intensities_layers_and_exceptions(x, layer, mode, raise_inside):
    """Valid settings steer (hooks on exactly the asked layers), invalid ones raise a
    SteerError; either way, and whatever the block raises, nothing is left behind."""
    v = ConceptVector(torch.randn(LM.n_layers, LM.hidden_size), LM.name, default_layer=1)
    chosen = _valid_layers(layer)
    valid = mode in MODES and _valid_intensity(x) and chosen is not None
    try:
        with steer(LM, v, x, layer, mode):
            assert valid, (x, layer, mode)
            assert hooks_left(LM) == (len(chosen) if float(x) else 0)
            LM.model(**LM.tokenizer(["the day"], return_tensors="pt"))
            if raise_inside:
                raise Boom()
    except SteerError:
        assert not valid, (x, layer, mode)
    except Boom:
        assert valid and raise_inside
    _unchanged()


def _valid_intensity(x) -> bool:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return False
    return math.isfinite(value) and abs(value) <= MAX_INTENSITY


def _valid_layers(layer):
    """The layers steer() should hook for ``layer``, or None if it must refuse them."""
    items = [1] if layer is None else [layer] if isinstance(layer, int) else list(layer)
    if not items or any(not 0 <= i < LM.n_layers for i in items):
        return None
    return sorted(set(items))


@SETTINGS
@given(xs=st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=4), tokens=st.integers(1, 5))
def test_generation_rows_match_their_solo_runs(xs, tokens):
    v = ConceptVector(torch.randn(LM.n_layers, LM.hidden_size), LM.name, default_layer=1)
    batched = generation.generate(LM, "the happy day", v, xs, sampling=Sampling(tokens))
    for x, text in zip(xs, batched):
        assert generation.generate(LM, "the happy day", v, [x], sampling=Sampling(tokens)) == [text]
    _unchanged()
