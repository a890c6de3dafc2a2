"""steer_ui.concepts.vectors: extraction methods on synthetic activations, scores, vector arithmetic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from steer_ui.concepts.vectors import (
    METHODS,
    ConceptVector,
    best_layer,
    direction,
    extract,
    letter_cosines,
    random_like,
    separability,
)
from steer_ui.errors import ContrastError, VectorError

N, LAYERS, D = 300, 5, 12


def _synthetic(seed=0, strength=2.5, noise=0.3):
    """pos = neg + s_i * known unit direction (per layer) + noise: (n, layers, d).

    s_i varies around ``strength`` (from 0.25x to 1.75x) as a concept's strength does
    between prompt pairs; PCA of centered differences relies on that variance.
    """
    g = torch.Generator().manual_seed(seed)
    truth = torch.randn(LAYERS, D, generator=g)
    truth = truth / truth.norm(dim=1, keepdim=True)
    neg = torch.randn(N, LAYERS, D, generator=g)
    s = strength * (0.25 + 1.5 * torch.rand(N, 1, 1, generator=g))
    pos = neg + s * truth + noise * torch.randn(N, LAYERS, D, generator=g)
    return pos, neg, truth


def _cos(a, b):
    return float(torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1))


@pytest.mark.parametrize("method", METHODS)
def test_methods_recover_direction(method):
    pos, neg, truth = _synthetic()
    v = extract(pos, neg, "tiny", method=method, name="happy", prompts_hash="abc")
    assert v.directions.shape == (LAYERS, D) and v.directions.dtype == torch.float32
    assert v.method == method and v.name == "happy" and v.model == "tiny" and v.prompts_hash == "abc"
    for i in range(LAYERS):
        assert _cos(v.directions[i], truth[i]) > 0.9, (method, i)
        # Oriented: positives project higher than their negatives.
        proj_pos = pos[:, i] @ v.directions[i]
        proj_neg = neg[:, i] @ v.directions[i]
        assert float((proj_pos - proj_neg).mean()) > 0
    # Scaled like the mean difference along the direction (about `strength`).
    assert float(v.directions.norm(dim=1).mean()) == pytest.approx(2.5, rel=0.1)


@pytest.mark.parametrize("method", METHODS)
def test_orientation_follows_the_sides(method):
    pos, neg, truth = _synthetic(seed=3)
    flipped = extract(neg, pos, "tiny", method=method)
    for i in range(LAYERS):
        assert _cos(flipped.directions[i], truth[i]) < -0.9


def test_pca_direction_flips_sign_when_needed():
    rng = np.random.default_rng(0)
    neg = rng.normal(size=(30, 6))
    pos = neg + np.array([0, 0, 5.0, 0, 0, 0]) + rng.normal(scale=[0.1, 0.1, 2.0, 0.1, 0.1, 0.1], size=(30, 6))
    d = direction(pos, neg, "pca")
    assert d[2] > 0 and abs(d[2]) > 10 * np.abs(np.delete(d, 2)).max()


def test_mean_diff_is_exact_mean():
    pos, neg, _ = _synthetic()
    v = extract(pos, neg, "tiny", method="mean-diff")
    assert torch.allclose(v.directions, (pos - neg).mean(0), atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_identical_sides(method):
    pos, _, _ = _synthetic()
    with pytest.raises(ContrastError, match="identical activations"):
        extract(pos, pos.clone(), "tiny", method=method)


def test_unknown_method():
    pos, neg, _ = _synthetic()
    with pytest.raises(ContrastError, match=r"Unknown method 'svd'.*mean-diff, pca, probe"):
        extract(pos, neg, "tiny", method="svd")


def test_shape_mismatch():
    pos, neg, _ = _synthetic()
    with pytest.raises(ContrastError, match="do not pair up"):
        extract(pos, neg[:-1], "tiny")


def test_separability_separated_and_noise():
    pos, neg, _ = _synthetic(strength=10.0)
    v = extract(pos, neg, "tiny")
    assert len(v.separability) == LAYERS
    assert all(s > 0.97 for s in v.separability)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    assert separability(a, b) == pytest.approx(0.5, abs=0.1)


def test_separability_too_few_pairs():
    assert np.isnan(separability(np.ones((1, 3)), np.zeros((1, 3))))


def test_default_layer_is_best_in_band():
    """Per-layer concept strengths make layers 0 and 4 the most separable, then layer 2;
    of 5 layers the 20-80% band is 1..3, so the default is layer 2."""
    strengths = torch.tensor([6.0, 0.3, 2.0, 0.5, 6.0])[:, None]  # (layers, 1)
    pos, neg, _ = _synthetic(strength=strengths)
    v = extract(pos, neg, "tiny")
    seps = v.separability
    assert min(seps[0], seps[4]) > seps[2] > max(seps[1], seps[3])  # the premise
    assert v.default_layer == 2


@pytest.mark.parametrize("n", [5, 10, 24, 28, 32])
def test_best_layer_stays_in_band(n):
    # The extremes score best, yet the pick stays within 20-80% depth.
    seps = [0.99 if i in (0, n - 1) else 0.6 + 0.001 * i for i in range(n)]
    k = best_layer(seps)
    assert 0.2 * n <= k < 0.8 * n
    band = [i for i in range(n) if int(0.2 * n) <= i < int(0.8 * n)]
    assert k == max(band)  # highest score in the band


@pytest.mark.parametrize("seps, expected", [
    ([0.99], 0),
    ([0.5, 0.9], 0),  # two layers: the band is layer 0 alone
    ([0.5, 0.6, 0.9], 1),  # the best (last) layer is outside the band
    ([0.5, 0.6, 0.7, 0.9], 2),
    ([0.7] * 3, 1),  # ties go to the layer nearest the middle
    ([0.7] * 4, 2),
    ([0.99, 0.601, 0.99], 0),  # the extremes score best: the first one is in the band
    ([0.99, 0.601, 0.602, 0.99], 0),
])
def test_best_layer_in_models_of_fewer_than_five_layers(seps, expected):
    """Below 5 layers the band starts at int(0.2 n) = 0, so only the last layer is kept
    out of it (of one layer, none). The tiny test models have 3 layers."""
    assert best_layer(seps) == expected


def test_best_layer_prefers_middle_on_ties_and_skips_nan():
    assert best_layer([0.7] * 10) in (4, 5)
    seps = [0.5, 0.5, float("nan"), 0.9, 0.6, 0.6, 0.6, 0.6, 0.5, 0.5]
    assert best_layer(seps) == 3
    assert best_layer([float("nan")] * 10) in range(2, 8)


# ---------- arithmetic ----------

def _cv(seed=0, name="a", shape=(LAYERS, D)):
    g = torch.Generator().manual_seed(seed)
    return ConceptVector(directions=torch.randn(*shape, generator=g), model="tiny", name=name,
                         default_layer=2, provenance={"x": 1})


def test_arithmetic_returns_new_objects():
    a, b = _cv(0, "a"), _cv(1, "b")
    a0, b0 = a.directions.clone(), b.directions.clone()
    s = a + b
    assert torch.allclose(s.directions, a0 + b0) and s.name == "a+b" and s.method == "arithmetic"
    d = a - b
    assert torch.allclose(d.directions, a0 - b0) and d.name == "a-b"
    m = a * 2.5
    assert torch.allclose(m.directions, a0 * 2.5) and m.name == "a"
    r = 3 * a
    assert torch.allclose(r.directions, a0 * 3)
    n = -a
    assert torch.allclose(n.directions, -a0)
    for out in (s, d, m, r, n):
        assert out is not a and out.directions is not a.directions
        assert out.default_layer == 2 and out.model == "tiny"
    assert torch.equal(a.directions, a0) and torch.equal(b.directions, b0)
    assert a.name == "a" and a.method == "mean-diff"


def test_to_dtype_is_a_copy():
    a = _cv()
    a0 = a.directions.clone()
    h = a.to(dtype=torch.float16)
    assert h.directions.dtype == torch.float16
    assert a.directions.dtype == torch.float32 and torch.equal(a.directions, a0)
    assert torch.allclose(h.directions.float(), a0, atol=1e-2)
    # mixing dtypes works and keeps the left operand's dtype
    assert (a + h).directions.dtype == torch.float32


def test_frozen():
    a = _cv()
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "b"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.directions = torch.zeros(LAYERS, D)
    assert a.name == "a"


def test_combine_different_shapes():
    with pytest.raises(VectorError, match=r"shapes \(5, 12\) and \(5, 16\)"):
        _cv() + _cv(shape=(LAYERS, 16))
    with pytest.raises(VectorError):
        _cv() - _cv(shape=(LAYERS + 1, D))
    with pytest.raises(TypeError):
        _cv() + 1.0


def test_unit_and_properties():
    a = _cv()
    assert a.n_layers == LAYERS and a.hidden_size == D
    for i in range(LAYERS):
        u = a.unit(i)
        assert float(u.norm()) == pytest.approx(1.0, abs=1e-6)
        assert _cos(u, a.directions[i]) == pytest.approx(1.0, abs=1e-6)
    z = ConceptVector(directions=torch.zeros(2, 3), model="m")
    assert torch.equal(z.unit(0), torch.zeros(3))


# ---------- letter cosines ----------

def test_letter_cosines_pure_letter():
    g = torch.Generator().manual_seed(0)
    letter_dir = torch.randn(LAYERS, D, generator=g)
    letters = ["A", "A", "A", "B"] * 5  # unbalanced: the mean keeps a letter part
    sign = torch.tensor([1.0 if x == "A" else -1.0 for x in letters])[:, None, None]
    neg = torch.randn(len(letters), LAYERS, D, generator=g)
    pos = neg + sign * letter_dir
    cos = letter_cosines(pos, neg, letters)
    assert len(cos) == LAYERS
    assert all(c == pytest.approx(1.0, abs=1e-4) for c in cos)


def test_letter_cosines_balanced_concept():
    g = torch.Generator().manual_seed(0)
    concept = torch.zeros(LAYERS, D)
    concept[:, 0] = 1.0
    letter_dir = torch.zeros(LAYERS, D)
    letter_dir[:, 1] = 0.3
    letters = ["A", "B"] * 10
    sign = torch.tensor([1.0 if x == "A" else -1.0 for x in letters])[:, None, None]
    neg = torch.randn(len(letters), LAYERS, D, generator=g)
    pos = neg + concept + sign * letter_dir
    cos = letter_cosines(pos, neg, letters)
    assert all(abs(c) < 1e-4 for c in cos)


@pytest.mark.parametrize("letters", [(), ["A"] * 4, ["A", "C", "B", "A"], None])
def test_letter_cosines_not_applicable(letters):
    pos, neg, _ = _synthetic()
    assert letter_cosines(pos[:4], neg[:4], letters) is None


# ---------- random control ----------

def test_random_like_keeps_norms():
    a = _cv()
    r = random_like(a, seed=5)
    assert torch.allclose(r.directions.norm(dim=1), a.directions.norm(dim=1), rtol=1e-5)
    assert r.method == "random" and r.name == "random(a)"
    assert r.provenance == {"x": 1, "control": "random", "seed": 5}
    assert a.provenance == {"x": 1}
    cos = torch.nn.functional.cosine_similarity(r.directions, a.directions, dim=1)
    assert cos.abs().max() < 0.9
    assert torch.equal(random_like(a, seed=5).directions, r.directions)
    assert not torch.equal(random_like(a, seed=6).directions, r.directions)


def test_equality_is_identity_and_never_raises():
    """``eq=False``: comparing vectors must not ask a tensor for its truth value."""
    a = _cv()
    b = ConceptVector(a.directions.clone(), a.model, name=a.name)
    assert a == a and a != b and a in [b, a] and [a].index(a) == 0
    assert len({a, b}) == 2  # hashable by identity


def test_random_control_is_a_fixed_function_of_the_concept_and_seed():
    a = _cv()
    b = ConceptVector(a.directions.clone(), a.model, name=a.name, prompts_hash="another set of prompts")
    assert torch.equal(random_like(a, 0).directions, random_like(_cv(), 0).directions)  # same concept, again
    assert not torch.equal(random_like(a, 0).directions, random_like(b, 0).directions)  # another concept
    assert not torch.equal(random_like(a, 0).directions, random_like(a, 1).directions)  # another seed
