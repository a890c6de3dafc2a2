"""Batched, padding-correct recording of every layer's residual stream, and the
typical residual norm per layer that relative intensities are measured in.

One forward pass per batch records all layers at once through forward hooks on the
decoder layers (not ``hidden_states``, whose last entry has the final norm applied in
most families). Batches are right-padded: with causal attention the pad tokens after a
text cannot change it, and positions stay 0..n-1, so a batched row equals its unbatched
run. Results are cached per (model, texts, position), so switching extraction method or
layer never costs a forward pass; ``LoadedModel.forward_passes`` counts those actually run.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch

from ..errors import ContrastError, out_of_memory
from ..models.tokens import encode, pad_right, token_ids

_CACHE: OrderedDict = OrderedDict()


_CACHE_LOCK = threading.Lock()


_CACHE_SIZE = 48


Reducer = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def texts_hash(texts: Sequence[str]) -> str:
    """A short stable id for a list of texts (cache keys, provenance)."""
    digest = hashlib.sha256()
    for t in texts:
        digest.update(t.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()[:16]


@contextmanager
def _capture(layers, reducer: Reducer, lengths: torch.Tensor, starts: torch.Tensor, out: list):
    """Hooks that reduce each layer's output as it is produced; removed in finally."""

    def make(i):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output  # (batch, seq, d)
            out[i] = reducer(hidden, lengths, starts)

        return hook

    handles = [layer.register_forward_hook(make(i)) for i, layer in enumerate(layers)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _run(lm, texts, reducer: Reducer, starts=None, batch_size=16, progress=None) -> torch.Tensor:
    """``reducer`` applied to every layer of every text: (n, layers, ...).

    Texts are batched in order of length (then put back in place), so a batch pads to
    texts of similar size: ~8% fewer token slots on a typical contrast set. A token
    prefix that every text shares (the chat template's system turn: 28 of SmolLM2's 46
    tokens on a contrast set) runs once; its KV cache serves every batch.
    """
    if not texts:
        raise ContrastError("No texts to record: give at least one prompt.")
    ids = token_ids(lm, texts)
    first = [max(1, starts[i]) if starts is not None else 1 for i in range(len(texts))]
    # The reader never looks before `first` (mean) or before the last token, so those
    # positions may live in the shared prefix.
    shared = shared_prefix(ids, None if reducer is _last else min(first))
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
    chunks = []
    with lm.lock, torch.inference_mode(), out_of_memory(
            "recording activations", "use fewer or shorter prompts, or a smaller batch size."):
        prefix = _prefix_cache(lm, ids[0][:shared]) if shared else None
        for b in range(0, len(order), batch_size):
            rows = order[b : b + batch_size]
            batch = _suffix_batch(lm, [ids[i][shared:] for i in rows], shared, prefix)
            lengths = batch["attention_mask"][:, shared:].sum(1)  # suffix tokens per row
            read_from = torch.as_tensor([first[i] - shared for i in rows], device=lengths.device)
            per_layer: list = [None] * lm.n_layers
            with _capture(lm.layers, reducer, lengths, read_from, per_layer):
                lm.model(**batch, logits_to_keep=1)  # no full-vocab logits
            lm.forward_passes += 1
            chunks.append(torch.stack([p.float().cpu() for p in per_layer], 1))
            if progress:
                progress(min(1.0, (b + batch_size) / len(texts)), "recording activations")
    out = torch.empty_like(torch.cat(chunks))
    out[torch.tensor(order)] = torch.cat(chunks)
    return out


MIN_SHARED = 4  # a shorter common prefix is not worth a pass of its own


def shared_prefix(ids: Sequence[Sequence[int]], cap: int | None = None, minimum: int = MIN_SHARED) -> int:
    """Tokens every sequence starts with (each keeps at least one of its own), at most
    ``cap``; 0 when under ``minimum``."""
    n = min(len(s) for s in ids) - 1
    for pos in range(n):
        if any(s[pos] != ids[0][pos] for s in ids):
            n = pos
            break
    n = n if cap is None else min(n, cap)
    return n if n >= minimum else 0


def _prefix_cache(lm, prefix: list[int]):
    out = lm.model(input_ids=torch.tensor([prefix], device=lm.device), use_cache=True, logits_to_keep=1)
    lm.forward_passes += 1
    return out.past_key_values


def _suffix_batch(lm, suffixes: list[list[int]], shared: int, prefix_cache) -> dict:
    """Right-padded model inputs for ``suffixes``, continuing ``prefix_cache`` if any."""
    ids, mask = pad_right(suffixes, lm.tokenizer.pad_token_id or 0)  # (rows, seq)
    ids, mask = ids.to(lm.device), mask.to(lm.device)
    if not shared:
        return {"input_ids": ids, "attention_mask": mask, "use_cache": False}
    cache = copy.deepcopy(prefix_cache)  # each batch appends its own keys
    cache.batch_repeat_interleave(len(suffixes))
    full = torch.cat([torch.ones(len(suffixes), shared, dtype=mask.dtype, device=mask.device), mask], 1)
    positions = shared + torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    return {"input_ids": ids, "attention_mask": full, "position_ids": positions,
            "past_key_values": cache, "use_cache": True}


def _last(hidden, lengths, starts):
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return hidden[rows, lengths.to(hidden.device) - 1]  # (batch, d)


def _mean(hidden, lengths, starts):
    # Mean over positions [start, length): the first token is an attention sink whose
    # norm is 50-200x the others, so it is always left out (start >= 1).
    lengths, starts = lengths.to(hidden.device), starts.to(hidden.device)
    pos = torch.arange(hidden.shape[1], device=hidden.device)[None, :]
    mask = ((pos >= starts[:, None]) & (pos < lengths[:, None])).to(hidden.dtype)
    mask[mask.sum(1) == 0, 0] = 1  # a one-token text: fall back to its only token
    return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def _token_norms(hidden, lengths, starts):
    lengths = lengths.to(hidden.device)
    pos = torch.arange(hidden.shape[1], device=hidden.device)[None, :]
    norms = hidden.float().norm(dim=-1)  # (batch, seq)
    return norms.masked_fill((pos < 1) | (pos >= lengths[:, None]), float("nan"))


def _mean_and_last(hidden, lengths, starts):
    return torch.stack([_mean(hidden, lengths, starts), _last(hidden, lengths, starts)], 1)  # (batch, 2, d)


READERS = {"last": _last, "mean": _mean, "mean+last": _mean_and_last}


def record(lm, texts: Sequence[str], position: str = "last", starts: Sequence[int] | None = None,
           batch_size: int = 16, progress=None) -> torch.Tensor:
    """Activations of ``texts`` at every layer: (n_texts, n_layers, d_model), float32 on CPU.

    ``position`` is ``last`` (the last token), ``mean`` (mean over tokens from
    ``starts[i]``, default 1, to the end), or ``mean+last`` (both from one pass:
    (n, layers, 2, d)). Cached: a repeat call runs no forward pass.
    """
    if position not in READERS:
        raise ContrastError(f"Unknown read position {position!r}: use {', '.join(READERS)}.")
    texts = list(texts)
    key = (lm.name, str(lm.dtype), position, texts_hash(texts),
           texts_hash([str(s) for s in starts]) if starts is not None else None)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    acts = _run(lm, texts, READERS[position], starts, batch_size, progress)
    with _CACHE_LOCK:
        _CACHE[key] = acts
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return acts


NORM_TEXTS = (
    "The train to the coast leaves at nine and arrives a little after noon.",
    "Water expands when it freezes, which is why pipes can burst in winter.",
    "Could you explain how a bicycle gear system works?",
    "Add the flour slowly and stir until the batter is smooth.",
    "The committee will meet again next Tuesday to review the budget.",
    "Most maps of the region were redrawn after the survey was completed.",
    "A function that returns early can make the rest of the code easier to read.",
    "She planted tomatoes, beans and a row of sunflowers along the fence.",
)


def typical_norms(lm) -> torch.Tensor:
    """Per-layer typical residual norm of ``lm`` (what relative intensity 1.0 adds),
    measured on ``NORM_TEXTS`` once and kept on the model: (n_layers,) float32."""
    if lm.norms is None:
        lm.norms = measure_norms(lm)
    return lm.norms


def measure_norms(lm, texts: Sequence[str] = NORM_TEXTS) -> torch.Tensor:
    """Per-layer median token norm of the residual stream: (n_layers,) float32.

    The first token is excluded (attention sink). Outlier channels are kept: a steering
    vector competes with the whole residual, those channels included, and the median
    over tokens already keeps a rare extreme token from setting the scale.
    """
    with lm.lock, torch.inference_mode(), out_of_memory("measuring residual norms", "use a smaller model."):
        batch = encode(lm, texts)
        lengths = batch["attention_mask"].sum(1)
        per_layer: list = [None] * lm.n_layers
        with _capture(lm.layers, _token_norms, lengths, lengths, per_layer):
            lm.model(**batch, use_cache=False, logits_to_keep=1)
        lm.forward_passes += 1
    return torch.stack([p.flatten().nanmedian().float().cpu() for p in per_layer])
