"""A/B scoring under steering: items, batched choice log-probabilities, metrics, CIs.

Each choice is scored by the summed log-probability of its answer string (the string
the item gives, never an assumed letter) after the chat-formatted question. Steering
covers every position, answer tokens included, as it would during generation. CAA
items whose options can be swapped are scored in both orders, so a vector that only
pushes "(A)" gains nothing (letter-balanced metrics).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import bootstrap

from .activations import encode
from .contrast import read_text, swap_options
from .errors import DatasetError
from .steering import check_intensities, steer

MAX_DATASET_BYTES = 20 * 2**20


@dataclass(frozen=True)
class Item:
    """One question with its answer strings; ``answer`` indexes ``choices``."""

    prompt: str
    choices: tuple[str, ...]
    answer: int


def _parse(obj, where: str) -> Item:
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected an object, got {type(obj).__name__}.")
    if "question" in obj:  # CAA
        try:
            match, other = str(obj["answer_matching_behavior"]), str(obj["answer_not_matching_behavior"])
        except KeyError as exc:
            raise DatasetError(f"{where}: CAA item lacks {exc.args[0]!r}.") from None
        prompt, choices, answer = str(obj["question"]), [match, other], match
    else:
        missing = [k for k in ("prompt", "choices", "answer") if k not in obj]
        if missing:
            raise DatasetError(f"{where}: missing field(s) {', '.join(missing)} "
                               "(need prompt, choices, answer; or the CAA fields).")
        if not isinstance(obj["choices"], list):
            raise DatasetError(f"{where}: choices must be a list of strings, not {type(obj['choices']).__name__}.")
        prompt, choices, answer = str(obj["prompt"]), [str(c) for c in obj["choices"]], str(obj["answer"])
    if not prompt.strip():
        raise DatasetError(f"{where}: empty prompt.")
    if len(choices) < 2 or any(not c.strip() for c in choices) or len(set(choices)) < len(choices):
        raise DatasetError(f"{where}: needs at least two distinct, non-empty choices.")
    if answer not in choices:
        raise DatasetError(f"{where}: answer {answer!r} is not among the choices {choices}.")
    return Item(prompt, tuple(choices), choices.index(answer))


def load_items(path: str | Path) -> list[Item]:
    """CAA JSON or generic ``{prompt, choices, answer}`` JSON/JSONL; errors name the line."""
    path = Path(path)
    text = read_text(path, MAX_DATASET_BYTES, DatasetError)
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path.name}: invalid JSON at line {exc.lineno}: {exc.msg}.") from None
        if not rows:
            raise DatasetError(f"{path.name} holds no items.")
        return [_parse(r, f"{path.name} item {i + 1}") for i, r in enumerate(rows)]
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(_parse(json.loads(line), f"{path.name} line {n}"))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path.name} line {n}: invalid JSON ({exc.msg}).") from None
    if not items:
        raise DatasetError(f"{path.name} holds no items.")
    return items


def balance_letters(items: Sequence[Item]) -> list[Item]:
    """Each CAA-style item also in the swapped option order, answers relabelled."""
    out = []
    for it in items:
        out.append(it)
        swapped = swap_options(it.prompt)
        letters = {c.strip()[:3] for c in it.choices}
        if swapped is not None and letters == {"(A)", "(B)"}:
            relabel = {"(A)": "(B)", "(B)": "(A)"}
            choices = tuple(c.replace(c.strip()[:3], relabel[c.strip()[:3]], 1) for c in it.choices)
            out.append(Item(swapped, choices, it.answer))
    return out


def choice_logprobs(lm, items: Sequence[Item], vector=None, intensities: Sequence[float] = (0.0,),
                    layer=None, mode: str = "relative", batch_size: int = 32) -> np.ndarray:
    """Summed log-prob of every choice: (n_items, n_intensities, n_choices).

    Rows (item x intensity x choice) are batched together; each row gets its own
    intensity through ``steer``'s per-row deltas, so a whole grid costs one pass per batch.
    """
    values = check_intensities(intensities)
    rows = [(i, k, c) for i, it in enumerate(items) for k in range(len(values)) for c in range(len(it.choices))]
    out = np.full((len(items), len(values), max(len(it.choices) for it in items)), -np.inf)
    prompts = [lm.chat(it.prompt) for it in items]
    for b in range(0, len(rows), batch_size):
        chunk = rows[b: b + batch_size]
        texts = [prompts[i] + items[i].choices[c] for i, _, c in chunk]
        answer_lens = [_n_tokens(lm, t) - _n_tokens(lm, prompts[i]) for t, (i, _, _) in zip(texts, chunk)]
        keep = max(answer_lens) + 1
        # Left padding puts every answer at the end, so only the last `keep` positions
        # need logits (a full-vocabulary head over every position costs as much as the body).
        batch = encode(lm, texts, padding_side="left")
        batch["position_ids"] = (batch["attention_mask"].cumsum(1) - 1).clamp(min=0)
        with steer(lm, vector, [values[k] for _, k, _ in chunk], layer, mode), torch.inference_mode():
            logits = lm.model(**batch, use_cache=False, logits_to_keep=keep).logits.float()
        ids = batch["input_ids"][:, -keep + 1:]  # (rows, keep-1): tokens the logits predict
        logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[..., None])[..., 0]
        for r, (i, k, c) in enumerate(chunk):
            out[i, k, c] = float(logp[r, logp.shape[1] - answer_lens[r]:].sum())
    return out


def _n_tokens(lm, text: str) -> int:
    special = not getattr(lm.tokenizer, "chat_template", None)
    return len(lm.tokenizer(text, add_special_tokens=special)["input_ids"])


@dataclass(frozen=True)
class Scores:
    """Per item: correct (0/1) and p(correct answer) among its choices."""

    correct: np.ndarray  # (n,)
    p_match: np.ndarray  # (n,)

    @classmethod
    def from_logprobs(cls, logp: np.ndarray, answers: np.ndarray) -> "Scores":
        """``logp``: (n, choices) for one intensity."""
        p = np.exp(logp - logp.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        rows = np.arange(len(answers))
        return cls((logp.argmax(1) == answers).astype(float), p[rows, answers])


def ci(values: np.ndarray, seed: int = 0) -> list[float]:
    """95% bootstrap CI (scipy, percentile) of the mean of ``values``."""
    values = np.asarray(values, float)
    if len(values) < 2 or np.ptp(values) == 0:
        return [float(values.mean()), float(values.mean())]
    res = bootstrap((values,), np.mean, confidence_level=0.95, n_resamples=2000,
                    method="percentile", random_state=seed)
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def margin(logp: np.ndarray) -> np.ndarray:
    """Confidence of each answer distribution: top-1 minus top-2 log-prob, (n, ...)."""
    top = np.sort(logp, -1)
    return top[..., -1] - top[..., -2]
