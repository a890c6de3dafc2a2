"""steer_ui.plots: figure builders return plotly figures with the expected traces."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest

from steer_ui import plots


def _data(n=12, d=8, seed=0):
    rng = np.random.default_rng(seed)
    axis = np.zeros(d)
    axis[0] = 5.0
    neg = rng.normal(size=(n, d))
    pos = rng.normal(size=(n, d)) + axis
    return pos, neg, axis


def test_pca_scatter():
    pos, neg, axis = _data()
    pos_labels = [f"pos {i}" for i in range(len(pos))]
    neg_labels = [f"neg {i}" for i in range(len(neg))]
    fig = plots.pca_scatter(pos, neg, {"mean-diff": axis, "probe": axis + 0.1}, pos_labels, neg_labels, "Happy")
    assert isinstance(fig, go.Figure)
    assert [t.type for t in fig.data] == ["scatter", "scatter"]
    p, n = fig.data
    assert p.name == "positive" and n.name == "negative"
    assert list(p.text) == pos_labels and list(n.text) == neg_labels
    assert len(p.x) == len(pos) and len(n.y) == len(neg)
    assert "%{text}" in p.hovertemplate
    assert fig.layout.title.text == "Happy"
    x_title, y_title = fig.layout.xaxis.title.text, fig.layout.yaxis.title.text
    assert x_title.startswith("PC1") and "variance" in x_title
    assert y_title.startswith("PC2") and "variance" in y_title
    pc1 = int(re.search(r"\((\d+)%", x_title).group(1))
    pc2 = int(re.search(r"\((\d+)%", y_title).group(1))
    assert pc1 > pc2 and pc1 > 50  # the concept axis dominates this data
    # The sides separate along PC1.
    assert abs(np.mean(p.x) - np.mean(n.x)) > 3
    # One arrow per direction, and its name beside the tip, one line apart from the next
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    labels = [a for a in fig.layout.annotations if not a.showarrow]
    assert len(arrows) == 2 and [a.text for a in labels] == ["<b>mean-diff</b>", "<b>probe</b>"]
    for arrow, label in zip(arrows, labels):
        assert (label.x, label.y) == (arrow.x, arrow.y)
    assert labels[0].yshift - labels[1].yshift >= 14  # never printed on top of each other


def test_pca_scatter_arrow_points_to_positive_side():
    pos, neg, axis = _data()
    fig = plots.pca_scatter(pos, neg, {"d": axis}, [""] * len(pos), [""] * len(neg), "t")
    arrow = next(a for a in fig.layout.annotations if a.showarrow)
    side = np.sign(np.mean(fig.data[0].x) - np.mean(fig.data[1].x))
    assert np.sign(arrow.x - arrow.ax) == side


def test_pca_scatter_without_directions():
    pos, neg, _ = _data()
    fig = plots.pca_scatter(pos, neg, {}, [""] * len(pos), [""] * len(neg), "t")
    assert len(fig.data) == 2 and len(fig.layout.annotations) == 0


def test_separability_profile():
    curves = {"big": [0.5, 0.6, 0.9, 0.8, 0.7], "small": [0.55, 0.95, 0.6]}
    fig = plots.separability_profile(curves, marks={"big": 2, "small": None})
    assert isinstance(fig, go.Figure)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["big", "small"]
    for t, ys in zip(lines, curves.values()):
        assert list(t.x) == pytest.approx(list(np.linspace(0, 1, len(ys))))
        assert min(t.x) == 0 and max(t.x) == 1
        assert list(t.y) == ys
    stars = [t for t in fig.data if t.mode == "markers"]
    assert len(stars) == 1
    assert list(stars[0].x) == [0.5] and list(stars[0].y) == [0.9]
    assert stars[0].marker.color == lines[0].line.color  # the star wears its line's colour
    assert "depth" in fig.layout.xaxis.title.text


def test_separability_profile_marks_the_current_layer_in_each_lines_colour():
    curves = {"big": [0.5, 0.6, 0.9, 0.8, 0.7], "small": [0.55, 0.95, 0.6]}
    fig = plots.separability_profile(curves, marks={"big": 2, "small": 1}, current={"big": 4, "small": 1})
    lines = {t.name: t for t in fig.data if t.mode == "lines+markers"}
    marks = [t for t in fig.data if t.mode == "markers"]
    rings = [t for t in marks if t.marker.symbol == "circle-open"]
    stars = [t for t in marks if t.marker.symbol == "star"]
    assert len(rings) == len(stars) == 2
    assert lines["big"].line.color != lines["small"].line.color
    assert [(list(r.x), list(r.y), r.marker.color) for r in rings] == [
        ([1.0], [0.7], lines["big"].line.color), ([0.5], [0.95], lines["small"].line.color)]
    assert [s.marker.color for s in stars] == [lines["big"].line.color, lines["small"].line.color]


def test_separability_profile_single_layer():
    fig = plots.separability_profile({"one": [0.7]})
    assert list(fig.data[0].x) == [0.0]


def test_heatmap():
    scores = np.arange(12, dtype=float).reshape(3, 4)
    fig = plots.heatmap(scores, "R2", "target layer", "source layer", best=[1, 3, 0])
    assert isinstance(fig, go.Figure)
    assert fig.data[0].type == "heatmap"
    assert np.array_equal(np.asarray(fig.data[0].z), scores)
    assert fig.data[1].type == "scatter"
    assert list(fig.data[1].x) == [1, 3, 0] and list(fig.data[1].y) == [0, 1, 2]
    assert fig.layout.xaxis.title.text == "target layer" and fig.layout.yaxis.title.text == "source layer"
    assert len(plots.heatmap(scores, "R2", "x", "y").data) == 1


def test_lines_with_bands():
    xs = [-1, 0, 1]
    fig = plots.lines(xs, {"happy": [0.1, 0.5, 0.9], "random": [0.5, 0.5, 0.5]}, "effect", "intensity",
                      "score", bands={"happy": ([0.0, 0.4, 0.8], [0.2, 0.6, 1.0])})
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data if t.showlegend is not False] == ["happy", "random"]
    assert len(fig.data) == 3
    band = fig.data[1]
    assert band.fill == "toself"
    assert list(band.x) == [-1, 0, 1, 1, 0, -1]
    assert list(band.y) == [0.2, 0.6, 1.0, 0.8, 0.4, 0.0]
    assert list(fig.data[0].x) == xs and list(fig.data[2].y) == [0.5, 0.5, 0.5]
    assert fig.layout.xaxis.title.text == "intensity" and fig.layout.yaxis.title.text == "score"
