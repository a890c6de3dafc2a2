"""steer_ui.experiment: seeded splits, arms x intensities with honest selection, the
three scaling modes, and open-generation efficacy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import FIXTURES
from steer_ui import evaluation as ev
from steer_ui.errors import DatasetError
from steer_ui.experiment import Arm, run, run_generation, split_items
from steer_ui.evaluation import Item
from steer_ui.textscore import scorer_for
from steer_ui.vectors import ConceptVector, random_like


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


GRID = [-2.0, 0.0, 1.0, 4.0]
WORDS = "the a happy sad good bad day night i am you are is was very not and of to in".split()


def _items(n=16, seed=0):
    """Items in the tiny tokenizer's vocabulary, so every choice scores differently."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        prompt = " ".join(rng.choice(WORDS, 5))
        choices = tuple(dict.fromkeys(" ".join(rng.choice(WORDS, 2)) for _ in range(6)))[:3]
        out.append(Item(prompt, choices, int(rng.integers(len(choices)))))
    return out


def _arms(lm):
    g = torch.Generator().manual_seed(0)
    native = ConceptVector(torch.randn(lm.n_layers, lm.hidden_size, generator=g), model=lm.name,
                           default_layer=1, name="native")
    return [Arm("baseline", lm, None, None), Arm("native", lm, native, 1),
            Arm("random", lm, random_like(native, seed=3), 1)]


# ---------- split ----------

def test_split_items_seeded():
    items = list(range(20))
    dev, test = split_items(items, seed=0)
    assert (dev, test) == split_items(items, seed=0)
    assert len(dev) == len(test) == 10
    assert sorted(dev + test) == items
    assert split_items(items, seed=1) != (dev, test)
    d, t = split_items(items, dev_fraction=0.25, seed=0)
    assert (len(d), len(t)) == (5, 15)


def test_split_items_too_few():
    split_items(list(range(8)))  # the minimum works
    with pytest.raises(DatasetError, match="7 items is too few"):
        split_items(list(range(7)))


# ---------- A/B runs ----------

def _check_report(rep, arms, n_items):
    assert set(rep["arms"]) == {a.name for a in arms}
    assert rep["n_dev"] + rep["n_test"] == n_items
    for name, r in rep["arms"].items():
        t = r["test"]
        low, high = t["accuracy_ci"]
        assert low <= t["accuracy"] <= high
        assert 0 <= low and high <= 1
        assert 0 <= t["p_match"] <= 1
        assert "delta_vs_baseline" in t and len(t["delta_ci"]) == 2
        assert t["delta_ci"][0] <= t["delta_vs_baseline"] <= t["delta_ci"][1]
        assert len(r["curve"]["accuracy"]) == len(r["curve"]["intensity"]) == len(r["curve"]["p_match"])
        assert "_correct" not in r and "_p_match" not in r
    base = rep["arms"]["baseline"]
    assert base["test"]["delta_vs_baseline"] == 0.0
    assert base["test"]["delta_ci"] == [0.0, 0.0]
    assert base["test"]["delta_p_match"] == 0.0
    assert base["curve"]["intensity"] == [0.0] and base["intensity"] == 0.0


def test_run_dev_sweep(tiny):
    items = _items()
    arms = _arms(tiny)
    rep = run(arms, items, GRID)
    _check_report(rep, arms, len(items))
    assert rep["scaling"] == "dev-sweep" and rep["intensities"] == GRID
    dev, test = split_items(items, seed=0)
    answers = np.array([it.answer for it in test])
    for arm in arms[1:]:
        r = rep["arms"][arm.name]
        assert r["intensity"] in GRID
        assert r["curve"]["intensity"] == GRID
        assert r["mode"] == "relative" and r["layer"] == 1
        # the chosen intensity is the dev-best one, and test is reported at it
        dev_logp = ev.choice_logprobs(tiny, dev, arm.vector, GRID, 1)
        dev_acc = [ev.Scores.from_logprobs(dev_logp[:, k], np.array([i.answer for i in dev])).correct.mean()
                   for k in range(len(GRID))]
        assert dev_acc[GRID.index(r["intensity"])] == max(dev_acc)
        assert r["dev"]["accuracy"] == pytest.approx(max(dev_acc))
        k = GRID.index(r["intensity"])
        assert r["test"]["accuracy"] == pytest.approx(r["curve"]["accuracy"][k])
        # the curve is the real test accuracy per intensity
        test_logp = ev.choice_logprobs(tiny, test, arm.vector, GRID, 1)
        for k in range(len(GRID)):
            expected = (test_logp[:, k].argmax(1) == answers).mean()
            assert r["curve"]["accuracy"][k] == pytest.approx(expected)
    # baseline accuracy and the deltas are computed from the same test items
    base_logp = ev.choice_logprobs(tiny, test, None, [0.0])[:, 0]
    base_acc = (base_logp.argmax(1) == answers).mean()
    assert rep["arms"]["baseline"]["test"]["accuracy"] == pytest.approx(base_acc)
    for name in ("native", "random"):
        t = rep["arms"][name]["test"]
        assert t["delta_vs_baseline"] == pytest.approx(t["accuracy"] - base_acc)
    # a native arm whose best intensity is 0 must match baseline on test
    # (intensity 0 is exactly unsteered)
    if rep["arms"]["native"]["intensity"] == 0.0:
        assert rep["arms"]["native"]["test"]["accuracy"] == pytest.approx(base_acc)


def test_run_is_seeded(tiny):
    items = _items()
    a = run(_arms(tiny), items, GRID, seed=1)
    b = run(_arms(tiny), items, GRID, seed=1)
    assert a == b
    assert a["seed"] == 1


def test_run_on_fixture_items(tiny):
    items = ev.load_items(FIXTURES / "generic_small.jsonl")
    arms = _arms(tiny)
    rep = run(arms, items, GRID)
    _check_report(rep, arms, 12)
    assert rep["n_dev"] == rep["n_test"] == 6


def test_run_per_example(tiny):
    items = _items()
    arms = _arms(tiny)
    rep = run(arms, items, GRID, scaling="per-example")
    n_test = rep["n_test"]
    _, test = split_items(items, seed=0)
    for arm in arms[1:]:
        r = rep["arms"][arm.name]
        chosen = r["intensity"]
        assert isinstance(chosen, dict) and len(chosen["per_item"]) == n_test
        assert all(x in GRID for x in chosen["per_item"])
        assert chosen["mean"] == pytest.approx(np.mean(chosen["per_item"]))
        assert r["dev"] is None
        # each item's intensity is its most confident one (largest top1 - top2)
        logp = ev.choice_logprobs(tiny, test, arm.vector, GRID, 1)
        m = ev.margin(logp)
        for i, x in enumerate(chosen["per_item"]):
            assert m[i, GRID.index(x)] == pytest.approx(m[i].max())
    low, high = rep["arms"]["native"]["test"]["accuracy_ci"]
    assert low <= rep["arms"]["native"]["test"]["accuracy"] <= high


def test_run_adaptive(tiny):
    items = _items()
    arms = _arms(tiny)
    rep = run(arms, items, [0.0, 0.5, 1.0], scaling="adaptive")
    _check_report(rep, arms, len(items))
    for name in ("native", "random"):
        r = rep["arms"][name]
        assert r["mode"] == "adaptive"
        assert r["intensity"] in [0.0, 0.5, 1.0]
    # adaptive scoring differs from relative at the same non-zero intensity
    relative = run(arms, items, [0.0, 0.5, 1.0])
    assert rep["arms"]["native"]["curve"]["p_match"][2] != relative["arms"]["native"]["curve"]["p_match"][2]
    assert rep["arms"]["native"]["curve"]["p_match"][0] == relative["arms"]["native"]["curve"]["p_match"][0]


def test_run_with_fluency(tiny):
    rep = run(_arms(tiny), _items(), [0.0, 1.0], fluency_texts=["the day is good", "i am very happy"])
    for r in rep["arms"].values():
        assert r["perplexity"] > 1


def test_unknown_scaling(tiny):
    with pytest.raises(DatasetError, match="Unknown scaling"):
        run(_arms(tiny), _items(), GRID, scaling="oracle")


def test_arm_on_another_model_gets_no_delta(tiny):
    from conftest import make_tiny

    other = make_tiny("qwen2")
    arms = _arms(tiny)[:1] + [Arm("llm", other, None, None)]
    rep = run(arms, _items(), GRID)
    assert "delta_vs_baseline" in rep["arms"]["baseline"]["test"]
    assert "delta_vs_baseline" not in rep["arms"]["llm"]["test"]


# ---------- open generation ----------

PROMPTS = ["tell me about the day", "i am", "you are very", "the night was", "good and bad",
           "w1 w2 w3", "not happy", "sad day"]


def test_run_generation(tiny):
    scorer = scorer_for("formal-casual")
    arms = _arms(tiny)
    grid = [0.0, 2.0]
    rep = run_generation(arms, scorer, PROMPTS, grid, max_new_tokens=4,
                         fluency_texts=["the day is good", "i am very happy"])
    assert rep["scorer"] == "classifier" and rep["n_dev"] == rep["n_test"] == 4
    assert set(rep["arms"]) == {"baseline", "native", "random"}
    for name, r in rep["arms"].items():
        xs = [0.0] if name == "baseline" else grid
        assert r["intensity"] in xs
        eff = r["test"]["efficacy"]
        assert 0.0 <= eff <= 1.0
        low, high = r["test"]["efficacy_ci"]
        assert low <= eff <= high
        assert r["curve"]["intensity"] == xs
        assert all(0.0 <= e <= 1.0 for e in r["curve"]["efficacy"])
        assert len(r["curve"]["perplexity"]) == len(xs) and all(p > 1 for p in r["curve"]["perplexity"])
        assert set(r["examples"]) == {str(x) for x in xs}
        assert r["test"]["efficacy"] == pytest.approx(r["curve"]["efficacy"][xs.index(r["intensity"])])
        assert r["perplexity"] == r["curve"]["perplexity"][xs.index(r["intensity"])]
        d = rep["arms"]["baseline"]["test"]["efficacy"]
        assert r["test"]["delta_vs_baseline"] == pytest.approx(eff - d)
        low, high = r["test"]["delta_ci"]
        assert low <= r["test"]["delta_vs_baseline"] <= high
    assert rep["arms"]["baseline"]["test"]["delta_ci"] == [0.0, 0.0]


def test_run_generation_too_few_prompts(tiny):
    with pytest.raises(DatasetError):
        run_generation(_arms(tiny), scorer_for("happy-sad"), PROMPTS[:5], [0.0, 1.0], max_new_tokens=2)
