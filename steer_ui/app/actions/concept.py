"""The Concept tab: a contrast set from the inputs, extraction in both models, method
switches without forward passes, the PCA and separability figures, vector files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import plotly.graph_objects as go

from ... import plots
from ...concepts import contrast
from ...concepts.extraction import Extraction, extract_concept
from ...concepts.files import export_gguf, import_gguf, load_vector, save_vector
from ...concepts.vectors import extract
from ...errors import ContrastError, SteerError, VectorError
from ...steering.hooks import check_intensities
from ..pool import ROLES, Pair
from ..state import SessionState


def contrast_from_inputs(source: str, preset: str, pos_text: str, neg_text: str, ab_path: str | None,
                         limit: int | None = None, name: str = "") -> contrast.ContrastSet:
    """The contrast set the Concept tab describes, named ``name`` when one is typed."""
    if source == "Preset":
        cs = contrast.from_preset(preset, limit)
    elif source == "Two lists":
        cs = contrast.from_lists(pos_text or "", neg_text or "")
        cs = replace(cs, positive=cs.positive[:limit], negative=cs.negative[:limit]) if limit else cs
    elif source == "File":
        if not ab_path:
            raise ContrastError("Upload a file first: A/B items (CAA JSON/JSONL), a copy of a preset, "
                                "or a two-list JSON {\"positive\": [...], \"negative\": [...]}.")
        cs = contrast.from_source(ab_path, limit)
    else:
        raise ContrastError(f"Unknown contrast source {source!r}.")
    name = (name or "").strip()
    return replace(cs, name=name) if name else cs


def extract_both(wb: Pair, state: SessionState, cs: contrast.ContrastSet, method: str,
                 position: str, progress=None) -> str:
    """Extract ``cs`` in every loaded model; returns a Markdown summary."""
    lines = []
    for role in ROLES:
        if role not in wb.models:
            continue
        ex = extract_concept(wb.models[role], cs, method, position, progress=progress)
        state.extractions[role] = ex
        v = ex.vector
        line = (f"**{role.upper()}** {v.model}: **{cs.name}**, {len(cs)} pairs, {method}, {ex.seconds:.1f} s, "
                f"{ex.forward_passes} forward passes; best layer {v.default_layer} "
                f"(AUC {v.separability[v.default_layer]:.2f})")
        if ex.letter_cosine:
            line += f"; letter-direction cosine {ex.letter_cosine[v.default_layer]:.2f}"
        lines.append(line)
    if not lines:
        raise SteerError("No model is loaded: load one in the Models tab first.")
    return "\n\n".join(lines)


def rescore(state: SessionState, method: str) -> str:
    """Switch the extraction method on recorded activations: no forward pass."""
    out = []
    for role, ex in state.extractions.items():
        v = extract(ex.pos, ex.neg, ex.vector.model, method, ex.vector.name, ex.vector.prompts_hash,
                    known_separability=ex.vector.separability)
        v = replace(v, provenance=ex.vector.provenance)
        state.extractions[role] = Extraction(v, ex.pos, ex.neg, ex.contrast, ex.letter_cosine, 0.0, 0)
        out.append(f"**{role.upper()}**: {method}, best layer {v.default_layer} (0 forward passes)")
    return "\n\n".join(out)


def pca_figure(state: SessionState, role: str, layer: int | None) -> go.Figure | None:
    """The role's contrast activations at ``layer`` on their first two PCs, with the
    native direction and (SLM) every transferred vector of the same concept drawn."""
    ex = state.extractions.get(role)
    if ex is None:
        return None
    layer = ex.vector.default_layer if layer is None else int(min(layer, ex.vector.n_layers - 1))
    dirs = {"native": ex.vector.directions[layer].numpy()}
    for name, v in state.extra.items() if role == "slm" else ():
        if v.name == ex.vector.name and v.method.startswith("transfer:"):
            dirs[name.split(":")[0] + ":" + name.split(":")[1]] = v.directions[layer].numpy()
    pl, nl = ex.contrast.labels()
    return plots.pca_scatter(ex.pos[:, layer].numpy(), ex.neg[:, layer].numpy(), dirs, pl, nl,
                             f"{role.upper()} {ex.vector.model}: {ex.vector.name}, layer {layer}")


def profile_figure(state: SessionState, layers: dict[str, int] | None = None) -> go.Figure | None:
    """Separability by relative depth for both models: a star at each best layer and a
    ring at the layer each model's slider is on."""
    if not state.extractions:
        return None
    label = {r: f"{r.upper()} {ex.vector.model}" for r, ex in state.extractions.items()}
    curves = {label[r]: ex.vector.separability for r, ex in state.extractions.items()}
    best = {label[r]: ex.vector.default_layer for r, ex in state.extractions.items()}
    current = {label[r]: int(layers[r]) for r in state.extractions if layers and layers.get(r) is not None}
    return plots.separability_profile(curves, best, current)


def save_vectors(state: SessionState, choice: str, folder) -> list[str]:
    """Write the vector listed as ``choice`` ("SLM native", "SLM transferred:ridge:happy-sad",
    ...) as .safetensors and .gguf into ``folder``; the file names say what it is."""
    role, _, kind = (choice or "").partition(" ")
    if role.lower() not in ROLES or not kind:
        raise SteerError(f"Pick a vector to download (one of: {', '.join(state.files()) or 'none yet'}).")
    v = state.vector(role.lower(), kind)
    src = v.provenance.get("transferred_from")
    what = f"{kind.split(':')[0]}-{v.provenance.get('map', '')}-from-{src}" if src else kind.split(":")[0]
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{v.name}_{what}_{v.model}_{v.method}")
    folder = Path(folder)
    family = v.provenance.get("family", "")
    a = save_vector(v, folder / f"{stem}.safetensors", family)
    b = export_gguf(v, folder / f"{stem}.gguf", family or v.model)
    return [str(a), str(b)]


def upload_vector(wb: Pair, state: SessionState, path: str) -> tuple[str, str]:
    """Load an uploaded .safetensors or .gguf vector for the SLM; it joins the SLM's
    vectors. Returns its name there and a line confirming what was loaded."""
    if not path:
        raise SteerError("Choose a .safetensors or .gguf vector file to upload.")
    slm = wb.get("slm")
    p = Path(path)
    if p.suffix == ".gguf":
        v = import_gguf(p, slm.name, slm.n_layers, slm.hidden_size)
    elif p.suffix == ".safetensors":
        v = load_vector(p, slm.n_layers, slm.hidden_size)
    else:
        raise SteerError(f"{p.name}: upload a .safetensors (steer-ui) or .gguf (llama.cpp) vector file.")
    if v.default_layer is None:
        v = replace(v, default_layer=slm.n_layers // 2)
    kind = state.add(f"uploaded:{p.stem}", v)
    made_for = v.provenance.get("model_hint") or v.model
    note = v.provenance.get("note", "")
    return kind, (f"uploaded **{kind}**: {v.n_layers} layers x {v.hidden_size}, made for {made_for}, "
                  f"default layer {v.default_layer}" + (f". {note}" if note else ""))


def publish_vector(state: SessionState, store, choice: str, name: str):
    """Publish the vector listed as ``choice`` under ``name`` (the concept's name when
    empty) for API callers; returns the published item."""
    role, _, kind = (choice or "").partition(" ")
    if role.lower() not in ROLES or not kind:
        raise SteerError(f"Pick a vector to publish (one of: {', '.join(state.files()) or 'none yet'}).")
    v = state.vector(role.lower(), kind)
    return store.publish((name or "").strip() or v.name, v, "ui")


def combine_vectors(state: SessionState, a_kind: str, a_weight: float, b_kind: str, b_weight: float,
                    name: str = "") -> tuple[str, str]:
    """a·A + b·B of two SLM vectors of this session, kept as a new one named ``name``
    (its layer is A's); returns its name in the lists and a line saying what it is."""
    if not a_kind or not b_kind:
        raise SteerError(f"Pick vectors A and B (one of: {', '.join(state.vector_kinds()) or 'none yet'}).")
    a, b = state.vector("slm", a_kind), state.vector("slm", b_kind)
    if a.model != b.model or a.directions.shape != b.directions.shape:
        raise VectorError(f"{a_kind!r} was made for {a.model} ({a.n_layers} layers x {a.hidden_size}) and "
                          f"{b_kind!r} for {b.model} ({b.n_layers} x {b.hidden_size}): vectors of different "
                          "models do not add up. Transfer one into the other's model first.")
    wa, wb = check_intensities([a_weight, b_weight])
    if not wa and not wb:
        raise SteerError("Both weights are 0: the result would be no direction at all. Give a or b a value.")
    formula = f"{wa:g}·{a_kind} {'+' if wb >= 0 else '-'} {abs(wb):g}·{b_kind}"
    name = (name or "").strip() or f"{a.name}{'+' if wb >= 0 else '-'}{b.name}"
    v = replace(a * wa + b * wb, name=name, method="arithmetic", separability=(), prompts_hash="",
                default_layer=a.default_layer, provenance={"arithmetic": formula, "from": [a_kind, b_kind]})
    kind = state.add(f"arithmetic:{name}", v)
    return kind, f"made **{kind}** = {formula}, for {v.model}, default layer {v.default_layer}"
