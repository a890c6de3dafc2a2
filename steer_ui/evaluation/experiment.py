"""The experiment runner: arms x intensities on a dev/test split, honest selection.

Arms: ``baseline`` (no steering), ``native`` (extracted in the SLM), ``transferred:<map>``
(from the LLM), ``random`` (equal-norm random direction), optionally ``llm`` (the LLM
itself steered, a ceiling), optionally ``prompting`` (the SLM unsteered, told the concept
in a system prompt: AxBench found prompting beats representation steering). The
intensity of every arm is chosen on the dev split and reported on the test split,
never chosen on test.

Inference-time intensity scaling modes:
- ``dev-sweep``: try every grid intensity on dev, keep the one with the best dev
  accuracy (ties: higher p(match), then smaller |intensity|); report test at it.
- ``per-example``: for each test item, try every grid intensity and keep the one whose
  answer distribution is most confident (largest top-1 minus top-2 log-prob). Uses
  no labels at all; dev is not used.
- ``adaptive``: like ``dev-sweep``, but the hook adds ``intensity * ||h_t||`` per token
  (the current residual norm at the hooked layer) instead of a layer-wide typical norm.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..concepts.contrast import concept_name
from ..concepts.vectors import ConceptVector
from ..errors import DatasetError
from . import scoring as ev
from .fluency import perplexity

SCALING = ("dev-sweep", "per-example", "adaptive")


@dataclass(frozen=True)
class Arm:
    """One way of steering (or not) one model."""

    name: str
    lm: object  # LoadedModel
    vector: ConceptVector | None
    layer: int | None
    system: str | None = None  # a system prompt before every question (the prompting arm)


TASK_INSTRUCTION = "Answer correctly."  # the prompting arm's instruction for a task's own "correct vs wrong"


def prompting_instruction(source: str) -> str:
    """The prompting arm's system prompt for a concept set's ``source``: a preset's
    positive persona ("Answer as an extremely happy person."), or, for the dev split's
    "correct vs wrong answer" concept, "Answer correctly."."""
    from ..concepts.contrast import load_preset, preset_ref

    ref = preset_ref(source)
    if ref is not None:
        return f"Answer as {load_preset(ref)['positive_persona']}."
    if source == "ab:task-dev":
        return TASK_INSTRUCTION
    raise DatasetError(f"No prompting instruction is known for the concept {source!r}: give one "
                       "(--prompt-instruction).")


def prompting_arm(lm, instruction: str) -> Arm:
    """``lm`` unsteered, told ``instruction`` in its system prompt."""
    if not instruction.strip():
        raise DatasetError("The prompting arm needs a non-empty instruction.")
    return Arm("prompting", lm, None, None, instruction)


def split_items(items: list, dev_fraction: float = 0.5, seed: int = 0) -> tuple[list, list]:
    """A seeded dev/test split; both halves need at least 4 items."""
    if len(items) < 8:
        raise DatasetError(f"{len(items)} items is too few for a dev/test split: give at least 8.")
    perm = np.random.default_rng(seed).permutation(len(items))
    cut = int(round(len(items) * dev_fraction))
    return [items[i] for i in perm[:cut]], [items[i] for i in perm[cut:]]


def _metrics(logp: np.ndarray, answers: np.ndarray) -> ev.Scores:
    return ev.Scores.from_logprobs(logp, answers)


def _choose(dev_logp: np.ndarray, answers: np.ndarray, grid: list[float]) -> int:
    """Index of the dev-best intensity: accuracy, then p(match), then smaller |x|."""
    keys = [(_metrics(dev_logp[:, k], answers).correct.mean(), _metrics(dev_logp[:, k], answers).p_match.mean(),
             -abs(x)) for k, x in enumerate(grid)]
    return max(range(len(grid)), key=lambda k: keys[k])


def _logprobs(arm: Arm, split: str, rows: list, grid: list[float], mode: str, cache: dict | None) -> np.ndarray:
    """``choice_logprobs`` of one arm on one split, remembered in ``cache`` so that scaling
    modes reading the same passes (dev-sweep and per-example; an unsteered arm in every
    mode) score them once."""
    key = (arm.name, split, tuple(grid), mode if arm.vector is not None else "unsteered")
    if cache is None or key not in cache:
        logp = ev.choice_logprobs(arm.lm, rows, arm.vector, grid, arm.layer, mode, arm.system)
        if cache is None:
            return logp
        cache[key] = logp
    return cache[key]


def run_arm(arm: Arm, dev: list, test: list, grid: list[float], scaling: str,
            fluency_texts: list[str] | None = None, groups: list[int] | None = None,
            cache: dict | None = None) -> dict:
    """Scores of one arm: chosen intensity, dev/test metrics, the test dose-response.
    ``groups``: the item each test row came from (CIs resample items); ``cache``: shared
    scoring passes across calls (see ``run_modes``)."""
    mode = "adaptive" if scaling == "adaptive" else "relative"
    grid = [0.0] if arm.vector is None else grid
    a_dev = np.array([it.answer for it in dev])
    a_test = np.array([it.answer for it in test])
    test_logp = _logprobs(arm, "test", test, grid, mode, cache)
    if scaling == "per-example":
        pick = ev.margin(test_logp).argmax(1)  # (n_test,), most confident intensity per item
        chosen_logp = test_logp[np.arange(len(test)), pick]
        chosen = {"per_item": [grid[k] for k in pick], "mean": float(np.mean([grid[k] for k in pick]))}
        dev_block = None
    else:
        dev_logp = _logprobs(arm, "dev", dev, grid, mode, cache)
        k = _choose(dev_logp, a_dev, grid)
        chosen, chosen_logp = grid[k], test_logp[:, k]
        d = _metrics(dev_logp[:, k], a_dev)
        dev_block = {"accuracy": float(d.correct.mean()), "p_match": float(d.p_match.mean())}
    s = _metrics(chosen_logp, a_test)
    curve = [_metrics(test_logp[:, k], a_test) for k in range(len(grid))]
    report = {
        "intensity": chosen, "layer": arm.layer, "mode": mode, "dev": dev_block,
        "test": {"accuracy": float(s.correct.mean()), "accuracy_ci": ev.ci(s.correct, groups=groups),
                 "p_match": float(s.p_match.mean()), "p_match_ci": ev.ci(s.p_match, groups=groups)},
        "curve": {"intensity": grid, "accuracy": [float(c.correct.mean()) for c in curve],
                  "p_match": [float(c.p_match.mean()) for c in curve]},
        "_correct": s.correct, "_p_match": s.p_match,
    }
    if fluency_texts and not isinstance(chosen, dict):
        report["perplexity"] = perplexity(arm.lm, fluency_texts, arm.vector, chosen, arm.layer, mode)
    return report


def run(arms: list[Arm], items: list, grid: list[float], scaling: str = "dev-sweep", seed: int = 0,
        fluency_texts: list[str] | None = None, progress=None, balance: bool = True,
        cache: dict | None = None) -> dict:
    """All arms on one dataset; deltas vs baseline with paired bootstrap CIs.

    The split is made on the items as given (so a concept built from the dev items
    never sees a test item); with ``balance`` each half is then letter-balanced.
    """
    if scaling not in SCALING:
        raise DatasetError(f"Unknown scaling {scaling!r}: use {', '.join(SCALING)}.")
    dev, test = split_items(items, seed=seed)
    n_items = len(test)
    groups = list(range(len(test)))
    if balance:
        dev, (test, groups) = ev.balance_letters(dev), ev.balanced(test)
    out: dict = {}
    for n, arm in enumerate(arms):
        if progress:
            progress(n / len(arms), f"arm {arm.name}")
        out[arm.name] = run_arm(arm, dev, test, grid, scaling, fluency_texts, groups, cache)
    base = out.get("baseline")
    for name, r in out.items():
        if base is not None and arm_model(arms, name) is arm_model(arms, "baseline"):
            diff = r["_correct"] - base["_correct"]
            r["test"]["delta_vs_baseline"] = float(diff.mean())
            r["test"]["delta_ci"] = ev.ci(diff, groups=groups)
            r["test"]["delta_p_match"] = float((r["_p_match"] - base["_p_match"]).mean())
    for r in out.values():  # only after every delta: the baseline's arrays are needed by all
        r.pop("_correct"), r.pop("_p_match")
    return {"arms": out, "n_dev": len(dev), "n_test": len(test), "n_test_items": n_items, "seed": seed,
            "scaling": scaling, "intensities": grid}


def run_modes(arms: list[Arm], items: list, grids: dict[str, list[float]], seed: int = 0,
              fluency_texts: list[str] | None = None, progress=None) -> Iterator[tuple[str, dict]]:
    """``run`` once per scaling mode in ``grids`` (mode -> its intensity grid), in order,
    sharing every scoring pass two modes have in common: per-example reads dev-sweep's test
    passes, and the unsteered arms (baseline, prompting) are scored once for all modes.
    Same results as separate ``run`` calls, for about half the work of three. Yields
    (mode, report) as each finishes, so a long run's first modes are kept if it is stopped."""
    cache: dict = {}
    for scaling, grid in grids.items():
        yield scaling, run(arms, items, grid, scaling, seed, fluency_texts, progress, cache=cache)


def arm_model(arms: list[Arm], name: str):
    return next((a.lm for a in arms if a.name == name), None)


def run_generation(arms: list[Arm], scorer, prompts: list[str], grid: list[float], max_new_tokens: int = 32,
                   seed: int = 0, fluency_texts: list[str] | None = None, progress=None) -> dict:
    """Open-generation concept score: efficacy (mean scorer value) against intensity.

    Prompts are split dev/test; each arm's intensity is the dev-best efficacy among those
    whose neutral-text perplexity stays under ``BROKEN_RATIO`` x unsteered.
    """
    from ..steering.generation import Sampling
    from .fluency import BROKEN_RATIO

    dev, test = split_items(prompts, seed=seed)
    out: dict = {}
    for n, arm in enumerate(arms):
        if progress:
            progress(n / len(arms), f"arm {arm.name}")
        xs = [0.0] if arm.vector is None else grid
        texts = [_generate(arm, p, xs, Sampling(max_new_tokens, seed=seed)) for p in dev + test]  # (prompts, xs)
        eff = np.array([scorer.score(row) for row in texts])  # (prompts, intensities)
        ppl = [perplexity(arm.lm, fluency_texts, arm.vector, x, arm.layer) for x in xs] if fluency_texts else None
        # the unsteered reference, measured even when the grid has no 0
        plain = (ppl[xs.index(0.0)] if 0.0 in xs else perplexity(arm.lm, fluency_texts)) if ppl else None
        ok = [k for k in range(len(xs)) if ppl is None or ppl[k] <= BROKEN_RATIO * plain] or list(range(len(xs)))
        k = max(ok, key=lambda k: (eff[: len(dev), k].mean(), -abs(xs[k])))
        t = eff[len(dev):]
        out[arm.name] = {
            "intensity": xs[k], "layer": arm.layer,
            "test": {"efficacy": float(t[:, k].mean()), "efficacy_ci": ev.ci(t[:, k])},
            "curve": {"intensity": xs, "efficacy": t.mean(0).tolist(), "perplexity": ppl,
                      "scores": t.tolist()},  # (test prompts, intensities): dose-matched comparisons later
            "perplexity": ppl[k] if ppl else None,
            "examples": {str(x): texts[len(dev)][i] for i, x in enumerate(xs)},
            "_scores": t[:, k], "_curve": t,  # (test prompts,), (test prompts, intensities)
        }
    _compare_generation(out)
    return {"arms": out, "n_dev": len(dev), "n_test": len(test), "seed": seed, "intensities": grid,
            "scorer": scorer.kind}


def _compare_generation(out: dict) -> None:
    """Paired comparisons over the same test prompts, added to each arm's ``test``: the
    change vs baseline; a transferred arm's change as a fraction of the native arm's
    (``fraction_of_native``); and each steered arm vs the random arm at the same
    intensity (``vs_random``: random at its own dev-chosen intensity is often 0, which
    would make the comparison one with the baseline)."""
    base, native, rnd = out.get("baseline"), out.get("native"), out.get("random")
    for name, r in out.items():
        t = r["test"]
        t["scores"] = r["_scores"].tolist()
        if base is None:
            continue
        diff = r["_scores"] - base["_scores"]
        t.update(delta_vs_baseline=float(diff.mean()), delta_ci=ev.ci(diff))
        if native is not None and name.startswith("transferred:"):
            d_native = native["_scores"] - base["_scores"]
            t["fraction_of_native"] = float(diff.mean() / d_native.mean()) if d_native.mean() else None
            t["fraction_ci"] = ev.ratio_ci(diff, d_native)
        if rnd is not None and name not in ("baseline", "random", "prompting") and r["intensity"] in rnd["curve"]["intensity"]:
            same = r["_scores"] - rnd["_curve"][:, rnd["curve"]["intensity"].index(r["intensity"])]
            t.update(vs_random=float(same.mean()), vs_random_ci=ev.ci(same))
    for r in out.values():
        r.pop("_scores"), r.pop("_curve")


def _generate(arm: Arm, prompt: str, xs: list[float], sampling) -> list[str]:
    """One text per intensity; an arm with a system prompt gets its chat text formatted
    here (the engines format a plain prompt themselves, without one)."""
    from ..steering.generation import generate

    if arm.system is None:
        return generate(arm.lm, prompt, arm.vector, xs, arm.layer, sampling)
    return generate(arm.lm, arm.lm.chat(prompt, arm.system), arm.vector, xs, arm.layer, sampling, chat=False)


def build_arms(llm, slm, cs, maps: list[str], sources: list[str], n_neutral: int = 400,
               slm_layer: int | None = None, with_llm: bool = False, progress=None,
               prompting: str | None = None) -> tuple[list[Arm], dict]:
    """Extract ``cs`` in both models, transfer the LLM vector with each map; the arms
    (baseline, native, transferred:<map>..., random[, prompting][, llm]) and the transfer
    diagnostics. ``prompting``: the prompting arm's instruction (None: no such arm)."""
    from ..concepts.extraction import extract_concept
    from ..concepts.vectors import random_like
    from ..transfer import diagnostics, paired
    from ..transfer.maps import transfer

    native = extract_concept(slm, cs, progress=progress)
    source = extract_concept(llm, cs, progress=progress)
    layer = native.vector.default_layer if slm_layer is None else slm_layer
    arms = [Arm("baseline", slm, None, None), Arm("native", slm, native.vector, layer)]
    pairs = paired.collect(llm, slm, sources, concept_name(cs.source), n_neutral, progress=progress) \
        if maps else None
    diag = {}
    for m in maps:
        vec, layer_maps, _ = transfer(source.vector, llm, slm, pairs, m, "depth")
        rep = diagnostics.diagnose(vec, layer_maps, native.vector, native.pos.numpy(), native.neg.numpy())
        diag[f"transferred:{m}"] = {**rep.summary(), "cos_native_by_layer": rep.cos_native,
                                    "r2_by_layer": rep.r2, "vector_layer": vec.default_layer}
        # Its own layer (where the map carried the LLM's best layer): choosing it by the
        # native vector's separability would leak SLM-native knowledge into the transfer arm.
        arms.append(Arm(f"transferred:{m}", slm, vec, vec.default_layer if slm_layer is None else slm_layer))
    arms.append(Arm("random", slm, random_like(native.vector, seed=0), layer))
    if prompting is not None:
        arms.append(prompting_arm(slm, prompting))
    if with_llm:
        arms.append(Arm("llm", llm, source.vector, source.vector.default_layer))
    return arms, diag
