"""The logit lens of a concept: what its direction says when read as output, and at
which layers the concept reaches the output at all.

- ``vector_lens``: per layer, the tokens the direction promotes and suppresses when it
  goes through the model's final norm and unembedding (nostalgebraist's logit lens
  applied to a direction instead of a hidden state).
- ``accessibility``: per layer, how well the logit lens of the contrast activations
  tells the two sides apart, read only on the concept's own output tokens. Our
  operationalisation of the Linear Accessibility Profile (arXiv 2604.15557, whose peak
  predicts where steering works): the concept tokens are the ones the model's real
  output favours for one side over the other, chosen on half of the pairs, and the
  score is the AUC on the other half (then the halves swap), so a layer is not
  credited for tokens picked on its own data. 0.5: the concept is not readable as
  output at that layer; 1.0: perfectly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from ..errors import ModelError, VectorError
from .vectors import ConceptVector

NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_norm")
CONCEPT_TOKENS = 20  # per side: the output tokens the accessibility score reads


@dataclass(frozen=True)
class LayerLens:
    """What one layer's direction promotes and suppresses: (token, logit change) pairs."""

    layer: int
    promoted: list[tuple[str, float]]
    suppressed: list[tuple[str, float]]


def final_norm(lm) -> torch.nn.Module:
    """The norm applied after the last decoder layer: a sibling of the layer list."""
    for _, module in lm.model.named_modules():
        if any(child is lm.layers for child in module.children()):
            for name in NORM_NAMES:
                norm = getattr(module, name, None)
                if isinstance(norm, torch.nn.Module):
                    return norm
    raise ModelError(f"Could not find {lm.name}'s final norm next to its decoder layers (looked for "
                     f"{', '.join(NORM_NAMES)}): the logit lens needs it.")


def read_out(lm, hidden: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Logits of residual states ``hidden`` (..., d) through the final norm and the
    unembedding, float32; only the vocabulary ``rows`` when given: (..., vocab or k)."""
    head = lm.model.get_output_embeddings()
    weight = head.weight if rows is None else head.weight[rows]  # (vocab or k, d)
    norm = final_norm(lm)
    with torch.inference_mode():
        x = hidden.to(device=weight.device, dtype=weight.dtype)
        normed = norm(x) - norm(torch.zeros_like(x[..., :1, :]))  # a LayerNorm's bias is no signal
        return (normed @ weight.T).float().cpu()


def vector_lens(lm, vector: ConceptVector, layers: list[int] | None = None, k: int = 10) -> list[LayerLens]:
    """Top ``k`` promoted and suppressed tokens of ``vector``'s direction at each of ``layers``
    (default: every layer), read through the final norm and unembedding."""
    _check(lm, vector)
    layers = list(range(vector.n_layers)) if layers is None else layers
    # A unit direction, scaled to the layer's typical norm: the norm is nonlinear, so the
    # direction is read at the size a steering push has.
    from .recording import typical_norms

    scale = typical_norms(lm)[layers, None]
    units = torch.stack([vector.unit(i) for i in layers]) * scale  # (layers, d)
    logits = read_out(lm, units[:, None, :])[:, 0]  # (layers, vocab)
    out = []
    for row, layer in zip(logits, layers):
        top, bottom = row.topk(k), (-row).topk(k)
        out.append(LayerLens(layer, _named(lm, top.indices, top.values),
                             _named(lm, bottom.indices, -bottom.values)))
    return out


def accessibility(lm, pos: torch.Tensor, neg: torch.Tensor, tokens: int = CONCEPT_TOKENS) -> list[float]:
    """Per layer, the cross-fitted AUC of the logit-lens concept score (see the module
    docstring) on contrast activations ``pos``/``neg`` (n, layers, d): (layers,)."""
    n = min(len(pos), len(neg))
    if n < 4:
        raise VectorError(f"The accessibility score needs at least 4 contrast pairs; this concept has {n}.")
    halves = (np.arange(n) % 2 == 0), (np.arange(n) % 2 == 1)
    scores = np.zeros((pos.shape[1], 2 * n))
    final = read_out(lm, torch.cat([pos[:n, -1], neg[:n, -1]]))  # (2n, vocab): the real output, read once
    for fit, held in (halves, halves[::-1]):
        up, down = _concept_tokens(final[:n][fit], final[n:][fit], tokens)
        rows = torch.cat([up, down])
        for side, acts in ((0, pos[:n]), (1, neg[:n])):
            logits = read_out(lm, acts[held], rows)  # (held, layers, 2k)
            score = logits[..., : len(up)].mean(-1) - logits[..., len(up):].mean(-1)  # (held, layers)
            cols = np.flatnonzero(held) + side * n
            scores[:, cols] = score.T.numpy()
    labels = np.r_[np.ones(n), np.zeros(n)]
    return [float(roc_auc_score(labels, s)) for s in scores]


def _concept_tokens(pos_logits, neg_logits, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` output tokens the model's own output (logits (rows, vocab)) favours most
    for the positive side over the negative, and the ``k`` it favours most for the negative."""
    diff = pos_logits.mean(0) - neg_logits.mean(0)  # (vocab,)
    return diff.topk(k).indices, (-diff).topk(k).indices


def _named(lm, ids: torch.Tensor, values: torch.Tensor) -> list[tuple[str, float]]:
    return [(lm.tokenizer.decode([int(i)]), round(float(v), 3)) for i, v in zip(ids, values)]


def _check(lm, vector: ConceptVector) -> None:
    from ..steering.hooks import check_fits

    check_fits(vector, lm)
