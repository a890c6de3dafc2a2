"""An OpenAI-compatible HTTP API on the same server as the UI: ``/v1/models``,
``/v1/chat/completions``, ``/v1/completions`` (streamed as server-sent events or not),
and ``/v1/vectors``. Steering rides in an extension field the official ``openai``
client passes through ``extra_body``::

    client.chat.completions.create(model="smollm2-135m", messages=[...],
        extra_body={"steering": [{"vector": "happy-sad", "intensity": 0.4, "layers": [15]}]})

Every request goes through the model's batching scheduler, beside the UI's. Errors
come back in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from ...errors import SteerError
from ..pool import ModelPool
from ..published import VectorStore
from . import completions, vectors
from .common import ApiConfig, ApiError, from_steer_error

__all__ = ["ApiConfig", "ApiError", "build_api"]


def build_api(pool: ModelPool, store: VectorStore, config: ApiConfig = ApiConfig()) -> FastAPI:
    """The FastAPI app serving ``/v1``; the Gradio UI mounts on it at ``/``."""
    app = FastAPI(title="steer-ui API", docs_url="/v1/docs", openapi_url="/v1/openapi.json", redoc_url=None)
    app.state.pool, app.state.store, app.state.config = pool, store, config

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if request.url.path.startswith("/v1"):
            if config.api_key and not _authorized(request, config.api_key):
                return ApiError(401, "Missing or wrong API key: send 'Authorization: Bearer <key>' (the key the "
                                "server was started with, --api-key or STEER_UI_API_KEY).",
                                "authentication_error", "invalid_api_key").response()
            limit = vectors.UPLOAD_LIMIT() if request.url.path == "/v1/vectors" else config.max_body_bytes
            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > limit:
                return ApiError(413, f"The request body is {int(length)} bytes, more than the {limit} bytes this "
                                "endpoint takes.", code="body_too_large").response()
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return exc.response()

    @app.exception_handler(SteerError)
    async def steer_error(request: Request, exc: SteerError):
        return from_steer_error(exc).response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return ApiError(400, f"Invalid request: {where or 'body'}: {first.get('msg', 'malformed')}.",
                        param=where or None, code="invalid_request").response()

    app.include_router(completions.router)
    app.include_router(vectors.router)
    return app


def _authorized(request: Request, key: str) -> bool:
    given = request.headers.get("authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    return hmac.compare_digest(token.encode(), key.encode())
