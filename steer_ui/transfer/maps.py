"""Carry a concept from the LLM's residual space into the SLM's.

For each SLM layer j we pick an LLM layer i (relative depth, or best linear CKA), fit a
linear map from the LLM's to the SLM's activations on paired texts (``paired.py``), in
units of each layer's typical residual norm, and push the LLM direction through the
map's linear part (a direction is a difference of activations, so the intercept drops
out). Maps: ``ridge`` (scikit-learn RidgeCV, penalty picked by leave-one-out error),
``procrustes`` (scipy orthogonal Procrustes between PCA-reduced spaces of equal size,
with a single scale) and ``anchor`` (relative representations: the direction's cosines
with anchor texts' activations, rebuilt in the SLM from its own anchors; ``anchors.py``).
Procrustes and anchor read only part of the LLM space (the top-k PCA subspace, the
anchors' span); the ``LayerMap`` keeps that subspace's basis so the report can say how
much of the direction's norm survives it. Held-out R^2 splits by text (``split``): rows
of one text or one contrast scenario stay on one side. A non-linear map is not offered: it has no single push-forward for
a direction (its Jacobian changes from point to point), so it would need a base point
we have no principled way to choose. The mapped direction keeps its relative size: its
norm over the SLM layer's typical norm equals the LLM direction's over the LLM's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.linalg import orthogonal_procrustes
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupShuffleSplit

from ..concepts.recording import typical_norms
from ..concepts.vectors import ConceptVector
from ..errors import TransferError
from ..models import zoo
from .anchors import fit_anchor
from .paired import PairedActivations, normalized

MAPS = ("ridge", "procrustes", "anchor")
MATCHING = ("depth", "fit")
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
CACHE_VERSION = "3"  # bump when a fitter or the split changes: cached maps are found by key alone


@dataclass(frozen=True)
class LayerMap:
    """A linear map between one LLM layer and one SLM layer, in normalized units."""

    method: str
    llm_layer: int
    slm_layer: int
    weight: np.ndarray  # (d_slm, d_llm): normalized LLM direction -> normalized SLM direction
    r2: dict[str, float]  # held-out R^2 per source ("neutral", "concept", "all")
    fitted: bool = True  # False when it came from the disk cache (benchmarks count re-use by it)
    basis: np.ndarray | None = None  # (k, d_llm) orthonormal rows: the LLM subspace the map reads; None: all

    def apply(self, direction: np.ndarray) -> np.ndarray:
        return self.weight @ direction

    def norm_kept(self, direction: np.ndarray) -> float | None:
        """The fraction of ``||direction||^2`` inside the subspace the map reads (None: the
        map reads the whole space); the rest is dropped before the map is applied."""
        if self.basis is None:
            return None
        d = np.asarray(direction, dtype=np.float64)
        return float(np.sum((self.basis.astype(np.float64) @ d) ** 2) / (d @ d + 1e-30))


def depth_pairs(n_llm: int, n_slm: int) -> list[int]:
    """For each SLM layer, the LLM layer at the same relative depth."""
    return [round(j * (n_llm - 1) / max(n_slm - 1, 1)) for j in range(n_slm)]


def cka_matrix(x: np.ndarray, y: np.ndarray, max_rows: int = 600) -> np.ndarray:
    """Linear CKA between every LLM layer and every SLM layer: (llm_layers, slm_layers)."""
    rows = np.random.default_rng(0).permutation(len(x))[:max_rows]

    def grams(a):  # centered Gram matrix per layer, unit Frobenius norm
        out = []
        for layer in range(a.shape[1]):
            z = a[rows, layer] - a[rows, layer].mean(0)
            g = z @ z.T
            out.append((g / (np.linalg.norm(g) + 1e-12)).ravel())
        return np.stack(out)

    return grams(x.astype(np.float64)) @ grams(y.astype(np.float64)).T


def split(groups: np.ndarray, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out row indices, whole groups (texts, scenarios) on one side."""
    groups = np.asarray(groups)
    if len(np.unique(groups)) < 2:
        raise TransferError(f"The paired rows come from {len(np.unique(groups))} distinct text(s): "
                            "held-out R^2 needs at least 2. Add texts.")
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    train, test = next(splitter.split(np.zeros((len(groups), 1)), groups=groups))
    return train, test


def row_split(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The former split, by row: one text's rows can fall on both sides (a leak). Kept
    only to measure that leak (docs/TRANSFER.md)."""
    perm = np.random.default_rng(seed).permutation(n)
    cut = max(1, int(n * test_fraction))
    return perm[cut:], perm[:cut]


def _fit_ridge(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, None]:
    model = RidgeCV(alphas=ALPHAS, fit_intercept=True).fit(x, y)
    return model.coef_.astype(np.float32), None  # (d_slm, d_llm); reads the whole space


def _fit_procrustes(x: np.ndarray, y: np.ndarray, k: int = 128) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, x.shape[1], y.shape[1], len(x) - 1)
    px, py = PCA(k).fit(x), PCA(k).fit(y)
    a, b = px.transform(x), py.transform(y)
    fa, fb = np.linalg.norm(a), np.linalg.norm(b)
    r, sigma_sum = orthogonal_procrustes(a / fa, b / fb)
    scale = sigma_sum * fb / fa  # least-squares scale of b ~ scale * a @ r
    weight = (px.components_.T @ r @ py.components_ * scale).T.astype(np.float32)
    return weight, px.components_.astype(np.float32)  # the LLM's top-k PCA subspace


_FITTERS = {"ridge": _fit_ridge, "procrustes": _fit_procrustes, "anchor": fit_anchor}


def _heldout_r2(weight, x, y, train, test, sources) -> dict[str, float]:
    """R^2 of the map on held-out rows, overall and per source."""
    pred = (x[test] - x[train].mean(0)) @ weight.T + y[train].mean(0)
    out = {"all": float(r2_score(y[test], pred, multioutput="variance_weighted"))}
    for s in np.unique(sources[test]):
        m = sources[test] == s
        if m.sum() >= 5:
            out[str(s)] = float(r2_score(y[test][m], pred[m], multioutput="variance_weighted"))
    return out


def fit_layer(x: np.ndarray, y: np.ndarray, method: str, train: np.ndarray, test: np.ndarray,
              sources: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:
    """Fit ``method`` on the ``train`` rows of one layer pair: weight, LLM-side basis (or
    None) and R^2 on the ``test`` rows."""
    if method not in _FITTERS:
        raise TransferError(f"Unknown map {method!r}: use {', '.join(MAPS)}.")
    weight, basis = _FITTERS[method](x[train], y[train])
    return weight, basis, _heldout_r2(weight, x, y, train, test, sources)


def fit_map(paired: PairedActivations, llm_norms, slm_norms, i: int, j: int, method: str,
            cache_id: str = "") -> LayerMap:
    """Fit (or load from the disk cache) the map from LLM layer ``i`` to SLM layer ``j``;
    R^2 is measured on held-out texts (``split`` by ``paired.groups()``)."""
    if method not in _FITTERS:
        raise TransferError(f"Unknown map {method!r}: use {', '.join(MAPS)}.")
    path = _cache_path(cache_id, paired.key, method, i, j) if cache_id else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as f:
            r2 = dict(zip(f["r2_keys"].tolist(), f["r2_values"].tolist()))
            basis = f["basis"] if f["basis"].size else None
            return LayerMap(method, i, j, f["weight"], r2, fitted=False, basis=basis)
    x = paired.x[:, i] / float(llm_norms[i])
    y = paired.y[:, j] / float(slm_norms[j])
    train, test = split(paired.groups())
    weight, basis, r2 = fit_layer(x, y, method, train, test, paired.source)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, weight=weight, r2_keys=np.array(list(r2)), r2_values=np.array(list(r2.values())),
                 basis=basis if basis is not None else np.zeros(0, np.float32))
    return LayerMap(method, i, j, weight, r2, basis=basis)


def _cache_path(cache_id: str, key: str, method: str, i: int, j: int):
    digest = hashlib.sha256(f"{CACHE_VERSION}|{cache_id}|{key}|{method}".encode()).hexdigest()[:16]
    return zoo.cache_root() / "maps" / digest / f"{i}-{j}.npz"


def check_transferable(vector: ConceptVector, llm, slm) -> None:
    """Clear errors for vectors that cannot be carried from ``llm`` to ``slm``."""
    if vector.model == slm.name:
        raise TransferError(f"{vector.name!r} already lives in {slm.name}: transferring it onto the "
                            "model it came from would be the identity. Use it directly.")
    if vector.model != llm.name:
        raise TransferError(f"{vector.name!r} was extracted in {vector.model}, not in the LLM "
                            f"{llm.name}. Load {vector.model} as the LLM, or extract it there.")
    if (vector.n_layers, vector.hidden_size) != (llm.n_layers, llm.hidden_size):
        raise TransferError(f"{vector.name!r} has {vector.n_layers}x{vector.hidden_size} directions but "
                            f"{llm.name} has {llm.n_layers} layers x {llm.hidden_size}.")


def carry(vector: ConceptVector, maps: list[LayerMap], llm_norms, slm_norms, slm_name: str,
          slm_family: str = "") -> ConceptVector:
    """The SLM vector: each SLM layer's direction mapped from its LLM layer. It keeps the
    concept's name; its default layer is the SLM layer whose LLM layer is nearest the
    LLM vector's default layer (recorded as ``source_layer``)."""
    dirs, kept = [], []
    for m in maps:
        d = vector.directions[m.llm_layer].float().numpy() / float(llm_norms[m.llm_layer])
        kept.append(m.norm_kept(d))
        mapped = m.apply(d)
        mapped *= np.linalg.norm(d) / (np.linalg.norm(mapped) + 1e-12)  # same relative size
        dirs.append(mapped * float(slm_norms[m.slm_layer]))
    layer = vector.default_layer
    slm_layer = min(range(len(maps)), key=lambda j: abs(maps[j].llm_layer - layer)) if layer is not None else None
    return replace(vector, directions=torch.from_numpy(np.stack(dirs)).float(), model=slm_name,
                   method=f"transfer:{maps[0].method}", default_layer=slm_layer, separability=(),
                   provenance={**vector.provenance, "family": slm_family,
                               "source_family": vector.provenance.get("family", ""),
                               "transferred_from": vector.model, "source_layer": layer,
                               "source_layer_used": maps[slm_layer].llm_layer if slm_layer is not None else None,
                               "map": maps[0].method,
                               "fit_r2": [round(m.r2.get("all", float("nan")), 4) for m in maps],
                               "norm_kept": None if kept[0] is None else [round(k, 4) for k in kept]})


def transfer(vector: ConceptVector, llm, slm, paired: PairedActivations, method: str = "ridge",
             matching: str = "depth") -> tuple[ConceptVector, list[LayerMap], np.ndarray | None]:
    """Map ``vector`` (from ``llm``) into ``slm``: the new vector, its maps, and CKA if fitted."""
    check_transferable(vector, llm, slm)
    if matching not in MATCHING:
        raise TransferError(f"Unknown layer matching {matching!r}: use {', '.join(MATCHING)}.")
    ln, sn = typical_norms(llm), typical_norms(slm)
    cka = None
    if matching == "fit":
        cka = cka_matrix(normalized(paired.x, ln), normalized(paired.y, sn))
        sources = cka.argmax(0).tolist()
    else:
        sources = depth_pairs(llm.n_layers, slm.n_layers)
    cache_id = f"{llm.name}|{llm.dtype}|{slm.name}|{slm.dtype}"
    maps = [fit_map(paired, ln, sn, i, j, method, cache_id) for j, i in enumerate(sources)]
    out = carry(vector, maps, ln, sn, slm.name, slm.family)
    out = replace(out, provenance={**out.provenance, "map_data": paired.data.as_dict()})
    return out, maps, cka
