"""``/v1/vectors``: list, publish (multipart: a safetensors or GGUF file and a name) and
delete the vectors API callers steer with."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Form, Request, UploadFile

from ...concepts.files import import_gguf, load_vector
from ...config import max_upload_bytes
from .common import ApiError, model_for

router = APIRouter()
UPLOAD_LIMIT = max_upload_bytes  # the one cap on user files, read at request time


@router.get("/v1/vectors")
def list_vectors(request: Request) -> dict:
    return {"object": "list", "data": [p.describe() for p in request.app.state.store.all()]}


@router.post("/v1/vectors")
async def publish_vector(request: Request, file: UploadFile, name: str = Form(...), model: str | None = Form(None)):
    """A .safetensors vector (it names its model) or a .gguf control vector (give ``model``)."""
    suffix = Path(file.filename or "").suffix
    if suffix not in (".safetensors", ".gguf"):
        raise ApiError(400, f"{file.filename!r}: send a .safetensors (steer-ui) or .gguf (llama.cpp) vector file.",
                       param="file", code="bad_file_type")
    data = await file.read(max_upload_bytes() + 1)
    if len(data) > max_upload_bytes():
        raise ApiError(413, f"{file.filename} is over {max_upload_bytes() >> 20} MiB.", param="file",
                       code="body_too_large")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(file.filename).name
        path.write_bytes(data)
        if suffix == ".gguf":
            if not model:
                raise ApiError(400, "A GGUF control vector does not say which model it is for: send the form "
                               "field 'model' too.", param="model", code="model_required")
            lm = model_for(request, model)
            vector = import_gguf(path, lm.name, lm.n_layers, lm.hidden_size)
        else:
            vector = load_vector(path)
            if model:
                lm = model_for(request, model)
                vector = load_vector(path, lm.n_layers, lm.hidden_size)
    item = request.app.state.store.publish(name, vector, "upload")
    return item.describe()


@router.delete("/v1/vectors/{name}")
def delete_vector(name: str, request: Request) -> dict:
    request.app.state.store.remove(name)
    return {"id": name, "object": "steering_vector", "deleted": True}
