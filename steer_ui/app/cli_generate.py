"""``python -m steer_ui generate``: unsteered beside steered text, one or several vectors
composed (``--vector A.safetensors:0.4 --vector B.safetensors:-0.2@10-14``), with a system
prompt or as a raw completion. Every push is labelled in the output."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from ..errors import IntensityError, SteerError
from ..steering.layer_text import parse_layers
from .flags import spec

SPEC_HELP = ("FILE[:INTENSITY][@LAYERS], repeatable: the vectors add up (composition). A bare FILE steers "
             "at --intensity; LAYERS is 15, a range 10-14 or a list 8,12 (default: --layer, else the vector's)")
_LAYERS = re.compile(r"[\d,\s-]+")
_SEPARATORS = ("/", "\\")


@dataclass(frozen=True)
class VectorSpec:
    """One ``--vector`` argument: which file, how strong (None: --intensity), which layers."""

    path: str
    intensity: float | None = None
    layers: list[int] | None = None


def parse_vector_spec(text: str) -> VectorSpec:
    """"v.safetensors", "v.safetensors:0.4", "v.safetensors:-0.2@10-14" -> ``VectorSpec``.

    A suffix that looks like a path (it holds a slash) belongs to the file name, so
    "C:\\vectors\\v.safetensors" and "me@host/v.safetensors" stay whole."""
    rest, at, layer_text = text.rpartition("@")
    if not at or not _LAYERS.fullmatch(layer_text):
        rest, layer_text = text, ""
    path, colon, x_text = rest.rpartition(":")
    if not colon or any(s in x_text for s in _SEPARATORS):
        path, x_text = rest, None
    if not path:
        raise SteerError(f"--vector {text!r} names no file: write FILE[:INTENSITY][@LAYERS], "
                         "e.g. happy.safetensors:0.4@15.")
    x = None
    if x_text is not None:
        try:
            x = float(x_text)
        except ValueError:
            raise IntensityError(f"--vector {text!r}: intensity {x_text!r} is not a number; write "
                                 "FILE:0.4 (or FILE alone with --intensity).") from None
    layers = parse_layers(layer_text, f"--vector {text!r}: layers") if layer_text else None
    return VectorSpec(path, x, layers)


def vector_specs(args) -> list[VectorSpec]:
    """Every ``--vector`` parsed, each with its intensity and layers (its own, else
    --intensity and --layer): checked before any model loads, so a typo costs no load."""
    from ..steering.hooks import check_intensities

    default_layers = parse_layers(args.layer)
    specs = []
    for text in args.vector:
        vs = parse_vector_spec(text)
        if vs.intensity is None and args.intensity is None:
            raise SteerError(f"--vector {text} has no intensity: give --intensity, or write {vs.path}:0.4.")
        x = vs.intensity if vs.intensity is not None else args.intensity
        specs.append(VectorSpec(vs.path, check_intensities([x])[0], vs.layers if vs.layers else default_layers))
    if args.raw and args.system:
        raise SteerError("--system needs the chat template, which --raw leaves out: drop one of them "
                         "(or write the system text into --prompt).")
    return specs


def pushes_from(specs: list[VectorSpec], args, lm) -> list:
    """One ``Push`` per vector, loaded for ``lm`` (a file for another model fails on load)."""
    from ..concepts.files import load_vector
    from ..steering.hooks import Push

    pushes = []
    for vs in specs:
        v = load_vector(vs.path, lm.n_layers, lm.hidden_size)
        pushes.append(Push(v, vs.intensity, None if vs.layers is None else tuple(vs.layers), args.mode))
    return pushes


def prompt_text(args, lm) -> str:
    """What the model reads: the chat template (with --system), or the prompt as is (--raw)."""
    if args.raw:
        return args.prompt
    return lm.chat(args.prompt, system=args.system or None)


def cmd_generate(args) -> None:
    from ..models.loading import load_model
    from ..steering.engines import describe, scheduler_for
    from ..steering.generation import Sampling, generate, rows_for

    specs = vector_specs(args)
    lm = load_model(spec(args, args.model))
    pushes = pushes_from(specs, args, lm)
    main, extra = pushes[0], pushes[1:]
    sampling = Sampling(args.max_new_tokens, args.temperature, args.top_p, args.seed)
    layers = None if main.layers is None else list(main.layers)
    # row 0 has no vector, so it stays unsteered; row 1 gets the first vector and the rest composed
    plain, steered = generate(lm, prompt_text(args, lm), [None, main.vector], [0.0, main.intensity], layers,
                              sampling, mode=args.mode, positions=args.positions, chat=False, extra=extra)
    ran = scheduler_for(lm, rows_for([main.vector], [main.intensity], layers, args.mode, extra), args.positions)
    engine = "llama.cpp" if ran is lm.llama_scheduler else "torch" + (" (fallback)" if lm.engine == "llamacpp" else "")
    print(f"--- unsteered ---\n{plain}\n--- steered ({_label(pushes, args)}) ---\n{steered}\n"
          f"--- engine: {engine}; {describe(lm)} ---")


def _label(pushes, args) -> str:
    """"happy-sad, layer 15, intensity 0.6 relative" per push, joined by " + "; then how
    the prompt was given when it was not the plain chat template."""
    from ..steering.generation import layers_label

    parts = []
    for p in pushes:
        layers = p.vector.default_layer if p.layers is None else list(p.layers)
        parts.append(f"{p.vector.name}, {layers_label(layers)}, intensity {p.intensity:g} {p.mode}")
    how = "; raw completion, no chat template" if args.raw else ""
    how += f"; system prompt {args.system!r}" if args.system else ""
    return " + ".join(parts) + how


def generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--vector", required=True, action="append", metavar="FILE[:INTENSITY][@LAYERS]", help=SPEC_HELP)
    p.add_argument("--layer", help="layer, range 10-14 or list 8,12 (default: the vector's)")
    p.add_argument("--intensity", type=float, help="for every --vector given without :INTENSITY")
    p.add_argument("--mode", default="relative", choices=["relative", "raw", "adaptive"])
    p.add_argument("--positions", default="all", choices=["all", "generated"])
    p.add_argument("--prompt", required=True)
    p.add_argument("--system", default="", help="system prompt (through the model's chat template)")
    p.add_argument("--raw", action="store_true", help="no chat template: the prompt as plain text, a raw completion")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
