"""steer_ui.transfer.diagnostics: a transferred vector judged against the native one and chance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from steer_ui.concepts.vectors import ConceptVector
from steer_ui.transfer.diagnostics import BAD_R2, diagnose
from steer_ui.transfer.maps import LayerMap

D_LLM, D_SLM, LAYERS = 24, 32, 3


def _maps(r2=0.9, seed=0):
    rng = np.random.default_rng(seed)
    return [LayerMap("ridge", i, i, rng.standard_normal((D_SLM, D_LLM)).astype(np.float32),
                     {"all": r2, "neutral": r2 + 0.01}) for i in range(LAYERS)]


def _vec(seed=0, default_layer=1, separability=(), model="slm"):
    g = torch.Generator().manual_seed(seed)
    return ConceptVector(torch.randn(LAYERS, D_SLM, generator=g), model=model, default_layer=default_layer,
                         separability=separability)


def _at_cosine(native: ConceptVector, c: float, seed: int = 3) -> ConceptVector:
    """A vector whose cosine with ``native`` is exactly ``c`` at every layer (built by hand)."""
    g = torch.Generator().manual_seed(seed)
    u = native.directions / native.directions.norm(dim=1, keepdim=True)
    r = torch.randn(u.shape, generator=g)
    r = r - (r * u).sum(1, keepdim=True) * u  # orthogonal to native, per layer
    r = r / r.norm(dim=1, keepdim=True)
    return ConceptVector(c * u + math.sqrt(1 - c * c) * r, model="slm", default_layer=1)


def test_a_vector_at_a_known_cosine_is_reported_at_it():
    native = _vec()
    rep = diagnose(_at_cosine(native, 0.6), _maps(), native)
    assert rep.layer == 1
    assert rep.cos_native == pytest.approx([0.6] * LAYERS, abs=1e-5)
    assert all(0 < c < 1 for c in rep.chance_mapped + rep.chance_slm)
    assert all(1.0 > c for c in rep.chance_mapped)
    assert rep.verdict.startswith("arrived")
    assert rep.arrived()
    assert rep.pairs == [(0, 0), (1, 1), (2, 2)]
    assert rep.r2["all"] == pytest.approx([0.9] * 3) and rep.r2["neutral"] == pytest.approx([0.91] * 3)
    assert rep.warnings == []
    s = rep.summary()
    assert s["slm_layer"] == 1 and s["llm_layer"] == 1 and s["cos_native"] == pytest.approx(0.6, abs=1e-4)
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
    from sklearn.metrics import roc_auc_score

    native = _vec(separability=(0.6, 0.9, 0.7))
    rng = np.random.default_rng(0)
    base = rng.standard_normal((20, LAYERS, D_SLM)) * 3
    d = native.directions.numpy()[None] * 0.3
    pos, neg = base + d, base - d  # separable along native, partly along a vector at cos 0.6
    t = _at_cosine(native, 0.6)
    rep = diagnose(t, _maps(), native, pos, neg)
    expected = [roc_auc_score([1] * 20 + [0] * 20, np.r_[pos[:, j] @ t.directions[j].numpy(),
                                                         neg[:, j] @ t.directions[j].numpy()]) for j in range(LAYERS)]
    assert rep.auc_transferred == pytest.approx(expected)
    assert all(0.5 < a < 1.0 for a in expected)  # neither trivial nor chance: the test can tell
    assert rep.auc_native == [0.6, 0.9, 0.7]  # the native vector's own cross-validated scores
    assert f"AUC {expected[1]:.2f}" in rep.verdict
    # the reversed vector separates them backwards
    rev = diagnose(t * -1.0, _maps(), native, pos, neg)
    assert rev.auc_transferred == pytest.approx([1 - a for a in expected])


def test_orthogonal_vector_is_at_chance():
    native = _vec()
    rep = diagnose(_at_cosine(native, 0.0), _maps(), native)
    assert rep.cos_native == pytest.approx([0.0] * LAYERS, abs=1e-5)
    assert not rep.arrived() and rep.verdict.startswith("at chance level")


def test_verdict_flips_at_the_chance_level():
    native = _vec()
    chance = diagnose(native, _maps(), native).chance_mapped[1]
    assert diagnose(_at_cosine(native, chance + 0.02), _maps(), native).arrived()
    assert not diagnose(_at_cosine(native, chance - 0.02), _maps(), native).arrived()


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


def _carried(native: ConceptVector, kept=None, data=None) -> ConceptVector:
    """A vector at cosine 0.6 with ``native`` carrying what ``maps.carry``/``transfer`` record."""
    v = _at_cosine(native, 0.6)
    return ConceptVector(v.directions, model="slm", default_layer=1,
                         provenance={"norm_kept": kept, "map_data": data})


def test_norm_kept_is_reported_and_warned_about_when_low():
    native = _vec()
    rep = diagnose(_carried(native, kept=[0.9, 0.3, 0.8]), _maps(), native)
    assert rep.norm_kept == [0.9, 0.3, 0.8]
    assert rep.summary()["norm_kept"] == pytest.approx(0.3)
    assert len(rep.warnings) == 1 and "30%" in rep.warnings[0] and "layer 1" in rep.warnings[0]
    assert diagnose(_carried(native, kept=[0.9, 0.7, 0.8]), _maps(), native).warnings == []
    ridge = diagnose(_carried(native), _maps(), native)  # ridge reads the whole space: nothing to report
    assert ridge.norm_kept is None and ridge.summary()["norm_kept"] is None and ridge.warnings == []


def test_summary_says_what_the_map_saw_and_how_r2_was_split():
    native = _vec()
    data = {"concept_presets": ["polite-rude"], "concept_texts": 32, "neutral_texts": 200,
            "left_out": ["happy-sad", "optimistic-pessimistic", "angry-calm"]}
    s = diagnose(_carried(native, data=data), _maps(), native).summary()
    assert s["fitted_on"] == data and s["r2_split"] == "by text"
