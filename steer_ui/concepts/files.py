"""Vector files: safetensors with JSON metadata, and llama.cpp GGUF control vectors.

safetensors never executes anything it reads (unlike pickle), which is why it is the
only format we load from users besides GGUF. Layer numbering: ours is 0-based over
decoder layers, and so is a GGUF control vector's: llama.cpp (``common_control_vector_load_one``
and ``llama_adapter_cvec``) adds ``direction.N`` to the output of its 0-based layer N, the
layer repeng hooks as ``model.layers[N]``, and it never steers layer 0. So our layer i is
``direction.{i}``, and a vector with a non-zero layer 0 cannot be applied by llama.cpp.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..config import max_upload_bytes
from ..errors import VectorError
from .vectors import ConceptVector

FORMAT_VERSION = 1


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
    if path.stat().st_size > max_upload_bytes():
        raise VectorError(f"{path.name} is over {max_upload_bytes() >> 20} MiB: not a concept vector file.")
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
                         provenance=dict(meta.get("provenance", {})), **fields)


def _check_shape(d: torch.Tensor, name: str, layers: int | None, hidden: int | None) -> None:
    if hidden is not None and d.shape[1] != hidden:
        raise VectorError(f"{name} has hidden size {d.shape[1]} but the model has {hidden}: "
                          "it was made for another model. Transfer it instead of loading it.")
    if layers is not None and d.shape[0] != layers:
        raise VectorError(f"{name} has {d.shape[0]} layers but the model has {layers}.")


def gguf_layers(v: ConceptVector, layers: list[int] | None = None) -> list[int]:
    """The layers a GGUF control vector of ``v`` carries: ``layers``, or every non-zero
    layer from 1 on. ``VectorError`` for layer 0 (llama.cpp never steers it) or nothing left."""
    if layers is None:
        chosen = [i for i in range(1, v.n_layers) if bool(v.directions[i].abs().sum() > 0)]
    else:
        chosen = sorted(set(layers))
        bad = [i for i in chosen if not 0 < i < v.n_layers]
        if 0 in bad:
            raise VectorError("llama.cpp cannot apply a control vector to layer 0 (its control vectors "
                              "start at layer 1): pick layers 1 and up.")
        if bad:
            raise VectorError(f"Layer {bad[0]} is out of range: {v.name!r} has layers 0..{v.n_layers - 1}.")
    if not chosen:
        raise VectorError(f"Vector {v.name!r} is zero at every layer from 1 on: llama.cpp would have "
                          "nothing to apply (it never steers layer 0).")
    return chosen


def layer0_note(v: ConceptVector, layers: list[int] | None = None) -> str | None:
    """What an export leaves out that the user should know: a non-zero layer 0."""
    if layers is None and v.n_layers and bool(v.directions[0].abs().sum() > 0):
        return "layer 0 is left out of the GGUF: llama.cpp never steers layer 0."
    return None


def export_gguf(v: ConceptVector, path: str | Path, model_hint: str, layers: list[int] | None = None) -> Path:
    """Write a llama.cpp control vector (``--control-vector``): ``direction.i`` is our layer i.

    ``layers``: which layers to write (default: every non-zero layer from 1 on). llama.cpp
    applies every layer in the file at once, so a one-layer file steers like steer-ui
    does at that layer (``raw`` mode, strength 1). Layer 0 is never written: llama.cpp
    cannot apply it (``layer0_note`` says so when it is dropped).
    """
    import gguf

    chosen = gguf_layers(v, layers)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", model_hint)
    writer.add_uint32("controlvector.layer_count", len(chosen))
    for i in chosen:
        writer.add_tensor(f"direction.{i}", v.directions[i].float().numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def import_gguf(path: str | Path, model: str, n_layers: int, hidden: int) -> ConceptVector:
    """Read a llama.cpp/repeng/EasySteer control vector into a ``ConceptVector`` for
    ``model``: ``direction.N`` becomes our layer N. ``direction.0``, which repeng writes
    when trained on layer 0 too, is kept (provenance notes that llama.cpp refuses it)."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise VectorError(f"GGUF file {str(path)!r} does not exist.")
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # gguf raises bare ValueError/struct errors on junk
        raise VectorError(f"{path.name} is not a readable GGUF file ({exc}).") from None
    dirs = torch.zeros(n_layers, hidden)
    found: list[int] = []
    for t in reader.tensors:
        if not t.name.startswith("direction."):
            continue
        try:
            layer = int(t.name.split(".", 1)[1])
        except ValueError:
            raise VectorError(f"{path.name}: tensor {t.name!r} does not name a layer (direction.N).") from None
        data = torch.from_numpy(np.array(t.data, dtype=np.float32).reshape(-1))
        if data.numel() != hidden:
            raise VectorError(f"{path.name}: {t.name} has {data.numel()} values but the model's "
                              f"hidden size is {hidden}: it was made for another model.")
        if not 0 <= layer < n_layers:
            raise VectorError(f"{path.name}: {t.name} is beyond this model's layers 0..{n_layers - 1}.")
        dirs[layer] = data
        found.append(layer)
    if not found:
        raise VectorError(f"{path.name} holds no direction.N tensors: not a control vector.")
    field = reader.fields.get("controlvector.model_hint")
    hint = bytes(field.parts[field.data[0]]).decode() if field else ""
    found.sort()
    provenance = {"gguf": path.name, "model_hint": hint, "gguf_layers": found}
    if found[0] == 0:  # repeng and EasySteer apply it; llama.cpp refuses the whole file
        provenance["note"] = "direction.0 (layer 0) is set: llama.cpp would refuse this file."
    return ConceptVector(directions=dirs, model=model, method="gguf-import", name=path.stem,
                         default_layer=found[len(found) // 2],  # the one layer, or the middle one set
                         provenance=provenance)
