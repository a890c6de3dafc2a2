"""``TransferReport``: did a transferred concept arrive? Measured against chance.

R^2 on neutral text is not evidence of transfer (on our bundled pair a map with R^2
~0.7 carried vectors no closer to the native ones than random), so every transfer is
judged by the vector itself: its cosine with the SLM's native vector per layer, beside
the cosines that random SLM vectors and random LLM vectors pushed through the same map
reach (the chance level), and how well it separates the SLM's own positive/negative
activations (AUC) compared with the native direction. The report also says what the
map was fitted on and left out (the concept's family, ``families.py``), and, for maps
that read only a subspace of the LLM layer (Procrustes' PCA, the anchors' span), how much
of the direction's squared norm survives that reduction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from ..concepts.vectors import ConceptVector
from .maps import LayerMap

RANDOM_DRAWS = 64
BAD_R2 = 0.2
LOW_NORM_KEPT = 0.5  # below this the map drops most of the direction before carrying it


@dataclass(frozen=True)
class TransferReport:
    """Per SLM layer diagnostics of one transfer (lists are indexed by SLM layer)."""

    pairs: list[tuple[int, int]]  # (llm_layer, slm_layer)
    r2: dict[str, list[float]]  # held-out R^2 per source
    cos_native: list[float] | None  # cosine(transferred, native)
    chance_slm: list[float]  # 95th percentile |cos| of random SLM vectors with native
    chance_mapped: list[float]  # same for random LLM vectors sent through the map
    auc_transferred: list[float] | None
    auc_native: list[float] | None
    layer: int  # the steering layer the verdict is about
    verdict: str
    warnings: list[str]
    norm_kept: list[float] | None = None  # fraction of ||d||^2 in the subspace the map reads
    fitted_on: dict | None = None  # paired.MapData.as_dict(): what the map saw and left out

    def arrived(self) -> bool:
        return self.verdict.startswith("arrived")

    def summary(self) -> dict:
        """The figures at the steering layer, for tables and the CLI."""
        j = self.layer
        pick = lambda xs: None if xs is None else round(float(xs[j]), 4)  # noqa: E731
        return {"slm_layer": j, "llm_layer": self.pairs[j][0], "r2": {k: pick(v) for k, v in self.r2.items()},
                "cos_native": pick(self.cos_native), "chance_mapped_p95": pick(self.chance_mapped),
                "chance_slm_p95": pick(self.chance_slm), "auc_transferred": pick(self.auc_transferred),
                "auc_native": pick(self.auc_native), "norm_kept": pick(self.norm_kept),
                "r2_split": "by text", "fitted_on": self.fitted_on, "verdict": self.verdict}


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _auc(pos: np.ndarray, neg: np.ndarray, d: np.ndarray) -> float:
    scores = np.r_[pos @ d, neg @ d]
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], scores))


def _chance(maps: list[LayerMap], native: np.ndarray | None, d_llm: int, d_slm: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    slm, mapped = [], []
    for j, m in enumerate(maps):
        if native is None:
            slm.append(float("nan")), mapped.append(float("nan"))
            continue
        r_slm = rng.standard_normal((RANDOM_DRAWS, d_slm))
        r_llm = rng.standard_normal((RANDOM_DRAWS, d_llm)) @ m.weight.T
        slm.append(float(np.percentile([abs(_cos(r, native[j])) for r in r_slm], 95)))
        mapped.append(float(np.percentile([abs(_cos(r, native[j])) for r in r_llm], 95)))
    return slm, mapped


def diagnose(transferred: ConceptVector, maps: list[LayerMap], native: ConceptVector | None = None,
             slm_pos: np.ndarray | None = None, slm_neg: np.ndarray | None = None) -> TransferReport:
    """Compare ``transferred`` with the ``native`` SLM vector and with chance, per layer.

    ``slm_pos``/``slm_neg``: the SLM's own activations of the concept's prompts,
    (n, layers, d), for the separability (AUC) comparison.
    """
    t = transferred.directions.float().numpy()
    nat = native.directions.float().numpy() if native is not None else None
    cos = [_cos(t[j], nat[j]) for j in range(len(maps))] if nat is not None else None
    chance_slm, chance_mapped = _chance(maps, nat, maps[0].weight.shape[1], t.shape[1])
    auc_t = auc_n = None
    if slm_pos is not None and slm_neg is not None:
        auc_t = [_auc(slm_pos[:, j], slm_neg[:, j], t[j]) for j in range(len(maps))]
        auc_n = list(native.separability) if native is not None and native.separability else None
    keys = sorted({k for m in maps for k in m.r2})
    r2 = {k: [m.r2.get(k, float("nan")) for m in maps] for k in keys}
    layer = native.default_layer if native is not None and native.default_layer is not None \
        else (transferred.default_layer if transferred.default_layer is not None else len(maps) // 2)
    verdict = _verdict(cos, chance_mapped, auc_t, layer)
    kept = transferred.provenance.get("norm_kept")
    return TransferReport([(m.llm_layer, m.slm_layer) for m in maps], r2, cos, chance_slm, chance_mapped,
                          auc_t, auc_n, layer, verdict, _warnings(r2, kept, layer), kept,
                          transferred.provenance.get("map_data"))


def _warnings(r2: dict[str, list[float]], kept: list[float] | None, layer: int) -> list[str]:
    out = []
    if r2.get("all", [1])[layer] < BAD_R2:
        out.append(f"The map fits badly at SLM layer {layer}: held-out R^2 {r2['all'][layer]:.2f} "
                   f"(< {BAD_R2}). Add texts or try another map.")
    if kept is not None and kept[layer] < LOW_NORM_KEPT:
        out.append(f"Only {kept[layer]:.0%} of the direction's squared norm lies in the subspace the map "
                   f"reads at SLM layer {layer}; the rest was dropped before carrying it.")
    return out


def _verdict(cos, chance, auc, j) -> str:
    if cos is None:
        return "unknown: no native SLM vector to compare with (extract the concept in the SLM too)"
    if cos[j] > chance[j] and cos[j] > 0:
        extra = f", AUC {auc[j]:.2f}" if auc else ""
        return (f"arrived: cosine with the native vector {cos[j]:.2f} at layer {j} beats the chance "
                f"level {chance[j]:.2f}{extra}")
    return (f"at chance level: cosine with the native vector {cos[j]:.2f} at layer {j} does not beat "
            f"random vectors through the same map ({chance[j]:.2f}). The transferred vector is "
            "indistinguishable from a random one here.")
