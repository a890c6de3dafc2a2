"""steer_ui.evaluation.experiment: seeded splits, arms x intensities with honest selection, the
three scaling modes, and open-generation efficacy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import FIXTURES
from steer_ui.concepts.vectors import ConceptVector, random_like
from steer_ui.errors import DatasetError
from steer_ui.evaluation import fluency
from steer_ui.evaluation import scoring as ev
from steer_ui.evaluation.experiment import Arm, run, run_generation, split_items
from steer_ui.evaluation.scoring import Item
from steer_ui.evaluation.textscore import scorer_for
from steer_ui.steering.generation import Sampling, generate


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
    base = ev.Scores.from_logprobs(ev.choice_logprobs(tiny, test, None, [0.0])[:, 0], answers)
    base_acc = base.correct.mean()
    assert rep["arms"]["baseline"]["test"]["accuracy"] == pytest.approx(base_acc)
    for arm in arms[1:]:
        r = rep["arms"][arm.name]
        t = r["test"]
        # the deltas are paired per test item (an unpaired CI would be wider)
        steered = ev.Scores.from_logprobs(
            ev.choice_logprobs(tiny, test, arm.vector, [r["intensity"]], 1)[:, 0], answers)
        assert t["delta_vs_baseline"] == pytest.approx(t["accuracy"] - base_acc)
        assert t["accuracy_ci"] == pytest.approx(ev.ci(steered.correct))
        assert t["delta_ci"] == pytest.approx(ev.ci(steered.correct - base.correct))
        assert t["delta_p_match"] == pytest.approx((steered.p_match - base.p_match).mean())
        # intensity 0 is exactly unsteered: that point of every curve is the baseline
        assert r["curve"]["accuracy"][GRID.index(0.0)] == pytest.approx(base_acc)
        assert r["curve"]["p_match"][GRID.index(0.0)] == pytest.approx(base.p_match.mean())


def _baseline_on(lm, test: list) -> tuple[float, float]:
    """Unsteered (accuracy, mean p(match)) on ``test``, scored here by hand."""
    answers = np.array([it.answer for it in test])
    logp = ev.choice_logprobs(lm, test, None, [0.0])[:, 0]  # (n, choices)
    p = np.exp(logp) / np.exp(logp).sum(1, keepdims=True)
    return float((logp.argmax(1) == answers).mean()), float(p[np.arange(len(test)), answers].mean())


def test_run_is_seeded(tiny):
    """The seed picks the split: each run is scored on ``split_items(items, seed)``'s
    test half, so a run that ignored (or hard-coded) its seed would fail here."""
    items = _items()
    reports = {seed: run(_arms(tiny), items, GRID, seed=seed) for seed in (1, 2)}
    expected = {seed: _baseline_on(tiny, split_items(items, seed=seed)[1]) for seed in (1, 2)}
    assert expected[1] != expected[2]  # the two splits are told apart by these numbers
    for seed, rep in reports.items():
        base = rep["arms"]["baseline"]["test"]
        assert (base["accuracy"], base["p_match"]) == pytest.approx(expected[seed])
        assert rep["seed"] == seed and rep["n_dev"] == rep["n_test"] == 8
    assert reports[1] != reports[2]


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


FLUENCY = ["the day is good", "i am very happy"]


@pytest.mark.parametrize("scaling, mode", [("dev-sweep", "relative"), ("adaptive", "adaptive")])
def test_run_with_fluency(tiny, scaling, mode):
    """Each arm's perplexity is measured with its own vector, chosen intensity, layer and
    mode. The arm steers layer 2 (its vector's default is 1) and the grid has no 0, so a
    wrong layer, intensity or mode gives a different number."""
    vector = _arms(tiny)[1].vector
    arms = [Arm("baseline", tiny, None, None), Arm("native", tiny, vector, 2)]
    grid = [1.0, 2.0]
    rep = run(arms, _items(), grid, scaling=scaling, fluency_texts=FLUENCY)
    assert rep["arms"]["baseline"]["perplexity"] == pytest.approx(fluency.perplexity(tiny, FLUENCY))
    x = rep["arms"]["native"]["intensity"]
    expected = fluency.perplexity(tiny, FLUENCY, vector, x, 2, mode)
    assert rep["arms"]["native"]["perplexity"] == pytest.approx(expected)
    other = grid[1 - grid.index(x)]
    other_mode = "relative" if mode == "adaptive" else "adaptive"
    for wrong in (fluency.perplexity(tiny, FLUENCY, vector, x, 1, mode),
                  fluency.perplexity(tiny, FLUENCY, vector, other, 2, mode),
                  fluency.perplexity(tiny, FLUENCY, vector, x, 2, other_mode),
                  fluency.perplexity(tiny, FLUENCY)):
        assert expected != pytest.approx(wrong)


def test_per_example_run_has_no_single_perplexity(tiny):
    """Per-example intensities differ per item: there is no one intensity to measure."""
    rep = run(_arms(tiny)[:2], _items(), [0.0, 1.0], scaling="per-example", fluency_texts=FLUENCY)
    assert "perplexity" not in rep["arms"]["native"]


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


class _Scorer:
    """A stand-in concept scorer whose score of a text is worked out by hand: the
    fraction of its (at most 4) words that are ``w<n>`` tokens, or any rule passed in."""

    kind = "stub"

    def __init__(self, rule=None):
        self.rule = rule or (lambda t: sum(w.startswith("w") for w in t.split()) / 4)

    def score(self, texts):
        return np.array([self.rule(t) for t in texts], float)


def _expected_generation(lm, arm, scorer, xs, fluency_texts):
    """What ``run_generation`` should report for ``arm``, computed here step by step."""
    dev, test = split_items(PROMPTS, seed=0)
    texts = {p: generate(lm, p, arm.vector, xs, arm.layer, Sampling(4, seed=0)) for p in dev + test}
    s_dev = np.array([[scorer.rule(t) for t in texts[p]] for p in dev])  # (prompts, xs)
    s_test = np.array([[scorer.rule(t) for t in texts[p]] for p in test])
    ppl = [fluency.perplexity(lm, fluency_texts, arm.vector, x, arm.layer) for x in xs]
    unbroken = [k for k, x in enumerate(xs) if ppl[k] <= fluency.BROKEN_RATIO * ppl[xs.index(0.0)]]
    k = max(unbroken, key=lambda k: (s_dev[:, k].mean(), -abs(xs[k])))
    return dict(k=k, s_dev=s_dev, s_test=s_test, ppl=ppl, example=texts[test[0]])


def test_run_generation(tiny):
    scorer = _Scorer()
    arms = _arms(tiny)
    grid = [0.0, 2.0]
    rep = run_generation(arms, scorer, PROMPTS, grid, max_new_tokens=4, fluency_texts=FLUENCY)
    assert rep["scorer"] == "stub" and rep["n_dev"] == rep["n_test"] == 4
    assert set(rep["arms"]) == {"baseline", "native", "random"}
    want = {a.name: _expected_generation(tiny, a, scorer, [0.0] if a.vector is None else grid, FLUENCY)
            for a in arms}
    base = want["baseline"]["s_test"][:, 0]
    for name, r in rep["arms"].items():
        xs = [0.0] if name == "baseline" else grid
        w = want[name]
        chosen = w["s_test"][:, w["k"]]  # each test prompt's score at the dev-chosen intensity
        assert r["intensity"] == xs[w["k"]]
        assert r["test"]["efficacy"] == pytest.approx(chosen.mean())
        assert r["test"]["efficacy_ci"] == pytest.approx(ev.ci(chosen))
        assert r["curve"]["intensity"] == xs
        assert r["curve"]["efficacy"] == pytest.approx(w["s_test"].mean(0).tolist())
        assert r["curve"]["perplexity"] == pytest.approx(w["ppl"])
        assert r["perplexity"] == pytest.approx(w["ppl"][w["k"]])
        assert r["examples"] == {str(x): t for x, t in zip(xs, w["example"])}
        assert r["test"]["delta_vs_baseline"] == pytest.approx((chosen - base).mean())
        assert r["test"]["delta_ci"] == pytest.approx(ev.ci(chosen - base))
        assert r["test"]["scores"] == pytest.approx(chosen.tolist())
    assert rep["arms"]["baseline"]["test"]["delta_ci"] == [0.0, 0.0]
    # the native arm against random at the native arm's own intensity, paired by prompt
    native, rnd = want["native"], want["random"]
    same = native["s_test"][:, native["k"]] - rnd["s_test"][:, native["k"]]
    assert rep["arms"]["native"]["test"]["vs_random"] == pytest.approx(same.mean())
    assert rep["arms"]["native"]["test"]["vs_random_ci"] == pytest.approx(ev.ci(same))
    assert "vs_random" not in rep["arms"]["baseline"]["test"] and "fraction_of_native" not in rep["arms"]["native"]["test"]
    # the data tell the arms apart: a mix-up of arms or intensities would show
    assert len({tuple(w["s_test"][:, -1]) for w in want.values()}) == 3


def test_run_generation_reports_a_transferred_arm_as_a_fraction_of_native(tiny):
    """fraction_of_native = the transferred arm's mean change / the native arm's, both vs
    baseline on the same test prompts; its CI resamples prompts in both together."""
    arms = _arms(tiny)
    carried = Arm("transferred:ridge", tiny, random_like(arms[1].vector, seed=9), 1)
    rep = run_generation(arms + [carried], _Scorer(), PROMPTS, [0.0, 2.0], max_new_tokens=4)
    scores = {n: np.array(r["test"]["scores"]) for n, r in rep["arms"].items()}
    d_t, d_n = scores["transferred:ridge"] - scores["baseline"], scores["native"] - scores["baseline"]
    t = rep["arms"]["transferred:ridge"]["test"]
    if d_n.mean() == 0:
        assert t["fraction_of_native"] is None
    else:
        assert t["fraction_of_native"] == pytest.approx(d_t.mean() / d_n.mean())
    assert t["fraction_ci"] == ev.ratio_ci(d_t, d_n)


def test_ratio_ci_is_paired_and_refuses_a_zero_denominator():
    rng = np.random.default_rng(0)
    den = rng.normal(1.0, 0.2, 200)
    low, high = ev.ratio_ci(0.5 * den, den)  # exactly half on every row: a paired CI is a point
    assert low == pytest.approx(0.5) and high == pytest.approx(0.5)
    low, high = ev.ratio_ci(0.5 * den + rng.normal(0, 0.2, 200), den)
    assert low < 0.5 < high and high - low < 0.2
    assert ev.ratio_ci(np.ones(4), np.array([1.0, -1.0, 0.0, 0.0])) is None  # a resample can average 0


def _sharp(lm):
    """``lm`` with a 20x sharper output layer: confident on its own greedy text, so a
    steering push can multiply that text's perplexity (a random tiny model predicts
    nearly uniformly, and no push breaks its perplexity of ~320)."""
    with torch.no_grad():
        lm.model.lm_head.weight *= 20
    return lm


def test_run_generation_never_chooses_an_intensity_that_breaks_fluency(tiny):
    lm = _sharp(tiny)
    own = [p + " " + generate(lm, p, None, [0.0], None, Sampling(8), chat=False)[0] for p in ("the day", "i am")]
    unsteered = {generate(lm, p, None, [0.0], None, Sampling(4, seed=0))[0] for p in PROMPTS}
    scorer = _Scorer(lambda t: float(t not in unsteered))  # 1 for any text steering changed
    arm = _arms(lm)[1]
    grid = [0.0, 2.0]
    w = _expected_generation(lm, arm, scorer, grid, own)
    # the premise: 2.0 wins on dev efficacy, but breaks fluency on the model's own text
    assert w["s_dev"][:, 1].mean() > w["s_dev"][:, 0].mean()
    assert w["ppl"][1] > fluency.BROKEN_RATIO * w["ppl"][0]
    rep = run_generation([arm], scorer, PROMPTS, grid, max_new_tokens=4, fluency_texts=own)
    assert rep["arms"]["native"]["intensity"] == 0.0
    assert rep["arms"]["native"]["perplexity"] == pytest.approx(w["ppl"][0])
    # without fluency texts nothing is filtered, and the dev-best 2.0 is chosen
    rep = run_generation([arm], scorer, PROMPTS, grid, max_new_tokens=4)
    assert rep["arms"]["native"]["intensity"] == 2.0 and rep["arms"]["native"]["perplexity"] is None


def test_run_generation_too_few_prompts(tiny):
    with pytest.raises(DatasetError, match="5 items is too few for a dev/test split"):
        run_generation(_arms(tiny), scorer_for("happy-sad"), PROMPTS[:5], [0.0, 1.0], max_new_tokens=2)


# ---------- CIs count items, not letter-balanced rows ----------

def _lettered(n=24, seed=0):
    """CAA-style items whose options can be swapped: each is scored in both orders."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b = (" ".join(rng.choice(WORDS, 2)) for _ in range(2))
        out.append(Item(f"{' '.join(rng.choice(WORDS, 4))}\n(A) {a}\n(B) {b}", ("(A)", "(B)"),
                        int(rng.integers(2))))
    return out


def test_run_ci_resamples_items_not_rows(tiny):
    """The two letter orders of an item are one observation: the reported CIs are the
    cluster bootstrap over test items, and a row bootstrap (twice as many "independent"
    rows) would give a narrower, different interval."""
    items = _lettered()
    arms = _arms(tiny)
    rep = run(arms, items, GRID)
    _, test = split_items(items, seed=0)
    rows, groups = ev.balanced(test)
    assert rep["n_test_items"] == len(test) and rep["n_test"] == len(rows) == 2 * len(test)
    answers = np.array([r.answer for r in rows])
    base = ev.Scores.from_logprobs(ev.choice_logprobs(tiny, rows)[:, 0], answers)
    for arm in arms:
        r = rep["arms"][arm.name]
        x = r["intensity"] if arm.vector is not None else 0.0
        s = ev.Scores.from_logprobs(ev.choice_logprobs(tiny, rows, arm.vector, [x], arm.layer)[:, 0], answers)
        assert r["test"]["accuracy_ci"] == pytest.approx(ev.ci(s.correct, groups=groups))
        assert r["test"]["p_match_ci"] == pytest.approx(ev.ci(s.p_match, groups=groups))
        assert r["test"]["delta_ci"] == pytest.approx(ev.ci(s.correct - base.correct, groups=groups))
    by_rows = ev.ci(base.correct)
    t = rep["arms"]["baseline"]["test"]
    assert np.ptp(base.correct) > 0 and t["accuracy_ci"] != pytest.approx(by_rows)
    # the two orders of an item agree more often than chance here (the tiny model
    # scores "(A)" and "(B)" alike): rows are not independent, so a row CI is too narrow
    assert (t["accuracy_ci"][1] - t["accuracy_ci"][0]) > (by_rows[1] - by_rows[0])


# ---------- the prompting arm ----------

SYSTEM = "you are very happy and good"


def test_prompting_instruction():
    from steer_ui.evaluation.experiment import prompting_instruction

    assert prompting_instruction("preset:happy-sad") == "Answer as an extremely happy person."
    assert prompting_instruction("ab:task-dev") == "Answer correctly."
    with pytest.raises(DatasetError, match="--prompt-instruction"):
        prompting_instruction("lists")


def test_prompting_arm_is_unsteered_and_told(tiny):
    from steer_ui.evaluation.experiment import prompting_arm

    arm = prompting_arm(tiny, SYSTEM)
    assert (arm.name, arm.vector, arm.layer, arm.system) == ("prompting", None, None, SYSTEM)
    with pytest.raises(DatasetError, match="non-empty"):
        prompting_arm(tiny, "  ")


def test_run_prompting_arm_scores_with_its_system_prompt(tiny):
    """Scored after the system-prompted question (so not as the baseline), unsteered,
    with a paired delta vs the baseline."""
    from steer_ui.evaluation.experiment import prompting_arm

    items = _items(24)
    arms = [Arm("baseline", tiny, None, None), prompting_arm(tiny, SYSTEM)]
    rep = run(arms, items, GRID)
    _check_report(rep, arms, len(items))
    _, test = split_items(items, seed=0)
    answers = np.array([it.answer for it in test])
    told = ev.Scores.from_logprobs(ev.choice_logprobs(tiny, test, system=SYSTEM)[:, 0], answers)
    base = ev.Scores.from_logprobs(ev.choice_logprobs(tiny, test)[:, 0], answers)
    r = rep["arms"]["prompting"]
    assert r["intensity"] == 0.0 and r["curve"]["intensity"] == [0.0]
    assert r["test"]["p_match"] == pytest.approx(told.p_match.mean())
    assert r["test"]["accuracy"] == pytest.approx(told.correct.mean())
    assert r["test"]["p_match"] != pytest.approx(rep["arms"]["baseline"]["test"]["p_match"], abs=1e-4)
    assert r["test"]["delta_p_match"] == pytest.approx((told.p_match - base.p_match).mean())
    assert r["test"]["delta_vs_baseline"] == pytest.approx((told.correct - base.correct).mean())


def test_run_generation_prompting_arm_generates_after_its_system_prompt(tiny):
    from steer_ui.evaluation.experiment import prompting_arm

    arms = [Arm("baseline", tiny, None, None), prompting_arm(tiny, SYSTEM)]
    rep = run_generation(arms, _Scorer(), PROMPTS, [0.0, 2.0], max_new_tokens=4)
    _, test = split_items(PROMPTS, seed=0)
    expected = generate(tiny, tiny.chat(test[0], SYSTEM), None, [0.0], None, Sampling(4, seed=0), chat=False)
    assert rep["arms"]["prompting"]["examples"] == {"0.0": expected[0]}
    assert rep["arms"]["prompting"]["intensity"] == 0.0
    assert rep["arms"]["baseline"]["examples"]["0.0"] == generate(tiny, test[0], None, [0.0], None,
                                                                  Sampling(4, seed=0))[0]
    assert "delta_vs_baseline" in rep["arms"]["prompting"]["test"]


def test_run_modes_equals_separate_runs_and_shares_passes(tiny, monkeypatch):
    """One ``run_modes`` call gives each mode's report exactly as its own ``run`` would,
    and scores fewer passes: per-example reads dev-sweep's test passes, and the unsteered
    baseline is scored once for all modes."""
    from steer_ui.evaluation import experiment

    items, arms = _items(), _arms(tiny)
    grids = {"dev-sweep": GRID, "per-example": GRID, "adaptive": [0.0, 0.5, 1.0]}
    separate = {s: run(arms, items, g, scaling=s, fluency_texts=FLUENCY) for s, g in grids.items()}
    calls = []
    real = ev.choice_logprobs
    monkeypatch.setattr(ev, "choice_logprobs", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    shared = dict(experiment.run_modes(arms, items, grids, fluency_texts=FLUENCY))
    assert list(shared) == list(grids)
    for s in grids:
        assert shared[s] == separate[s]
    # separate: dev-sweep 2 passes x 3 arms, per-example 1 x 3, adaptive 2 x 3 = 15
    # shared: baseline dev+test once (2), native/random: relative dev+test (4), adaptive dev+test (4)
    assert len(calls) == 10
    assert ev.ratio_ci(np.ones(1), np.ones(1)) is None  # one prompt: no interval


def test_ratio_ci_agrees_with_scipys_paired_bootstrap():
    """Outside reference: where no resample's denominator is near 0, scipy's paired
    percentile bootstrap of the same statistic gives the same interval (up to resampling noise)."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(1)
    den = rng.normal(1.0, 0.3, 60)
    num = 0.6 * den + rng.normal(0, 0.3, 60)
    ref = bootstrap((num, den), lambda a, b, axis=-1: a.mean(axis) / b.mean(axis), paired=True,
                    vectorized=True, method="percentile", n_resamples=4000, random_state=0).confidence_interval
    low, high = ev.ratio_ci(num, den)
    assert low == pytest.approx(ref.low, abs=0.03) and high == pytest.approx(ref.high, abs=0.03)
