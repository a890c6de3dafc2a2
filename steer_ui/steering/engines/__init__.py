"""Generation engines. ``torch`` runs every model in every mode, and all recording,
scoring and transfer; ``llamacpp`` generates from GGUF models on CPU through
llama-cpp-python, several times faster for small models (``engines/llamacpp.py``).

A model's engine comes from its spec (``--engine auto|torch|llamacpp``): ``auto`` takes
llama.cpp on CPU when the model is a GGUF file (every bundled model is) and the binding
loads, else torch. Rows llama.cpp cannot run as torch would (``llamacpp.unsupported``)
go to the torch scheduler of the same model, and a llama.cpp engine that fails to start
says why once and leaves torch serving: nothing is refused for the engine's sake.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch

from ...errors import EngineError, SteerError
from ..scheduler import DEFAULTS, for_model

log = logging.getLogger(__name__)
ENGINES = ("auto", "torch", "llamacpp")
_MADE = threading.Lock()


def scheduler_for(lm, rows, positions: str = "all"):
    """The scheduler that runs these rows: the model's llama.cpp one when it has that
    engine and llama.cpp can run them as torch would, else its torch one."""
    if engine_of(lm) == "llamacpp":
        from . import llamacpp

        reason = llamacpp.unsupported(lm, rows, positions)
        if reason is None:
            return lm.llama_scheduler
        log.info("%s: torch engine for this request: %s", lm.name, reason)
    return for_model(lm)


def engine_of(lm) -> str:
    """``torch`` or ``llamacpp``: what generates for ``lm`` (started on first use)."""
    if lm.engine is None:
        with _MADE:
            if lm.engine is None:
                lm.engine = _start(lm)
    return lm.engine


def gguf_path(lm) -> Path | None:
    """The GGUF file of ``lm``'s weights, if it has one (bundled models and .gguf sources)."""
    from ...models import zoo

    kind = lm.spec.kind()
    if kind == "bundled":
        return zoo.gguf_file(zoo.get(lm.spec.source))
    if kind == "gguf":
        return Path(lm.spec.source).expanduser()
    return None


def switch(lm, choice: str) -> str:
    """Make ``choice`` (``torch`` or ``llamacpp``) generate for ``lm`` from now on, for every
    session that uses it. Turning llama.cpp off frees its contexts and its copy of the
    weights; refused (``EngineError``) while it still has rows to finish."""
    if choice not in ("torch", "llamacpp"):
        raise EngineError(f"Unknown engine {choice!r}: use torch or llamacpp.")
    with _MADE:
        sched = lm.llama_scheduler
        if choice == "torch" and sched is not None:
            if sched.rows or not sched.inbox.empty():
                raise EngineError(f"llama.cpp is still generating {len(sched.rows)} row(s) for {lm.name}: "
                                  "turn it off when they end.")
            lm.llama_scheduler = None
            sched.engine.close()
            lm.engine, lm.engine_note = "torch", "llama.cpp turned off"
        elif choice == "llamacpp" and lm.engine != "llamacpp":
            lm.engine = _start(lm, "llamacpp")
        elif choice == "torch":
            lm.engine = "torch"
    return describe(lm)


def _start(lm, choice: str | None = None) -> str:
    choice, lm.engine_note = choice or lm.spec.engine, ""
    if choice not in ENGINES:
        raise EngineError(f"Unknown engine {choice!r}: use {', '.join(ENGINES)}.")
    if choice == "torch" or (lm.device.type != "cpu" and choice == "auto"):
        return "torch"
    try:
        if lm.device.type != "cpu":
            raise EngineError(f"the model is on {lm.device.type}; llama.cpp here is built for the CPU")
        path = gguf_path(lm)
        if path is None:
            if choice == "auto":
                return "torch"
            raise EngineError(f"{lm.spec.source} is not a GGUF model (llama.cpp loads only .gguf files)")
        from .llamacpp import LlamaCppModel, LlamaCppScheduler

        engine = LlamaCppModel(path, lm, DEFAULTS["max_batch"], torch.get_num_threads())
        lm.llama_scheduler = LlamaCppScheduler(lm, engine, **DEFAULTS)
        return "llamacpp"
    except (SteerError, OSError) as exc:  # a missing binding, a bad file, no memory for a context
        lm.engine_note = f"llama.cpp engine off: {exc}; the torch engine generates."
        log.warning("%s: %s", lm.name, lm.engine_note)
        return "torch"


def describe(lm) -> str:
    """What generates for ``lm``, for the Models tab (never starts an engine)."""
    if lm.engine is None:
        return f"{lm.spec.engine}, chosen at first use"
    if lm.engine == "llamacpp":
        return f"llama.cpp, GGUF +{lm.llama_scheduler.engine.bytes >> 20} MiB"
    return "torch" + (f" ({lm.engine_note})" if lm.engine_note else "")
