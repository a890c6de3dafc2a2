"""Target 1: steering overhead on greedy generation (tokens/s steered / unsteered).

Three arms decode the same prompt greedily in lock-step: unsteered, steered at one
layer, steered at every layer. Each arm keeps its own KV cache; at every token the arms
take turns (rotating order) and only the model call is timed. Interleaving per token
instead of per generation matters on a shared machine: whole-generation timings of
identical work varied by +-40% here, far more than the 2-5% being measured; per-token
interleaving puts every arm under the same load. ``steer()`` is entered around each
step, as the hooks of a real generation are: what differs between arms is exactly the
forward hooks' cost. The ratio per run is (unsteered seconds / steered seconds) over the
same number of tokens, i.e. steered tokens/s over unsteered tokens/s.
"""

from __future__ import annotations

import time

import common
from common import Row, concept, log, model

NAME = "overhead"
PROMPT = "Tell me about your weekend plans."


def _lockstep(lm, arms: dict, tokens: int) -> dict[str, dict]:
    import torch
    from transformers import DynamicCache

    from steer_ui.models.tokens import encode
    from steer_ui.steering.hooks import steer

    batch = encode(lm, [lm.chat(PROMPT)], padding_side="left")
    state = {k: {"cache": DynamicCache(), "ids": batch["input_ids"], "mask": batch["attention_mask"],
                 "wall": 0.0, "cpu": 0.0, "tokens": []} for k in arms}
    names = list(arms)
    for step in range(tokens):
        k = step % len(names)
        for name in names[k:] + names[:k]:
            s, (vector, intensity, layers) = state[name], arms[name]
            with steer(lm, vector, intensity, layers), torch.inference_mode():
                w0, c0 = time.perf_counter(), time.process_time()
                out = lm.model(input_ids=s["ids"], attention_mask=s["mask"], past_key_values=s["cache"],
                               use_cache=True, logits_to_keep=1)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                s["wall"] += time.perf_counter() - w0
                s["cpu"] += time.process_time() - c0
            s["ids"], s["mask"] = nxt, torch.cat([s["mask"], torch.ones_like(nxt)], 1)
            s["tokens"].append(int(nxt))
    return state


def run(args) -> list[Row]:
    from steer_ui.steering.hooks import hooks_left

    names = ["smollm2-135m"] if args.quick else ["smollm2-135m", "qwen2.5-0.5b"]
    tokens = 12 if args.quick else 32
    rows = []
    for name in names:
        lm = model(name)
        v = concept(lm)
        layer = v.default_layer
        arms = {"unsteered": (None, 0.0, None), "one": (v, 0.5, [layer]),
                "all": (v, 0.5, list(range(lm.n_layers)))}
        _lockstep(lm, arms, 2)  # warm-up: typical norms, kernels
        one, every, changed, raw = [], [], [], []
        for r in range(args.runs):
            st = _lockstep(lm, arms, tokens)
            one.append(st["unsteered"][common.CLOCK] / st["one"][common.CLOCK])
            every.append(st["unsteered"][common.CLOCK] / st["all"][common.CLOCK])
            changed.append(st["one"]["tokens"] != st["unsteered"]["tokens"])
            raw.append({k: {"wall": round(st[k]["wall"], 4), "cpu": round(st[k]["cpu"], 4)} for k in arms})
            log(f"  {name} run {r + 1}: unsteered {st['unsteered'][common.CLOCK]:.2f}s, "
                f"1 layer x{one[-1]:.3f}, all layers x{every[-1]:.3f}")
        assert hooks_left(lm) == 0
        note = (f"{tokens} greedy tokens per arm and run (prompt prefill included), relative intensity 0.5; "
                f"steering changed the tokens in {sum(changed)}/{len(changed)} runs")
        oc = common.other_clock()
        rows.append(Row(NAME, f"{name}: tok/s steered 1 layer (L{layer}) / unsteered", one, 0.98, ">=",
                        note=note, extra={"times": raw, f"ratios_{oc}": [
                            t["unsteered"][oc] / t["one"][oc] for t in raw]}))
        rows.append(Row(NAME, f"{name}: tok/s steered all {lm.n_layers} layers / unsteered", every, 0.95, ">=",
                        note=note, extra={f"ratios_{oc}": [t["unsteered"][oc] / t["all"][oc] for t in raw]}))
    return rows
