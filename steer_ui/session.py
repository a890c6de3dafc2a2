"""What one app user does, gradio-free: ``ui.py`` wires these to components.

Per-user state (the concepts a person extracted, their transfers) lives in a
``SessionState`` that the UI keeps in ``gr.State``; the models are shared through the
``Workbench``. Every function here takes plain values and returns plain values or
figures, so it can be tested without a browser.
"""

from __future__ import annotations

import functools
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
    """One user's concepts, keyed by role ("llm"/"slm"), plus extra SLM vectors.

    Vectors the user made (transfers) or uploaded stay until the user removes them,
    whatever is extracted later; every list the UI shows is built from here.
    """

    extractions: dict[str, Extraction] = field(default_factory=dict)
    # Named SLM vectors beside the native one: "transferred:ridge:happy-sad", "uploaded:mine" ...
    extra: dict[str, ConceptVector] = field(default_factory=dict)
    # Stop events of this user's running generations (the Stop button sets them).
    stops: list[threading.Event] = field(default_factory=list)

    def new_stop(self, action: str = "") -> threading.Event:
        """A stop event for a new generation. Naming the ``action`` ("steer", "sweep" ...)
        supersedes this session's earlier run of it: that one ends at its next token, so
        an abandoned run never keeps the model busy while the new one waits."""
        for s in self.stops if action else ():
            if getattr(s, "action", None) == action:
                s.set()
        self.stops[:] = [s for s in self.stops if not s.is_set()]
        event = threading.Event()
        event.action = action
        self.stops.append(event)
        return event

    def stop_all(self) -> None:
        for s in self.stops:
            s.set()

    def vector(self, role: str, kind: str = "native") -> ConceptVector:
        """The vector the UI lists as ``kind`` for ``role``; ``SteerError`` saying what exists."""
        if kind in ("native", "random control"):
            if role not in self.extractions:
                raise SteerError("Extract a concept first (Concept tab), then steer with it.")
            native = self.extractions[role].vector
            return native if kind == "native" else random_like(native, seed=0)
        if role == "slm" and kind in self.extra:
            return self.extra[kind]
        held = ", ".join(self.vector_kinds()) or "none yet"
        raise SteerError(f"This session holds no SLM vector {kind!r} (it holds: {held}). Transfer or "
                         "upload it again, or pick one of those.")

    def vector_kinds(self) -> list[str]:
        """The SLM vectors this session holds, by the names the UI lists them under."""
        return (["native", "random control"] if "slm" in self.extractions else []) + list(self.extra)

    def add(self, kind: str, vector: ConceptVector) -> str:
        """Keep ``vector`` under ``kind`` (a second upload of one name gets "#2"); returns the name."""
        name, n = kind, 2
        while name in self.extra and not kind.startswith("transferred:"):  # a re-transfer replaces
            name, n = f"{kind}#{n}", n + 1
        self.extra[name] = vector
        return name

    def remove(self, kind: str) -> None:
        if kind not in self.extra:
            raise SteerError(f"{kind!r} is not a vector you transferred or uploaded: nothing to remove.")
        del self.extra[kind]

    def files(self) -> list[str]:
        """What the Concept tab can download: "<ROLE> <kind>" for every vector held."""
        return [f"{r.upper()} native" for r in ROLES if r in self.extractions] + \
            [f"SLM {k}" for k in self.extra]


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


def steer_texts(wb: Workbench, state: SessionState, roles: list[str], prompt: str, intensity: float,
                layers: dict[str, int | None], kind: str, mode: str, positions: str,
                sampling: Sampling, stop: threading.Event) -> Iterator[tuple[list[str], str]]:
    """Unsteered and steered text for each role in ``roles``, streamed together.

    Yields (four texts: LLM unsteered, LLM steered, SLM unsteered, SLM steered; a status
    line saying what is steering, and at the end the tokens and tokens/s of each model).
    """
    if not prompt or not prompt.strip():
        raise SteerError("Type a prompt to generate from.")
    jobs, what, stats, waiting = {}, [], {}, set()
    for role in roles:
        lm = wb.get(role)
        k = kind if role == "slm" else "native"
        v = state.vector(role, k)
        stats[role] = []
        jobs[role] = stream(lm, prompt, v, [0.0, intensity], layers.get(role), sampling,
                            mode=mode, positions=positions, stop=stop, stats=stats[role],
                            on_wait=functools.partial(waiting.add, role))
        layer = layers.get(role) if layers.get(role) is not None else v.default_layer
        what.append(f"{role.upper()}: **{v.name}** ({k}) at layer {layer}")
    status = (f"steering {' · '.join(what)}; intensity {intensity:+.2f} {mode}, "
              f"{'all positions' if positions == 'all' else 'generated tokens only'}")
    texts = {r: ["", ""] for r in ROLES}
    for role, rows in merge(jobs):
        texts[role] = rows
        if any(rows):
            waiting.discard(role)
        yield texts["llm"] + texts["slm"], status + _progress(waiting)
    done = [f"{r.upper()} {_cost(s)}" for r, s in stats.items() if s]
    ended = " · stopped" if stop.is_set() else ""  # by Stop, or superseded by a newer run
    yield texts["llm"] + texts["slm"], status + ended + (" · " + ", ".join(done) if done else "")


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
                stop: threading.Event) -> Iterator[tuple[list[list], str]]:
    """One batch, one row per intensity; yields ([[intensity, text], ...], status) as it grows."""
    if not prompt or not prompt.strip():
        raise SteerError("Type a prompt to generate from.")
    k = kind if role == "slm" else "native"
    v = state.vector(role, k)
    status = f"{role.upper()}: **{v.name}** ({k}) at layer {v.default_layer if layer is None else layer}, {mode}"
    stats, rows, waiting = [], [], set()
    for texts in stream(wb.get(role), prompt, v, intensities, layer, sampling, mode=mode, stop=stop, stats=stats,
                        on_wait=functools.partial(waiting.add, role)):
        rows = [[x, t] for x, t in zip(intensities, texts)]
        waiting -= {role} if any(texts) else set()
        yield rows, status + _progress(waiting)
    yield rows, status + (" · stopped" if stop.is_set() else "") + _done(stats)


def _progress(waiting: set[str]) -> str:
    if waiting:
        return " · waiting for the " + " and ".join(r.upper() for r in sorted(waiting)) + \
            ": it is busy with another generation…"
    return " · generating…"


def _cost(stats: list) -> str:
    """"N tokens, x tok/s" of a finished generation's ``Stats``."""
    return f"{max(stats[0].tokens)} tokens, {stats[0].tokens_per_second:.1f} tok/s"


def _done(stats: list) -> str:
    return f" · {_cost(stats)}" if stats else ""


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
                    mode: str, sampling: Sampling, stop: threading.Event) -> Iterator[tuple[list[list], str]]:
    """The SLM unsteered and steered by every vector it has (native, transferred, random),
    all at the same intensity and layer, as one batch: ([[vector, text], ...], status)."""
    if not prompt or not prompt.strip():
        raise SteerError("Type a prompt to generate from.")
    kinds = state.vector_kinds()
    if not kinds:
        raise SteerError("Extract a concept first (Concept tab), then compare its vectors.")
    vectors = [None] + [state.vector("slm", k) for k in kinds]
    names = ["unsteered"] + kinds
    values = [0.0] + [intensity] * len(kinds)
    status = f"SLM: {len(kinds)} vectors at layer {layer}, intensity {intensity:+.2f} {mode}"
    stats, rows, waiting = [], [], set()
    for texts in stream(wb.get("slm"), prompt, vectors, values, layer, sampling, mode=mode, stop=stop,
                        stats=stats, on_wait=functools.partial(waiting.add, "slm")):
        rows = [[n, t] for n, t in zip(names, texts)]
        waiting -= {"slm"} if any(texts) else set()
        yield rows, status + _progress(waiting)
    yield rows, status + (" · stopped" if stop.is_set() else "") + _done(stats)


def save_vectors(state: SessionState, choice: str, folder) -> list[str]:
    """Write the vector listed as ``choice`` ("SLM native", "SLM transferred:ridge:happy-sad",
    ...) as .safetensors and .gguf into ``folder``; the file names say what it is."""
    from pathlib import Path

    from .formats import export_gguf, save_vector

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


def upload_vector(wb: Workbench, state: SessionState, path: str) -> tuple[str, str]:
    """Load an uploaded .safetensors or .gguf vector for the SLM; it joins the SLM's
    vectors. Returns its name there and a line confirming what was loaded."""
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
        v = replace(v, default_layer=slm.n_layers // 2)
    kind = state.add(f"uploaded:{p.stem}", v)
    made_for = v.provenance.get("model_hint") or v.model
    note = v.provenance.get("note", "")
    return kind, (f"uploaded **{kind}**: {v.n_layers} layers x {v.hidden_size}, made for {made_for}, "
                  f"default layer {v.default_layer}" + (f". {note}" if note else ""))
