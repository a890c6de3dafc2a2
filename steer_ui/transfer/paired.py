"""``PairedActivations``: the same texts run through two models, pooled per model.

Pooling per text (never per token) makes the pairing independent of the tokenizers.
Two sources, alone or together:
- ``neutral``: the shipped neutral corpus (``assets/neutral_corpus.txt`` plus any user
  lines), each text pooled twice: mean over tokens without the first (attention-sink)
  token, and the last token.
- ``concept``: the contrast prompts of the other presets, read at the last token as
  extraction reads them, leaving out the concept being transferred, so the map never
  sees the concept it carries.
Activations are cached on disk per (model, dtype, position, texts) as safetensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..concepts import contrast, recording
from ..config import neutral_corpus
from ..errors import TransferError
from ..models import zoo

SOURCES = ("neutral", "concept")
MIN_TEXTS = 64  # below this a per-layer map of hundreds of dimensions is noise


@dataclass(frozen=True)
class PairedActivations:
    """Row i of ``x`` (LLM) and of ``y`` (SLM) come from the same text and pooling."""

    x: np.ndarray  # (n, llm_layers, d_llm) float32
    y: np.ndarray  # (n, slm_layers, d_slm) float32
    source: np.ndarray  # (n,) "neutral" / "concept", for per-source R^2
    key: str  # identifies the texts (map cache key)

    def __len__(self) -> int:
        return len(self.x)


def neutral_texts(n: int | None = None, extra: list[str] | None = None) -> list[str]:
    """The neutral corpus (first ``n`` lines) plus user-supplied lines."""
    lines = neutral_corpus()
    return (lines[:n] if n else lines) + [t for t in (extra or []) if t.strip()]


def concept_prompts(leave_out: str | None, per_preset: int = 16) -> list[contrast.ContrastSet]:
    """Contrast sets of every preset except ``leave_out``."""
    return [contrast.from_preset(name, per_preset) for name in contrast.preset_names() if name != leave_out]


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
    xs, ys, labels, keys = [], [], [], []
    if "neutral" in sources:
        texts = neutral_texts(n_neutral, extra_texts)
        for lm, out in ((llm, xs), (slm, ys)):
            both = _cached_record(lm, texts, "mean+last", progress)  # (n, layers, 2, d): one pass
            out += [both[:, :, 0], both[:, :, 1]]
        labels += ["neutral"] * (2 * len(texts))
        keys.append(f"neutral{recording.texts_hash(texts)}")
    if "concept" in sources:
        sets = concept_prompts(leave_out, per_preset)
        for cs in sets:
            for lm, out in ((llm, xs), (slm, ys)):
                pos_t, neg_t = cs.texts(lm)
                out.append(_cached_record(lm, pos_t + neg_t, "last", progress))
            labels += ["concept"] * (2 * len(cs))
        keys.append(f"concept-minus-{leave_out}-" + recording.texts_hash([cs.digest() for cs in sets]))
    x, y = torch.cat(xs).numpy(), torch.cat(ys).numpy()
    if len(x) < MIN_TEXTS:
        raise TransferError(f"Only {len(x)} paired texts: a map needs at least {MIN_TEXTS}. "
                            "Add neutral texts or use more sources.")
    return PairedActivations(x, y, np.array(labels), "+".join(keys))


def normalized(acts: np.ndarray, norms: torch.Tensor) -> np.ndarray:
    """Each layer divided by the model's typical residual norm there (unit scale)."""
    return acts / norms.numpy()[None, :, None]
