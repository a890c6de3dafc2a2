"""``Workbench``: the loaded LLM/SLM pair shared by every session, and the
model-level operations the UI and the CLI both run (extract a concept, describe it).

Models are shared and guarded by their locks; per-user things (vectors, maps) are
returned to the caller and kept in the caller's session, never here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import torch

from . import activations
from .contrast import ContrastSet
from .errors import ModelError
from .models import LoadedModel, ModelSpec, load_model
from .vectors import ConceptVector, extract, letter_cosines

ROLES = ("llm", "slm")


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
    start, passes = time.perf_counter(), activations.FORWARD_PASSES[lm.name]
    pos_texts, neg_texts = cs.texts(lm)
    starts = mean_starts(lm, cs) if position == "mean" else None
    acts = activations.record(lm, pos_texts + neg_texts, position, starts, batch_size, progress)
    pos, neg = acts[: len(cs)], acts[len(cs):]
    vector = extract(pos, neg, lm.name, method, cs.name, cs.digest())
    vector = replace(vector, provenance={
        "family": lm.family, "source": cs.source, "pairs": len(cs), "position": position})
    return Extraction(vector, pos, neg, cs, letter_cosines(pos, neg, cs.letters),
                      time.perf_counter() - start, activations.FORWARD_PASSES[lm.name] - passes)


def mean_starts(lm: LoadedModel, cs: ContrastSet) -> list[int]:
    """Where each prompt's mean pooling window begins: its answer, if it has one (A/B
    sets average the completion), else its own text after the tokens every prompt of
    the set shares (the chat template's header), and never the first token."""
    pos_texts, neg_texts = cs.texts(lm)
    ids = activations.token_ids(lm, pos_texts + neg_texts)
    common = max(1, activations.shared_prefix(ids, minimum=1))
    starts = []
    for p, own in zip(cs.positive + cs.negative, ids):
        if p.answer:
            question = activations.token_ids(lm, [lm.chat(p.user)])[0]
            starts.append(max(1, min(len(question), len(own) - 1)))
        else:
            starts.append(min(common, len(own) - 1))
    return starts


class Workbench:
    """The two models of the session pair. Loading a new one replaces the old only on success."""

    def __init__(self, device: str | None = None, dtype: str | None = None, device_map: str | None = None,
                 trust_remote_code: bool = False):
        # What the app was started with; every later load (the Models tab's too) keeps it.
        self.defaults = {"device": device, "dtype": dtype, "device_map": device_map,
                         "trust_remote_code": trust_remote_code}
        self.models: dict[str, LoadedModel] = {}
        self._loading = threading.Lock()

    def load(self, role: str, source: str, progress=None, **spec_kw) -> LoadedModel:
        """Load ``source`` into ``role``; on failure the previous model stays in place."""
        if role not in ROLES:
            raise ModelError(f"Unknown role {role!r}: use llm or slm.")
        spec = ModelSpec(source.strip(), **{**self.defaults, **spec_kw})
        current = self.models.get(role)
        if current is not None and current.spec == spec:
            return current
        with self._loading:  # one load at a time keeps peak memory bounded
            lm = load_model(spec, progress)
        self.models[role] = lm
        return lm

    def get(self, role: str) -> LoadedModel:
        try:
            return self.models[role]
        except KeyError:
            raise ModelError(f"No {role.upper()} is loaded yet: load one in the Models tab "
                             "(or pass --llm/--slm).") from None
