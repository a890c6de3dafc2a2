"""Fluency (damage) under steering: perplexity of neutral held-out text.

A steering vector that moves a concept but wrecks the language is no use, so every arm
is also scored by the perplexity the steered model assigns to plain neutral sentences
(first token excluded: it has no context). Higher means more damage.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..config import neutral_corpus
from ..errors import out_of_memory
from ..models.tokens import encode
from ..steering.hooks import steer

# A perplexity this many times the unsteered one is flagged as broken fluency.
BROKEN_RATIO = 2.0


def heldout_texts(n: int = 24) -> list[str]:
    """The last ``n`` lines of the neutral corpus (maps are fitted on the first ones)."""
    return neutral_corpus()[-n:]


def perplexity(lm, texts: Sequence[str], vector=None, intensity: float = 0.0, layer=None,
               mode: str = "relative", batch_size: int = 16) -> float:
    """exp(mean token NLL) of ``texts`` under ``vector`` at ``intensity``."""
    total, count = 0.0, 0
    for b in range(0, len(texts), batch_size):
        batch = encode(lm, list(texts[b: b + batch_size]))
        with steer(lm, vector, intensity, layer, mode), torch.inference_mode(), \
                out_of_memory("measuring perplexity", "use fewer or shorter texts."):
            logits = lm.model(**batch, use_cache=False).logits.float()
        logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
        mask = batch["attention_mask"][:, 1:].bool()
        total -= float(logp[mask].sum())
        count += int(mask.sum())
    return float(torch.tensor(total / max(count, 1)).exp())


def fluency_warning(steered: float, unsteered: float) -> str | None:
    """A message when steering makes neutral text ``BROKEN_RATIO``x less likely."""
    if steered > BROKEN_RATIO * unsteered:
        return (f"This intensity breaks fluency: perplexity on neutral text is {steered:.1f} vs "
                f"{unsteered:.1f} unsteered ({steered / unsteered:.1f}x). Lower the intensity.")
    return None
