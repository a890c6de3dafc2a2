"""Steered beside unsteered generation: one prompt, one row per intensity, streamed.

Every row shares the prompt, so a comparison of unsteered (intensity 0) and several
intensities costs one batched generation instead of one run each. The rows go to the
model's scheduler (``engines.scheduler_for``: torch or llama.cpp), where they run beside every other request
of every user; the caller iterates over the texts as they grow. Closing the iterator
(or setting ``stop``) ends its rows at the next step and no one else's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..concepts.vectors import ConceptVector
from ..errors import IntensityError
from .hooks import MODES, Push, check_intensities, check_pushes, row_vectors
from .engines import scheduler_for
from .scheduler import Sampling, eos_ids

__all__ = ["Push", "Sampling", "Stats", "generate", "layers_label", "push_label", "rows_for", "stream"]


@dataclass
class Stats:
    """What a finished generation cost: new tokens per row (up to its end of text) and time."""

    tokens: list[int]
    seconds: float  # from its first forward pass (not the wait for the model) to the end

    @property
    def tokens_per_second(self) -> float:
        return max(self.tokens, default=0) / self.seconds if self.seconds > 0 else 0.0


def rows_for(vector, intensities: Sequence[float], layers=None, mode: str = "relative",
             extra: Sequence[Push] = ()) -> list[tuple[Push, ...]]:
    """The scheduler rows of a comparison: one per intensity, each steered by ``vector``
    (or one vector per row; None or intensity 0: no push of its own) at ``layers``.

    ``extra`` pushes (composition) are added to every row that has a vector, even at
    intensity 0; a row whose vector is None stays unsteered."""
    values = check_intensities(intensities)
    layer_tuple = None if layers is None else ((layers,) if isinstance(layers, int) else tuple(layers))
    rows = []
    for v, x in zip(row_vectors(vector, len(values)), values):
        own = (Push(v, x, layer_tuple, mode),) if v is not None and x else ()
        rows.append(own + tuple(extra) if v is not None else ())
    return rows


def push_label(p: Push) -> str:
    """"joy +0.40 at layer 12": what one push adds, for status lines and the CLI."""
    layers = p.vector.default_layer if p.layers is None else list(p.layers)
    return f"{p.vector.name} {p.intensity:+.2f} at {layers_label(layers)}"


def layers_label(layers) -> str:
    """"layer 12", "layers 10-14" or "layers 8, 12"."""
    items = [layers] if isinstance(layers, int) else sorted(set(layers))
    if len(items) == 1:
        return f"layer {items[0]}"
    if items == list(range(items[0], items[-1] + 1)):
        return f"layers {items[0]}-{items[-1]}"
    return "layers " + ", ".join(str(i) for i in items)


def stream(lm, prompt: str, vector: ConceptVector | None, intensities: Sequence[float], layers=None,
           sampling: Sampling = Sampling(), mode: str = "relative", positions: str = "all",
           stop: threading.Event | None = None, chat: bool = True,
           stats: list[Stats] | None = None, on_wait=None, extra: Sequence[Push] = ()) -> Iterator[list[str]]:
    """Yield the texts of all rows (one per intensity) each time a token is added.

    ``stop`` (the user's Stop) ends it at the next token and may be shared by several
    generations; a generation that ends never sets it, so it cannot cut the others
    short. ``stats``, when given, receives this generation's ``Stats`` at the end.
    ``on_wait()`` is called (and empty texts yielded) while the model's batch is full.
    ``extra``: pushes added to every row that has a vector (composition, see ``rows_for``).
    """
    if mode not in MODES:
        raise IntensityError(f"Unknown intensity mode {mode!r}: use {', '.join(MODES)}.")
    if extra:  # checked here, so a misfit is reported even when no row has a vector
        check_pushes(lm, [tuple(extra)])
    rows = rows_for(vector, intensities, layers, mode, extra)
    own = threading.Event()  # this consumer's rows only
    stops = (own,) if stop is None else (own, stop)
    ticket = scheduler_for(lm, rows, positions).submit(lm.chat(prompt) if chat else prompt, rows, sampling,
                                                      positions, stops)
    texts, kind = [""] * len(rows), None
    try:
        while True:
            kind, payload = (ticket.events.get() + (None,))[:2]
            if kind == "waiting":
                if on_wait is not None:
                    on_wait()
                yield texts
            elif kind == "tokens":
                texts = lm.tokenizer.batch_decode(payload, skip_special_tokens=True)
                yield texts
            elif kind == "error":
                raise payload
            else:  # done
                break
    finally:
        own.set()  # finished, stopped, or the consumer went away: the rows leave the batch ...
        while kind not in ("done", "error"):  # ... and once this returns, none is in flight
            kind = ticket.events.get()[0]
    if stats is not None:
        stats.append(_stats(lm, ticket))


def _stats(lm, ticket) -> Stats:
    """Tokens per row without the end-of-text token, and the time since its first forward pass."""
    eos = eos_ids(lm)
    tokens = [len(t) - (1 if t and t[-1] in eos else 0) for t in ticket.tokens]
    started = ticket.started or ticket.submitted
    return Stats(tokens, time.perf_counter() - started)


def generate(lm, prompt: str, vector: ConceptVector | None, intensities: Sequence[float],
             layers=None, sampling: Sampling = Sampling(), **kw) -> list[str]:
    """Final texts, one per intensity (``stream`` run to the end)."""
    texts = [""] * len(intensities)
    for texts in stream(lm, prompt, vector, intensities, layers, sampling, **kw):
        pass
    return texts
