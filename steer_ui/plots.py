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
    for k, ((name, d), color) in enumerate(zip(directions.items(), colors)):
        v = pca.components_ @ (d / (np.linalg.norm(d) + 1e-12))  # direction in the PC plane
        tip = center + v * spread * 0.9 / (np.linalg.norm(v) + 1e-12) * min(1.0, np.linalg.norm(v) * 3)
        fig.add_annotation(x=tip[0], y=tip[1], ax=center[0], ay=center[1], xref="x", yref="y",
                           axref="x", ayref="y", showarrow=True, arrowhead=3, arrowwidth=3,
                           arrowcolor=color, text="")
        # the label sits beyond the tip, each one a line lower: arrows that nearly coincide
        # (a transfer that arrived) would otherwise print their names on top of each other
        fig.add_annotation(x=tip[0], y=tip[1], xref="x", yref="y", text=f"<b>{name}</b>", showarrow=False,
                           font={"color": color}, yshift=-16 * k + 10, xanchor="left", xshift=6,
                           bgcolor="rgba(255,255,255,0.7)")
    ev = pca.explained_variance_ratio_
    fig.update_layout(title=title, xaxis_title=f"PC1 ({ev[0]:.0%} of variance)",
                      yaxis_title=f"PC2 ({ev[1]:.0%} of variance)", height=440,
                      margin={"l": 40, "r": 10, "t": 60, "b": 40}, legend={"orientation": "h", "y": -0.22})
    return fig


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


def separability_profile(curves: Mapping[str, Sequence[float]], marks: Mapping[str, int] | None = None,
                         current: Mapping[str, int] | None = None,
                         title: str = "Separability by relative depth") -> go.Figure:
    """Per-layer scores of several models on one axis of relative depth (0 = first layer).

    ``marks``: each model's best layer (a star in its line's colour); ``current``: the
    layer each model is viewed/steered at (an open ring in the same colour)."""
    fig = go.Figure()
    for (name, ys), color in zip(curves.items(), PALETTE):
        n = len(ys)
        depth = np.arange(n) / max(n - 1, 1)
        fig.add_scatter(x=depth, y=list(ys), mode="lines+markers", name=name, line={"color": color},
                        marker={"color": color}, text=[f"layer {i}" for i in range(n)],
                        hovertemplate="%{text}: %{y:.3f}<extra>" + name + "</extra>")
        for key, marker, label in ((marks, {"size": 16, "symbol": "star"}, "best"),
                                   (current, {"size": 18, "symbol": "circle-open", "line": {"width": 3}},
                                    "current")):
            i = key.get(name) if key else None
            if i is not None and 0 <= i < n:
                fig.add_scatter(x=[depth[i]], y=[ys[i]], mode="markers", showlegend=False,
                                marker={**marker, "color": color},
                                hovertemplate=f"{name}: {label} layer {i} (%{{y:.3f}})<extra></extra>")
    fig.update_layout(title=title, xaxis_title="relative depth (layer / (layers - 1)); star: best layer, "
                      "ring: the slider's layer", yaxis_title="cross-validated AUC", yaxis_range=[0.4, 1.02],
                      height=360, margin={"l": 40, "r": 10, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.25})
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
    """Several named curves over one x axis, with optional (low, high) bands; the legend
    sits below the plot so long curve names never squeeze it."""
    fig = go.Figure()
    for name, ys in curves.items():
        fig.add_scatter(x=list(xs), y=list(ys), mode="lines+markers", name=name)
        if bands and name in bands:
            lo, hi = bands[name]
            fig.add_scatter(x=list(xs) + list(xs)[::-1], y=list(hi) + list(lo)[::-1], fill="toself",
                            opacity=0.15, line={"width": 0}, showlegend=False, hoverinfo="skip")
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=420,
                      legend={"orientation": "h", "y": -0.22, "x": 0}, margin={"l": 40, "r": 10, "t": 50, "b": 40})
    return fig


def calibration_grid(layers: Sequence[int], intensities: Sequence[float], efficacy: np.ndarray, kl: np.ndarray,
                     guard: float, chosen: tuple[int, float] | None, default: tuple[int, float] | None,
                     title: str) -> go.Figure:
    """Efficacy of every (layer, intensity) cell; broken cells (KL over ``guard``) crossed,
    the chosen cell starred, the default ringed; hover shows efficacy and KL."""
    xs = [f"{x:g}" for x in intensities]
    hover = [[f"layer {i}, intensity {x}<br>efficacy {e:+.3f}<br>KL {k:.2f} nat/token"
              + ("<br><b>broken</b>" if k > guard else "") for x, e, k in zip(xs, er, kr)]
             for i, er, kr in zip(layers, efficacy, kl)]
    top = float(np.nanmax(np.abs(efficacy))) or 1.0
    fig = go.Figure(go.Heatmap(z=efficacy, x=xs, y=[str(i) for i in layers], text=hover, hoverinfo="text",
                               colorscale="RdBu", reversescale=True, zmid=0, zmin=-top, zmax=top,
                               colorbar={"title": "efficacy"}))
    broken = [(x, str(i)) for i, kr in zip(layers, kl) for x, k in zip(xs, kr) if k > guard]
    if broken:
        fig.add_scatter(x=[b[0] for b in broken], y=[b[1] for b in broken], mode="markers", name="broken (KL)",
                        marker={"symbol": "x", "size": 11, "color": "#444"}, hoverinfo="skip")
    for cell, symbol, name in ((default, "circle-open", "default"), (chosen, "star", "chosen")):
        if cell is not None and cell[0] in layers and cell[1] in intensities:
            fig.add_scatter(x=[f"{cell[1]:g}"], y=[str(cell[0])], mode="markers", name=name,
                            marker={"symbol": symbol, "size": 18, "color": "#111", "line": {"width": 2}})
    fig.update_layout(title=title, xaxis_title="intensity (relative)", yaxis_title="layer", height=380,
                      legend={"orientation": "h", "y": -0.25}, margin={"l": 40, "r": 10, "t": 50, "b": 40})
    return fig
