"""Target 2: unsteered + 4 intensities as one batch vs 5 sequential generations.

Both arms call the public ``steer_ui.steering.generation.generate`` with the same prompt, vector,
layer and greedy ``Sampling``: the batched arm once with all five intensities, the
sequential arm once per intensity. Rounds alternate the two arms. Also checked: every
batched row's text equals its sequential twin.
"""

from __future__ import annotations

import common
from common import Row, concept, interleave, log, model

NAME = "batching"
PROMPT = "Describe your ideal weekend."
INTENSITIES = [0.0, -0.5, -0.25, 0.25, 0.5]  # relative: unsteered plus four


def run(args) -> list[Row]:
    from steer_ui.steering.generation import Sampling, generate

    name = "smollm2-135m"
    lm = model(name)
    v = concept(lm)
    tokens = 12 if args.quick else 32
    sampling = Sampling(max_new_tokens=tokens)
    arms = {
        "batched": lambda: generate(lm, PROMPT, v, INTENSITIES, None, sampling),
        "sequential": lambda: [generate(lm, PROMPT, v, [x], None, sampling)[0] for x in INTENSITIES],
    }
    res = interleave(arms, args.runs, warmup=1, log=log)
    ratio = common.ratios(res["batched"], res["sequential"])
    same = [sum(a == b for a, b in zip(bt, st)) / len(INTENSITIES)
            for bt, st in zip(res["batched"]["result"], res["sequential"]["result"])]
    texts = res["batched"]["result"][-1]
    distinct = len(set(texts))
    note = (f"{name}, greedy, max {tokens} new tokens, relative intensities {INTENSITIES} at layer "
            f"{v.default_layer}; {distinct} distinct texts among the 5 rows")
    return [
        Row(NAME, f"{name}: time 1 batch of 5 / 5 sequential", ratio, 0.5, "<=", note=note,
            extra={"times": common.times(res), f"ratios_{common.other_clock()}":
                   common.ratios(res["batched"], res["sequential"], common.other_clock())}),
        Row(NAME, f"{name}: fraction of batched rows identical to sequential", same, 1.0, ">=", agg="min",
            note="greedy outputs compared as decoded strings", extra={"texts": texts}),
    ]
