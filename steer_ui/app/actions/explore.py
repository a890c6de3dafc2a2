"""The Explore tab: where a concept lives in a text (token heatmap), where it reaches the
output (logit lens and accessibility), and where it steers best (calibration)."""

from __future__ import annotations

import time

from ...concepts import heatmap, lens
from ...errors import ContrastError, SteerError
from ...evaluation import calibration
from ... import plots
from ..pool import ROLES, Pair
from ..state import SessionState

SOURCES = ("typed", "first positive contrast prompt", "first negative contrast prompt",
           "LLM unsteered pane", "LLM steered pane", "SLM unsteered pane", "SLM steered pane")


def fill_text(state: SessionState, source: str, panes: list[str], typed: str) -> str:
    """The text the heatmap draws, taken from ``source`` (the Steer tab's four panes in
    order LLM unsteered, LLM steered, SLM unsteered, SLM steered)."""
    if source == "typed":
        return typed
    if source.endswith("pane"):
        text = panes[SOURCES.index(source) - 3] or ""
        if not text.strip():
            raise SteerError(f"The Steer tab's {source} is empty: generate first, or type a text.")
        return text
    ex = next(iter(state.extractions.values()), None)
    if ex is None:
        raise SteerError("Extract a concept first (Concept tab): its contrast prompts are empty until then.")
    side = ex.contrast.positive if "positive" in source else ex.contrast.negative
    return side[0].user + (" " + side[0].answer if side[0].answer else "")


def heatmaps(wb: Pair, state: SessionState, text: str, layers: dict[str, int]) -> tuple[str, str, str]:
    """Token heatmaps of ``text`` in each model that has a concept, at its viewed layer:
    (LLM html, SLM html, status with the time to draw after the forward pass)."""
    if not state.extractions:
        raise SteerError("Extract a concept first (Concept tab), then draw where it lives in a text.")
    out, took = {r: "" for r in ROLES}, []
    for role, ex in state.extractions.items():
        lm = wb.get(role)
        hm = heatmap.token_heatmap(lm, text, ex.vector, int(layers[role]), ex.pos, ex.neg)
        start = time.perf_counter()
        out[role] = heatmap.to_html(hm)
        took.append(f"{role.upper()} {len(hm.tokens)} tokens, drawn in {1000 * (time.perf_counter() - start):.0f} ms")
    return out["llm"], out["slm"], "Hover a token for its z-score and projection. " + " · ".join(took)


def lens_view(wb: Pair, state: SessionState, role: str, layer: int) -> tuple:
    """The logit lens of ``role``'s concept: (accessibility beside separability figure,
    [[layer, promotes, suppresses], ...] for every layer, status)."""
    ex = _extraction(state, role)
    lm = wb.get(role)
    rows = lens.vector_lens(lm, ex.vector)
    try:
        access = lens.accessibility(lm, ex.pos, ex.neg)
    except SteerError:  # too few pairs: show the tokens, say why the curve is missing
        access = None
    curves = {"separability (probe AUC)": ex.vector.separability}
    if access is not None:
        curves["accessibility (logit-lens AUC)"] = access
    fig = plots.separability_profile(curves, current={k: int(layer) for k in curves},
                                     title=f"{role.upper()} {ex.vector.name}: readable (separability) vs "
                                     "reaching the output (accessibility)")
    table = [[r.layer, " ".join(t for t, _ in r.promoted), " ".join(t for t, _ in r.suppressed)] for r in rows]
    peak = f"accessibility peaks at layer {max(range(len(access)), key=access.__getitem__)}" if access \
        else "accessibility needs 4+ contrast pairs"
    return fig, table, f"{role.upper()}: {peak}; separability peaks at layer {ex.vector.default_layer}."


def calibrate(wb: Pair, state: SessionState, role: str, kind: str, prompts_text: str, layers_text: str,
              intensities_text: str, guard: float, progress=None) -> tuple:
    """Sweep the grid for ``role``'s vector ``kind``: (grid figure, reason, chosen
    intensity or None, chosen layer or None)."""
    from ..cli_explore import parse_layer_list
    from .steer import parse_intensities

    ex = _extraction(state, role)
    lm = wb.get(role)
    vector = state.vector(role, kind if role == "slm" else "native")
    prompts = [t.strip() for t in (prompts_text or "").splitlines() if t.strip()]
    layers = parse_layer_list(layers_text, lm.n_layers) if (layers_text or "").strip() else None
    name, scorer = calibration.concept_scorer(lm, ex)
    result = calibration.calibrate(lm, vector, scorer, name, prompts, layers, parse_intensities(intensities_text),
                                   guard=float(guard), progress=progress)
    layers_, values, eff = result.matrix()
    _, _, kl = result.matrix("kl")
    c, d = result.chosen, result.default
    fig = plots.calibration_grid(layers_, values, eff, kl, result.guard, c and (c.layer, c.intensity),
                                 (d.layer, d.intensity), f"{role.upper()} {vector.name}: efficacy by layer and "
                                 "intensity")
    return fig, result.reason(), (c.intensity if c else None), (c.layer if c else None)


def _extraction(state: SessionState, role: str):
    if role not in state.extractions:
        raise ContrastError(f"Extract a concept in the {role.upper()} first (Concept tab): nothing to explore yet.")
    return state.extractions[role]
