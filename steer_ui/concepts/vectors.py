"""``ConceptVector`` and the ways to extract one from paired activations.

Methods (all in float32, signs oriented so positives project higher):
- ``mean-diff``: mean of (positive - negative); the CAA / steering-vectors default.
- ``pca``: first principal component of the centered paired differences (repeng's
  ``pca_diff``), scaled to the mean difference's length along it.
- ``probe``: logistic-regression weights (scikit-learn) on standardized activations,
  mapped back to the residual space and scaled the same way.
Each layer also gets a separability score: the cross-validated AUC of projecting
held-out pairs on a direction fitted without them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold

from ..errors import ContrastError, VectorError

METHODS = ("mean-diff", "pca", "probe")


@dataclass(frozen=True, eq=False)  # tensors have no single truth value: compare with torch.equal
class ConceptVector:
    """Per-layer directions of one concept in one model. Immutable: ops return new ones."""

    directions: torch.Tensor  # (n_layers, d_model) float32
    model: str
    method: str = "mean-diff"
    name: str = "concept"
    separability: tuple[float, ...] = ()  # per layer, cross-validated AUC
    prompts_hash: str = ""
    default_layer: int | None = None
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    provenance: dict = field(default_factory=dict)  # source model/layer/map for transfers

    @property
    def n_layers(self) -> int:
        return int(self.directions.shape[0])

    @property
    def hidden_size(self) -> int:
        return int(self.directions.shape[1])

    def unit(self, layer: int) -> torch.Tensor:
        """Unit direction at ``layer``: (d_model,)."""
        d = self.directions[layer].float()
        return d / d.norm().clamp_min(1e-12)

    def to(self, device=None, dtype=None) -> "ConceptVector":
        return replace(self, directions=self.directions.to(device=device, dtype=dtype))

    def _combine(self, other: "ConceptVector", sign: float) -> "ConceptVector":
        if not isinstance(other, ConceptVector):
            return NotImplemented
        if other.directions.shape != self.directions.shape:
            raise VectorError(f"Cannot combine vectors of shapes {tuple(self.directions.shape)} "
                              f"and {tuple(other.directions.shape)}: they belong to different models.")
        return replace(self, directions=self.directions + sign * other.directions.to(self.directions),
                       name=f"{self.name}{'+' if sign > 0 else '-'}{other.name}", method="arithmetic")

    def __add__(self, other):
        return self._combine(other, 1.0)

    def __sub__(self, other):
        return self._combine(other, -1.0)

    def __mul__(self, k: float) -> "ConceptVector":
        return replace(self, directions=self.directions * float(k))

    __rmul__ = __mul__

    def __neg__(self) -> "ConceptVector":
        return self * -1.0


def _mean_diff(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    return (pos - neg).mean(0)  # (d,)


def _pca(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    diffs = pos - neg
    mean = diffs.mean(0)
    centered = diffs - mean
    if np.allclose(centered, 0):
        return mean
    pc = PCA(n_components=1, svd_solver="full").fit(centered).components_[0]
    return pc * float(mean @ pc)  # oriented and scaled by the mean difference along it


def _probe(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    x = np.concatenate([pos, neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    scale = x.std(0) + 1e-6
    clf = LogisticRegression(C=1.0, max_iter=2000).fit((x - x.mean(0)) / scale, y)
    w = clf.coef_[0] / scale  # back to residual coordinates
    w /= np.linalg.norm(w) + 1e-12
    return w * float(_mean_diff(pos, neg) @ w)


_EXTRACTORS = {"mean-diff": _mean_diff, "pca": _pca, "probe": _probe}


def direction(pos: np.ndarray, neg: np.ndarray, method: str) -> np.ndarray:
    """One layer's direction from (n, d) positive and negative activations."""
    try:
        d = _EXTRACTORS[method](pos, neg)
    except KeyError:
        raise ContrastError(f"Unknown method {method!r}: use one of {', '.join(METHODS)}.") from None
    if float((pos - neg).mean(0) @ d) < 0:  # orient: positives project higher
        d = -d
    return d


def separability(pos: np.ndarray, neg: np.ndarray, folds: int = 5) -> float:
    """Cross-validated AUC of held-out pairs projected on a mean-diff direction."""
    n = len(pos)
    k = min(folds, n)
    if k < 2:
        return float("nan")
    scores, labels = [], []
    for train, test in KFold(k, shuffle=True, random_state=0).split(pos):
        d = _mean_diff(pos[train], neg[train])
        scores += list(pos[test] @ d) + list(neg[test] @ d)
        labels += [1] * len(test) + [0] * len(test)
    return float(roc_auc_score(labels, scores))


def extract(pos_acts: torch.Tensor, neg_acts: torch.Tensor, model: str, method: str = "mean-diff",
            name: str = "concept", prompts_hash: str = "",
            known_separability: tuple[float, ...] | None = None) -> ConceptVector:
    """A ``ConceptVector`` from (n, layers, d) activations of paired prompts.

    ``known_separability``: the per-layer scores of an earlier extraction from the same
    activations (they do not depend on ``method``), to skip the cross-validation.
    """
    if pos_acts.shape != neg_acts.shape:
        raise ContrastError(f"Activations do not pair up: {tuple(pos_acts.shape)} vs {tuple(neg_acts.shape)}.")
    pos, neg = pos_acts.float().numpy(), neg_acts.float().numpy()
    n_layers = pos.shape[1]
    dirs = np.stack([direction(pos[:, i], neg[:, i], method) for i in range(n_layers)])
    if not np.isfinite(dirs).all() or np.abs(dirs).max() == 0:
        raise ContrastError("The positive and negative prompts give identical activations: "
                            "there is no direction to extract. Make the two sides differ.")
    seps = known_separability if known_separability is not None and len(known_separability) == n_layers \
        else tuple(separability(pos[:, i], neg[:, i]) for i in range(n_layers))
    return ConceptVector(directions=torch.from_numpy(dirs).float(), model=model, method=method, name=name,
                         separability=seps, prompts_hash=prompts_hash, default_layer=best_layer(seps))


def best_layer(seps) -> int:
    """The most separable layer within the middle of the network: layers int(0.2 n) to
    int(0.8 n) - 1 (about 20%-80% depth; the whole model below 5 layers starts at 0).

    Early layers separate surface wording and late ones the next token; steering
    works best in between, so the choice is kept to the middle band.
    """
    n = len(seps)
    lo, hi = int(0.2 * n), max(int(0.8 * n), int(0.2 * n) + 1)
    band = [(s if np.isfinite(s) else -1.0, -abs(i - n / 2), i) for i, s in enumerate(seps) if lo <= i < hi]
    return max(band)[2] if band else n // 2


def letter_cosines(pos_acts: torch.Tensor, neg_acts: torch.Tensor, letters) -> list[float] | None:
    """Per layer, cosine of the mean difference with the "(A) minus (B)" direction.

    High values mean the vector mostly encodes the answer letter, not the behaviour.
    """
    if not letters or set(letters) - {"A", "B"} or len(set(letters)) < 2:
        return None
    sign = torch.tensor([1.0 if x == "A" else -1.0 for x in letters])[:, None, None]
    diff = (pos_acts - neg_acts).float()  # (n, layers, d)
    letter = (diff * sign).mean(0)  # positive side answered A -> +diff
    concept = diff.mean(0)
    return torch.nn.functional.cosine_similarity(concept, letter, dim=-1).tolist()


def random_like(v: ConceptVector, seed: int = 0) -> ConceptVector:
    """An equal-norm random direction per layer: the control any effect must beat.

    A fixed function of the concept (its prompts' digest and model) and ``seed``: the
    same control every time for one concept, another one for another concept."""
    mixed = hashlib.sha256(f"{v.model}|{v.prompts_hash}|{v.name}|{seed}".encode()).digest()
    g = torch.Generator().manual_seed(int.from_bytes(mixed[:8], "little") & (2**63 - 1))
    noise = torch.randn(v.directions.shape, generator=g)
    noise = noise / noise.norm(dim=1, keepdim=True) * v.directions.float().norm(dim=1, keepdim=True)
    return replace(v, directions=noise, name=f"random({v.name})", method="random",
                   provenance={**v.provenance, "control": "random", "seed": seed})
