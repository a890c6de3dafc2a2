"""steer_ui.transfer.maps: linear maps recover known relations, layer matching, CKA, the
map cache, transferability checks and an end-to-end transfer between tiny models."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from conftest import make_tiny, tiny_tokenizer
from steer_ui.concepts.recording import typical_norms
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.errors import TransferError
from steer_ui.transfer import maps as transfer
from steer_ui.transfer.maps import LayerMap, cka_matrix, depth_pairs, fit_map
from steer_ui.transfer.paired import PairedActivations


pytestmark = pytest.mark.usefixtures("one_thread_module", "isolated_cache")


def _cos(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _linear_pairs(n=400, lx=3, dx=16, ly=2, dy=12, noise=0.01, seed=0, matching=None):
    """x random; y[:, j] = x[:, matching[j]] @ A_j + noise. Returns paired, [A_j], matching."""
    rng = np.random.default_rng(seed)
    matching = matching or [min(j, lx - 1) for j in range(ly)]
    x = rng.standard_normal((n, lx, dx)).astype(np.float32)
    mats = [rng.standard_normal((dx, dy)) / np.sqrt(dx) for _ in range(ly)]
    y = np.stack([x[:, i] @ a + noise * rng.standard_normal((n, dy)) for i, a in zip(matching, mats)], 1)
    source = np.array(["neutral"] * (n // 2) + ["concept"] * (n - n // 2))
    return PairedActivations(x, y.astype(np.float32), source, f"synthetic-{seed}"), mats, matching


def _ones(n):
    return torch.ones(n)


# ---------- fitting maps ----------

def test_ridge_recovers_a_known_linear_map():
    paired, mats, matching = _linear_pairs()
    rng = np.random.default_rng(1)
    for j, (i, a) in enumerate(zip(matching, mats)):
        m = fit_map(paired, _ones(3), _ones(2), i, j, "ridge")
        assert isinstance(m, LayerMap) and (m.llm_layer, m.slm_layer, m.method) == (i, j, "ridge")
        assert m.weight.shape == (12, 16)
        assert m.r2["all"] > 0.95
        assert m.r2["neutral"] > 0.95 and m.r2["concept"] > 0.95  # per-source R^2 present
        for _ in range(5):
            d = rng.standard_normal(16)
            assert _cos(m.apply(d), d @ a) > 0.95
        # the weight is A^T itself, not just in direction
        np.testing.assert_allclose(m.weight, a.T, atol=0.05)


def test_ridge_fits_in_units_of_typical_norm():
    """Norms rescale the data: y/sn = (x/ln) @ A * ln/sn, so the weight scales by ln/sn."""
    paired, mats, _ = _linear_pairs()
    ln, sn = torch.tensor([2.0, 4.0, 8.0]), torch.tensor([0.5, 1.0])
    m = fit_map(paired, ln, sn, 0, 0, "ridge")
    np.testing.assert_allclose(m.weight, mats[0].T * 2.0 / 0.5, atol=0.2)
    assert m.r2["all"] > 0.95


def test_procrustes_recovers_orthogonal_times_scale():
    rng = np.random.default_rng(3)
    n, d, s = 300, 10, 2.5
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    x = rng.standard_normal((n, 1, d)).astype(np.float32) * np.linspace(0.5, 2.0, d).astype(np.float32)
    y = (s * x[:, 0] @ q + 0.01 * rng.standard_normal((n, d)))[:, None].astype(np.float32)
    paired = PairedActivations(x, y, np.array(["neutral"] * n), "orth")
    m = fit_map(paired, _ones(1), _ones(1), 0, 0, "procrustes")
    assert m.weight.shape == (d, d)
    assert m.r2["all"] > 0.95
    np.testing.assert_allclose(m.weight, s * q.T, atol=0.05)
    for _ in range(5):
        v = rng.standard_normal(d)
        mapped = m.apply(v)
        assert _cos(mapped, v @ q) > 0.95
        assert np.linalg.norm(mapped) / np.linalg.norm(v) == pytest.approx(s, rel=0.05)


def test_procrustes_recovers_low_rank_relation_through_pca():
    """dx != dy, both spaces carry the same k-dimensional signal: PCA reduces then aligns."""
    rng = np.random.default_rng(4)
    n, k, dx, dy, s = 400, 6, 20, 14, 0.7
    z = rng.standard_normal((n, k)) * np.linspace(1, 3, k)
    ex, _ = np.linalg.qr(rng.standard_normal((dx, k)))  # orthonormal columns
    ey, _ = np.linalg.qr(rng.standard_normal((dy, k)))
    q, _ = np.linalg.qr(rng.standard_normal((k, k)))
    x = z @ ex.T
    y = s * (z @ q) @ ey.T
    x = (x + 1e-3 * rng.standard_normal(x.shape))[:, None].astype(np.float32)
    y = (y + 1e-3 * rng.standard_normal(y.shape))[:, None].astype(np.float32)
    paired = PairedActivations(x, y, np.array(["neutral"] * n), "lowrank")
    m = fit_map(paired, _ones(1), _ones(1), 0, 0, "procrustes")
    assert m.weight.shape == (dy, dx)
    assert m.r2["all"] > 0.95
    for _ in range(5):
        d = ex @ rng.standard_normal(k)  # a direction inside the signal subspace
        expected = s * (d @ ex) @ q @ ey.T
        assert _cos(m.apply(d), expected) > 0.95


@pytest.mark.parametrize("method", transfer.MAPS)
def test_unrelated_data_gives_r2_near_zero(method):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((400, 1, 16)).astype(np.float32)
    y = rng.standard_normal((400, 1, 12)).astype(np.float32)
    m = fit_map(PairedActivations(x, y, np.array(["neutral"] * 400), "noise"), _ones(1), _ones(1), 0, 0, method)
    assert m.r2["all"] < 0.1


@pytest.mark.parametrize("method", transfer.MAPS)
def test_r2_is_measured_on_held_out_rows(method):
    """The rows ``transfer.split`` holds out follow the opposite relation (y = -x A) to
    the training rows (y = x A). A map fitted on the training rows predicts them with
    the wrong sign, so their R^2 is about 1 - 4 = -3; scored on the training rows (an
    in-sample R^2, as a leak would give) the same map gets about 1."""
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(6)
    n, d, s = 400, 12, 1.5
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))  # orthogonal, so both maps can fit it
    x = rng.standard_normal((n, 1, d)).astype(np.float32)
    y = s * x[:, 0] @ q + 0.01 * rng.standard_normal((n, d))
    train, test = transfer.split(np.arange(n).astype(str))  # what fit_map splits: one group per row
    y[test] *= -1
    source = np.array(["neutral", "concept"] * (n // 2))
    m = fit_map(PairedActivations(x, y[:, None].astype(np.float32), source, "flipped"),
                _ones(1), _ones(1), 0, 0, method)
    in_sample = (x[train, 0] - x[train, 0].mean(0)) @ m.weight.T + y[train].mean(0)
    assert r2_score(y[train], in_sample, multioutput="variance_weighted") > 0.95
    assert m.r2["all"] < -2
    assert m.r2["neutral"] < -2 and m.r2["concept"] < -2


@pytest.mark.parametrize("method", transfer.MAPS)
@pytest.mark.parametrize("dx,dy", [(24, 8), (8, 24)])
def test_weight_shape_for_unequal_dimensions(method, dx, dy):
    paired, _, _ = _linear_pairs(n=200, lx=1, dx=dx, ly=1, dy=dy)
    m = fit_map(paired, _ones(1), _ones(1), 0, 0, method)
    assert m.weight.shape == (dy, dx)
    assert m.weight.dtype == np.float32
    assert m.apply(np.ones(dx)).shape == (dy,)
    if method == "ridge":
        assert m.r2["all"] > 0.95


def test_unknown_map_method():
    paired, _, _ = _linear_pairs(n=100)
    with pytest.raises(TransferError, match="Unknown map"):
        fit_map(paired, _ones(3), _ones(2), 0, 0, "mlp")


def test_procrustes_reports_how_much_of_a_direction_survives_its_pca():
    """Procrustes reads only the top-k PCA subspace of the LLM layer (k = 6 here, the SLM's
    size): a direction along a low-variance axis is dropped, and ``norm_kept`` says so."""
    rng = np.random.default_rng(7)
    n, dx, dy = 300, 20, 6
    x = rng.standard_normal((n, dx)) * np.r_[np.full(dy, 5.0), np.full(dx - dy, 0.1)]
    y = x[:, :dy] @ np.linalg.qr(rng.standard_normal((dy, dy)))[0]
    m = fit_map(PairedActivations(x[:, None].astype(np.float32), y[:, None].astype(np.float32),
                                  np.array(["neutral"] * n), "pca"), _ones(1), _ones(1), 0, 0, "procrustes")
    assert m.basis.shape == (dy, dx)
    np.testing.assert_allclose(m.basis @ m.basis.T, np.eye(dy), atol=1e-5)
    high, low = np.eye(dx)[0], np.eye(dx)[-1]
    assert m.norm_kept(high) > 0.99 and m.norm_kept(low) < 0.01
    assert m.norm_kept(high + low) == pytest.approx(0.5, abs=0.01)
    assert np.linalg.norm(m.apply(low)) < 0.01 * np.linalg.norm(m.apply(high))


def test_ridge_reads_the_whole_space():
    paired, _, _ = _linear_pairs()
    assert fit_map(paired, _ones(3), _ones(2), 0, 0, "ridge").norm_kept(np.ones(16)) is None


# ---------- layer matching ----------

@pytest.mark.parametrize("n_llm,n_slm", [(28, 30), (30, 24), (3, 3), (24, 30)])
def test_depth_pairs_monotone_and_spanning(n_llm, n_slm):
    pairs = depth_pairs(n_llm, n_slm)
    assert len(pairs) == n_slm
    assert pairs[0] == 0 and pairs[-1] == n_llm - 1
    assert all(a <= b for a, b in zip(pairs, pairs[1:]))
    assert all(0 <= p < n_llm for p in pairs)
    if n_llm == n_slm:
        assert pairs == list(range(n_llm))


def test_depth_pairs_relative_depth():
    pairs = depth_pairs(30, 24)
    for j, i in enumerate(pairs):
        assert abs(i / 29 - j / 23) <= 0.5 / 29 + 1e-9


def test_cka_identity_and_related_layers():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((200, 3, 16))
    cka_self = cka_matrix(x, x)
    assert cka_self.shape == (3, 3)
    np.testing.assert_allclose(np.diag(cka_self), 1.0, atol=1e-6)
    # y layer j is a linear image of x layer (2 - j): CKA must find that pairing
    paired, _, matching = _linear_pairs(n=200, lx=3, ly=3, matching=[2, 1, 0])
    cka = cka_matrix(paired.x, paired.y)
    assert cka.shape == (3, 3)
    for j, i in enumerate(matching):
        assert cka[i, j] > 0.5
        assert all(cka[i, j] > cka[k, j] + 0.2 for k in range(3) if k != i)
    assert cka.argmax(0).tolist() == matching


# ---------- cache ----------

@pytest.mark.parametrize("method", transfer.MAPS)
def test_map_disk_cache(method, tmp_path):
    paired, _, _ = _linear_pairs()
    first = fit_map(paired, _ones(3), _ones(2), 1, 1, method, cache_id="x")
    assert first.fitted
    assert list((tmp_path / "maps").rglob("1-1.npz"))
    second = fit_map(paired, _ones(3), _ones(2), 1, 1, method, cache_id="x")
    assert not second.fitted  # read back from the disk cache
    np.testing.assert_array_equal(first.weight, second.weight)
    if method == "ridge":
        assert first.basis is None and second.basis is None
    else:  # the subspace the map reads comes back too (norm survival needs it)
        np.testing.assert_array_equal(first.basis, second.basis)
    assert second.r2 == pytest.approx(first.r2)
    assert set(second.r2) == set(first.r2)
    assert (second.llm_layer, second.slm_layer, second.method) == (1, 1, method)
    # another cache id (other models) or no id fits again
    assert fit_map(paired, _ones(3), _ones(2), 1, 1, method, cache_id="y").fitted
    assert fit_map(paired, _ones(3), _ones(2), 1, 1, method).fitted


# ---------- transferability ----------

def _vec(model, layers, d, default_layer=None, seed=0, name="concept"):
    g = torch.Generator().manual_seed(seed)
    return ConceptVector(torch.randn(layers, d, generator=g), model=model, name=name,
                         default_layer=default_layer)


LLM = types.SimpleNamespace(name="big", n_layers=4, hidden_size=16)
SLM = types.SimpleNamespace(name="small", n_layers=2, hidden_size=8)


def test_check_transferable_accepts_llm_vector():
    transfer.check_transferable(_vec("big", 4, 16), LLM, SLM)  # no error


def test_check_transferable_identity():
    with pytest.raises(TransferError, match="identity"):
        transfer.check_transferable(_vec("small", 2, 8), LLM, SLM)


def test_check_transferable_third_model():
    with pytest.raises(TransferError, match="third") as err:
        transfer.check_transferable(_vec("third", 4, 16, name="x"), LLM, SLM)
    assert "big" in str(err.value)


def test_check_transferable_wrong_shape():
    with pytest.raises(TransferError, match="4 layers x 16"):
        transfer.check_transferable(_vec("big", 4, 12), LLM, SLM)
    with pytest.raises(TransferError, match="3x16"):
        transfer.check_transferable(_vec("big", 3, 16), LLM, SLM)


# ---------- end to end ----------

def _tiny_llama(hidden: int, layers: int, name: str, seed: int = 0):
    """A tiny llama of a chosen size (make_tiny's are all 3 x 32)."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from steer_ui.models.layers import find_layers
    from steer_ui.models.loading import LoadedModel, ModelSpec
    from steer_ui.models.tokens import ensure_pad_token

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=320, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=2 * hidden, max_position_embeddings=128)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    tok = tiny_tokenizer()
    ensure_pad_token(tok)
    return LoadedModel(name=name, spec=ModelSpec(name), model=model, tokenizer=tok,
                       layers=find_layers(model), device=torch.device("cpu"), dtype=torch.float32)


def _paired_for(llm, slm, n=200, seed=0):
    """Synthetic activations of the models' shapes, y[:, j] linear in x[:, depth_pairs[j]]."""
    rng = np.random.default_rng(seed)
    src = depth_pairs(llm.n_layers, slm.n_layers)
    x = rng.standard_normal((n, llm.n_layers, llm.hidden_size)).astype(np.float32)
    mats = [rng.standard_normal((llm.hidden_size, slm.hidden_size)) for _ in range(slm.n_layers)]
    y = np.stack([x[:, i] @ a + 0.01 * rng.standard_normal((n, slm.hidden_size)) for i, a in zip(src, mats)], 1)
    return PairedActivations(x, y.astype(np.float32), np.array(["neutral"] * n), f"e2e-{seed}"), mats, src


@pytest.mark.parametrize("method", transfer.MAPS)
def test_transfer_end_to_end(method):
    llm = make_tiny("llama")
    llm.name = "tiny-llm"
    slm = make_tiny("qwen2", seed=1)
    slm.name = "tiny-slm"
    paired, mats, src = _paired_for(llm, slm)
    vector = _vec("tiny-llm", llm.n_layers, llm.hidden_size, default_layer=1)
    vector = ConceptVector(vector.directions * torch.tensor([[1.0], [3.0], [0.2]]), model="tiny-llm",
                           name="happy", default_layer=1, provenance={"pairs": "p"})
    out, maps, cka = transfer.transfer(vector, llm, slm, paired, method, "depth")
    assert cka is None
    assert tuple(out.directions.shape) == (slm.n_layers, slm.hidden_size)
    assert out.model == "tiny-slm"
    assert out.provenance["transferred_from"] == "tiny-llm"
    assert out.provenance["pairs"] == "p"  # the source's provenance is kept
    assert out.provenance["map"] == method
    assert out.method == f"transfer:{method}"
    assert out.provenance["map_data"] == paired.data.as_dict()
    kept = out.provenance["norm_kept"]
    assert kept is None if method == "ridge" else (len(kept) == slm.n_layers and all(0 <= k <= 1 for k in kept))
    assert out.default_layer == 1
    assert [(m.llm_layer, m.slm_layer) for m in maps] == list(zip(src, range(slm.n_layers)))
    ln, sn = typical_norms(llm), typical_norms(slm)
    for j, m in enumerate(maps):
        i = m.llm_layer
        rel_out = float(out.directions[j].norm() / sn[j])
        rel_src = float(vector.directions[i].norm() / ln[i])
        assert rel_out == pytest.approx(rel_src, rel=1e-4, abs=1e-4)
    if method == "ridge":  # the relation is exactly linear: the direction follows A
        for j, (i, a) in enumerate(zip(src, mats)):
            assert _cos(out.directions[j].numpy(), vector.directions[i].numpy() @ a) > 0.95


def test_transfer_between_models_of_different_sizes():
    llm = _tiny_llama(hidden=32, layers=4, name="tiny-big")
    slm = _tiny_llama(hidden=16, layers=2, name="tiny-small", seed=1)
    paired, mats, src = _paired_for(llm, slm)
    vector = _vec("tiny-big", 4, 32, default_layer=3)
    out, maps, _ = transfer.transfer(vector, llm, slm, paired, "ridge")
    assert tuple(out.directions.shape) == (2, 16)
    assert src == [0, 3]
    assert all(m.weight.shape == (16, 32) for m in maps)
    assert out.default_layer == 1  # SLM layer whose LLM layer is nearest the source's layer 3
    assert out.provenance["source_layer"] == 3
    assert len(out.provenance["fit_r2"]) == 2 and min(out.provenance["fit_r2"]) > 0.9
    ln, sn = typical_norms(llm), typical_norms(slm)
    for j, i in enumerate(src):
        assert float(out.directions[j].norm() / sn[j]) == pytest.approx(
            float(vector.directions[i].norm() / ln[i]), rel=1e-4)
        assert _cos(out.directions[j].numpy(), vector.directions[i].numpy() @ mats[j]) > 0.95


def test_transfer_fit_matching_returns_cka():
    llm = _tiny_llama(hidden=32, layers=4, name="tiny-big")
    slm = _tiny_llama(hidden=16, layers=2, name="tiny-small", seed=1)
    paired, _, src = _paired_for(llm, slm)
    out, maps, cka = transfer.transfer(_vec("tiny-big", 4, 32), llm, slm, paired, "ridge", "fit")
    assert cka.shape == (4, 2)
    assert [m.llm_layer for m in maps] == cka.argmax(0).tolist() == src


def test_transfer_cached_second_time():
    llm = _tiny_llama(hidden=32, layers=4, name="tiny-big")
    slm = _tiny_llama(hidden=16, layers=2, name="tiny-small", seed=1)
    paired, _, _ = _paired_for(llm, slm)
    v = _vec("tiny-big", 4, 32)
    first, maps1, _ = transfer.transfer(v, llm, slm, paired, "ridge")
    assert [m.fitted for m in maps1] == [True, True]
    second, maps2, _ = transfer.transfer(v, llm, slm, paired, "ridge")
    assert [m.fitted for m in maps2] == [False, False]
    torch.testing.assert_close(first.directions, second.directions)


def test_transfer_errors():
    llm = _tiny_llama(hidden=32, layers=4, name="tiny-big")
    slm = _tiny_llama(hidden=16, layers=2, name="tiny-small", seed=1)
    paired, _, _ = _paired_for(llm, slm, n=80)
    with pytest.raises(TransferError, match="Unknown layer matching"):
        transfer.transfer(_vec("tiny-big", 4, 32), llm, slm, paired, "ridge", "nearest")
    with pytest.raises(TransferError, match="identity"):
        transfer.transfer(_vec("tiny-small", 2, 16), llm, slm, paired, "ridge")
    with pytest.raises(TransferError, match="Unknown map"):
        transfer.transfer(_vec("tiny-big", 4, 32), llm, slm, paired, "mlp")
