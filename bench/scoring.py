"""Target 6: A/B scoring of a grid of intensities, batched vs one item-intensity at a time.

Three arms, rounds rotated, same items, vector and grid:
- ``batched``: one ``choice_logprobs`` call for all items and the whole grid (per item,
  the question runs once and fans out to one row per intensity at the steered layer;
  its KV cache serves every answer row);
- ``one-at-a-time``: each (item, intensity) scored on its own, every choice a full
  sequence (question + answer) in one left-padded batch of its choices: the textbook
  loop, and what ``choice_logprobs`` itself did before the shared prefix;
- ``ours-per-call``: ``choice_logprobs`` called once per (item, intensity), for scale.
The log-probabilities of all arms must agree.
"""

from __future__ import annotations

import common
from common import ROOT, Row, concept, interleave, log, model

NAME = "scoring"
GRID = [0.0, -0.5, 0.5, 1.0]


def full_sequences(lm, item, vector, x: float):
    """One item at one intensity, each choice a full sequence: (n_choices,) log-probs."""
    import torch

    from steer_ui.models.tokens import encode, token_ids
    from steer_ui.steering.hooks import steer

    prompt = lm.chat(item.prompt)
    n_prompt = len(token_ids(lm, [prompt])[0])
    batch = encode(lm, [prompt + c for c in item.choices], padding_side="left")
    lens = batch["attention_mask"].sum(1)  # (n_choices,)
    batch["position_ids"] = (batch["attention_mask"].cumsum(1) - 1).clamp(min=0)
    with steer(lm, vector, x), torch.inference_mode():
        logits = lm.model(**batch, use_cache=False).logits.float()  # (n_choices, seq, vocab)
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    return [float(logp[c, logp.shape[1] - (int(lens[c]) - n_prompt):].sum()) for c in range(len(item.choices))]


def run(args) -> list[Row]:
    import numpy as np

    from steer_ui.evaluation.scoring import choice_logprobs, load_items

    name = "smollm2-135m"
    lm = model(name)
    v = concept(lm)
    items = load_items(ROOT / "assets" / "tasks" / "sentiment_ab.jsonl")[: 4 if args.quick else 8]

    def per_row(score):
        out = np.full((len(items), len(GRID), 2), -np.inf)
        for i, it in enumerate(items):
            for k, x in enumerate(GRID):
                out[i, k] = score(it, x)
        return out

    arms = {"batched": lambda: choice_logprobs(lm, items, v, GRID),
            "one-at-a-time": lambda: per_row(lambda it, x: full_sequences(lm, it, v, x)),
            "ours-per-call": lambda: per_row(lambda it, x: choice_logprobs(lm, [it], v, [x])[0, 0])}
    res = interleave(arms, args.runs, warmup=1, log=log)
    diff = [max(float(np.abs(a - b).max()) for b in (res["one-at-a-time"]["result"][r], res["ours-per-call"]["result"][r]))
            for r, a in enumerate(res["batched"]["result"])]
    rows_total = len(items) * len(GRID) * 2
    note = (f"{name}, {len(items)} sentiment A/B items x {len(GRID)} intensities {GRID} x 2 choices = "
            f"{rows_total} rows; one-at-a-time: {len(items) * len(GRID)} calls, each choice a full sequence")
    extra = {"times": common.times(res), f"ratios_{common.other_clock()}":
             common.ratios(res["one-at-a-time"], res["batched"], common.other_clock())}
    return [
        Row(NAME, f"{name}: speed-up batched grid vs one item-intensity at a time",
            common.ratios(res["one-at-a-time"], res["batched"]), 3.0, ">=", note=note, extra=extra),
        Row(NAME, f"{name}: speed-up batched grid vs our own call per item-intensity",
            common.ratios(res["ours-per-call"], res["batched"]), None, "",
            note="both share the question's KV cache across choices; only the batched call shares "
                 "the layers below the steered one across intensities"),
        Row(NAME, f"{name}: max |logp batched - logp per row|", diff, None, "",
            note="KV cache and batch shape change float rounding only"),
    ]
