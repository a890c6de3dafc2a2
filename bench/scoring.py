"""Target 6: A/B scoring with a grid of intensities, batched vs one item-intensity at a time.

Both arms call ``steer_ui.evaluation.choice_logprobs``: the batched arm once with all
items and the whole intensity grid (rows item x intensity x choice, batches of 32), the
other once per (item, intensity). Rounds alternate; the log-probabilities of both arms
must agree.
"""

from __future__ import annotations

import common
from common import ROOT, Row, concept, interleave, log, model

NAME = "scoring"
GRID = [0.0, -0.5, 0.5, 1.0]


def run(args) -> list[Row]:
    import numpy as np

    from steer_ui.evaluation import choice_logprobs, load_items

    name = "smollm2-135m"
    lm = model(name)
    v = concept(lm)
    items = load_items(ROOT / "assets" / "tasks" / "sentiment_ab.jsonl")[: 4 if args.quick else 8]

    def single():
        out = np.full((len(items), len(GRID), 2), -np.inf)
        for i, it in enumerate(items):
            for k, x in enumerate(GRID):
                out[i, k] = choice_logprobs(lm, [it], v, [x])[0, 0]
        return out

    arms = {"batched": lambda: choice_logprobs(lm, items, v, GRID), "single": single}
    res = interleave(arms, args.runs, warmup=1, log=log)
    speedup = common.ratios(res["single"], res["batched"])
    diff = [float(np.abs(a - b).max()) for a, b in zip(res["batched"]["result"], res["single"]["result"])]
    rows_total = len(items) * len(GRID) * 2
    note = (f"{name}, {len(items)} sentiment A/B items x {len(GRID)} intensities {GRID} x 2 choices = "
            f"{rows_total} rows; batched: batch_size 32; single: {len(items) * len(GRID)} calls")
    return [
        Row(NAME, f"{name}: speed-up batched grid vs one item-intensity at a time", speedup, 3.0, ">=",
            note=note, extra={"times": common.times(res), f"ratios_{common.other_clock()}":
                              common.ratios(res["single"], res["batched"], common.other_clock())}),
        Row(NAME, f"{name}: max |logp batched - logp single|", diff, None, "",
            note="left padding and batch shape change float rounding only"),
    ]
