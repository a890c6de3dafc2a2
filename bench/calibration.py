"""Issue 16's calibration figures: the cell Calibrate chooses on 5 neutral prompts vs the
default (middle layer, relative 0.4), both judged on 12 held-out prompts by the same
scorer, per preset and SLM; calibration wall time; heatmap and lens draw time.

Models run in this machine's default dtype (what the app uses: bf16 on CPUs with AMX),
wall clock: the target ("under 60 s for the SLM on 2 cores") is a user's wait.
"""

from __future__ import annotations

import time

import numpy as np

from common import ROOT, Row, log

NAME = "calibration"
PRESETS = ["happy-sad", "formal-casual", "optimistic-pessimistic", "polite-rude"]


def _load(name):
    from steer_ui.models.loading import ModelSpec, load_model

    return load_model(ModelSpec(name, engine="torch"))


def _ci(diffs, seed=0, n=2000):
    rng = np.random.default_rng(seed)
    d = np.asarray(diffs)
    means = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(n)]
    return [round(float(np.percentile(means, 2.5)), 3), round(float(np.percentile(means, 97.5)), 3)]


def one(lm, preset, prompts):
    from steer_ui.concepts.contrast import from_preset
    from steer_ui.concepts.extraction import extract_concept
    from steer_ui.evaluation import calibration as cal

    ex = extract_concept(lm, from_preset(preset))
    name, scorer = cal.concept_scorer(lm, ex)
    start = time.perf_counter()
    result = cal.calibrate(lm, ex.vector, scorer, name, prompts[:5])
    seconds = time.perf_counter() - start
    c, d = result.chosen or result.default, result.default
    base, (chosen, default) = cal.measure(lm, ex.vector, scorer, prompts[12:24], [(c.layer, c.intensity),
                                                                                  (d.layer, d.intensity)])
    out = {"preset": preset, "model": lm.name, "dtype": str(lm.dtype), "seconds": round(seconds, 1),
           "chosen": [c.layer, c.intensity], "found": result.chosen is not None, "default": [d.layer, d.intensity],
           "heldout_baseline": round(base, 3),
           "chosen_efficacy": round(chosen.efficacy, 3), "chosen_kl": round(chosen.kl, 3),
           "default_efficacy": round(default.efficacy, 3), "default_kl": round(default.kl, 3),
           "delta": round(chosen.efficacy - default.efficacy, 3),
           "delta_ci": _ci(np.subtract(chosen.per_prompt, default.per_prompt)),
           "efficacy_ci": _ci(np.subtract(chosen.per_prompt, base)), "reason": result.reason()}
    log(f"{lm.name} {preset}: {out}")
    return out


def draw_times(lm, prompts):
    from steer_ui.concepts import heatmap, lens
    from steer_ui.concepts.contrast import from_preset
    from steer_ui.concepts.extraction import extract_concept

    ex = extract_concept(lm, from_preset("happy-sad"))
    text = " ".join(prompts * 2)[:1000]  # about 200 tokens, the size
    hm = heatmap.token_heatmap(lm, text, ex.vector, ex.vector.default_layer, ex.pos, ex.neg)
    from steer_ui.concepts.recording import typical_norms

    typical_norms(lm)  # its forward pass is not the lens's: measured once per model, then kept
    t0 = time.perf_counter()
    heatmap.to_html(hm)
    t1 = time.perf_counter()
    lens.vector_lens(lm, ex.vector)
    lens.accessibility(lm, ex.pos, ex.neg)
    t2 = time.perf_counter()
    return len(hm.tokens), t1 - t0, t2 - t1


def run(args) -> list[Row]:
    prompts = (ROOT / "assets" / "neutral_prompts.txt").read_text().splitlines()
    models = ["smollm2-135m"] if args.quick else ["smollm2-135m", "qwen2.5-0.5b"]
    rows = []
    for name in models:
        lm = _load(name)
        results = [one(lm, p, prompts) for p in (PRESETS[:2] if args.quick else PRESETS)]
        rows.append(Row(NAME, f"{name}: calibration wall time (s), 5 prompts x 21 settings", [r["seconds"] for r in results],
                        60.0 if name.startswith("smollm") else None, "<=" if name.startswith("smollm") else "",
                        over="presets", extra={"results": results}))
        rows.append(Row(NAME, f"{name}: held-out efficacy, chosen - default", [r["delta"] for r in results],
                        over="presets", note="; ".join(f"{r['preset']} {r['delta']:+.3f} {r['delta_ci']}"
                                                      for r in results)))
        n, html_s, lens_s = draw_times(lm, prompts)
        rows.append(Row(NAME, f"{name}: heatmap HTML for {n} tokens, after the forward pass (s)", [html_s], 1.0, "<="))
        rows.append(Row(NAME, f"{name}: logit lens, every layer + accessibility (s)", [lens_s], 1.0, "<="))
    return rows
