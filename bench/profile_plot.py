"""Extraction time of a 32-pair preset on both default models, and the separability
profile of that preset for both as a PNG (docs/separability-<preset>.png).

    python bench/profile_plot.py --preset happy-sad
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steer_ui import plots
from steer_ui.concepts import contrast
from steer_ui.concepts.extraction import extract_concept
from steer_ui.models.loading import ModelSpec, load_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="happy-sad")
    ap.add_argument("--llm", default="qwen2.5-1.5b")
    ap.add_argument("--slm", default="smollm2-135m")
    ap.add_argument("--pairs", type=int, default=32)
    args = ap.parse_args()
    cs = contrast.from_preset(args.preset, args.pairs)
    curves, marks, rows = {}, {}, {}
    for name in (args.llm, args.slm):
        lm = load_model(ModelSpec(name))
        ex = extract_concept(lm, cs)
        v = ex.vector
        curves[name], marks[name] = v.separability, v.default_layer
        rows[name] = {"seconds": round(ex.seconds, 2), "forward_passes": ex.forward_passes,
                      "default_layer": v.default_layer, "dtype": str(lm.dtype), "load_seconds": round(lm.load_seconds, 2),
                      "auc_by_layer": [round(s, 3) for s in v.separability]}
        print(name, json.dumps({k: rows[name][k] for k in ("seconds", "forward_passes", "default_layer", "dtype")}),
              flush=True)
    fig = plots.separability_profile(curves, marks, f"{args.preset}: separability by relative depth ({args.pairs} pairs)")
    out = Path("docs") / f"separability-{args.preset}.png"
    fig.write_image(out, width=900, height=420)
    Path("docs/results").mkdir(parents=True, exist_ok=True)
    Path(f"docs/results/extraction-{args.preset}.json").write_text(json.dumps(rows, indent=2))
    print("wrote", out)


if __name__ == "__main__":
    main()
