"""steer_ui.transfer.maps.split: held-out R^2 splits by text (group), and the former
split by row leaked a text's twin rows into training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steer_ui.errors import TransferError
from steer_ui.transfer import maps as transfer
from steer_ui.transfer.maps import fit_map
from steer_ui.transfer.paired import PairedActivations


pytestmark = pytest.mark.usefixtures("one_thread_module", "isolated_cache")


def _ones(n):
    return torch.ones(n)


def _text_groups(n_texts=100, rows=2):
    """Ids as collect makes them: each text's rows (two poolings) share one id."""
    return np.array([f"neutral:{k}" for k in range(n_texts)] * rows)


def test_row_split_leaked_texts_and_the_group_split_does_not():
    groups = _text_groups()
    train, test = transfer.row_split(len(groups))
    assert set(groups[train]) & set(groups[test]), "the old split put one text's rows on both sides"
    train, test = transfer.split(groups)
    assert not set(groups[train]) & set(groups[test])
    assert sorted(np.r_[train, test].tolist()) == list(range(len(groups)))
    assert 0.15 < len(set(groups[test])) / 100 < 0.25  # a fifth of the texts are held out


def test_split_refuses_a_single_text():
    with pytest.raises(TransferError, match="at least 2"):
        transfer.split(np.array(["neutral:0"] * 10))


def _memorisable_pairs(n_texts=100, dx=256, dy=8, seed=8):
    """Two near-identical rows per text (like a text's two poolings), y unrelated to x: a
    map can only 'predict' a held-out row by having seen its twin."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n_texts, dx)), rng.standard_normal((n_texts, dy))
    x2 = np.r_[x, x + 0.01 * rng.standard_normal(x.shape)][:, None].astype(np.float32)
    y2 = np.r_[y, y + 0.01 * rng.standard_normal(y.shape)][:, None].astype(np.float32)
    return PairedActivations(x2, y2, np.array(["neutral"] * 2 * n_texts), "twins", _text_groups(n_texts))


def test_the_row_split_leak_inflates_r2_and_the_text_split_does_not():
    paired = _memorisable_pairs()
    x, y = paired.x[:, 0], paired.y[:, 0]
    leaky = transfer.fit_layer(x, y, "ridge", *transfer.row_split(len(x)), paired.source)[2]
    honest = fit_map(paired, _ones(1), _ones(1), 0, 0, "ridge").r2
    assert leaky["all"] > 0.2, "a held-out row whose twin was trained on is predicted from it"
    assert honest["all"] < 0, "held-out texts of an unrelated pairing cannot be predicted"
    assert leaky["all"] - honest["all"] > 0.5
