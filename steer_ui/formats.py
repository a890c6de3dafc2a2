"""Vector files: safetensors with JSON metadata, and llama.cpp GGUF control vectors.

safetensors never executes anything it reads (unlike pickle), which is why it is the
only format we load from users besides GGUF. Layer numbering: ours is 0-based over
decoder layers; a GGUF control vector's ``direction.N`` is 1-based (llama.cpp adds
``direction.N`` to the output of its layer N-1), so our layer i is ``direction.{i+1}``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import VectorError
from .vectors import ConceptVector

FORMAT_VERSION = 1
MAX_VECTOR_BYTES = 64 * 2**20


def metadata(v: ConceptVector, family: str = "") -> dict:
    """The JSON block stored beside the tensor."""
    meta = {k: val for k, val in asdict(v).items() if k != "directions"}
    meta.update(format_version=FORMAT_VERSION, hidden_size=v.hidden_size, n_layers=v.n_layers,
                family=family or v.provenance.get("family", ""))
    return meta


def save_vector(v: ConceptVector, path: str | Path, family: str = "") -> Path:
    """Write ``v`` as safetensors (tensor ``directions``) with metadata ``steer_ui``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"directions": v.directions.detach().float().cpu().contiguous()}
    save_file(tensors, str(path), metadata={"steer_ui": json.dumps(metadata(v, family))})
    return path


def load_vector(path: str | Path, expect_layers: int | None = None, expect_hidden: int | None = None) -> ConceptVector:
    """Read a vector file; checks shape against an expected model when given."""
    path = Path(path)
    if not path.is_file():
        raise VectorError(f"Vector file {str(path)!r} does not exist.")
    if path.stat().st_size > MAX_VECTOR_BYTES:
        raise VectorError(f"{path.name} is over {MAX_VECTOR_BYTES >> 20} MiB: not a concept vector file.")
    try:
        tensors = load_file(str(path))
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(header_len))
        meta = json.loads(header.get("__metadata__", {}).get("steer_ui", "null"))
    except (SafetensorError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise VectorError(f"{path.name} is not a readable safetensors vector file ({exc}).") from None
    if "directions" not in tensors or not isinstance(meta, dict):
        raise VectorError(f"{path.name} is a safetensors file but not a steer-ui vector "
                          "(no 'directions' tensor or no steer_ui metadata).")
    d = tensors["directions"].float()
    if d.ndim != 2 or not torch.isfinite(d).all():
        raise VectorError(f"{path.name}: 'directions' must be a finite (layers, hidden) matrix.")
    _check_shape(d, path.name, expect_layers, expect_hidden)
    fields = {k: meta[k] for k in ("model", "method", "name", "prompts_hash", "default_layer", "created") if k in meta}
    return ConceptVector(directions=d, separability=tuple(meta.get("separability", ())),
                         residual_norms=tuple(meta.get("residual_norms", ())),
                         provenance=dict(meta.get("provenance", {})), **fields)


def _check_shape(d: torch.Tensor, name: str, layers: int | None, hidden: int | None) -> None:
    if hidden is not None and d.shape[1] != hidden:
        raise VectorError(f"{name} has hidden size {d.shape[1]} but the model has {hidden}: "
                          "it was made for another model. Transfer it instead of loading it.")
    if layers is not None and d.shape[0] != layers:
        raise VectorError(f"{name} has {d.shape[0]} layers but the model has {layers}.")


def export_gguf(v: ConceptVector, path: str | Path, model_hint: str) -> Path:
    """Write a llama.cpp control vector (``--control-vector``): one tensor per layer."""
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", model_hint)
    writer.add_uint32("controlvector.layer_count", v.n_layers)
    for i in range(v.n_layers):
        writer.add_tensor(f"direction.{i + 1}", v.directions[i].float().numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def import_gguf(path: str | Path, model: str, n_layers: int, hidden: int) -> ConceptVector:
    """Read a llama.cpp/repeng control vector into a ``ConceptVector`` for ``model``."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise VectorError(f"GGUF file {str(path)!r} does not exist.")
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # gguf raises bare ValueError/struct errors on junk
        raise VectorError(f"{path.name} is not a readable GGUF file ({exc}).") from None
    dirs = torch.zeros(n_layers, hidden)
    found = 0
    for t in reader.tensors:
        if not t.name.startswith("direction."):
            continue
        layer = int(t.name.split(".", 1)[1]) - 1
        data = torch.from_numpy(np.array(t.data, dtype=np.float32).reshape(-1))
        if data.numel() != hidden:
            raise VectorError(f"{path.name}: {t.name} has {data.numel()} values but the model's "
                              f"hidden size is {hidden}: it was made for another model.")
        if not 0 <= layer < n_layers:
            raise VectorError(f"{path.name}: {t.name} is beyond this model's {n_layers} layers.")
        dirs[layer] = data
        found += 1
    if not found:
        raise VectorError(f"{path.name} holds no direction.N tensors: not a control vector.")
    field = reader.fields.get("controlvector.model_hint")
    hint = bytes(field.parts[field.data[0]]).decode() if field else ""
    return ConceptVector(directions=dirs, model=model, method="gguf-import", name=path.stem,
                         provenance={"gguf": path.name, "model_hint": hint})
