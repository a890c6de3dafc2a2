"""What one app user does, gradio-free: ``ui.py`` wires these to components.

Per-user state (the concepts a person extracted, their transfers) lives in a
``SessionState`` that the UI keeps in ``gr.State``; the models are shared through the
``Workbench``. Every function here takes plain values and returns plain values or
figures, so it can be tested without a browser.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import plotly.graph_objects as go

from . import contrast, plots
from .errors import ContrastError, SteerError
from .generation import Sampling, stream
from .vectors import ConceptVector, random_like, extract
from .workbench import ROLES, Extraction, Workbench, extract_concept


@dataclass
class SessionState:
    """One user's concepts, keyed by role ("llm"/"slm"), plus extra SLM vectors."""

    extractions: dict[str, Extraction] = field(default_factory=dict)
    # Named SLM vectors beside the native one: "random control", "transferred:ridge" ...
    extra: dict[str, ConceptVector] = field(default_factory=dict)
    # Stop events of this user's running generations (the Stop button sets them).
    stops: list[threading.Event] = field(default_factory=list)

    def new_stop(self) -> threading.Event:
        self.stops[:] = [s for s in self.stops if not s.is_set()]
        self.stops.append(threading.Event())
        return self.stops[-1]

    def stop_all(self) -> None:
        for s in self.stops:
            s.set()

    def vector(self, role: str, kind: str = "native") -> ConceptVector:
        if role not in self.extractions:
            raise SteerError("Extract a concept first (Concept tab), then steer with it.")
        if kind == "native":
            return self.extractions[role].vector
        if kind == "random control":
            return random_like(self.extractions[role].vector, seed=0)
        try:
            return self.extra[kind]
        except KeyError:
            raise SteerError(f"No {kind!r} vector in this session: run the Transfer tab first.") from None

    def vector_kinds(self) -> list[str]:
        """The SLM vectors this session holds, by the names the UI lists them under."""
        return (["native", "random control"] if "slm" in self.extractions else []) + list(self.extra)


def contrast_from_inputs(source: str, preset: str, pos_text: str, neg_text: str, ab_path: str | None,
                         limit: int | None = None) -> contrast.ContrastSet:
    """The contrast set the Concept tab describes."""
    if source == "Preset":
        return contrast.from_preset(preset, limit)
    if source == "Two lists":
        return contrast.from_lists(pos_text or "", neg_text or "")
    if source == "File":
        if not ab_path:
            raise ContrastError("Upload a file first: A/B items (CAA JSON/JSONL), a copy of a preset, "
                                "or a two-list JSON {\"positive\": [...], \"negative\": [...]}.")
        return contrast.from_source(ab_path, limit)
    raise ContrastError(f"Unknown contrast source {source!r}.")


def extract_both(wb: Workbench, state: SessionState, cs: contrast.ContrastSet, method: str,
                 position: str, progress=None) -> str:
    """Extract ``cs`` in every loaded model; returns a Markdown summary."""
    lines = []
    for role in ROLES:
        if role not in wb.models:
            continue
        ex = extract_concept(wb.models[role], cs, method, position, progress=progress)
        state.extractions[role] = ex
        v = ex.vector
        line = (f"**{role.upper()}** {v.model}: {len(cs)} pairs, {method}, {ex.seconds:.1f} s, "
                f"{ex.forward_passes} forward passes; best layer {v.default_layer} "
                f"(AUC {v.separability[v.default_layer]:.2f})")
        if ex.letter_cosine:
            line += f"; letter-direction cosine {ex.letter_cosine[v.default_layer]:.2f}"
        lines.append(line)
    state.extra.clear()  # transfers belong to the previous concept
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
    ex = state.extractions.get(role)
    if ex is None:
        return None
    layer = ex.vector.default_layer if layer is None else int(min(layer, ex.vector.n_layers - 1))
    dirs = {"concept": ex.vector.directions[layer].numpy()}
    for name, v in state.extra.items() if role == "slm" else ():
        dirs[name] = v.directions[layer].numpy()
    pl, nl = ex.contrast.labels()
    return plots.pca_scatter(ex.pos[:, layer].numpy(), ex.neg[:, layer].numpy(), dirs, pl, nl,
                             f"{role.upper()} {ex.vector.model}: layer {layer}")


def profile_figure(state: SessionState) -> go.Figure | None:
    if not state.extractions:
        return None
    curves = {f"{r.upper()} {ex.vector.model}": ex.vector.separability for r, ex in state.extractions.items()}
    marks = {f"{r.upper()} {ex.vector.model}": ex.vector.default_layer for r, ex in state.extractions.items()}
    return plots.separability_profile(curves, marks)


def steer_texts(wb: Workbench, state: SessionState, roles: list[str], prompt: str, intensity: float,
                layers: dict[str, int | None], kind: str, mode: str, positions: str,
                sampling: Sampling, stop: threading.Event) -> Iterator[list[str]]:
    """Unsteered and steered text for each role in ``roles``, streamed together.

    Yields four strings: LLM unsteered, LLM steered, SLM unsteered, SLM steered.
    """
    if not prompt or not prompt.strip():
        raise SteerError("Type a prompt to generate from.")
    jobs = {}
    for role in roles:
        lm = wb.get(role)
        v = state.vector(role, kind if role == "slm" else "native")
        jobs[role] = stream(lm, prompt, v, [0.0, intensity], layers.get(role), sampling,
                            mode=mode, positions=positions, stop=stop)
    texts = {r: ["", ""] for r in ROLES}
    try:
        for role, rows in merge(jobs):
            texts[role] = rows
            yield texts["llm"] + texts["slm"]
    finally:
        stop.set()  # cancelled or finished: every worker ends at its next token


def merge(streams: dict[str, Iterator]) -> Iterator[tuple[str, list[str]]]:
    """Interleave several streams (each driven by its own thread) as items arrive."""
    out: queue.Queue = queue.Queue()
    done = object()

    def drain(key, it):
        try:
            for item in it:
                out.put((key, item))
        except BaseException as exc:
            out.put((key, exc))
        finally:
            out.put((key, done))

    threads = [threading.Thread(target=drain, args=kv, daemon=True) for kv in streams.items()]
    for t in threads:
        t.start()
    remaining = len(threads)
    while remaining:
        key, item = out.get()
        if item is done:
            remaining -= 1
        elif isinstance(item, BaseException):
            raise item
        else:
            yield key, item


def sweep_texts(wb: Workbench, state: SessionState, role: str, prompt: str, intensities: list[float],
                layer: int | None, kind: str, mode: str, sampling: Sampling,
                stop: threading.Event) -> Iterator[list[list]]:
    """One batch, one row per intensity; yields [[intensity, text], ...] as it grows."""
    if not prompt or not prompt.strip():
        raise SteerError("Type a prompt to generate from.")
    v = state.vector(role, kind if role == "slm" else "native")
    for rows in stream(wb.get(role), prompt, v, intensities, layer, sampling, mode=mode, stop=stop):
        yield [[x, t] for x, t in zip(intensities, rows)]


def parse_intensities(text: str, limit: int = 8) -> list[float]:
    """"-1, -0.5, 0, 0.5" -> floats, with a message naming the bad entry."""
    from .steering import check_intensities

    items = [t.strip() for t in (text or "").replace(";", ",").split(",") if t.strip()]
    if not items:
        raise SteerError("Give intensities separated by commas, e.g. -1, -0.5, 0, 0.5, 1.")
    if len(items) > limit:
        raise SteerError(f"{len(items)} intensities is more than {limit}; drop some.")
    return check_intensities(items)


def chat_reply(wb: Workbench, role: str, history: list[dict], sampling: Sampling,
               stop: threading.Event) -> Iterator[str]:
    """Plain (unsteered) streaming chat with one model."""
    lm = wb.get(role)
    messages = [{"role": m["role"], "content": _content(m["content"])} for m in history]
    text = lm.chat_messages(messages)
    for rows in stream(lm, text, None, [0.0], None, sampling, stop=stop, chat=False):
        yield rows[0]


def _content(c) -> str:
    # Gradio 6 may hand message content as a list of {"type": "text", "text": ...} parts.
    if isinstance(c, list):
        return " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in c)
    return str(c)


def compare_vectors(wb: Workbench, state: SessionState, prompt: str, intensity: float, layer: int,
                    mode: str, sampling: Sampling, stop: threading.Event) -> Iterator[list[list]]:
    """The SLM unsteered and steered by every vector it has (native, transferred, random),
    all at the same intensity and layer, as one batch: [[vector, text], ...]."""
    if not prompt or not prompt.strip():
        raise SteerError("Type a prompt to generate from.")
    kinds = state.vector_kinds()
    vectors = [None] + [state.vector("slm", k) for k in kinds]
    names = ["unsteered"] + kinds
    values = [0.0] + [intensity] * len(kinds)
    for rows in stream(wb.get("slm"), prompt, vectors, values, layer, sampling, mode=mode, stop=stop):
        yield [[n, t] for n, t in zip(names, rows)]


def save_vectors(state: SessionState, role: str, kind: str, folder) -> list[str]:
    """Write the chosen vector as .safetensors and .gguf into ``folder``; returns the paths."""
    from pathlib import Path

    from .formats import export_gguf, save_vector

    v = state.vector(role, kind)
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{v.name}-{v.model}")
    folder = Path(folder)
    family = v.provenance.get("family", "")
    a = save_vector(v, folder / f"{stem}.safetensors", family)
    b = export_gguf(v, folder / f"{stem}.gguf", family or v.model)
    return [str(a), str(b)]


def upload_vector(wb: Workbench, state: SessionState, path: str) -> str:
    """Load an uploaded .safetensors or .gguf vector for the SLM; it joins the SLM choices."""
    from pathlib import Path

    from .formats import import_gguf, load_vector

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
        from dataclasses import replace

        v = replace(v, default_layer=slm.n_layers // 2)
    kind = f"uploaded:{p.stem}"
    state.extra[kind] = v
    return kind
