"""steer_ui.diagnostics: a transferred vector judged against the native one and chance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from steer_ui.diagnostics import BAD_R2, diagnose
from steer_ui.transfer import LayerMap
from steer_ui.vectors import ConceptVector

D_LLM, D_SLM, LAYERS = 24, 32, 3


def _maps(r2=0.9, seed=0):
    rng = np.random.default_rng(seed)
    return [LayerMap("ridge", i, i, rng.standard_normal((D_SLM, D_LLM)).astype(np.float32),
                     {"all": r2, "neutral": r2 + 0.01}) for i in range(LAYERS)]


def _vec(seed=0, default_layer=1, separability=(), model="slm"):
    g = torch.Generator().manual_seed(seed)
    return ConceptVector(torch.randn(LAYERS, D_SLM, generator=g), model=model, default_layer=default_layer,
                         separability=separability)


def test_identical_vector_arrives():
    native = _vec()
    rep = diagnose(native, _maps(), native)
    assert rep.layer == 1
    assert rep.cos_native == pytest.approx([1.0] * LAYERS, abs=1e-6)
    assert all(0 < c < 1 for c in rep.chance_mapped + rep.chance_slm)
    assert all(1.0 > c for c in rep.chance_mapped)
    assert rep.verdict.startswith("arrived")
    assert rep.arrived()
    assert rep.pairs == [(0, 0), (1, 1), (2, 2)]
    assert rep.r2["all"] == pytest.approx([0.9] * 3) and rep.r2["neutral"] == pytest.approx([0.91] * 3)
    assert rep.warnings == []
    s = rep.summary()
    assert s["slm_layer"] == 1 and s["llm_layer"] == 1 and s["cos_native"] == pytest.approx(1.0)
    assert s["r2"]["all"] == pytest.approx(0.9)
    assert s["auc_transferred"] is None


def test_chance_level_is_a_95th_percentile_of_random_cosines():
    """In 32 dimensions random unit vectors have |cos| ~ 1/sqrt(32); p95 is ~2x that."""
    rep = diagnose(_vec(), _maps(), _vec())
    for c in rep.chance_slm:
        assert 0.15 < c < 0.6


def test_random_vector_is_at_chance():
    native = _vec(seed=0)
    rep = diagnose(_vec(seed=7), _maps(), native)
    j = rep.layer
    assert rep.cos_native[j] < rep.chance_mapped[j]
    assert rep.verdict.startswith("at chance level")
    assert not rep.arrived()
    # over many random vectors, only the ~2.5% beyond the positive p95 may "arrive"
    arrived = sum(diagnose(_vec(seed=s), _maps(), native).arrived() for s in range(1, 41))
    assert arrived <= 4


def test_orthogonal_or_opposite_vector_is_at_chance():
    native = _vec()
    rep = diagnose(native * -1.0, _maps(), native)
    assert rep.cos_native[1] == pytest.approx(-1.0)
    assert rep.verdict.startswith("at chance level")  # a reversed concept did not arrive


def test_without_native_the_verdict_is_unknown():
    rep = diagnose(_vec(default_layer=2), _maps())
    assert rep.cos_native is None
    assert rep.verdict.startswith("unknown")
    assert not rep.arrived()
    assert all(math.isnan(c) for c in rep.chance_mapped + rep.chance_slm)
    assert rep.layer == 2  # the transferred vector's default layer


def test_without_native_layer_zero_is_kept():
    rep = diagnose(_vec(default_layer=0), _maps())
    assert rep.layer == 0


def test_without_native_or_default_layer_picks_the_middle():
    rep = diagnose(_vec(default_layer=None), _maps())
    assert rep.layer == LAYERS // 2


def test_auc_fields_with_slm_activations():
    native = _vec(separability=(0.6, 0.9, 0.7))
    rng = np.random.default_rng(0)
    base = rng.standard_normal((20, LAYERS, D_SLM))
    d = native.directions.numpy()[None]
    pos, neg = base + d, base - d
    rep = diagnose(native, _maps(), native, pos, neg)
    assert len(rep.auc_transferred) == LAYERS
    assert rep.auc_transferred == pytest.approx([1.0] * LAYERS)
    assert rep.auc_native == [0.6, 0.9, 0.7]
    assert "AUC 1.00" in rep.verdict
    assert rep.summary()["auc_transferred"] == pytest.approx(1.0)
    # the reversed vector separates them backwards
    rev = diagnose(native * -1.0, _maps(), native, pos, neg)
    assert rev.auc_transferred == pytest.approx([0.0] * LAYERS)


def test_no_auc_without_activations():
    rep = diagnose(_vec(), _maps(), _vec())
    assert rep.auc_transferred is None and rep.auc_native is None


def test_bad_fit_warning():
    native = _vec()
    bad = diagnose(native, _maps(r2=BAD_R2 / 2), native)
    assert len(bad.warnings) == 1
    assert "R^2" in bad.warnings[0] and "0.10" in bad.warnings[0] and "layer 1" in bad.warnings[0]
    good = diagnose(native, _maps(r2=BAD_R2 + 0.05), native)
    assert good.warnings == []
