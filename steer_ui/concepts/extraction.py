"""A concept extracted in one model: record its contrast set (cached) and turn the
activations into a ``ConceptVector``, keeping what was measured for plots and reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from ..models.loading import LoadedModel
from ..models.tokens import token_ids
from .contrast import ContrastSet
from .recording import record, shared_prefix
from .vectors import ConceptVector, extract, letter_cosines


@dataclass(frozen=True)
class Extraction:
    """A concept vector plus what was measured to make it (for plots and reports)."""

    vector: ConceptVector
    pos: torch.Tensor  # (n, layers, d) float32
    neg: torch.Tensor  # (n, layers, d) float32
    contrast: ContrastSet
    letter_cosine: list[float] | None  # per layer, A/B sets only
    seconds: float
    forward_passes: int


def extract_concept(lm: LoadedModel, cs: ContrastSet, method: str = "mean-diff",
                    position: str = "last", batch_size: int = 16, progress=None) -> Extraction:
    """Record ``cs`` in ``lm`` (cached) and extract a vector with ``method``."""
    start, passes = time.perf_counter(), lm.forward_passes
    pos_texts, neg_texts = cs.texts(lm)
    starts = mean_starts(lm, cs) if position == "mean" else None
    acts = record(lm, pos_texts + neg_texts, position, starts, batch_size, progress)
    pos, neg = acts[: len(cs)], acts[len(cs):]
    vector = extract(pos, neg, lm.name, method, cs.name, cs.digest())
    vector = replace(vector, provenance={
        "family": lm.family, "source": cs.source, "pairs": len(cs), "position": position})
    return Extraction(vector, pos, neg, cs, letter_cosines(pos, neg, cs.letters),
                      time.perf_counter() - start, lm.forward_passes - passes)


def mean_starts(lm: LoadedModel, cs: ContrastSet) -> list[int]:
    """Where each prompt's mean pooling window begins: its answer, if it has one (A/B
    sets average the completion), else its own text after the tokens every prompt of
    the set shares (the chat template's header), and never the first token."""
    pos_texts, neg_texts = cs.texts(lm)
    ids = token_ids(lm, pos_texts + neg_texts)
    common = max(1, shared_prefix(ids, minimum=1))
    starts = []
    for p, own in zip(cs.positive + cs.negative, ids):
        if p.answer:
            question = token_ids(lm, [lm.chat(p.user)])[0]
            starts.append(max(1, min(len(question), len(own) - 1)))
        else:
            starts.append(min(common, len(own) - 1))
    return starts
