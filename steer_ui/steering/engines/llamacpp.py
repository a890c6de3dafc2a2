"""llama.cpp as a generation engine, through llama-cpp-python's C API.

A control vector belongs to a whole llama.cpp context, and setting another one makes
llama.cpp re-plan its graph (measured: about 8 ms a change for SmolLM2 on 2 cores, half
a decode step). So each steering in use gets its own context with its vector set once,
and each row is one sequence (``seq_id``) in its context's KV cache: rows join and leave
between decode steps as in the torch scheduler, and each step decodes the rows of one
steering in one call (every unsteered row of every user together). The model's weights
are loaded once and shared by the contexts; each context costs its KV cache. An idle
context is given the next new vector rather than a new context made (a slider's next
intensity reuses the last one's context), and idle ones beyond two are closed.

The vector is the torch engine's own (``hooks.push_deltas``: relative intensity 1.0 is
the torch model's typical residual norm at that layer), written from layer 1 on as
llama.cpp's buffer wants (element block k is layer k+1). What llama.cpp cannot do is
sent to the torch engine instead (``unsupported``): ``adaptive`` mode (it needs each
token's own norm), ``positions="generated"`` (a control vector steers every position),
and layer 0 (llama.cpp never steers it). Prompts are tokenized by our tokenizer (the
GGUF's own vocabulary) and sampled by the torch scheduler's ``_pick``, so both engines
share the chat template, the token ids and the sampling rule.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from pathlib import Path

import numpy as np
import torch

from ...errors import EngineError, ResourceError
from ..hooks import push_deltas
from ..scheduler import Scheduler, _generator, _pick, _Row

log = logging.getLogger(__name__)
CTX_TOKENS = 2048  # the KV cache the rows of one context share
BATCH = 256  # tokens per llama_decode call (longer prompts go in chunks)
KEEP_IDLE = 2  # contexts kept open with no rows in them (the unsteered one, the last vector)


def binding():
    """The ``llama_cpp`` module; ``EngineError`` saying why and how to fix it when it is missing."""
    lib_dir = Path(sys.prefix) / "llama.cpp" / "bin"  # where scripts/llamacpp.sh puts the shared libraries
    if lib_dir.is_dir() and not os.environ.get("LLAMA_CPP_LIB_PATH"):
        os.environ["LLAMA_CPP_LIB_PATH"] = str(lib_dir)
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:
        raise EngineError(f"The llama.cpp engine needs llama-cpp-python ({type(exc).__name__}: {exc}). "
                          "`make run` builds it (scripts/llamacpp.sh .venv); meanwhile the torch engine serves.") \
            from exc
    return llama_cpp


def unsupported(lm, rows, positions: str) -> str | None:
    """Why llama.cpp cannot run these rows as the torch engine would, or None when it can."""
    if positions == "generated":
        return "llama.cpp's control vectors steer every position, not only generated ones"
    for pushes in rows:
        for p in pushes:
            if p.intensity and p.mode == "adaptive":
                return "adaptive mode scales by each token's own norm, which llama.cpp's control vectors cannot"
            if p.intensity and 0 in p.layer_list(lm.n_layers):
                return "llama.cpp never steers layer 0"
    return None


class LlamaCppModel:
    """A GGUF file loaded by llama.cpp, and one context per steering in use."""

    def __init__(self, path: Path, lm, n_seq: int, threads: int):
        L = self.L = binding()
        _quiet()
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        self.model = L.llama_model_load_from_file(str(path).encode(), mp)
        if not self.model:
            raise EngineError(f"llama.cpp could not load {path}; the torch engine serves instead.")
        self.n_embd, self.n_layer = L.llama_model_n_embd(self.model), L.llama_model_n_layer(self.model)
        if (self.n_layer, self.n_embd) != (lm.n_layers, lm.hidden_size):
            raise EngineError(f"{path.name} has {self.n_layer} layers x {self.n_embd}, the torch model "
                              f"{lm.n_layers} x {lm.hidden_size}: not the same model.")
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.n_seq, self.threads, self.bytes = n_seq, threads, path.stat().st_size
        self.contexts: dict[tuple, _Context] = {}  # by the pushes its control vector adds
        # Every C call holds it, and ``close`` too: a request that races a switch to torch
        # gets a clear error instead of touching freed memory.
        self.lock, self.closed = threading.RLock(), False

    def check_open(self) -> None:
        if self.closed:
            raise EngineError("llama.cpp was turned off for this model while the request waited: send it again "
                              "(torch generates now).")

    def context(self, pushes: tuple, lm) -> "_Context":
        """The context whose control vector is ``pushes``: the one that has it, else the
        least recently used idle one given this vector (one graph re-plan, far cheaper than
        a new context: the slider's next intensity reuses the last one), else a new one."""
        with self.lock:
            self.check_open()
            if pushes in self.contexts:
                ctx = self.contexts.pop(pushes)
            else:
                idle = [k for k, c in self.contexts.items() if not c.busy]
                ctx = self.contexts.pop(idle[0]) if idle else _Context(self)
                ctx.set_vector(push_deltas(lm, pushes) if pushes else None)
            self.contexts[pushes] = ctx  # last: most recently used
            return ctx

    def close(self) -> None:
        """Free every context and the weights (the engine is turned off)."""
        with self.lock:
            for ctx in self.contexts.values():
                ctx.close()
            self.contexts, self.closed = {}, True
            self.L.llama_model_free(self.model)

    def tidy(self) -> None:
        """Close idle contexts beyond ``KEEP_IDLE`` (least recently used first)."""
        with self.lock:
            idle = [k for k, c in self.contexts.items() if not c.busy]
            for key in idle[:max(0, len(idle) - KEEP_IDLE)]:
                self.contexts.pop(key).close()


class _Context:
    """One llama.cpp context with its control vector set for good, one sequence per row."""

    def __init__(self, m: LlamaCppModel):
        L, self.L, self.n_vocab, self.m = m.L, m.L, m.n_vocab, m
        cp = L.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max, cp.kv_unified = CTX_TOKENS, BATCH, BATCH, m.n_seq, True
        cp.n_threads = cp.n_threads_batch = m.threads
        self.ctx = L.llama_init_from_model(m.model, cp)
        if not self.ctx:
            raise ResourceError("llama.cpp could not make a context (out of memory?).")
        self.batch = L.llama_batch_init(BATCH, 0, 1)
        self.free, self.busy = list(range(m.n_seq)), 0

    def set_vector(self, deltas: torch.Tensor | None) -> None:
        """Steer every row of this context with ``deltas`` (n_layers, d_model), or nothing."""
        m = self.m
        if deltas is None:
            self.L.llama_set_adapter_cvec(self.ctx, None, 0, m.n_embd, 0, 0)
            return
        buf = np.ascontiguousarray(deltas[1:].numpy(), dtype=np.float32)  # llama.cpp's buffer starts at layer 1
        if self.L.llama_set_adapter_cvec(self.ctx, buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), buf.size,
                                         m.n_embd, 1, m.n_layer - 1) != 0:
            raise EngineError("llama.cpp refused the control vector.")

    def take(self) -> int:
        self.busy += 1
        return self.free.pop()

    def decode(self, items: list[tuple[list[int], int, int]]) -> list[torch.Tensor]:
        """Run ``(tokens, first position, seq)`` items in one call (chunked if long): the
        last token's logits of each item, (n_vocab,) float32 each."""
        flat = [(t, pos + i, seq, i == len(toks) - 1) for toks, pos, seq in items for i, t in enumerate(toks)]
        out = []
        with self.m.lock:
            self.m.check_open()
            for start in range(0, len(flat), BATCH):
                out += self._decode_chunk(flat[start:start + BATCH])
        return out

    def _decode_chunk(self, chunk: list[tuple[int, int, int, bool]]) -> list[torch.Tensor]:
        self.batch.n_tokens = len(chunk)
        for i, (t, pos, seq, last) in enumerate(chunk):
            self.batch.token[i], self.batch.pos[i], self.batch.n_seq_id[i] = t, pos, 1
            self.batch.seq_id[i][0], self.batch.logits[i] = seq, last
        rc = self.L.llama_decode(self.ctx, self.batch)
        if rc != 0:
            raise ResourceError(f"llama.cpp could not decode (status {rc}): its {CTX_TOKENS}-token cache is "
                                "full; use fewer or shorter requests at once.")
        return [torch.from_numpy(np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, i),
                                                       shape=(self.n_vocab,)).copy())
                for i, (*_, last) in enumerate(chunk) if last]

    def forget(self, seq: int) -> None:
        with self.m.lock:
            if not self.m.closed:
                self.L.llama_memory_seq_rm(self.L.llama_get_memory(self.ctx), seq, -1, -1)
            self.free.append(seq)
            self.busy -= 1

    def close(self) -> None:
        self.L.llama_batch_free(self.batch)
        self.L.llama_free(self.ctx)


class LlamaCppScheduler(Scheduler):
    """The torch scheduler's queue, tickets and publishing, with llama.cpp doing the passes:
    each step decodes the rows of one steering together, in that steering's context."""

    def __init__(self, lm, engine: LlamaCppModel, max_batch: int = 16, window_ms: float = 5.0):
        super().__init__(lm, max_batch=min(max_batch, engine.n_seq), window_ms=window_ms)
        self.engine, self.joins = engine, True

    def _prefill(self, group) -> None:
        for p in group:  # each request alone: one that fails never takes another down
            rows = []
            try:
                for i, pushes in enumerate(p.rows):
                    row = _Row(p.ticket, i, pushes, p.sampling, _generator(p.sampling, self.lm), len(p.ids))
                    ctx = self.engine.context(pushes, self.lm)
                    row.slot = ctx.take()
                    rows.append(row)
                    row.next_token = _pick(ctx.decode([(p.ids, 0, row.slot)])[0], row)
            except Exception as exc:  # noqa: BLE001 - reported to the request it concerns
                self._fail(p.ticket, exc)
                self._release(rows)  # its sequences and their cache go back
                continue
            self.prefills += 1
            self.rows = self.rows + rows
            self._publish(rows)

    def _step(self) -> None:
        groups: dict[tuple, list] = {}
        for r in self.rows:
            groups.setdefault(r.pushes, []).append(r)
        try:
            for pushes, rows in groups.items():
                logits = self.engine.contexts[pushes].decode([([r.next_token], r.length, r.slot) for r in rows])
                for r, lg in zip(rows, logits):
                    r.length += 1
                    r.next_token = _pick(lg, r)
        except Exception as exc:  # noqa: BLE001 - a failed step fails the requests in it
            for t in {id(r.ticket): r.ticket for r in self.rows}.values():
                self._fail(t, exc)
            self._release(self.rows)
            return
        self.steps += 1
        self._publish(self.rows)

    def _drop(self, keep: list[int]) -> None:
        kept = set(keep)
        self._release([r for i, r in enumerate(self.rows) if i not in kept])

    def _release(self, rows) -> None:
        gone = {id(r) for r in rows}
        for r in rows:
            if r.slot is not None:
                self.engine.contexts[r.pushes].forget(r.slot)
                r.slot = None
        self.rows = [r for r in self.rows if id(r) not in gone]
        self.engine.tidy()


def _quiet() -> None:
    """llama.cpp logs every graph re-plan; llama-cpp-python prints only what its logger's
    level lets through, so errors still show."""
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
