"""The model flags ``app.py`` and every CLI command share (one argparse parent), and
the ``ModelSpec`` they describe."""

from __future__ import annotations

import argparse

from ..config import settings
from ..models.loading import ModelSpec


def model_flags() -> argparse.ArgumentParser:
    """A parent parser: --device, --dtype, --device-map, --layers-path, --trust-remote-code."""
    s = settings()
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model loading")
    g.add_argument("--device", default=s.device, help="cuda, mps or cpu (default: best available)")
    g.add_argument("--dtype", default=s.dtype, help="bfloat16, float16 or float32 (default: per device)")
    g.add_argument("--device-map", default=None, help="'auto' spreads a big model over the GPUs and CPU (accelerate)")
    g.add_argument("--layers-path", default=None, help="attribute path of the decoder layers, if not found")
    g.add_argument("--trust-remote-code", action="store_true",
                   help="let a Hub model run its own code (off by default)")
    return p


def spec_kwargs(args: argparse.Namespace) -> dict:
    """What the model flags say about loading, as ``ModelSpec`` fields."""
    return {"device": args.device, "dtype": args.dtype, "device_map": args.device_map,
            "layers_path": args.layers_path, "trust_remote_code": args.trust_remote_code}


def spec(args: argparse.Namespace, source: str) -> ModelSpec:
    return ModelSpec(source, **spec_kwargs(args))
