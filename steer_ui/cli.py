"""``python -m steer_ui``: the app's work, headless. Errors print one line, exit 2."""

from __future__ import annotations

import argparse
import json
import sys

from . import zoo
from .errors import SteerError


def _model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.add_argument("--dtype", help="bfloat16, float16 or float32 (default: per device)")
    p.add_argument("--layers-path", help="attribute path of the decoder layers, if not found")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow a Hub model to run its own code (off by default)")


def _spec(args, source: str):
    from .models import ModelSpec

    return ModelSpec(source, device=args.device, dtype=args.dtype, layers_path=args.layers_path,
                     trust_remote_code=args.trust_remote_code)


def cmd_models(args) -> None:
    for row in zoo.status():
        cached = ",".join(row["cached"]) or "no"
        state = "installed" if row["installed"] else f"missing ({row['install']})"
        print(f"{row['name']:<14} {row['title']:<32} {state:<12} cached: {cached}")


def cmd_extract(args) -> None:
    from .contrast import from_source
    from .formats import save_vector
    from .models import load_model
    from .workbench import extract_concept

    lm = load_model(_spec(args, args.model))
    cs = from_source(args.pairs, args.limit)
    ex = extract_concept(lm, cs, args.method, args.position)
    save_vector(ex.vector, args.out, lm.family)
    v = ex.vector
    print(f"extracted {v.name!r} from {len(cs)} pairs in {lm.name} with {v.method} "
          f"in {ex.seconds:.1f} s ({ex.forward_passes} forward passes)")
    print(f"default layer {v.default_layer} (AUC {v.separability[v.default_layer]:.3f}); "
          "AUC by layer: " + " ".join(f"{s:.2f}" for s in v.separability))
    if ex.letter_cosine:
        print(f"letter direction share (cosine with '(A)-(B)') at layer {v.default_layer}: "
              f"{ex.letter_cosine[v.default_layer]:.2f}")
    print(f"wrote {args.out}")


def cmd_generate(args) -> None:
    from .formats import load_vector
    from .generation import Sampling, generate
    from .models import load_model

    lm = load_model(_spec(args, args.model))
    v = load_vector(args.vector, lm.n_layers, lm.hidden_size)
    layers = _parse_layers(args.layer) if args.layer else None
    sampling = Sampling(args.max_new_tokens, args.temperature, args.top_p, args.seed)
    plain, steered = generate(lm, args.prompt, v, [0.0, args.intensity], layers, sampling,
                              mode=args.mode, positions=args.positions)
    layer = layers if layers is not None else v.default_layer
    print(f"--- unsteered ---\n{plain}\n--- steered ({v.name}, layer {layer}, "
          f"intensity {args.intensity:g} {args.mode}) ---\n{steered}")


def cmd_transfer(args) -> None:
    from . import contrast, diagnostics, paired, transfer
    from .formats import load_vector, save_vector
    from .models import load_model
    from .workbench import extract_concept

    v = load_vector(args.vector)
    llm = load_model(_spec(args, args.llm or v.model))
    slm = load_model(_spec(args, args.to))
    transfer.check_transferable(v, llm, slm)
    source = v.provenance.get("source", "")
    preset = source.removeprefix("preset:") if source.startswith("preset:") else None
    pairs = paired.collect(llm, slm, args.sources.split(","), preset, args.neutral)
    out, maps, _ = transfer.transfer(v, llm, slm, pairs, args.map, args.layers)
    native = extract_concept(slm, contrast.from_preset(preset, v.provenance.get("pairs"))) if preset else None
    report = diagnostics.diagnose(out, maps, native.vector if native else None,
                                  native.pos.numpy() if native else None, native.neg.numpy() if native else None)
    save_vector(out, args.out, slm.family)
    print(f"transferred {v.name!r}: {llm.name} -> {slm.name} with {args.map}, layers by {args.layers}, "
          f"{len(pairs)} paired texts")
    print(json.dumps(report.summary(), indent=2))
    for w in report.warnings:
        print(f"warning: {w}")
    print(f"wrote {args.out}")


def _parse_layers(text: str) -> list[int]:
    """"12", "10-14" or "8,12,16" -> list of layer indices."""
    try:
        if "-" in text.strip("-"):
            lo, hi = text.split("-", 1)
            return list(range(int(lo), int(hi) + 1))
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise SteerError(f"--layer {text!r} is not a layer, a range like 10-14, or a list like 8,12.") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m steer_ui", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list bundled models: installed? cached?").set_defaults(func=cmd_models)

    p = sub.add_parser("extract", help="extract a concept vector from contrast prompts")
    p.add_argument("--model", required=True)
    p.add_argument("--pairs", required=True, help="preset name, two-list JSON, or A/B (CAA) file")
    p.add_argument("--method", default="mean-diff", choices=["mean-diff", "pca", "probe"])
    p.add_argument("--position", default="last", choices=["last", "mean"])
    p.add_argument("--limit", type=int, help="use only the first N pairs/items")
    p.add_argument("--out", required=True, help="output .safetensors file")
    _model_flags(p)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("generate", help="unsteered and steered output, labelled")
    p.add_argument("--model", required=True)
    p.add_argument("--vector", required=True)
    p.add_argument("--layer", help="layer, range 10-14 or list 8,12 (default: the vector's)")
    p.add_argument("--intensity", type=float, required=True)
    p.add_argument("--mode", default="relative", choices=["relative", "raw", "adaptive"])
    p.add_argument("--positions", default="all", choices=["all", "generated"])
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    _model_flags(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("transfer", help="carry a concept vector from the LLM into the SLM")
    p.add_argument("--vector", required=True, help="vector file extracted in the LLM")
    p.add_argument("--to", required=True, help="the SLM (bundled name, folder, .gguf or Hub id)")
    p.add_argument("--llm", help="the LLM (default: the model recorded in the vector)")
    p.add_argument("--map", default="ridge", choices=["ridge", "procrustes"])
    p.add_argument("--layers", default="depth", choices=["depth", "fit"])
    p.add_argument("--sources", default="concept,neutral", help="map sources: concept, neutral or both")
    p.add_argument("--neutral", type=int, default=400, help="neutral texts to fit on")
    p.add_argument("--out", required=True)
    _model_flags(p)
    p.set_defaults(func=cmd_transfer)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SteerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
