"""The Transfer and Evaluate tabs' actions, gradio-free (``ui.py`` wires them).

Like ``session.py``: plain values in, plain values and figures out, per-user results
kept in the caller's ``SessionState``.
"""

from __future__ import annotations

import plotly.graph_objects as go

from . import plots
from .contrast import concept_name, preset_ref
from .errors import SteerError
from .session import SessionState, parse_intensities
from .workbench import Workbench


def transfer_concept(wb: Workbench, state: SessionState, method: str, matching: str, sources: list[str],
                     n_neutral: int, progress=None) -> tuple[str, go.Figure, go.Figure | None, str]:
    """Carry the LLM's concept into the SLM; returns the diagnostics text, the plots and
    the new vector's name (``transferred:<map>:<concept>``) among the SLM's vectors."""
    from . import diagnostics, paired, transfer

    if "llm" not in state.extractions:
        raise SteerError("Extract a concept in the LLM first (Concept tab), then transfer it.")
    llm, slm = wb.get("llm"), wb.get("slm")
    source = state.extractions["llm"]
    left_out = concept_name(source.contrast.source)
    pairs = paired.collect(llm, slm, sources, left_out, n_neutral, progress=progress)
    vector, maps, cka = transfer.transfer(source.vector, llm, slm, pairs, method, matching)
    native = state.extractions.get("slm")
    report = diagnostics.diagnose(vector, maps, native.vector if native else None,
                                  native.pos.numpy() if native else None, native.neg.numpy() if native else None)
    kind = state.add(f"transferred:{method}:{vector.name}", vector)
    text = _report_markdown(report, kind, vector, matching, len(pairs), sources, left_out)
    heat = plots.heatmap(cka, "Linear CKA of every layer pair", "SLM layer", "LLM layer") if cka is not None else None
    return text, _report_figure(report), heat, kind


# What each figure of a transfer report means, in one line (shown beside it).
MEANING = {
    "r2": "how well the map predicts the SLM's activations of held-out texts (1 = exactly); not evidence "
          "of transfer by itself",
    "cos_native": "cosine of the carried direction with the SLM's own (native) one",
    "chance_mapped_p95": "chance level: the 95th percentile of the absolute cosine of random LLM directions "
                         "sent through the same map; a carried concept must beat it",
    "chance_slm_p95": "the same for random SLM directions (no map at all)",
    "auc_transferred": "how well the carried direction separates the SLM's own contrast prompts "
                       "(0.5 = not at all, 1 = perfectly)",
    "auc_native": "the same for the native direction (cross-validated)",
}


def _report_markdown(report, kind: str, vector, matching: str, n: int, sources: list[str],
                     left_out: str | None) -> str:
    s = report.summary()
    status = "✔" if report.arrived() else "⚠"
    saw = " and ".join(sources) + (f" texts, without the {left_out} prompts" if left_out else " texts")
    p = vector.provenance
    lines = [f"{status} **{report.verdict}**", "",
             f"**{kind}** steers at SLM layer **{vector.default_layer}**: its map carried the LLM's best layer "
             f"{p.get('source_layer')} there (from LLM layer {p.get('source_layer_used')}, layers matched by "
             f"{matching}). The figures below are read at SLM layer {s['slm_layer']} (from LLM layer "
             f"{s['llm_layer']}), where the SLM's own vector separates best. The map was fitted on {n} paired "
             f"{saw}.", "",
             "| measure | value | what it means |", "|---|---|---|"]
    for k, v in s["r2"].items():
        lines.append(f"| held-out R² ({k}) | {v} | {MEANING['r2'] if k == 'all' else ''} |")
    for k in ("cos_native", "chance_mapped_p95", "chance_slm_p95", "auc_transferred", "auc_native"):
        lines.append(f"| {k.replace('_', ' ')} | {s[k]} | {MEANING[k]} |")
    return "\n".join(lines + [""] + [f"⚠ {w}" for w in report.warnings])


def _report_figure(report) -> go.Figure:
    xs = list(range(len(report.pairs)))
    curves = {"held-out R² (all)": report.r2.get("all", [])}
    if report.cos_native is not None:
        curves.update({"cos(transferred, native)": report.cos_native,
                       "chance: random LLM vectors through the map": report.chance_mapped,
                       "chance: random SLM vectors": report.chance_slm})
    if report.auc_transferred is not None:
        curves["AUC along transferred"] = report.auc_transferred
    return plots.lines(xs, curves, "Transfer diagnostics by SLM layer (chance: 95th percentile |cos|)",
                       "SLM layer", "value")


TASK_FILES = {"sentiment (ours, A/B)": "tasks/sentiment_ab.jsonl", "true/false (ours, A/B)": "tasks/truefalse_ab.jsonl",
              "neutral prompts (generation)": "neutral_prompts.txt"}


def session_arms(wb: Workbench, state: SessionState, kinds: list[str]) -> list:
    """The arms of an evaluation: baseline plus each chosen vector the session holds,
    exactly as it was made, steered at its own default layer (a transferred vector at
    the layer its map carried the LLM's best layer to, never the native vector's)."""
    from .experiment import Arm

    slm = wb.get("slm")
    if not kinds:
        raise SteerError("Pick at least one vector to evaluate (the Arms list: native, transferred, "
                         "uploaded, random control).")
    known = state.vector_kinds()
    arms = [Arm("baseline", slm, None, None)]
    for kind in kinds:
        if kind not in known:
            raise SteerError(f"This session holds no {kind!r} vector any more: pick among {', '.join(known)}.")
        v = state.vector("slm", kind)
        layer = v.default_layer if v.default_layer is not None else slm.n_layers // 2
        arms.append(Arm(kind, slm, v, layer))
    return arms


def evaluate(wb: Workbench, state: SessionState, dataset: str, upload: str | None, task: str, kinds: list[str],
             scaling: str, intensities: str, limit: int, progress=None) -> tuple[str, go.Figure, go.Figure]:
    """Run the experiment on the session's own vectors; returns a table and two plots."""
    from . import evaluation, experiment, fluency, report
    from .config import ASSETS

    grid = parse_intensities(intensities, limit=12)
    path = upload or str(ASSETS / TASK_FILES.get(dataset, dataset))
    arms = session_arms(wb, state, kinds)
    texts = fluency.heldout_texts(16)
    if task == "generation":
        from .textscore import scorer_for

        ex = state.extractions.get("slm")
        preset = preset_ref(ex.contrast.source) if ex else None
        if preset is None:
            raise SteerError("The generation task scores text with a preset's scorer: extract the concept "
                             "from a preset (Concept tab), or use the A/B task.")
        prompts = [t for t in open(path, encoding="utf-8").read().splitlines() if t.strip()][:limit]
        result = experiment.run_generation(arms, scorer_for(preset), prompts, grid, 24, 0, texts, progress)
        metrics = ("efficacy", "perplexity")
    else:
        items = evaluation.load_items(path)[:limit]
        result = experiment.run(arms, items, grid, scaling, 0, texts, progress)
        metrics = ("accuracy", "p_match")
    result["vectors"] = {a.name: a.vector.name for a in arms if a.vector is not None}
    return _results_markdown(result, metrics[0]), *[report.curves_figure(result, m, f"{TITLES[m]} (test split)")
                                                    for m in metrics]


TITLES = {"accuracy": "Accuracy", "p_match": "p(match): probability of the right answer",
          "efficacy": "Concept score of the generated text", "perplexity": "Perplexity of neutral text (damage)"}


MIN_TEST_ITEMS = 50  # below this a 95% CI of an accuracy spans more than +-0.14: too wide to tell arms apart
METRIC_MEANING = {"accuracy": "share of test items answered right",
                  "efficacy": "mean concept score of the generated text (1 = reads like the positive side)"}


def _results_markdown(result: dict, key: str) -> str:
    from .fluency import fluency_warning

    items = result.get("n_test_items", result["n_test"])
    second = ("p(match), in the second plot, is the probability the model gives the right answer among the "
              "item's choices" if key == "accuracy" else
              "the second plot is the perplexity of neutral text under steering (damage)")
    rows = [f"**{key}**: {METRIC_MEANING[key]}. Test split: {items} items ({result['n_test']} rows with any "
            f"letter-swapped copies; CIs resample items), dev split: {result['n_dev']} rows. Each arm's "
            f"intensity was chosen on dev; {second}.", ""]
    if items < MIN_TEST_ITEMS:
        rows += [f"⚠ **Too few items to tell**: {items} test items (under {MIN_TEST_ITEMS}); differences "
                 "between arms this small are noise. Use a larger dataset or raise the item limit.", ""]
    rows += [f"| arm | vector | layer | intensity | {key} [95% CI] | Δ vs baseline [95% CI] | perplexity |",
             "|---|---|---|---|---|---|---|"]
    vectors = result.get("vectors", {})
    base_ppl = result["arms"].get("baseline", {}).get("perplexity")
    warnings = []
    for name, arm in result["arms"].items():
        t, x = arm["test"], arm["intensity"]
        x = "per item" if isinstance(x, dict) else x
        ppl = arm.get("perplexity")
        delta = t.get("delta_vs_baseline")
        layer = "-" if arm.get("layer") is None else arm["layer"]
        delta_cell = "-" if delta is None else f"{delta:+.3f} {_fmt(t.get('delta_ci'))}"
        rows.append(f"| {name} | {vectors.get(name, '-')} | {layer} | {x} | {t[key]:.3f} {_fmt(t.get(key + '_ci'))} | "
                    f"{delta_cell} | {'-' if ppl is None else f'{ppl:.1f}'} |")
        if ppl and base_ppl and (w := fluency_warning(ppl, base_ppl)):
            warnings.append(f"⚠ {name}: {w}")
    return "\n\n".join(["\n".join(rows), *warnings])


def _fmt(ci) -> str:
    return "" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
