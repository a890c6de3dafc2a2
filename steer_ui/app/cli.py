"""``python -m steer_ui``: the app's work, headless. Errors print one line, exit 2."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import SteerError
from ..models import zoo
from ..steering.layer_text import parse_layers
from .cli_explore import calibrate_args, cmd_calibrate, cmd_lens, lens_args
from .cli_generate import cmd_generate, generate_args
from .flags import model_flags, server_flags, spec


def cmd_models(args) -> None:
    for row in zoo.status():
        cached = ",".join(row["cached"]) or "no"
        state = "installed" if row["installed"] else f"missing ({row['install']})"
        print(f"{row['name']:<14} {row['title']:<32} {state:<12} cached: {cached}")


def cmd_extract(args) -> None:
    from ..concepts.contrast import from_source
    from ..concepts.extraction import extract_concept
    from ..concepts.files import save_vector
    from ..models.loading import load_model

    lm = load_model(spec(args, args.model))
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


def cmd_transfer(args) -> None:
    from ..concepts import contrast
    from ..concepts.extraction import extract_concept
    from ..concepts.files import load_vector, save_vector
    from ..models.loading import load_model
    from ..transfer import diagnostics, paired
    from ..transfer.maps import check_transferable, transfer

    v = load_vector(args.vector)
    llm = load_model(spec(args, args.llm or v.model))
    slm = load_model(spec(args, args.to))
    check_transferable(v, llm, slm)
    source = v.provenance.get("source", "")
    preset = contrast.preset_ref(source)
    pairs = paired.collect(llm, slm, args.sources.split(","), contrast.concept_name(source), args.neutral)
    out, maps, _ = transfer(v, llm, slm, pairs, args.map, args.layers)
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


def cmd_experiment(args) -> None:
    from ..app.actions.steer import parse_intensities
    from ..concepts import contrast
    from ..concepts.contrast import from_source
    from ..evaluation import experiment, report
    from ..evaluation.fluency import heldout_texts
    from ..evaluation.scoring import load_items
    from ..models.loading import load_model

    scalings = parse_scalings(args.scaling)  # before the models load: a typo costs nothing
    if args.task == "generation" and scalings != ["dev-sweep"]:
        from ..errors import DatasetError

        raise DatasetError("The generation task chooses its intensity on dev prompts (dev-sweep) only: "
                           "drop --scaling, or use --task ab for the other modes.")
    llm, slm = load_model(spec(args, args.llm)), load_model(spec(args, args.slm))
    if args.pairs == "dev":  # the concept "correct answer vs wrong answer" from the dev split only
        from ..concepts.contrast import from_ab_items, read_items

        dev, _ = experiment.split_items(read_items(args.data)[: args.limit_items], seed=args.seed)
        cs = from_ab_items(dev[: args.limit_pairs], "task-dev")
    else:
        cs = from_source(args.pairs, args.limit_pairs)
    grid = parse_intensities(args.intensities, limit=16)
    maps = [m for m in args.maps.split(",") if m]
    instruction = (args.prompt_instruction or experiment.prompting_instruction(cs.source)) \
        if args.with_prompting or args.prompt_instruction else None
    arms, diag = experiment.build_arms(llm, slm, cs, maps, args.sources.split(","), args.neutral,
                                       args.layer, args.with_llm, prompting=instruction)
    fluency = heldout_texts(args.fluency_texts)
    if args.task == "ab":
        items = load_items(args.data)[: args.limit_items]
        adaptive = parse_intensities(args.adaptive_intensities, limit=16) if args.adaptive_intensities else grid
        grids = {s: adaptive if s == "adaptive" else grid for s in scalings}
        results = experiment.run_modes(arms, items, grids, args.seed, fluency)  # lazily: each written when done
    else:
        from ..evaluation.textscore import scorer_for

        preset = contrast.preset_ref(cs.source)
        if preset is None:
            raise SteerError("The generation task scores text with a preset's scorer: give --pairs a preset.")
        prompts = [t for t in open(args.data, encoding="utf-8").read().splitlines() if t.strip()]
        results = [(scalings[0], experiment.run_generation(arms, scorer_for(preset), prompts[: args.limit_items],
                                                           grid, args.max_new_tokens, args.seed, fluency))]
    for scaling, result in results:
        result.update(models={"llm": llm.name, "slm": slm.name}, dataset=str(args.data), pairs=args.pairs,
                      task=args.task, layers={a.name: a.layer for a in arms}, transfer=diag,
                      system_prompts={a.name: a.system for a in arms if a.system})
        out = args.out if len(scalings) == 1 else f"{args.out}/{scaling}"  # several modes: one folder each
        _print_experiment(result, args.task, report.write(result, out, args.task))


def parse_scalings(text: str) -> list[str]:
    """``dev-sweep`` or a comma list of scaling modes (each once); ``DatasetError`` names a wrong one."""
    from ..errors import DatasetError
    from ..evaluation.experiment import SCALING

    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in SCALING]
    if not modes or bad or len(set(modes)) < len(modes):
        raise DatasetError(f"--scaling {text!r}: give one or more of {', '.join(SCALING)}, comma-separated, "
                         "each once.")
    return modes


def _print_experiment(result: dict, task: str, files: list) -> None:
    key = "accuracy" if task == "ab" else "efficacy"
    if task == "ab":
        print(f"-- scaling {result['scaling']}")
    for name, arm in result["arms"].items():
        t = arm["test"]
        delta = f"  delta {t['delta_vs_baseline']:+.3f} {t['delta_ci']}" if "delta_vs_baseline" in t else ""
        print(f"{name:<22} intensity {arm['intensity'] if not isinstance(arm['intensity'], dict) else 'per-item'}"
              f"  {key} {t[key]:.3f} {t[key + '_ci']}{delta}")
    print("wrote " + ", ".join(str(f) for f in files))


def cmd_export(args) -> None:
    from ..concepts.files import export_gguf, gguf_layers, layer0_note, load_vector

    v = load_vector(args.vector)
    hint = args.model_hint or v.provenance.get("family") or v.model
    if args.intensity is not None:  # bake our relative intensity in: strength 1 there = x here
        from ..models.loading import load_model
        from ..steering.hooks import as_raw

        v = as_raw(load_model(spec(args, args.model or v.model)), v, args.intensity)
    layers = parse_layers(args.layer)
    export_gguf(v, args.gguf, hint, layers)
    written = gguf_layers(v, layers)
    scale = "" if args.intensity is None else f"; strength 1.0 = our relative intensity {args.intensity:g}"
    print(f"wrote {args.gguf}: layers {_span(written)} x {v.hidden_size} (llama.cpp --control-vector, "
          f"model hint {hint!r}; direction.N is our layer N, added to that layer's output{scale})")
    if note := layer0_note(v, layers):
        print(f"note: {note}")


def _span(layers: list[int]) -> str:
    return str(layers[0]) if len(layers) == 1 else f"{layers[0]}..{layers[-1]} ({len(layers)} layers)"


def cmd_import(args) -> None:
    from ..concepts.files import import_gguf, save_vector
    from ..models.loading import load_model

    lm = load_model(spec(args, args.model))
    v = import_gguf(args.gguf, lm.name, lm.n_layers, lm.hidden_size)
    save_vector(v, args.out, lm.family)
    layers = v.provenance["gguf_layers"]
    print(f"imported {args.gguf} for {lm.name}: layers {_span(layers)}, default layer {v.default_layer}; "
          f"wrote {args.out}")


def _extract_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--pairs", required=True, help="preset name or file, two-list JSON, or A/B (CAA) file")
    p.add_argument("--method", default="mean-diff", choices=["mean-diff", "pca", "probe"])
    p.add_argument("--position", default="last", choices=["last", "mean"])
    p.add_argument("--limit", type=int, help="use only the first N pairs/items")
    p.add_argument("--out", required=True, help="output .safetensors file")


def _transfer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vector", required=True, help="vector file extracted in the LLM")
    p.add_argument("--to", required=True, help="the SLM (bundled name, folder, .gguf or Hub id)")
    p.add_argument("--llm", help="the LLM (default: the model recorded in the vector)")
    p.add_argument("--map", default="ridge", choices=["ridge", "procrustes", "anchor"],
                   help="ridge regression, Procrustes rotation, or anchor (relative-representation) coordinates")
    p.add_argument("--layers", default="depth", choices=["depth", "fit"])
    p.add_argument("--sources", default="concept,neutral", help="map sources: concept, neutral or both")
    p.add_argument("--neutral", type=int, default=400, help="neutral texts to fit on")
    p.add_argument("--out", required=True)


def _experiment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm", required=True)
    p.add_argument("--slm", required=True)
    p.add_argument("--pairs", required=True, help="preset, two-list JSON, A/B (CAA) file, or 'dev': "
                   "correct vs wrong answers of the dataset's dev split")
    p.add_argument("--data", required=True, help="A/B items (ab) or a prompts file, one per line (generation)")
    p.add_argument("--task", default="ab", choices=["ab", "generation"])
    p.add_argument("--layer", type=int, help="SLM layer (default: each vector's own)")
    p.add_argument("--maps", default="ridge,procrustes", help="comma list of ridge, procrustes, anchor; "
                   "empty for no transfer")
    p.add_argument("--sources", default="concept,neutral")
    p.add_argument("--neutral", type=int, default=400)
    p.add_argument("--scaling", default="dev-sweep", help="dev-sweep, per-example, adaptive, or a comma "
                   "list of them: one run sharing the passes they have in common, a folder per mode under --out")
    p.add_argument("--intensities", default="-1,-0.5,-0.25,0,0.25,0.5,1")
    p.add_argument("--adaptive-intensities", help="the grid of the adaptive mode (x ||h_t||, so smaller "
                   "numbers; default: --intensities)")
    p.add_argument("--with-llm", action="store_true", help="add the steered LLM as a ceiling arm")
    p.add_argument("--with-prompting", action="store_true", help="add the SLM told the concept in its "
                   "system prompt (a preset's positive persona; 'Answer correctly.' for --pairs dev)")
    p.add_argument("--prompt-instruction", help="the prompting arm's system prompt (default: derived; "
                   "implies --with-prompting)")
    for name in ("--limit-pairs", "--limit-items"):
        p.add_argument(name, type=int)
    p.add_argument("--fluency-texts", type=int, default=24)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vector", required=True)
    p.add_argument("--gguf", required=True)
    p.add_argument("--model-hint", help="controlvector.model_hint (default: the model family)")
    p.add_argument("--layer", help="only these layers: 15, a range 10-14 or a list 8,12 (default: all from 1)")
    p.add_argument("--intensity", type=float, help="bake in this relative intensity (loads the model for its "
                   "residual norms): strength 1.0 in llama.cpp or EasySteer then equals it; default: raw directions")
    p.add_argument("--model", help="the model whose norms --intensity uses (default: the vector's)")


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gguf", required=True)
    p.add_argument("--model", required=True, help="the model the control vector is for")
    p.add_argument("--out", required=True)


def cmd_serve(args) -> int:
    from .server import serve_from_args

    return serve_from_args(args, ui=not args.no_ui)


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-ui", action="store_true", help="serve the API only, without the Gradio UI")


# (name, help, its arguments, what it runs, the shared flags it takes: model loading, serving)
COMMANDS = [
    ("models", "list bundled models: installed? cached?", None, cmd_models, ()),
    ("extract", "extract a concept vector from contrast prompts", _extract_args, cmd_extract, ("model",)),
    ("generate", "unsteered and steered output, labelled (vectors compose)", generate_args, cmd_generate,
     ("model",)),
    ("transfer", "carry a concept vector from the LLM into the SLM", _transfer_args, cmd_transfer, ("model",)),
    ("experiment", "arms x intensities on a dataset, dev/test split, report", _experiment_args, cmd_experiment,
     ("model",)),
    ("export", "vector file -> llama.cpp GGUF control vector", _export_args, cmd_export, ("model",)),
    ("import", "llama.cpp/repeng GGUF control vector -> vector file", _import_args, cmd_import, ("model",)),
    ("lens", "the tokens a vector promotes and suppresses, per layer (logit lens)", lens_args, cmd_lens, ("model",)),
    ("calibrate", "sweep layers x intensities; print the best unbroken layer and intensity", calibrate_args,
     cmd_calibrate, ("model",)),
    ("serve", "the UI and the OpenAI-compatible API on one server (--no-ui: the API only)", _serve_args,
     cmd_serve, ("model", "server")),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m steer_ui", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    shared = {"model": model_flags(), "server": server_flags()}  # the same flags as app.py
    for name, help_text, add_args, func, flags in COMMANDS:
        p = sub.add_parser(name, parents=[shared[f] for f in flags], help=help_text)
        if add_args:
            add_args(p)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0  # a command may return its own exit status
    except SteerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
