"""steer_ui.concepts.files: safetensors vector files and llama.cpp GGUF control vectors."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import gguf
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from steer_ui.concepts import files as formats
from steer_ui.concepts.files import export_gguf, import_gguf, load_vector, save_vector
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.errors import VectorError

LAYERS, D = 4, 16


@pytest.fixture
def vec():
    g = torch.Generator().manual_seed(0)
    return ConceptVector(
        directions=torch.randn(LAYERS, D, generator=g), model="tiny-llama", method="pca", name="happy",
        separability=(0.5, 0.75, 0.875, 0.625),
        prompts_hash="0123456789abcdef", default_layer=2, created="2025-01-02T03:04:05+00:00",
        provenance={"source": "qwen", "layer": 7, "map": {"kind": "ridge", "r2": 0.5}, "list": [1, 2]},
    )


def test_safetensors_round_trip(vec, tmp_path):
    path = save_vector(vec, tmp_path / "sub" / "happy.safetensors", family="llama")
    assert path.is_file()
    back = load_vector(path, expect_layers=LAYERS, expect_hidden=D)
    assert torch.equal(back.directions, vec.directions)
    assert back.directions.dtype == torch.float32
    for field in ("model", "method", "name", "prompts_hash", "default_layer", "created"):
        assert getattr(back, field) == getattr(vec, field), field
    assert back.separability == vec.separability and isinstance(back.separability, tuple)
    assert back.provenance == vec.provenance


def test_metadata_block(vec, tmp_path):
    path = save_vector(vec, tmp_path / "v.safetensors", family="llama")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    meta = json.loads(header["__metadata__"]["steer_ui"])
    assert meta["format_version"] == formats.FORMAT_VERSION
    assert meta["hidden_size"] == D and meta["n_layers"] == LAYERS
    assert meta["family"] == "llama" and meta["name"] == "happy"
    assert "directions" not in meta
    assert header["directions"]["shape"] == [LAYERS, D] and header["directions"]["dtype"] == "F32"


def test_half_precision_vector_saved_as_float32(vec, tmp_path):
    half = vec.to(dtype=torch.float16)
    back = load_vector(save_vector(half, tmp_path / "h.safetensors"))
    assert back.directions.dtype == torch.float32
    assert torch.equal(back.directions, half.directions.float())


def test_family_from_provenance(tmp_path):
    v = ConceptVector(directions=torch.ones(2, 3), model="m", provenance={"family": "qwen2"})
    path = save_vector(v, tmp_path / "v.safetensors")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(json.loads(f.read(n))["__metadata__"]["steer_ui"])
    assert meta["family"] == "qwen2"


def test_wrong_hidden_size(vec, tmp_path):
    path = save_vector(vec, tmp_path / "v.safetensors")
    with pytest.raises(VectorError, match=r"v.safetensors has hidden size 16 but the model has 32"):
        load_vector(path, expect_layers=LAYERS, expect_hidden=32)


def test_wrong_layer_count(vec, tmp_path):
    path = save_vector(vec, tmp_path / "v.safetensors")
    with pytest.raises(VectorError, match=r"v.safetensors has 4 layers but the model has 30"):
        load_vector(path, expect_layers=30, expect_hidden=D)


def test_missing_file(tmp_path):
    with pytest.raises(VectorError, match="does not exist"):
        load_vector(tmp_path / "nope.safetensors")


def test_truncated_file(vec, tmp_path):
    path = save_vector(vec, tmp_path / "v.safetensors")
    data = path.read_bytes()
    for cut in (len(data) - 7, len(data) // 2, 20, 4):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(VectorError, match=f"cut{cut}.safetensors is not a readable safetensors"):
            load_vector(bad)


def test_random_bytes(tmp_path):
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(VectorError, match="junk.safetensors"):
        load_vector(bad)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(VectorError, match="empty.safetensors"):
        load_vector(empty)


def test_safetensors_without_our_metadata(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"directions": torch.zeros(2, 3)}, str(plain))
    with pytest.raises(VectorError, match="not a steer-ui vector"):
        load_vector(plain)
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2, 3)}, str(other), metadata={"steer_ui": json.dumps({"model": "m"})})
    with pytest.raises(VectorError, match="no 'directions' tensor"):
        load_vector(other)
    badmeta = tmp_path / "badmeta.safetensors"
    save_file({"directions": torch.zeros(2, 3)}, str(badmeta), metadata={"steer_ui": "{not json"})
    with pytest.raises(VectorError, match="badmeta.safetensors"):
        load_vector(badmeta)


def test_non_finite_or_wrong_rank(tmp_path):
    meta = {"steer_ui": json.dumps({"model": "m"})}
    nan = tmp_path / "nan.safetensors"
    save_file({"directions": torch.tensor([[1.0, float("nan")], [0.0, 1.0]])}, str(nan), metadata=meta)
    with pytest.raises(VectorError, match="finite"):
        load_vector(nan)
    flat = tmp_path / "flat.safetensors"
    save_file({"directions": torch.zeros(5)}, str(flat), metadata=meta)
    with pytest.raises(VectorError, match=r"\(layers, hidden\) matrix"):
        load_vector(flat)


def test_oversized_file(vec, tmp_path, monkeypatch):
    path = save_vector(vec, tmp_path / "v.safetensors")
    monkeypatch.setenv("STEER_UI_MAX_UPLOAD_MB", "0")
    with pytest.raises(VectorError, match="not a concept vector file"):
        load_vector(path)


# ---------- GGUF (llama.cpp's convention: direction.N is added to the output of 0-based layer N) ----------

def _no_layer0(v: ConceptVector) -> ConceptVector:
    d = v.directions.clone()
    d[0] = 0
    return replace(v, directions=d)


def test_gguf_round_trip(vec, tmp_path):
    v = _no_layer0(vec)
    path = export_gguf(v, tmp_path / "out" / "happy.gguf", model_hint="llama")
    back = import_gguf(path, model="tiny-llama", n_layers=LAYERS, hidden=D)
    assert torch.equal(back.directions, v.directions)
    assert back.model == "tiny-llama" and back.name == "happy" and back.method == "gguf-import"
    assert back.provenance == {"gguf": "happy.gguf", "model_hint": "llama", "gguf_layers": [1, 2, 3]}
    assert back.default_layer == 2  # the middle of the layers the file sets


def test_gguf_layout_is_zero_based_like_llama_cpp(vec, tmp_path):
    path = export_gguf(vec, tmp_path / "happy.gguf", model_hint="qwen2")
    reader = gguf.GGUFReader(str(path))
    names = [t.name for t in reader.tensors]
    # our layer i is direction.i; layer 0 is left out: llama.cpp never steers it
    assert names == [f"direction.{i}" for i in range(1, LAYERS)]
    count = reader.fields["controlvector.layer_count"]
    assert int(count.parts[count.data[0]][0]) == LAYERS - 1
    hint = reader.fields["controlvector.model_hint"]
    assert bytes(hint.parts[hint.data[0]]).decode() == "qwen2"
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "controlvector"
    for t in reader.tensors:
        i = int(t.name.split(".")[1])
        assert np.array_equal(np.asarray(t.data, dtype=np.float32).reshape(-1), vec.directions[i].numpy())
    assert formats.layer0_note(vec) == "layer 0 is left out of the GGUF: llama.cpp never steers layer 0."
    assert formats.layer0_note(_no_layer0(vec)) is None


def test_gguf_one_layer_export(vec, tmp_path):
    path = export_gguf(vec, tmp_path / "one.gguf", "llama", layers=[2])
    assert [t.name for t in gguf.GGUFReader(str(path)).tensors] == ["direction.2"]
    back = import_gguf(path, "tiny-llama", LAYERS, D)
    assert torch.equal(back.directions[2], vec.directions[2]) and back.directions[[0, 1, 3]].abs().sum() == 0
    assert back.default_layer == 2


def test_gguf_export_refuses_layer_zero_and_empty_vectors(vec, tmp_path):
    with pytest.raises(VectorError, match="llama.cpp cannot apply a control vector to layer 0"):
        export_gguf(vec, tmp_path / "a.gguf", "llama", layers=[0, 2])
    with pytest.raises(VectorError, match="out of range"):
        export_gguf(vec, tmp_path / "b.gguf", "llama", layers=[LAYERS])
    only0 = replace(vec, directions=torch.zeros(LAYERS, D).index_fill_(0, torch.tensor([0]), 1.0))
    with pytest.raises(VectorError, match="zero at every layer from 1 on"):
        export_gguf(only0, tmp_path / "c.gguf", "llama")
    assert not list(tmp_path.glob("*.gguf"))


def test_gguf_into_other_hidden_size(vec, tmp_path):
    path = export_gguf(vec, tmp_path / "happy.gguf", model_hint="llama")
    with pytest.raises(VectorError, match=r"direction.1 has 16 values but the model's hidden size is 32"):
        import_gguf(path, model="big", n_layers=LAYERS, hidden=32)


def test_gguf_into_fewer_layers(vec, tmp_path):
    path = export_gguf(vec, tmp_path / "happy.gguf", model_hint="llama")
    with pytest.raises(VectorError, match=r"direction.3 is beyond this model's layers 0..2"):
        import_gguf(path, model="small", n_layers=3, hidden=D)


def test_gguf_into_more_layers_leaves_zeros(vec, tmp_path):
    v = _no_layer0(vec)
    path = export_gguf(v, tmp_path / "happy.gguf", model_hint="llama")
    back = import_gguf(path, model="deep", n_layers=6, hidden=D)
    assert torch.equal(back.directions[:LAYERS], v.directions)
    assert torch.equal(back.directions[LAYERS:], torch.zeros(2, D))


def _write_gguf(path, tensors: dict) -> None:
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_uint32("controlvector.layer_count", len(tensors))
    for name, value in tensors.items():
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_sparse_layers(tmp_path):
    """repeng-style files may skip layers; direction.k fills our layer k, nothing else."""
    path = tmp_path / "sparse.gguf"
    _write_gguf(path, {"direction.2": np.full(D, 2.0, dtype=np.float32),
                       "direction.4": np.full(D, 4.0, dtype=np.float32)})
    back = import_gguf(path, model="m", n_layers=5, hidden=D)
    assert back.directions[:, 0].tolist() == [0.0, 0.0, 2.0, 0.0, 4.0]
    assert back.provenance["model_hint"] == "" and back.provenance["gguf_layers"] == [2, 4]


def test_gguf_direction_zero_is_kept_with_a_note(tmp_path):
    """repeng writes direction.0 when trained on layer 0 too; llama.cpp refuses such files."""
    path = tmp_path / "zero.gguf"
    _write_gguf(path, {"direction.0": np.ones(D, dtype=np.float32), "direction.2": np.full(D, 2.0, dtype=np.float32)})
    back = import_gguf(path, model="m", n_layers=LAYERS, hidden=D)
    assert back.directions[:, 0].tolist() == [1.0, 0.0, 2.0, 0.0]
    assert "llama.cpp would refuse this file" in back.provenance["note"]
    bad = tmp_path / "bad.gguf"
    _write_gguf(bad, {"direction.x": np.ones(D, dtype=np.float32)})
    with pytest.raises(VectorError, match="does not name a layer"):
        import_gguf(bad, model="m", n_layers=LAYERS, hidden=D)


def test_gguf_junk_and_missing(tmp_path):
    with pytest.raises(VectorError, match="does not exist"):
        import_gguf(tmp_path / "none.gguf", "m", LAYERS, D)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(os.urandom(2048))
    with pytest.raises(VectorError, match="junk.gguf is not a readable GGUF file"):
        import_gguf(junk, "m", LAYERS, D)


def test_gguf_without_directions(tmp_path):
    path = tmp_path / "empty.gguf"
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_tensor("other.weight", np.zeros(D, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(VectorError, match="holds no direction.N tensors"):
        import_gguf(path, "m", LAYERS, D)
