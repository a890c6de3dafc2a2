"""steer_ui.evaluation.calibration: the layer x intensity grid, its damage measure and
the choice; on a real model, the chosen cell against the default on held-out prompts."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_tiny, random_vector
from steer_ui.config import ASSETS
from steer_ui.errors import ContrastError, IntensityError, LayerError
from steer_ui.evaluation import calibration as cal

PROMPTS = ["the happy day", "i am very sad", "you are good"]


def _length(texts):  # a stand-in concept score: longer texts score higher
    return np.array([len(t) for t in texts], dtype=float)


def test_grid_checks_name_the_problem():
    lm = make_tiny("llama")
    with pytest.raises(ContrastError, match="at least 2"):
        cal.check_grid(lm, ["one prompt"], [1], [0.5])
    with pytest.raises(ContrastError, match="cap of 16"):
        cal.check_grid(lm, [f"p{i}" for i in range(17)], [1], [0.5])
    with pytest.raises(LayerError, match="layers 0..2"):
        cal.check_grid(lm, PROMPTS, [5], [0.5])
    with pytest.raises(IntensityError, match="1 to 8"):
        cal.check_grid(lm, PROMPTS, [1], [0.1 * i for i in range(9)])
    with pytest.raises(IntensityError, match="not finite"):
        cal.check_grid(lm, PROMPTS, [1], [float("nan")])


def test_the_guard_is_a_positive_number():
    lm = make_tiny("llama")
    for guard in (0, -1, float("nan"), float("inf")):
        with pytest.raises(IntensityError, match="damage guard"):
            cal.calibrate(lm, random_vector(lm), _length, "length", PROMPTS, [1], [0.5], guard=guard)


def test_cell_cap(monkeypatch):
    lm = make_tiny("llama")
    monkeypatch.setattr(cal, "MAX_CELLS", 4)
    with pytest.raises(IntensityError, match="6 cells, more than the cap of 4"):
        cal.check_grid(lm, PROMPTS, [0, 1, 2], [0.5, 1.0])


def test_damage_grows_with_intensity_and_zero_is_undamaged():
    lm = make_tiny("llama")
    v = random_vector(lm)
    base, cells = cal.measure(lm, v, _length, PROMPTS, [(1, 0.0), (1, 0.5), (1, 4.0)], max_new_tokens=6)
    zero, mid, big = cells
    assert zero.kl == pytest.approx(0.0, abs=1e-6) and zero.efficacy == pytest.approx(0.0)
    assert 0 < mid.kl < big.kl
    from steer_ui.steering.generation import Sampling, generate

    plain = [generate(lm, p, None, [0.0], sampling=Sampling(6))[0] for p in PROMPTS]
    assert base == pytest.approx(np.mean(_length(plain)))  # the unsteered score is of unsteered greedy text


def test_calibrate_picks_the_most_effective_unbroken_cell():
    lm = make_tiny("llama")
    v = random_vector(lm)
    result = cal.calibrate(lm, v, _length, "length", PROMPTS, [1, 2], [0.25, 0.5, 4.0], max_new_tokens=6, guard=0.5)
    assert len(result.cells) == 6
    assert all(c.broken == (c.kl > 0.5) for c in result.cells)
    fine = [c for c in result.cells + [result.default] if not c.broken and c.efficacy > 0]
    if fine:
        assert result.chosen == max(fine, key=lambda c: (round(c.efficacy, 6), -c.kl))
        assert f"layer {result.chosen.layer}" in result.reason()
    else:
        assert result.chosen is None and "No unbroken cell" in result.reason()
    assert (result.default.layer, result.default.intensity) == (lm.n_layers // 2, cal.DEFAULT_INTENSITY)
    layers, values, grid = result.matrix("kl")
    assert layers == [1, 2] and values == [0.25, 0.5, 4.0] and grid.shape == (2, 3)


def test_default_layers_span_the_middle_of_the_model():
    assert cal.default_layers(30) == [3, 9, 15, 21, 27]
    assert cal.default_layers(3) == [1, 2] or cal.default_layers(3) == [1]


def test_on_a_preset_the_chosen_cell_beats_the_default_on_held_out_prompts(smollm):
    """Calibrate on five neutral prompts, judge on twelve others by the same scorer:
    the chosen cell must be unbroken there too, and beat the default (middle layer,
    0.4) at what calibration optimises: efficacy among cells under the damage guard."""
    from steer_ui.concepts.contrast import from_preset
    from steer_ui.concepts.extraction import extract_concept

    ex = extract_concept(smollm, from_preset("happy-sad"))
    name, scorer = cal.concept_scorer(smollm, ex)
    prompts = (ASSETS / "neutral_prompts.txt").read_text().splitlines()
    result = cal.calibrate(smollm, ex.vector, scorer, name, prompts[:5])
    assert result.chosen is not None, result.reason()
    c, d = result.chosen, result.default
    _, (chosen, default) = cal.measure(smollm, ex.vector, scorer, prompts[12:24],
                                       [(c.layer, c.intensity), (d.layer, d.intensity)])
    assert not chosen.broken and chosen.efficacy > 0.05, chosen
    assert default.broken or chosen.efficacy >= default.efficacy, (chosen, default)
