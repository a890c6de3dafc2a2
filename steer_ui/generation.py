"""Steered beside unsteered generation: one batch, one row per intensity, streamed.

Every row shares the prompt, so a comparison of unsteered (intensity 0) and several
intensities costs one batched generation instead of one run each. A worker thread
runs ``model.generate`` inside ``steer()``; the caller iterates over the texts as they
grow. Closing the iterator (or setting ``stop``) ends the worker at the next token,
and its hooks come off in ``steer``'s ``finally``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from .activations import encode
from .errors import SteerError
from .steering import check_intensities, steer
from .vectors import ConceptVector

_DONE = object()


@dataclass(frozen=True)
class Sampling:
    """Decoding settings; ``temperature`` 0 means greedy."""

    max_new_tokens: int = 48
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def kwargs(self) -> dict:
        if self.max_new_tokens < 1 or self.max_new_tokens > 4096:
            raise SteerError(f"max new tokens must be 1..4096, not {self.max_new_tokens}.")
        if self.temperature <= 0:
            return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": None}


class _Stream(StoppingCriteria):
    """Called once per generated token: publishes new tokens, honours the stop event."""

    def __init__(self, out: queue.Queue, stop: threading.Event, prompt_len: int):
        self.out, self.stop, self.prompt_len = out, stop, prompt_len

    def __call__(self, input_ids, scores, **kwargs):
        self.out.put(input_ids[:, self.prompt_len:].cpu())
        return torch.full((input_ids.shape[0],), self.stop.is_set(), dtype=torch.bool,
                          device=input_ids.device)


def stream(lm, prompt: str, vector: ConceptVector | None, intensities: Sequence[float], layers=None,
           sampling: Sampling = Sampling(), mode: str = "relative", positions: str = "all",
           stop: threading.Event | None = None, chat: bool = True) -> Iterator[list[str]]:
    """Yield the texts of all rows (one per intensity) each time a token is added."""
    values = check_intensities(intensities)
    gen_kwargs = sampling.kwargs()
    stop = stop or threading.Event()
    text = lm.chat(prompt) if chat else prompt
    out: queue.Queue = queue.Queue()
    errors: list[BaseException] = []

    def work():
        try:
            with lm.lock:
                batch = encode(lm, [text] * len(values), padding_side="left")
                prompt_len = batch["input_ids"].shape[1]
                torch.manual_seed(sampling.seed)
                with steer(lm, vector, values, layers, mode, positions, prompt_len), torch.inference_mode():
                    lm.model.generate(
                        **batch, max_new_tokens=sampling.max_new_tokens,
                        pad_token_id=lm.tokenizer.pad_token_id,
                        stopping_criteria=StoppingCriteriaList([_Stream(out, stop, prompt_len)]),
                        **gen_kwargs,
                    )
        except BaseException as exc:  # handed to the caller's thread below
            errors.append(exc)
        finally:
            out.put(_DONE)

    worker = threading.Thread(target=work, daemon=True, name="steer-ui-generate")
    worker.start()
    try:
        while (item := out.get()) is not _DONE:
            yield lm.tokenizer.batch_decode(item, skip_special_tokens=True)
    finally:
        stop.set()  # the consumer went away or finished: end the worker promptly
        worker.join()
    if errors:
        exc = errors[0]
        if isinstance(exc, torch.OutOfMemoryError):
            raise SteerError("Out of memory while generating: use fewer tokens or intensities.") from exc
        raise exc


def generate(lm, prompt: str, vector: ConceptVector | None, intensities: Sequence[float],
             layers=None, sampling: Sampling = Sampling(), **kw) -> list[str]:
    """Final texts, one per intensity (``stream`` run to the end)."""
    texts = [""] * len(intensities)
    for texts in stream(lm, prompt, vector, intensities, layers, sampling, **kw):
        pass
    return texts
