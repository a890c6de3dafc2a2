"""``lens`` and ``calibrate``: where a concept reaches the output, and where it steers best."""

from __future__ import annotations

import argparse

from ..errors import ContrastError, SteerError
from .flags import spec


def cmd_lens(args) -> None:
    from ..concepts.files import load_vector
    from ..concepts.lens import vector_lens
    from ..models.loading import load_model

    lm = load_model(spec(args, args.model))
    v = load_vector(args.vector, lm.n_layers, lm.hidden_size)
    layers = parse_layer_list(args.layer, lm.n_layers) if args.layer else list(range(lm.n_layers))
    for row in vector_lens(lm, v, layers, args.top):
        print(f"layer {row.layer:>2}  promotes: {_tokens(row.promoted)}")
        print(f"          suppresses: {_tokens(row.suppressed)}")


def _tokens(pairs) -> str:
    return "  ".join(f"{t!r} {x:+.1f}" for t, x in pairs)


def cmd_calibrate(args) -> None:
    from ..concepts.contrast import from_source, preset_ref
    from ..concepts.extraction import extract_concept
    from ..concepts.files import load_vector
    from ..evaluation import calibration
    from ..models.loading import load_model
    from .actions.steer import parse_intensities

    lm = load_model(spec(args, args.model))
    v = load_vector(args.vector, lm.n_layers, lm.hidden_size)
    pairs = args.pairs or preset_ref(v.provenance.get("source", ""))
    if not pairs:
        raise ContrastError(f"{args.vector} records no preset: give --pairs (the preset or lists it was "
                            "extracted from), so calibration knows how to score the concept.")
    ex = extract_concept(lm, from_source(pairs))
    name, scorer = calibration.concept_scorer(lm, ex)
    layers = parse_layer_list(args.layers, lm.n_layers) if args.layers else None
    result = calibration.calibrate(lm, v, scorer, name, read_prompts(args.prompts, args.n_prompts), layers,
                                   parse_intensities(args.intensities), args.max_new_tokens, args.guard)
    print(grid_table(result))
    print(result.reason())
    c = result.chosen
    print(f"chosen: layer {c.layer} intensity {c.intensity:g}" if c else "chosen: none")


def grid_table(result) -> str:
    """The efficacy grid as text, broken cells marked with x."""
    layers, values, _ = result.matrix()
    by = {(c.layer, c.intensity): c for c in result.cells}
    lines = [f"efficacy ({result.scorer}, unsteered {result.baseline:.3f}) / KL nat per token; x: broken",
             "layer " + "".join(f"{x:>15g}" for x in values)]
    for i in layers:
        cells = [by[(i, x)] for x in values]
        lines.append(f"{i:>5} " + "".join(f"{c.efficacy:>+8.3f}/{c.kl:<4.2f}{'x' if c.broken else ' '}"
                                         for c in cells))
    return "\n".join(lines)


def read_prompts(path: str | None, n: int) -> list[str]:
    """The neutral prompts: a file's non-empty lines, or the first ``n`` bundled ones."""
    from ..config import ASSETS
    from ..evaluation.calibration import MAX_PROMPTS

    source = path or ASSETS / "neutral_prompts.txt"
    try:
        lines = [t.strip() for t in open(source, encoding="utf-8").read().splitlines() if t.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ContrastError(f"Cannot read prompts from {source}: {exc}. Give a UTF-8 text file, one per line.") from None
    return lines if path else lines[: min(n, MAX_PROMPTS)]


def parse_layer_list(text: str, n_layers: int) -> list[int]:
    """"15", "10-14", "8,12,16" or "3-27:6" (every 6th) -> layer indices in 0..n_layers-1."""
    try:
        out = []
        for part in text.split(","):
            span, _, step = part.partition(":")
            lo, _, hi = span.strip().partition("-")
            out += list(range(int(lo), int(hi or lo) + 1, int(step or 1)))
    except ValueError:
        raise SteerError(f"Layers {text!r}: use a layer (15), a range (10-14), every k-th (3-27:6) "
                         "or a list (8,12,16).") from None
    from ..steering.hooks import check_layers

    return check_layers(out, n_layers)


def lens_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--vector", required=True)
    p.add_argument("--layer", help="layers to read: 15, 10-14, 3-27:6 or 8,12 (default: every layer)")
    p.add_argument("--top", type=int, default=10, help="tokens each way per layer (default 10)")


def calibrate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--vector", required=True)
    p.add_argument("--pairs", help="the preset or lists the vector came from (default: the one it records)")
    p.add_argument("--prompts", help="neutral prompts, one per line (default: the bundled ones)")
    p.add_argument("--n-prompts", type=int, default=5, help="how many bundled prompts (default 5)")
    p.add_argument("--layers", help="layers to try: 3-27:6, 10-14 or 8,12 (default: 5 from 10%% to 90%%)")
    p.add_argument("--intensities", default="0.15,0.3,0.5,0.8")
    p.add_argument("--guard", type=float, default=1.0, help="KL nat/token above which a cell is broken")
    p.add_argument("--max-new-tokens", type=int, default=24)
