"""steer_ui.transfer.anchors: the anchor-space (relative representation) map recovers
relations that keep cosines, reads only the anchors' span, and reports how much of a
direction that span keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steer_ui.transfer.anchors import anchor_weight, fit_anchor, relative, unit_anchors
from steer_ui.transfer.maps import fit_map
from steer_ui.transfer.paired import PairedActivations


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


def _cos(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _isometric(n=300, dx=10, dy=16, s=2.0, noise=0.01, seed=0):
    """y = s * x Q with Q (dx, dy) of orthonormal rows: cosines are the same in both spaces."""
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((dy, dx)))[0].T  # (dx, dy), orthonormal rows
    x = rng.standard_normal((n, dx)) * np.linspace(0.5, 2.0, dx) + 3.0  # a common offset, as residuals have
    y = s * x @ q + noise * rng.standard_normal((n, dy)) - 1.0
    return x, y, q


def test_unit_anchors_are_centred_unit_rows():
    a = unit_anchors(np.random.default_rng(0).standard_normal((50, 8)) + 5.0)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-9)
    # centred before normalising: without it the offset of 5 makes every cosine ~1
    assert abs(float((a @ a.T)[np.triu_indices(50, 1)].mean())) < 0.1


def test_relative_representations_agree_across_an_isometry():
    x, y, _ = _isometric()
    rx, ry = relative(x[100:], x[:100]), relative(y[100:], y[:100])
    assert rx.shape == ry.shape == (200, 100)
    np.testing.assert_allclose(rx, ry, atol=0.02)
    assert np.abs(rx).max() <= 1 + 1e-9


@pytest.mark.parametrize("dx,dy", [(10, 10), (10, 16)])
def test_anchor_map_carries_directions_through_an_isometry(dx, dy):
    x, y, q = _isometric(dx=dx, dy=dy)
    weight, basis = fit_anchor(x, y, k=120)
    assert weight.shape == (dy, dx) and basis.shape == (dx, dx)  # 120 anchors span all of R^10
    rng = np.random.default_rng(1)
    for _ in range(5):
        d = rng.standard_normal(dx)
        assert _cos(weight @ d, d @ q) > 0.98
    # the least-squares scale is recovered too, so R^2 means something
    assert np.linalg.norm(weight @ d) / np.linalg.norm(d) == pytest.approx(2.0, rel=0.05)


def test_anchor_map_is_the_least_squares_cosine_match():
    """W d is the direction whose inner products with the SLM anchors best match the LLM
    anchors' with d: B (W d) ~ A d, exactly so when the system is solvable."""
    rng = np.random.default_rng(2)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    ax, ay = unit(rng.standard_normal((20, 12))), unit(rng.standard_normal((20, 30)))  # B of full row rank
    w = anchor_weight(ax, ay, 1e-8)
    d = rng.standard_normal(12)
    np.testing.assert_allclose(ay @ (w @ d), ax @ d, atol=1e-5)  # 20 anchors < 30 dims: exact


def test_anchor_map_does_not_carry_an_unrelated_pairing():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((300, 1, 16)), rng.standard_normal((300, 1, 12))
    m = fit_map(PairedActivations(x.astype(np.float32), y.astype(np.float32), np.array(["neutral"] * 300), "n"),
                torch.ones(1), torch.ones(1), 0, 0, "anchor")
    assert m.r2["all"] < 0.1


def test_norm_kept_is_the_share_inside_the_anchors_span():
    rng = np.random.default_rng(4)
    dx, k = 40, 10
    x = np.zeros((200, dx))
    x[:, :k] = rng.standard_normal((200, k))  # the texts vary only in the first 10 dimensions
    y = x[:, :k] @ rng.standard_normal((k, 8))
    m = fit_map(PairedActivations(x[:, None].astype(np.float32), y[:, None].astype(np.float32),
                                  np.array(["neutral"] * 200), "span"), torch.ones(1), torch.ones(1), 0, 0, "anchor")
    assert m.basis.shape == (k, dx)
    inside, outside = np.r_[rng.standard_normal(k), np.zeros(dx - k)], np.r_[np.zeros(k), rng.standard_normal(dx - k)]
    assert m.norm_kept(inside) == pytest.approx(1.0, abs=1e-4)
    assert m.norm_kept(outside) == pytest.approx(0.0, abs=1e-4)
    assert m.norm_kept(inside + outside) == pytest.approx(
        inside @ inside / ((inside + outside) @ (inside + outside)), abs=1e-4)
    np.testing.assert_allclose(m.apply(outside), 0.0, atol=1e-4)  # what the span drops is not carried
