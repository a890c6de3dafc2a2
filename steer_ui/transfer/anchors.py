"""The anchor-space map: carry a direction through relative representations.

Relative representations (Moschella et al., ICLR 2023; the "ACS" anchor-coordinate
transfer of arXiv 2605.09875) describe an activation by its cosine similarities to a
fixed set of anchor texts' activations *in the same model*; two models that read the
texts alike give the same description, whatever their bases and sizes. Here the anchors
are K of the paired training texts, recorded in both models at the matched layers.

- Anchors are centred on their mean and scaled to unit length in each model (rows of
  ``A`` for the LLM, ``B`` for the SLM). Centring matters: residual activations share a
  large common component, so raw cosines are all close to 1 and say little.
- A direction ``d``'s anchor coordinates are its cosines with the anchors,
  ``cos(d, a_k) = <d, a_k> / ||d||``. We take ``c = A d``: the same cosines times the
  common factor ``||d||``, which the final rescaling (every map keeps the direction's
  relative size) discards. Cosines rather than least-squares coefficients of ``d`` in
  the anchor basis: the cosines are what relative representations assume the two models
  share; coefficients would assume the anchors' linear combinations carry over too.
- In the SLM we rebuild the direction whose cosines with its own anchors match:
  ``min ||B d' - c||^2 + lam ||d'||^2``, i.e. ``d' = B^T (B B^T + lam I)^-1 c``. So the
  map is linear, ``W = B^T (B B^T + lam I)^-1 A`` (d_slm x d_llm), and reuses everything
  a ``LayerMap`` gets (held-out R^2, chance level, diagnostics). ``B B^T`` has a unit
  diagonal, so ``lam`` is in units of its mean eigenvalue. It is fixed at 0.1, enough to
  steady a Gram that centring makes singular (centred anchors sum to zero). Picking it
  by R^2 is worse than useless: R^2 rewards heavy shrinkage towards the layers' dominant
  directions and chose ``lam = 10``, which carried happy/sad and formal/casual worst of
  0.01-10 (docs/TRANSFER.md); by the cosine with the native vector it would leak the
  evaluation into the map.
- The map reads only the part of ``d`` inside the span of the LLM anchors; ``basis``
  (an orthonormal basis of that span) lets the report say how much of ``||d||^2`` that is.
- For R^2 only, ``W`` is given one least-squares scale on the training rows (as
  Procrustes is): cosines fix directions, not sizes.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import orth

ANCHORS = 384
PENALTY = 0.1


def unit_anchors(acts: np.ndarray) -> np.ndarray:
    """Anchor activations centred on their mean, each row scaled to unit length."""
    z = acts - acts.mean(0)
    return z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)


def relative(acts: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The relative representation: cosine of each (centred) row with each anchor, (n, K)."""
    z = acts - anchors.mean(0)
    z = z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)
    return z @ unit_anchors(anchors).T


def anchor_weight(ax: np.ndarray, ay: np.ndarray, penalty: float) -> np.ndarray:
    """``W = B^T (B B^T + lam I)^-1 A`` from unit anchors ``A`` (K, d_llm), ``B`` (K, d_slm)."""
    gram = ay @ ay.T
    return ay.T @ np.linalg.solve(gram + penalty * np.eye(len(gram)), ax)


def _scaled(weight: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``weight`` times the least-squares scale ``s`` of centred ``y ~ s x W^T``."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    pred = xc @ weight.T
    return weight * float((pred * yc).sum() / ((pred * pred).sum() + 1e-12))


def fit_anchor(x: np.ndarray, y: np.ndarray, k: int = ANCHORS, penalty: float = PENALTY,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The anchor map fitted on training rows ``x`` (n, d_llm), ``y`` (n, d_slm): its weight
    (d_slm, d_llm) and the orthonormal basis (rows) of the LLM anchors' span. The
    anchors are ``k`` of the rows, drawn at random (fixed seed)."""
    anchors = np.random.default_rng(seed).permutation(len(x))[:k]
    ax, ay = unit_anchors(x[anchors].astype(np.float64)), unit_anchors(y[anchors].astype(np.float64))
    weight = _scaled(anchor_weight(ax, ay, penalty), x, y)
    return weight.astype(np.float32), orth(ax.T).T.astype(np.float32)
