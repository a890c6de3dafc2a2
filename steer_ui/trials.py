"""The Transfer and Evaluate tabs' actions, gradio-free (``ui.py`` wires them).

Like ``session.py``: plain values in, plain values and figures out, per-user results
kept in the caller's ``SessionState``.
"""

from __future__ import annotations

import plotly.graph_objects as go

from . import plots
from .errors import SteerError
from .session import SessionState, parse_intensities
from .vectors import random_like
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
    leave_out = source.contrast.source.removeprefix("preset:") if source.contrast.source.startswith("preset:") else None
    pairs = paired.collect(llm, slm, sources, leave_out, n_neutral, progress=progress)
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


def evaluate(wb: Workbench, state: SessionState, dataset: str, upload: str | None, task: str, maps: list[str],
             scaling: str, intensities: str, limit: int, progress=None) -> tuple[str, go.Figure, go.Figure]:
    """Run the experiment on the session's concept; returns a table and two plots."""
    from . import evaluation, experiment, fluency, report
    from .config import ASSETS

    if "slm" not in state.extractions:
        raise SteerError("Extract a concept first (Concept tab): the arms steer with it.")
    cs = state.extractions["slm"].contrast
    grid = parse_intensities(intensities, limit=12)
    path = upload or str(ASSETS / TASK_FILES.get(dataset, dataset))
    llm = wb.get("llm") if maps else None
    arms, _ = experiment.build_arms(llm, wb.get("slm"), cs, maps, ["concept", "neutral"], 200,
                                    progress=progress) if maps else _native_arms(wb, state)
    texts = fluency.heldout_texts(16)
    if task == "generation":
        from .textscore import scorer_for

        if not cs.source.startswith("preset:"):
            raise SteerError("The generation task scores text with the preset's scorer: extract from a preset.")
        prompts = [t for t in open(path, encoding="utf-8").read().splitlines() if t.strip()][:limit]
        result = experiment.run_generation(arms, scorer_for(cs.source[7:]), prompts, grid, 24, 0, texts, progress)
        metrics = ("efficacy", "perplexity")
    else:
        items = evaluation.load_items(path)[:limit]
        result = experiment.run(arms, items, grid, scaling, 0, texts, progress)
        metrics = ("accuracy", "p_match")
    return _results_markdown(result, metrics[0]), *[report.curves_figure(result, m, f"{m} (test split)")
                                                    for m in metrics]


def _native_arms(wb: Workbench, state: SessionState):
    from .experiment import Arm

    slm, v = wb.get("slm"), state.extractions["slm"].vector
    return [Arm("baseline", slm, None, None), Arm("native", slm, v, v.default_layer),
            Arm("random", slm, random_like(v, 0), v.default_layer)], {}


def _results_markdown(result: dict, key: str) -> str:
    from .fluency import fluency_warning

    rows = [f"test n={result['n_test']}, dev n={result['n_dev']}", "",
            f"| arm | intensity | {key} | 95% CI | delta vs baseline | delta CI | perplexity |",
            "|---|---|---|---|---|---|---|"]
    base_ppl = result["arms"].get("baseline", {}).get("perplexity")
    warnings = []
    for name, arm in result["arms"].items():
        t, x = arm["test"], arm["intensity"]
        x = "per item" if isinstance(x, dict) else x
        ppl = arm.get("perplexity")
        delta = t.get("delta_vs_baseline")
        rows.append(f"| {name} | {x} | {t[key]:.3f} | {_fmt(t.get(key + '_ci'))} | "
                    f"{'-' if delta is None else f'{delta:+.3f}'} | {_fmt(t.get('delta_ci'))} | "
                    f"{'-' if ppl is None else f'{ppl:.1f}'} |")
        if ppl and base_ppl and (w := fluency_warning(ppl, base_ppl)):
            warnings.append(f"⚠️ {name}: {w}")
    return "\n".join(rows + [""] + warnings)


def _fmt(ci) -> str:
    return "-" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
