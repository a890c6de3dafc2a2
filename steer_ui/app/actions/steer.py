"""The Steer tab: unsteered beside steered text for one or both models, the sweep of
intensities and the comparison of vectors, each one batch, streamed with a status line."""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ...errors import SteerError
from ...steering.generation import Sampling, layers_label, push_label, stream
from ...steering.hooks import Push, check_intensities
from ...steering.layer_text import parse_layers
from ..pool import ROLES, Pair
from ..state import SessionState

Layers = int | list[int] | None  # one layer, several, or None: the vector's default layer


@dataclass(frozen=True)
class PromptStyle:
    """How a prompt reaches the model: through its chat template (with a system prompt
    when one is given), or as plain text for a raw completion."""

    system: str = ""
    raw: bool = False

    def text(self, lm, prompt: str) -> str:
        """What the model reads for ``prompt``."""
        system = (self.system or "").strip()
        if self.raw:
            if system:
                raise SteerError("A system prompt needs the chat template, which a raw completion leaves out: "
                                 "clear the system prompt or turn raw completion off.")
            return prompt
        return lm.chat(prompt, system=system or None)

    def label(self) -> str:
        """"raw completion; ", "system prompt; " or "" for status lines."""
        return "raw completion; " if self.raw else ("system prompt; " if (self.system or "").strip() else "")


def steer_layers(text: str, concept_layers: dict[str, int]) -> dict[str, Layers]:
    """Where each model is steered: the layers typed in "Steer at layer(s)" (the same for
    every model), else each model's Concept-tab layer."""
    typed = parse_layers(text, "Steer at layer(s)")
    return {role: typed if typed is not None else int(layer) for role, layer in concept_layers.items()}


def compose_pushes(state: SessionState, rows: Sequence[tuple], layers: Layers, mode: str) -> tuple[Push, ...]:
    """The Compose rows, (vector kind, intensity, layer text) each, as SLM pushes added to
    the main vector's. A row without a vector or at intensity 0 is off; empty layer text: ``layers``."""
    pushes = []
    for n, (kind, intensity, text) in enumerate(rows, 2):
        if not kind or check_intensities([intensity])[0] == 0:
            continue
        own = parse_layers(text, f"Compose vector {n}: layers")
        chosen = own if own is not None else layers
        chosen = None if chosen is None else ((chosen,) if isinstance(chosen, int) else tuple(chosen))
        pushes.append(Push(state.vector("slm", kind), check_intensities([intensity])[0], chosen, mode))
    return tuple(pushes)


def settings(state: SessionState, layers_text: str, concept_layers: dict[str, int], mode: str,
             compose: Sequence) -> tuple[dict[str, Layers], tuple[Push, ...]]:
    """The layers each model is steered at and the Compose rows as SLM pushes, from the
    tab's values (``compose``: vector, intensity, layer text of each row, flat)."""
    layers = steer_layers(layers_text, concept_layers)
    rows = [tuple(compose[i:i + 3]) for i in range(0, len(compose), 3)]
    return layers, compose_pushes(state, rows, layers.get("slm"), mode)


def _need_prompt(prompt: str) -> None:
    if not prompt or not prompt.strip():
        raise SteerError("Type a prompt to generate from.")


def steer_texts(wb: Pair, state: SessionState, roles: list[str], prompt: str, intensity: float,
                layers: dict[str, Layers], kind: str, mode: str, positions: str,
                sampling: Sampling, stop: threading.Event, style: PromptStyle = PromptStyle(),
                extra: Sequence[Push] = ()) -> Iterator[tuple[list[str], str]]:
    """Unsteered and steered text for each role in ``roles``, streamed together.

    Yields (four texts: LLM unsteered, LLM steered, SLM unsteered, SLM steered; a status
    line saying what is steering, and at the end the tokens and tokens/s of each model).
    ``extra`` pushes (the Compose rows) are added to the SLM's steered row.
    """
    _need_prompt(prompt)
    jobs, what, stats, waiting = {}, [], {}, set()
    for role in roles:
        lm = wb.get(role)
        k = kind if role == "slm" else "native"
        v = state.vector(role, k)
        more = tuple(extra) if role == "slm" else ()
        stats[role] = []
        # row 0 has no vector: it stays unsteered whatever is composed onto row 1
        jobs[role] = stream(lm, style.text(lm, prompt), [None, v], [0.0, intensity], layers.get(role), sampling,
                            mode=mode, positions=positions, stop=stop, chat=False, stats=stats[role],
                            on_wait=functools.partial(waiting.add, role), extra=more)
        layer = layers.get(role) if layers.get(role) is not None else v.default_layer
        what.append(f"{role.upper()}: **{v.name}** ({k}) at {layers_label(layer)}"
                    + "".join(f" + **{push_label(p)}**" for p in more))
    status = (f"steering {' · '.join(what)}; {style.label()}intensity {intensity:+.2f} {mode}, "
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


def sweep_texts(wb: Pair, state: SessionState, role: str, prompt: str, intensities: list[float],
                layer: Layers, kind: str, mode: str, sampling: Sampling,
                stop: threading.Event, style: PromptStyle = PromptStyle()) -> Iterator[tuple[list[list], str]]:
    """One batch, one row per intensity; yields ([[intensity, text], ...], status) as it grows."""
    _need_prompt(prompt)
    k = kind if role == "slm" else "native"
    v = state.vector(role, k)
    lm = wb.get(role)
    status = (f"{role.upper()}: **{v.name}** ({k}) at {layers_label(v.default_layer if layer is None else layer)}, "
              f"{style.label()}{mode}")
    stats, rows, waiting = [], [], set()
    for texts in stream(lm, style.text(lm, prompt), v, intensities, layer, sampling, mode=mode, stop=stop,
                        chat=False, stats=stats, on_wait=functools.partial(waiting.add, role)):
        rows = [[x, t] for x, t in zip(intensities, texts)]
        waiting -= {role} if any(texts) else set()
        yield rows, status + _progress(waiting)
    yield rows, status + (" · stopped" if stop.is_set() else "") + _done(stats)


def compare_vectors(wb: Pair, state: SessionState, prompt: str, intensity: float, layer: Layers,
                    mode: str, sampling: Sampling, stop: threading.Event,
                    style: PromptStyle = PromptStyle()) -> Iterator[tuple[list[list], str]]:
    """The SLM unsteered and steered by every vector it has (native, transferred, random),
    all at the same intensity and layer, as one batch: ([[vector, text], ...], status)."""
    _need_prompt(prompt)
    kinds = state.vector_kinds()
    if not kinds:
        raise SteerError("Extract a concept first (Concept tab), then compare its vectors.")
    vectors = [None] + [state.vector("slm", k) for k in kinds]
    names = ["unsteered"] + kinds
    values = [0.0] + [intensity] * len(kinds)
    status = f"SLM: {len(kinds)} vectors at {layers_label(layer)}, {style.label()}intensity {intensity:+.2f} {mode}"
    stats, rows, waiting = [], [], set()
    lm = wb.get("slm")
    for texts in stream(lm, style.text(lm, prompt), vectors, values, layer, sampling, mode=mode, stop=stop,
                        chat=False, stats=stats, on_wait=functools.partial(waiting.add, "slm")):
        rows = [[n, t] for n, t in zip(names, texts)]
        waiting -= {"slm"} if any(texts) else set()
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
    items = [t.strip() for t in (text or "").replace(";", ",").split(",") if t.strip()]
    if not items:
        raise SteerError("Give intensities separated by commas, e.g. -1, -0.5, 0, 0.5, 1.")
    if len(items) > limit:
        raise SteerError(f"{len(items)} intensities is more than {limit}; drop some.")
    return check_intensities(items)
