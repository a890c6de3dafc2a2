"""Measure transfer on real pairs: R^2, cosine vs chance, and the shift each vector causes.

    python bench/transfer_table.py --llm qwen2.5-1.5b --slm smollm2-135m --out docs/results/transfer-1.5b-smollm2.json

For each preset: extract natively in both models, transfer the LLM vector with every
(map, sources) combination (leave-one-concept-out), diagnose against the native SLM
vector, and generate for neutral prompts at one relative intensity with the native,
transferred (ridge, concept+neutral) and random vectors as one batch; the shift is the
change of the preset's scorer (VADER or its classifier) against unsteered text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steer_ui.concepts import contrast
from steer_ui.concepts.extraction import extract_concept
from steer_ui.concepts.vectors import random_like
from steer_ui.evaluation.textscore import scorer_for
from steer_ui.models.loading import ModelSpec, load_model
from steer_ui.steering.generation import Sampling, generate
from steer_ui.transfer import diagnostics, paired
from steer_ui.transfer import maps as transfer

PRESETS = ["happy-sad", "formal-casual", "french-english", "polite-rude", "optimistic-pessimistic", "angry-calm"]
SOURCES = {"concept": ("concept",), "neutral": ("neutral",), "both": ("concept", "neutral")}


def shift(slm, vectors: dict, layer: int, scorer, prompts: list[str], x: float, tokens: int) -> dict:
    names = list(vectors)
    rows = [None] + [vectors[n] for n in names]
    values = [0.0] + [x] * len(names)
    scores = {n: [] for n in ["unsteered"] + names}
    for p in prompts:
        texts = generate(slm, p, rows, values, layer, Sampling(tokens))
        for n, t in zip(["unsteered"] + names, texts):
            scores[n].append(float(scorer.score([t])[0]))
    base = sum(scores["unsteered"]) / len(prompts)
    return {"unsteered": base, **{n: sum(v) / len(v) - base for n, v in scores.items() if n != "unsteered"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm", default="qwen2.5-1.5b")
    ap.add_argument("--slm", default="smollm2-135m")
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--neutral", type=int, default=400)
    ap.add_argument("--intensity", type=float, default=0.5)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    llm, slm = load_model(ModelSpec(args.llm)), load_model(ModelSpec(args.slm))
    prompts = (paired.ASSETS / "neutral_prompts.txt").read_text().splitlines()[: args.prompts]
    rows = []
    for preset in args.presets.split(","):
        t0 = time.perf_counter()
        cs = contrast.from_preset(preset, args.pairs)
        native, source = extract_concept(slm, cs), extract_concept(llm, cs)
        entry = {"preset": preset, "slm_layer": native.vector.default_layer,
                 "llm_layer": source.vector.default_layer, "maps": {}}
        carried = {}
        for sname, srcs in SOURCES.items():
            pairs = paired.collect(llm, slm, srcs, preset, args.neutral)
            for method in transfer.MAPS:
                vec, maps, _ = transfer.transfer(source.vector, llm, slm, pairs, method, "depth")
                rep = diagnostics.diagnose(vec, maps, native.vector, native.pos.numpy(), native.neg.numpy())
                entry["maps"][f"{method}/{sname}"] = {**rep.summary(), "n_pairs": len(pairs),
                                                     "r2_all_by_layer": rep.r2.get("all"),
                                                     "cos_by_layer": rep.cos_native}
                carried[f"{method}/{sname}"] = vec
        vectors = {"native": native.vector, "transferred ridge/both": carried["ridge/both"],
                   "transferred ridge/neutral": carried["ridge/neutral"],
                   "random": random_like(native.vector, seed=0)}
        entry["shift"] = shift(slm, vectors, native.vector.default_layer, scorer_for(preset), prompts,
                               args.intensity, args.tokens)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(entry)
        print(json.dumps({k: entry[k] for k in ("preset", "shift", "seconds")}), flush=True)
        for k, m in entry["maps"].items():
            print(f"  {k:<22} R2 {m['r2'].get('all')}  cos {m['cos_native']}  chance {m['chance_mapped_p95']}",
                  flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"llm": args.llm, "slm": args.slm, "intensity": args.intensity,
                                              "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
