"""Shared by every tab's layout and wiring: turning domain errors into Gradio errors,
the model facts and layer sliders, sampling settings, and the lists built from the session."""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

from ...errors import SteerError
from ...steering.engines import describe
from ...steering.generation import Sampling
from ..actions.evaluate import PROMPTING
from ..pool import ROLES, ModelPool, Pair
from ..state import SessionState

log = logging.getLogger("steer_ui")


def guard(fn):
    """Turn ``SteerError`` into ``gr.Error`` for plain and generator handlers: one log
    line, no traceback (tracebacks are for real bugs, which are not caught here)."""
    def fail(exc: SteerError):
        log.warning("%s: %s", fn.__name__.removeprefix("do_"), exc)
        return gr.Error(str(exc), print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*a, **k):
            try:
                yield from fn(*a, **k)
            except SteerError as exc:
                raise fail(exc) from exc
        return gen

    @functools.wraps(fn)
    def plain(*a, **k):
        try:
            return fn(*a, **k)
        except SteerError as exc:
            raise fail(exc) from exc
    return plain


def facts_table(wb: Pair | ModelPool) -> list[list]:
    facts = {r: {**wb.models[r].facts(), "engine": describe(wb.models[r])} for r in ROLES if r in wb.models}
    keys = ["name", "family", "params", "layers", "hidden size", "device", "dtype", "memory", "load time", "engine"]
    return [[k] + [facts.get(r, {}).get(k, "-") for r in ROLES] for k in keys]


def slider_for(wb: Pair | ModelPool, role: str, value=None):
    n = wb.models[role].n_layers if role in wb.models else 2
    return gr.update(maximum=max(n - 1, 1), value=min(value if value is not None else n // 2, n - 1))


def to_sampling(max_new, temperature, top_p, seed) -> Sampling:
    return Sampling(int(max_new), float(temperature), float(top_p), int(seed))


# Vector pickers that only list the session's SLM vectors and keep their choice: the two
# Compose rows (Steer tab), arithmetic's A and B (Concept tab). ``ui.lists`` ends with them.
PICKERS = 4


def lists(st: SessionState, steer_value: str | None = None) -> tuple:
    """Updates of every list built from the session: steer vector, arms, download, remove,
    then the ``PICKERS`` vector pickers."""
    kinds, files = st.vector_kinds(), st.files()
    value = steer_value if steer_value in kinds else (kinds[0] if kinds else None)
    arms = kinds + [PROMPTING] if "slm" in st.extractions else kinds
    return (gr.update(choices=kinds, value=value), gr.update(choices=arms, value=kinds),
            gr.update(choices=files, value=files[0] if files else None),
            gr.update(choices=list(st.extra), value=None), *[gr.update(choices=kinds)] * PICKERS)
