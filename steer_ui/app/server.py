"""One server for the UI and the API: the FastAPI app of ``api.build_api`` with the
Gradio app mounted at ``/``, run by uvicorn (``app.py`` and ``python -m steer_ui serve``)."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager

import uvicorn

from ..config import settings
from ..errors import SteerError
from ..steering import scheduler
from .api import ApiConfig, build_api
from .pool import ModelPool
from .published import VectorStore

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_host(host: str, expose: bool, api_key: str | None = None) -> None:
    """Refuse to serve beyond this machine unless ``--expose`` says so, and then only
    with an API key for the ``/v1`` endpoints."""
    if host in LOOPBACK:
        return
    if not expose:
        raise SteerError(f"--host {host} would serve the app to other machines; add --expose if you mean it.")
    if not api_key:
        raise SteerError("--expose serves the API to other machines: give it a key (--api-key, or the "
                         "environment variable STEER_UI_API_KEY) that every /v1 call must send.")
    print(f"WARNING: serving on {host}: anyone who can reach it can use the UI; /v1 needs the API key.",
          file=sys.stderr)


def make_app(pool: ModelPool, store: VectorStore, config: ApiConfig, ui: bool = True, host: str = "127.0.0.1"):
    """The FastAPI app: the API, and the Gradio UI at ``/`` unless ``ui`` is False."""
    app = build_api(pool, store, config)
    if ui:
        import gradio as gr

        from .ui import build

        demo = build(pool, store)
        demo.queue(default_concurrency_limit=8)
        app = gr.mount_gradio_app(app, demo, path="/", server_name=host,
                                  max_file_size=f"{settings().max_upload_mb}mb")
    return app


def configure_batching(max_batch: int, window_ms: float) -> None:
    """The scheduler of every model loaded from now on uses these."""
    if max_batch < 1 or window_ms < 0:
        raise SteerError(f"--max-batch must be >= 1 and --batch-window-ms >= 0 (got {max_batch}, {window_ms}).")
    scheduler.DEFAULTS.update(max_batch=max_batch, window_ms=window_ms)


def run(app, host: str, port: int) -> None:
    uvicorn.run(app, host=host, port=port, log_level="warning")


@contextmanager
def running(app, host: str = "127.0.0.1", port: int = 0):
    """``app`` served on a thread (tests, benchmarks): yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True, name="steer-ui-server")
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise SteerError(f"The server on {host}:{port} did not start within 60 s (is the port taken?).")
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(30)


def serve_from_args(args, ui: bool = True) -> int:
    """``app.py`` and ``serve``: load the pair, then serve until interrupted; 2 on a bad flag."""
    import logging

    from .flags import spec_kwargs

    # One line per user error (bad list, bad file) in the terminal; tracebacks only for real bugs.
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("steer_ui").setLevel(logging.INFO)
    try:
        check_host(args.host, args.expose, args.api_key)
        configure_batching(args.max_batch, args.batch_window_ms)
        budget = int(args.memory_budget * 2**30) if args.memory_budget else None
        pool = ModelPool(**spec_kwargs(args), budget_bytes=budget)
        for role, source in (("llm", args.llm), ("slm", args.slm)):
            print(f"loading {role.upper()} {source} ...", flush=True)
            pool.load(role, source, progress=lambda f, m: print(f"  {m}", flush=True))
    except SteerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = ApiConfig(api_key=args.api_key, allow_model_loading=args.allow_model_loading,
                       max_tokens_cap=args.max_tokens)
    app = make_app(pool, VectorStore(), config, ui=ui, host=args.host)
    where = f"http://{args.host}:{args.port}"
    print(f"serving {'the UI at ' + where + '/ and ' if ui else ''}the API at {where}/v1 "
          f"(models: {', '.join(pool.loaded)})", flush=True)
    run(app, args.host, args.port)
    return 0
