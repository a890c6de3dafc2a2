"""Pure plotly figure builders: arrays in, ``go.Figure`` out. No model access here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from sklearn.decomposition import PCA

POS, NEG, ACCENT = "#d62728", "#1f77b4", "#2ca02c"


def pca_scatter(pos: np.ndarray, neg: np.ndarray, directions: Mapping[str, np.ndarray],
                pos_labels: Sequence[str], neg_labels: Sequence[str], title: str) -> go.Figure:
    """Positive and negative activations (n, d) on PC1/PC2, concept direction(s) drawn.

    PCA is fitted on both sides together (float32); each direction is projected into
    the PC plane and drawn as an arrow from the centroid, scaled to the data spread.
    """
    x = np.concatenate([pos, neg]).astype(np.float32)
    pca = PCA(n_components=2).fit(x)
    pp, pn = pca.transform(pos), pca.transform(neg)
    fig = go.Figure()
    fig.add_scatter(x=pp[:, 0], y=pp[:, 1], mode="markers", name="positive", text=list(pos_labels),
                    hovertemplate="%{text}<extra>positive</extra>", marker={"color": POS, "size": 8})
    fig.add_scatter(x=pn[:, 0], y=pn[:, 1], mode="markers", name="negative", text=list(neg_labels),
                    hovertemplate="%{text}<extra>negative</extra>", marker={"color": NEG, "size": 8})
    center = pca.transform(x.mean(0, keepdims=True))[0]
    spread = float(np.abs(np.concatenate([pp, pn]) - center).max() or 1.0)
    colors = [ACCENT, "#ff7f0e", "#7f7f7f", "#9467bd"]
    for (name, d), color in zip(directions.items(), colors):
        v = pca.components_ @ (d / (np.linalg.norm(d) + 1e-12))  # direction in the PC plane
        tip = center + v * spread * 0.9 / (np.linalg.norm(v) + 1e-12) * min(1.0, np.linalg.norm(v) * 3)
        fig.add_annotation(x=tip[0], y=tip[1], ax=center[0], ay=center[1], xref="x", yref="y",
                           axref="x", ayref="y", showarrow=True, arrowhead=3, arrowwidth=3,
                           arrowcolor=color, text=name, font={"color": color})
    ev = pca.explained_variance_ratio_
    fig.update_layout(title=title, xaxis_title=f"PC1 ({ev[0]:.0%} of variance)",
                      yaxis_title=f"PC2 ({ev[1]:.0%} of variance)", height=420,
                      margin={"l": 40, "r": 10, "t": 50, "b": 40}, legend={"orientation": "h"})
    return fig


def separability_profile(curves: Mapping[str, Sequence[float]], marks: Mapping[str, int] | None = None,
                         title: str = "Separability by relative depth") -> go.Figure:
    """Per-layer scores of several models on one axis of relative depth (0 = first layer)."""
    fig = go.Figure()
    for name, ys in curves.items():
        n = len(ys)
        depth = np.arange(n) / max(n - 1, 1)
        fig.add_scatter(x=depth, y=list(ys), mode="lines+markers", name=name,
                        text=[f"layer {i}" for i in range(n)],
                        hovertemplate="%{text}: %{y:.3f}<extra>" + name + "</extra>")
        if marks and name in marks and marks[name] is not None:
            i = marks[name]
            fig.add_scatter(x=[depth[i]], y=[ys[i]], mode="markers", showlegend=False,
                            marker={"size": 14, "symbol": "star"}, hoverinfo="skip")
    fig.update_layout(title=title, xaxis_title="relative depth (layer / (layers - 1))",
                      yaxis_title="cross-validated AUC", yaxis_range=[0.4, 1.02], height=360,
                      margin={"l": 40, "r": 10, "t": 50, "b": 40})
    return fig


def heatmap(scores: np.ndarray, title: str, x_title: str, y_title: str, best: Sequence[int] | None = None) -> go.Figure:
    """A (rows, cols) score matrix, e.g. held-out R^2 for every layer pair."""
    fig = go.Figure(go.Heatmap(z=scores, colorscale="Viridis", colorbar={"title": "score"}))
    if best is not None:
        fig.add_scatter(x=list(best), y=list(range(len(best))), mode="markers", name="best",
                        marker={"color": "white", "symbol": "x", "size": 8})
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=420)
    return fig


def lines(xs: Sequence[float], curves: Mapping[str, Sequence[float]], title: str, x_title: str,
          y_title: str, bands: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None) -> go.Figure:
    """Several named curves over one x axis, with optional (low, high) bands."""
    fig = go.Figure()
    for name, ys in curves.items():
        fig.add_scatter(x=list(xs), y=list(ys), mode="lines+markers", name=name)
        if bands and name in bands:
            lo, hi = bands[name]
            fig.add_scatter(x=list(xs) + list(xs)[::-1], y=list(hi) + list(lo)[::-1], fill="toself",
                            opacity=0.15, line={"width": 0}, showlegend=False, hoverinfo="skip")
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=380)
    return fig
