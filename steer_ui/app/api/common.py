"""What every endpoint shares: the server's API settings, errors in OpenAI's shape, and
turning a request's model and steering fields into a model and scheduler rows."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse

from ...errors import ModelError, SteerError, VectorError
from ...models import zoo
from ...models.loading import LoadedModel
from ...steering.hooks import POSITIONS, Push
from .schemas import SteeringEntry


@dataclass(frozen=True)
class ApiConfig:
    """How the API serves: key, loading policy, caps (each a flag of ``serve``/``app.py``)."""

    api_key: str | None = None  # required on every /v1 call when set (always set with --expose)
    allow_model_loading: bool = False  # load folders, .gguf files, Hub ids named by "model"
    max_tokens_cap: int = 1024  # the most new tokens one request may ask for
    default_max_tokens: int = 128
    max_body_bytes: int = 2 * 2**20  # JSON bodies; vector uploads have the upload cap


class ApiError(Exception):
    """An error the API answers with ``status`` in OpenAI's shape."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.code, self.param = status, kind, code, param

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": str(self), "type": self.kind, "param": self.param,
                                       "code": self.code}}, status_code=self.status)


def from_steer_error(exc: SteerError) -> ApiError:
    """A domain error as the HTTP error a client can act on."""
    text = str(exc)
    if isinstance(exc, VectorError) and text.startswith("No published vector"):
        return ApiError(404, text, "not_found_error", "vector_not_found", "steering")
    if isinstance(exc, ModelError) and ("not loaded" in text or "Unknown bundled model" in text):
        return ApiError(404, text, "not_found_error", "model_not_found", "model")
    return ApiError(400, text, "invalid_request_error", type(exc).__name__)


def model_for(request: Request, name: str) -> LoadedModel:
    """The pool's model called ``name``; a bundled model not loaded yet is loaded, anything
    else (a folder, a file, a Hub id) only with --allow-model-loading."""
    pool, config = request.app.state.pool, request.app.state.config
    if name in pool.loaded:
        return pool.loaded[name]
    if name in zoo.BUNDLED or config.allow_model_loading:
        return pool.add(name)
    loaded = ", ".join(pool.loaded) or "none"
    raise ApiError(404, f"Model {name!r} is not loaded on this server (loaded: {loaded}); the server loads "
                   "bundled models on demand, other sources only when started with --allow-model-loading.",
                   "not_found_error", "model_not_found", "model")


def pushes_for(request: Request, lm: LoadedModel, entries: list[SteeringEntry]) -> tuple[tuple[Push, ...], str]:
    """The request's steering as one row of pushes, and its positions."""
    store = request.app.state.store
    positions = {e.positions for e in entries} or {"all"}
    if len(positions) > 1 or not positions <= set(POSITIONS):
        raise ApiError(400, f"steering positions must be one of {', '.join(POSITIONS)}, the same for every entry; "
                       f"got {sorted(positions)}.", param="steering", code="bad_positions")
    pushes = []
    for e in entries:
        v = store.get(e.vector).vector
        if (v.n_layers, v.hidden_size) != (lm.n_layers, lm.hidden_size):
            raise ApiError(400, f"Vector {e.vector!r} was made for {v.model} ({v.n_layers} layers x {v.hidden_size}); "
                           f"{lm.name} has {lm.n_layers} layers x {lm.hidden_size}. Use a vector made for "
                           f"{lm.name} (transfer it in the UI).", param="steering", code="wrong_model")
        pushes.append(Push(v, e.intensity, None if e.layers is None else tuple(e.layers), e.mode))
    return tuple(pushes), positions.pop()
