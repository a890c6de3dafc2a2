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
                     n_neutral: int, progress=None) -> tuple[str, go.Figure, go.Figure | None]:
    """Carry the LLM's concept into the SLM; returns the diagnostics text and plots.

    The new vector joins the SLM's vector choices as ``transferred:<map>``.
    """
    from . import diagnostics, paired, transfer

    if "llm" not in state.extractions:
        raise SteerError("Extract a concept in the LLM first (Concept tab), then transfer it.")
    llm, slm = wb.get("llm"), wb.get("slm")
    source = state.extractions["llm"]
    pairs = paired.collect(llm, slm, sources, concept_name(source.contrast.source), n_neutral, progress=progress)
    vector, maps, cka = transfer.transfer(source.vector, llm, slm, pairs, method, matching)
    native = state.extractions.get("slm")
    report = diagnostics.diagnose(vector, maps, native.vector if native else None,
                                  native.pos.numpy() if native else None, native.neg.numpy() if native else None)
    state.extra[f"transferred:{method}"] = vector
    return _report_markdown(report, method, matching, len(pairs)), _report_figure(report), \
        (plots.heatmap(cka, "Linear CKA of every layer pair", "SLM layer", "LLM layer",
                       best=None) if cka is not None else None)


def _report_markdown(report, method: str, matching: str, n: int) -> str:
    s = report.summary()
    status = "✅" if report.arrived() else "⚠️"
    lines = [f"{status} **{report.verdict}**", "",
             f"map **{method}**, layers by **{matching}**, {n} paired texts; SLM layer {s['slm_layer']} "
             f"<- LLM layer {s['llm_layer']}", "",
             "| measure | value |", "|---|---|"]
    for k, v in s["r2"].items():
        lines.append(f"| held-out R^2 ({k}) | {v} |")
    for k in ("cos_native", "chance_mapped_p95", "chance_slm_p95", "auc_transferred", "auc_native"):
        lines.append(f"| {k.replace('_', ' ')} | {s[k]} |")
    return "\n".join(lines + [""] + [f"⚠️ {w}" for w in report.warnings])


def _report_figure(report) -> go.Figure:
    xs = list(range(len(report.pairs)))
    curves = {"held-out R^2 (all)": report.r2.get("all", [])}
    if report.cos_native is not None:
        curves.update({"cos(transferred, native)": report.cos_native,
                       "chance: random LLM vectors through the map (p95 |cos|)": report.chance_mapped,
                       "chance: random SLM vectors (p95 |cos|)": report.chance_slm})
    if report.auc_transferred is not None:
        curves["AUC along transferred"] = report.auc_transferred
    return plots.lines(xs, curves, "Transfer diagnostics by SLM layer", "SLM layer", "value")


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
    return _results_markdown(result, metrics[0]), *[report.curves_figure(result, m, f"{m} (test split)")
                                                    for m in metrics]


def _results_markdown(result: dict, key: str) -> str:
    from .fluency import fluency_warning

    rows = [f"test n={result['n_test']}, dev n={result['n_dev']}", "",
            f"| arm | vector | layer | intensity | {key} | 95% CI | delta vs baseline | delta CI | perplexity |",
            "|---|---|---|---|---|---|---|---|---|"]
    vectors = result.get("vectors", {})
    base_ppl = result["arms"].get("baseline", {}).get("perplexity")
    warnings = []
    for name, arm in result["arms"].items():
        t, x = arm["test"], arm["intensity"]
        x = "per item" if isinstance(x, dict) else x
        ppl = arm.get("perplexity")
        delta = t.get("delta_vs_baseline")
        layer = "-" if arm.get("layer") is None else arm["layer"]
        rows.append(f"| {name} | {vectors.get(name, '-')} | {layer} | {x} | {t[key]:.3f} | {_fmt(t.get(key + '_ci'))} | "
                    f"{'-' if delta is None else f'{delta:+.3f}'} | {_fmt(t.get('delta_ci'))} | "
                    f"{'-' if ppl is None else f'{ppl:.1f}'} |")
        if ppl and base_ppl and (w := fluency_warning(ppl, base_ppl)):
            warnings.append(f"⚠️ {name}: {w}")
    return "\n".join(rows + [""] + warnings)


def _fmt(ci) -> str:
    return "-" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
