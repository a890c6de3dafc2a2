"""``PairedActivations``: the same texts run through two models, pooled per model.

Pooling per text (never per token) makes the pairing independent of the tokenizers.
Two sources, alone or together:
- ``neutral``: the shipped neutral corpus (``assets/neutral_corpus.txt`` plus any user
  lines), each text pooled twice: mean over tokens without the first (attention-sink)
  token, and the last token.
- ``concept``: the contrast prompts of the other presets, read at the last token as
  extraction reads them, leaving out the concept being transferred and its near
  relatives (``families.py``), so the map never sees the concept it carries.
Every row has a group id, the text (neutral) or scenario (both sides of one contrast
pair) it came from, so held-out R^2 can split by text: a text's two poolings, or the
two sides of one scenario, never land on both sides of the split.
Activations are cached on disk per (model, dtype, position, texts) as safetensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..concepts import contrast, recording
from ..config import neutral_corpus
from ..errors import TransferError
from ..models import zoo
from .families import relatives

SOURCES = ("neutral", "concept")
MIN_TEXTS = 64  # below this a per-layer map of hundreds of dimensions is noise


@dataclass(frozen=True)
class MapData:
    """What a map was fitted on, for the transfer report."""

    concept_presets: tuple[str, ...] = ()  # presets whose contrast prompts the map saw
    concept_texts: int = 0  # their prompts (both sides), one row each
    neutral_texts: int = 0  # neutral texts, two rows each (mean and last token)
    left_out: tuple[str, ...] = ()  # the transferred concept and its family

    def as_dict(self) -> dict:
        return {"concept_presets": list(self.concept_presets), "concept_texts": self.concept_texts,
                "neutral_texts": self.neutral_texts, "left_out": list(self.left_out)}


@dataclass(frozen=True)
class PairedActivations:
    """Row i of ``x`` (LLM) and of ``y`` (SLM) come from the same text and pooling."""

    x: np.ndarray  # (n, llm_layers, d_llm) float32
    y: np.ndarray  # (n, slm_layers, d_slm) float32
    source: np.ndarray  # (n,) "neutral" / "concept", for per-source R^2
    key: str  # identifies the texts (map cache key)
    group: np.ndarray | None = None  # (n,) the text/scenario each row came from; None: every row its own
    data: MapData = field(default_factory=MapData)

    def __len__(self) -> int:
        return len(self.x)

    def groups(self) -> np.ndarray:
        """One id per row; rows sharing an id must stay on one side of a held-out split."""
        return np.arange(len(self.x)).astype(str) if self.group is None else self.group


def neutral_texts(n: int | None = None, extra: list[str] | None = None) -> list[str]:
    """The neutral corpus (first ``n`` lines) plus user-supplied lines."""
    lines = neutral_corpus()
    return (lines[:n] if n else lines) + [t for t in (extra or []) if t.strip()]


def concept_prompts(leave_out: str | None, per_preset: int = 16) -> list[contrast.ContrastSet]:
    """Contrast sets of every preset except ``leave_out`` and its family (``families.py``)."""
    skip = relatives(leave_out)
    return [contrast.from_preset(name, per_preset) for name in contrast.preset_names() if name not in skip]


def _cached_record(lm, texts: list[str], position: str, progress=None) -> torch.Tensor:
    key = f"{lm.name}-{str(lm.dtype).removeprefix('torch.')}-{position}-{recording.texts_hash(texts)}"
    path = zoo.cache_root() / "acts" / f"{key.replace('/', '_')}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["acts"]
        except Exception:  # unreadable cache entry: recompute below
            path.unlink(missing_ok=True)
    acts = recording.record(lm, texts, position, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"acts": acts.contiguous()}, str(path))
    return acts


def collect(llm, slm, sources=("concept", "neutral"), leave_out: str | None = None,
            n_neutral: int = 400, extra_texts: list[str] | None = None, progress=None,
            per_preset: int = 16) -> PairedActivations:
    """Paired activations of ``llm`` and ``slm`` on the chosen sources."""
    if not sources or set(sources) - set(SOURCES):
        raise TransferError(f"Pick map sources among {', '.join(SOURCES)} (got {list(sources)}).")
    xs, ys, labels, groups, keys = [], [], [], [], []
    texts, sets = [], []
    if "neutral" in sources:
        texts = neutral_texts(n_neutral, extra_texts)
        for lm, out in ((llm, xs), (slm, ys)):
            both = _cached_record(lm, texts, "mean+last", progress)  # (n, layers, 2, d): one pass
            out += [both[:, :, 0], both[:, :, 1]]
        labels += ["neutral"] * (2 * len(texts))
        groups += [f"neutral:{k}" for k in range(len(texts))] * 2  # mean rows, then last rows
        keys.append(f"neutral{recording.texts_hash(texts)}")
    if "concept" in sources:
        sets = concept_prompts(leave_out, per_preset)
        for cs in sets:
            for lm, out in ((llm, xs), (slm, ys)):
                pos_t, neg_t = cs.texts(lm)
                out.append(_cached_record(lm, pos_t + neg_t, "last", progress))
            labels += ["concept"] * (2 * len(cs))
            groups += [f"{cs.name}:{k}" for k in range(len(cs))] * 2  # pair k: positive and negative
        keys.append(f"concept-minus-{leave_out}-" + recording.texts_hash([cs.digest() for cs in sets]))
    x, y = torch.cat(xs).numpy(), torch.cat(ys).numpy()
    if len(x) < MIN_TEXTS:
        raise TransferError(f"Only {len(x)} paired texts: a map needs at least {MIN_TEXTS}. "
                            "Add neutral texts or use more sources.")
    data = MapData(tuple(cs.name for cs in sets), sum(2 * len(cs) for cs in sets), len(texts),
                   relatives(leave_out) if "concept" in sources else ())
    return PairedActivations(x, y, np.array(labels), "+".join(keys), np.array(groups), data)


def normalized(acts: np.ndarray, norms: torch.Tensor) -> np.ndarray:
    """Each layer divided by the model's typical residual norm there (unit scale)."""
    return acts / norms.numpy()[None, :, None]
