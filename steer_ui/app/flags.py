"""The model flags ``app.py`` and every CLI command share (one argparse parent), and
the ``ModelSpec`` they describe."""

from __future__ import annotations

import argparse
import os

from ..config import settings
from ..models.loading import ModelSpec


def model_flags() -> argparse.ArgumentParser:
    """A parent parser: --device, --dtype, --device-map, --layers-path, --engine, --trust-remote-code."""
    s = settings()
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model loading")
    g.add_argument("--device", default=s.device, help="cuda, mps or cpu (default: best available)")
    g.add_argument("--dtype", default=s.dtype, help="bfloat16, float16 or float32 (default: per device)")
    g.add_argument("--device-map", default=None, help="'auto' spreads a big model over the GPUs and CPU (accelerate)")
    g.add_argument("--layers-path", default=None, help="attribute path of the decoder layers, if not found")
    g.add_argument("--engine", default=s.engine, choices=["auto", "torch", "llamacpp"],
                   help="what generates: llamacpp (GGUF models on CPU, fast), torch (any model, every mode), "
                   "or auto: llamacpp where it can (default: %(default)s; $STEER_UI_ENGINE)")
    g.add_argument("--trust-remote-code", action="store_true",
                   help="let a Hub model run its own code (off by default)")
    return p


def spec_kwargs(args: argparse.Namespace) -> dict:
    """What the model flags say about loading, as ``ModelSpec`` fields."""
    return {"device": args.device, "dtype": args.dtype, "device_map": args.device_map,
            "layers_path": args.layers_path, "trust_remote_code": args.trust_remote_code,
            "engine": getattr(args, "engine", "torch")}


def spec(args: argparse.Namespace, source: str) -> ModelSpec:
    return ModelSpec(source, **spec_kwargs(args))


def server_flags() -> argparse.ArgumentParser:
    """A parent parser for serving (``app.py`` and ``serve``): where, who may call, how to batch."""
    s = settings()
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("serving")
    g.add_argument("--llm", default=s.llm, help=f"larger model: bundled name, Hub id, folder or .gguf (default {s.llm})")
    g.add_argument("--slm", default=s.slm, help=f"smaller model (default {s.slm})")
    g.add_argument("--host", default=s.host, help="address to bind (default 127.0.0.1: this machine only)")
    g.add_argument("--port", type=int, default=s.port)
    g.add_argument("--expose", action="store_true", help="allow binding a non-loopback --host (needs --api-key)")
    g.add_argument("--api-key", default=os.environ.get("STEER_UI_API_KEY") or None,
                   help="key every /v1 call must send (default: $STEER_UI_API_KEY; required with --expose)")
    g.add_argument("--allow-model-loading", action="store_true",
                   help="let API calls load folders, .gguf files or Hub ids by name (bundled models always load)")
    g.add_argument("--max-batch", type=int, default=16, help="rows one model's batch runs at most (default 16)")
    g.add_argument("--batch-window-ms", type=float, default=5.0,
                   help="how long an idle model waits for more requests before it starts (default 5 ms)")
    g.add_argument("--max-tokens", type=int, default=1024, help="the most new tokens one API request may ask for")
    g.add_argument("--memory-budget", type=float, default=None,
                   help="GB the loaded models may use; unused ones are unloaded, least recently used first")
    return p
