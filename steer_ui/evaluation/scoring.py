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

from ..concepts.contrast import read_text, swap_letters
from ..concepts.recording import shared_prefix
from ..config import max_upload_bytes
from ..errors import ContrastError, DatasetError, out_of_memory
from ..models.tokens import pad_right, token_ids
from ..steering.hooks import check_intensities, steer


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
    text = read_text(path, max_upload_bytes(), DatasetError)
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
    return balanced(items)[0]


def balanced(items: Sequence[Item]) -> tuple[list[Item], list[int]]:
    """``balance_letters`` plus, per row, the index of the item it came from: the two
    orders of one item are one observation, not two (bootstrap CIs resample items)."""
    out, groups = [], []
    for g, it in enumerate(items):
        out.append(it), groups.append(g)
        swapped = swap_letters(it.prompt, it.choices)
        if swapped is not None:
            out.append(Item(swapped[0], swapped[1], it.answer)), groups.append(g)
    return out, groups


def choice_logprobs(lm, items: Sequence[Item], vector=None, intensities: Sequence[float] = (0.0,),
                    layer=None, mode: str = "relative", system: str | None = None) -> np.ndarray:
    """Summed log-prob of every choice: (n_items, n_intensities, n_choices).

    ``system``: a system prompt put before every question (the prompting arm).

    Two forward passes per item. The question (the prefix all its choices share) runs
    once, as one row that the first steered layer widens to one row per intensity: the
    layers below it are the same for every intensity. Its KV cache then serves every
    intensity x choice row of the answers. Equal, up to float rounding, to scoring each
    row as a full sequence, for a fraction of the work (bench/scoring.py).
    """
    values = check_intensities(intensities)
    out = np.full((len(items), len(values), max(len(it.choices) for it in items)), -np.inf)
    with out_of_memory("scoring answers", "use fewer intensities or shorter items."):
        for i, it in enumerate(items):
            out[i, :, : len(it.choices)] = _score_item(lm, it, vector, values, layer, mode, system)
    return out


def _score_item(lm, item: Item, vector, values: list[float], layer, mode: str,
                system: str | None = None) -> np.ndarray:
    """(n_intensities, n_choices) summed answer log-probs of one item."""
    prefix, suffixes, answer_lens = _split(lm, item, system)
    n_k, n_c = len(values), len(suffixes)
    rows = torch.arange(n_k).repeat_interleave(n_c)  # (n_k * n_c,): the intensity of each answer row
    with steer(lm, vector, values, layer, mode, fan_out=True), torch.inference_mode():
        first = lm.model(input_ids=prefix[None].to(lm.device), use_cache=True, logits_to_keep=1)
    cache = first.past_key_values
    for cached in cache.layers:  # one row below the first steered layer, one per intensity above
        cached.batch_select_indices(rows if cached.keys.shape[0] > 1 else torch.zeros_like(rows))
    ids, mask = pad_right(suffixes, lm.tokenizer.pad_token_id or 0)  # (n_c, s)
    ids, mask = ids.repeat(n_k, 1).to(lm.device), mask.repeat(n_k, 1).to(lm.device)  # (rows, s)
    positions = len(prefix) + torch.arange(ids.shape[1], device=lm.device).expand_as(ids)
    full_mask = torch.cat([torch.ones(len(rows), len(prefix), dtype=mask.dtype, device=lm.device), mask], 1)
    with steer(lm, vector, [values[k] for k in rows.tolist()], layer, mode), torch.inference_mode():
        logits = lm.model(input_ids=ids, attention_mask=full_mask, position_ids=positions,
                          past_key_values=cache, use_cache=True).logits.float()  # (rows, s, vocab)
        head = first.logits[:, -1].float()  # (1 or n_k, vocab): predicts each answer's first token
        head = head[rows if head.shape[0] > 1 else torch.zeros_like(rows)]
        logp = torch.log_softmax(torch.cat([head[:, None], logits[:, :-1]], 1), -1)
        token_logp = logp.gather(-1, ids[..., None])[..., 0]  # (rows, s)
    out = np.empty((n_k, n_c))
    for r in range(len(rows)):
        c, n = r % n_c, len(suffixes[r % n_c])
        out[r // n_c, c] = float(token_logp[r, n - answer_lens[c]: n].sum())
    return out


def item_prompt(lm, item: Item, system: str | None = None) -> str:
    """The text an item's answers are scored after: its question, chat-formatted."""
    return lm.chat(item.prompt, system)


def _split(lm, item: Item, system: str | None = None) -> tuple[torch.Tensor, list[list[int]], list[int]]:
    """Token ids: the prefix all choices share, each choice's rest, and its answer length.

    The answer is the tokens the choice adds to the chat-formatted question; the shared
    prefix never reaches into an answer, so every answer token is scored in the second pass.
    """
    prompt = item_prompt(lm, item, system)
    try:  # the choices first: a question too long for the context fails with its choice named
        full = token_ids(lm, [prompt + c for c in item.choices], f"Item {item.prompt[:40]!r}..., with choice")
        n_prompt = len(token_ids(lm, [prompt])[0])
    except ContrastError as exc:
        raise DatasetError(str(exc)) from None
    answer_lens = [max(1, len(f) - n_prompt) for f in full]
    shared = shared_prefix(full, cap=min(len(f) - a for f, a in zip(full, answer_lens)), minimum=1)
    if shared < 1:
        raise DatasetError(f"Item {item.prompt[:40]!r}: its choices share no prompt tokens to score after.")
    return torch.tensor(full[0][:shared]), [f[shared:] for f in full], answer_lens


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


def ci(values: np.ndarray, seed: int = 0, groups: Sequence[int] | None = None) -> list[float]:
    """95% bootstrap CI (percentile) of the mean of ``values``.

    ``groups``: rows that share a group (the two letter orders of one A/B item) are
    resampled together, so the interval counts items, not rows. scipy's ``bootstrap``
    resamples rows only, hence the few lines of cluster resampling here.
    """
    values = np.asarray(values, float)
    if len(values) < 2 or np.ptp(values) == 0:
        return [float(values.mean()), float(values.mean())]
    if groups is not None and len(set(groups)) < len(values):
        return _cluster_ci(values, np.asarray(groups), seed)
    res = bootstrap((values,), np.mean, confidence_level=0.95, n_resamples=2000,
                    method="percentile", random_state=seed)
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def ratio_ci(numerator: np.ndarray, denominator: np.ndarray, seed: int = 0) -> list[float] | None:
    """95% paired bootstrap CI (percentile) of mean(numerator) / mean(denominator): the
    same rows resampled in both (e.g. a transferred arm's and the native arm's changes on
    the same test prompts). None when the denominator's mean can be zero in a resample
    (the ratio is then undefined, and no interval would be honest; scipy's ``bootstrap``
    would carry the inf/nan into its percentiles instead)."""
    num, den = np.asarray(numerator, float), np.asarray(denominator, float)
    if len(num) < 2:
        return None
    draws = np.random.default_rng(seed).integers(0, len(num), (2000, len(num)))  # rows per resample
    den_means = den[draws].mean(1)
    if np.any(den_means == 0):
        return None
    low, high = np.percentile(num[draws].mean(1) / den_means, [2.5, 97.5])
    return [float(low), float(high)]


def _cluster_ci(values: np.ndarray, groups: np.ndarray, seed: int, n_resamples: int = 2000) -> list[float]:
    ids, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values)  # (groups,)
    counts = np.bincount(inverse).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(ids), (n_resamples, len(ids)))  # groups per resample
    means = sums[draws].sum(1) / counts[draws].sum(1)  # row-weighted mean of each resample
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


def margin(logp: np.ndarray) -> np.ndarray:
    """Confidence of each answer distribution: top-1 minus top-2 log-prob, (n, ...)."""
    top = np.sort(logp, -1)
    return top[..., -1] - top[..., -2]
