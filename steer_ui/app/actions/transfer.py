"""The Transfer tab: carry the LLM's concept into the SLM and report what arrived."""

from __future__ import annotations

import plotly.graph_objects as go

from ... import plots
from ...concepts.contrast import concept_name
from ...errors import SteerError
from ...transfer import diagnostics, maps, paired
from ..pool import Pair
from ..state import SessionState


def transfer_concept(wb: Pair, state: SessionState, method: str, matching: str, sources: list[str],
                     n_neutral: int, progress=None) -> tuple[str, go.Figure, go.Figure | None, str]:
    """Carry the LLM's concept into the SLM; returns the diagnostics text, the plots and
    the new vector's name (``transferred:<map>:<concept>``) among the SLM's vectors."""
    if "llm" not in state.extractions:
        raise SteerError("Extract a concept in the LLM first (Concept tab), then transfer it.")
    llm, slm = wb.get("llm"), wb.get("slm")
    source = state.extractions["llm"]
    left_out = concept_name(source.contrast.source)
    pairs = paired.collect(llm, slm, sources, left_out, n_neutral, progress=progress)
    vector, layer_maps, cka = maps.transfer(source.vector, llm, slm, pairs, method, matching)
    native = state.extractions.get("slm")
    report = diagnostics.diagnose(vector, layer_maps, native.vector if native else None,
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
    "norm_kept": "the share of the LLM direction's squared norm inside the subspace the map reads (Procrustes: "
                 "its top PCA components; anchor: the anchors' span); the rest is dropped",
}


def _report_markdown(report, kind: str, vector, matching: str, n: int, sources: list[str],
                     left_out: str | None) -> str:
    s = report.summary()
    status = "✔" if report.arrived() else "⚠"
    saw = " and ".join(sources) + (f" texts, without the {left_out} prompts" if left_out else " texts")
    if report.fitted_on:  # it names what was left out itself, the concept's family included
        saw = " and ".join(sources) + " texts). " + fitted_on_text(report.fitted_on)
    else:
        saw += ")."
    p = vector.provenance
    lines = [f"{status} **{report.verdict}**", "",
             f"**{kind}** steers at SLM layer **{vector.default_layer}**: its map carried the LLM's best layer "
             f"{p.get('source_layer')} there (from LLM layer {p.get('source_layer_used')}, layers matched by "
             f"{matching}). The figures below are read at SLM layer {s['slm_layer']} (from LLM layer "
             f"{s['llm_layer']}), where the SLM's own vector separates best. The map was fitted on {n} paired rows "
             f"({saw}", "",
             "| measure | value | what it means |", "|---|---|---|"]
    for k, v in s["r2"].items():
        lines.append(f"| held-out R² ({k}) | {_num(v)} | {MEANING['r2'] if k == 'all' else ''} |")
    if s["norm_kept"] is not None:
        lines.append(f"| norm kept | {_num(s['norm_kept'])} | {MEANING['norm_kept']} |")
    for k in ("cos_native", "chance_mapped_p95", "chance_slm_p95", "auc_transferred", "auc_native"):
        lines.append(f"| {k.replace('_', ' ')} | {_num(s[k])} | {MEANING[k]} |")
    return "\n".join(lines + [""] + [f"⚠ {w}" for w in report.warnings])


def _num(v) -> str:
    """Three decimals: enough to compare, narrow enough for the table at 1000 px."""
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def fitted_on_text(data: dict | None) -> str:
    """One sentence on what the map saw and what it left out (``paired.MapData``)."""
    if not data:
        return ""
    seen = ", ".join(data["concept_presets"]) or "none"
    out = (f"It saw {data['concept_texts']} concept prompts of {len(data['concept_presets'])} presets "
           f"({seen}) and {data['neutral_texts']} neutral texts (each pooled twice); held-out R² is "
           "measured on texts it did not see.")
    if data["left_out"]:
        out += (f" Left out: {', '.join(data['left_out'])} (the concept and its family, so the map never saw "
                "its near relatives).")
    return out


def _report_figure(report) -> go.Figure:
    xs = list(range(len(report.pairs)))
    curves = {"held-out R² (all)": report.r2.get("all", [])}
    if report.cos_native is not None:
        curves.update({"cos(transferred, native)": report.cos_native,
                       "chance: random LLM vectors through the map": report.chance_mapped,
                       "chance: random SLM vectors": report.chance_slm})
    if report.auc_transferred is not None:
        curves["AUC along transferred"] = report.auc_transferred
    if report.norm_kept is not None:
        curves["norm kept by the map's subspace"] = report.norm_kept
    return plots.lines(xs, curves, "Transfer diagnostics by SLM layer (chance: 95th percentile |cos|)",
                       "SLM layer", "value")
