"""The Steer tab: unsteered beside steered text for one or both models, the sweep of
intensities and the comparison of vectors, each one batch, streamed with a status line."""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Iterator

from ...errors import SteerError
from ...steering.generation import Sampling, stream
from ...steering.hooks import check_intensities
from ..pool import ROLES, Pair
from ..state import SessionState


def steer_texts(wb: Pair, state: SessionState, roles: list[str], prompt: str, intensity: float,
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


def sweep_texts(wb: Pair, state: SessionState, role: str, prompt: str, intensities: list[float],
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


def compare_vectors(wb: Pair, state: SessionState, prompt: str, intensity: float, layer: int,
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
