"""Steered beside unsteered generation: one batch, one row per intensity, streamed.

Every row shares the prompt, so a comparison of unsteered (intensity 0) and several
intensities costs one batched generation instead of one run each. A worker thread
runs ``model.generate`` inside ``steer()``; the caller iterates over the texts as they
grow. Closing the iterator (or setting ``stop``) ends the worker at the next token,
and its hooks come off in ``steer``'s ``finally``.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from ..concepts.vectors import ConceptVector
from ..errors import ResourceError, SteerError, is_out_of_memory
from ..models.tokens import encode
from .hooks import check_intensities, steer

_DONE, _WAITING = object(), object()


@contextmanager
def _held(lock):
    """Release a lock acquired just before, whatever happens inside."""
    try:
        yield
    finally:
        lock.release()


@dataclass(frozen=True)
class Sampling:
    """Decoding settings; ``temperature`` 0 means greedy."""

    max_new_tokens: int = 48
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def check(self) -> None:
        if not 1 <= self.max_new_tokens <= 4096:
            raise SteerError(f"max new tokens must be 1..4096, not {self.max_new_tokens}.")
        if not (math.isfinite(self.temperature) and 0 <= self.temperature <= 10):
            raise SteerError(f"temperature must be 0 (greedy) to 10, not {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise SteerError(f"top-p must be in (0, 1], not {self.top_p}.")

    def processors(self, rows: int) -> LogitsProcessorList:
        """What ``generate`` runs in greedy mode: nothing, or a seeded sampler per row."""
        self.check()
        if self.temperature <= 0:
            return LogitsProcessorList()
        return LogitsProcessorList([SeededSampler(self.temperature, self.top_p, [self.seed] * rows)])


class SeededSampler(LogitsProcessor):
    """Samples each row's next token with that row's own ``torch.Generator`` and leaves
    only that token possible, so ``generate`` in greedy mode emits it.

    transformers samples from the process-wide RNG; two users sampling at once would
    draw from each other's stream. A generator per row keeps each row reproducible
    from its seed alone, whatever else runs.
    """

    def __init__(self, temperature: float, top_p: float, seeds: list[int]):
        self.warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)]
                                           + ([TopPLogitsWarper(top_p)] if top_p < 1 else []))
        self.seeds, self.generators = seeds, None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.generators is None:  # on the device the scores live on
            self.generators = [torch.Generator(scores.device).manual_seed(s) for s in self.seeds]
        probs = self.warpers(input_ids, scores.float()).softmax(-1)  # (rows, vocab)
        picks = [torch.multinomial(probs[r], 1, generator=g) for r, g in enumerate(self.generators)]
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, torch.stack(picks), 0.0)


class _Stream(StoppingCriteria):
    """Called once per generated token: publishes new tokens, honours the stop events
    (the caller's, shared with its other generations, and this generation's own)."""

    def __init__(self, out: queue.Queue, stops: tuple[threading.Event, ...], prompt_len: int):
        self.out, self.stops, self.prompt_len = out, stops, prompt_len

    def __call__(self, input_ids, scores, **kwargs):
        self.out.put(input_ids[:, self.prompt_len:].cpu())
        stop = any(s.is_set() for s in self.stops)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


@dataclass
class Stats:
    """What a finished generation cost: new tokens per row (up to its end of text) and time."""

    tokens: list[int]
    seconds: float  # from the first forward pass (not the wait for the model) to the end

    @property
    def tokens_per_second(self) -> float:
        return max(self.tokens, default=0) / self.seconds if self.seconds > 0 else 0.0


def stream(lm, prompt: str, vector: ConceptVector | None, intensities: Sequence[float], layers=None,
           sampling: Sampling = Sampling(), mode: str = "relative", positions: str = "all",
           stop: threading.Event | None = None, chat: bool = True,
           stats: list[Stats] | None = None, on_wait=None) -> Iterator[list[str]]:
    """Yield the texts of all rows (one per intensity) each time a token is added.

    ``stop`` (the user's Stop) ends it at the next token and may be shared by several
    generations; a generation that ends never sets it, so it cannot cut the others
    short. ``stats``, when given, receives this generation's ``Stats`` at the end.
    ``on_wait()`` is called (and empty texts yielded) when the model is busy with
    another generation, before this one waits for it: a wait is never silent.
    """
    values = check_intensities(intensities)
    sampling.check()
    own = threading.Event()  # set when this consumer finishes or goes away
    job = _Job(lm, lm.chat(prompt) if chat else prompt, vector, values, layers, sampling, mode, positions,
               (own,) if stop is None else (own, stop), stats)
    worker = threading.Thread(target=job.run, daemon=True, name="steer-ui-generate")
    worker.start()
    try:
        while (item := job.out.get()) is not _DONE:
            if item is _WAITING:
                if on_wait is not None:
                    on_wait()
                yield [""] * len(values)
                continue
            yield lm.tokenizer.batch_decode(item, skip_special_tokens=True)
    finally:
        own.set()  # the consumer went away or finished: end this worker promptly
        worker.join()
    if job.error is not None:
        if is_out_of_memory(job.error):
            raise ResourceError("Out of memory while generating: use fewer tokens or intensities.") from job.error
        raise job.error


@dataclass
class _Job:
    """One batched generation, run on a worker thread; new tokens go to ``out``."""

    lm: object
    text: str
    vector: object
    values: list[float]
    layers: object
    sampling: Sampling
    mode: str
    positions: str
    stops: tuple[threading.Event, ...]
    stats: list | None
    out: queue.Queue = field(default_factory=queue.Queue)
    error: BaseException | None = None

    def run(self) -> None:
        lm = self.lm
        try:
            if not lm.lock.acquire(blocking=False):  # busy: say so before waiting
                self.out.put(_WAITING)
                lm.lock.acquire()
            with _held(lm.lock):
                self._generate()
        except BaseException as exc:  # handed to the consumer's thread
            self.error = exc
        finally:
            self.out.put(_DONE)

    def _generate(self) -> None:
        lm, rows = self.lm, len(self.values)
        batch = encode(lm, [self.text] * rows, padding_side="left")  # one prompt, one row per intensity
        prompt_len = batch["input_ids"].shape[1]
        started = time.perf_counter()
        with steer(lm, self.vector, self.values, self.layers, self.mode, self.positions, prompt_len), \
                torch.inference_mode():
            ids = lm.model.generate(
                **batch, max_new_tokens=self.sampling.max_new_tokens, pad_token_id=lm.tokenizer.pad_token_id,
                stopping_criteria=StoppingCriteriaList([_Stream(self.out, self.stops, prompt_len)]),
                logits_processor=self.sampling.processors(rows),
                do_sample=False, temperature=None, top_p=None, top_k=None,  # sampling is the processor's
            )
        if self.stats is not None:
            self.stats.append(_stats(lm, ids[:, prompt_len:], started))


def _stats(lm, new: torch.Tensor, started: float) -> Stats:
    """Tokens per row up to its first end-of-text (pad) token, and the time since ``started``."""
    pad = lm.tokenizer.pad_token_id
    ends = [(row == pad).nonzero() for row in new.cpu()]  # (rows, new) -> first pad per row
    tokens = [int(e[0]) if len(e) else int(new.shape[1]) for e in ends]
    return Stats(tokens, time.perf_counter() - started)


def generate(lm, prompt: str, vector: ConceptVector | None, intensities: Sequence[float],
             layers=None, sampling: Sampling = Sampling(), **kw) -> list[str]:
    """Final texts, one per intensity (``stream`` run to the end)."""
    texts = [""] * len(intensities)
    for texts in stream(lm, prompt, vector, intensities, layers, sampling, **kw):
        pass
    return texts
