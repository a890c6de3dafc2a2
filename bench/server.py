"""The shared server: many users at once, and the cost of the HTTP API.

    python bench/run.py --only server [--quick] [--threads 2]

1. 8 clients x 20 requests at once on SmolLM2-135M (fp32), each client with its own
   vector sign and intensity: aggregate new tokens/s of the batching scheduler vs
   version one's path (one ``model.generate`` at a time under the model's lock, hooks
   from ``steer()``), p50/p95 request latency of both, and every scheduler output
   compared with the same request run alone through the lock path (an independent
   implementation: transformers' own ``generate``): 0 mismatches, 0 errors, 0 hooks left.
2. One streamed, steered request through ``/v1/chat/completions`` (the official
   ``openai`` client, loopback) vs the library's ``generate`` with the same settings:
   tokens/s, alternating, median of runs.
Wall clock: concurrency is the point, so CPU time would hide it.
"""

from __future__ import annotations

import statistics
import threading
import time

from common import Row, concept, log, model

NAME = "server"
PROMPTS = ["Tell me about your weekend.", "Describe a walk in the park.", "What do you think of Mondays?",
           "Write a note to a friend.", "Talk about your favourite meal.", "How was the weather?",
           "Describe your morning.", "What did you learn today?"]


def run(args) -> list[Row]:
    lm = model("smollm2-135m")
    v = concept(lm)
    clients, per_client, tokens = (8, 4, 16) if args.quick else (8, 20, 24)
    jobs = [[(PROMPTS[c], (0.3 + 0.1 * (c % 4)) * (1 if c % 2 else -1)) for _ in range(per_client)]
            for c in range(clients)]
    log(f"  {clients} clients x {per_client} requests x {tokens} tokens: the lock path, then the scheduler")
    lock = _hammer(jobs, lambda p, x: _lock_generate(lm, v, p, x, tokens))
    sched = _hammer(jobs, lambda p, x: _scheduler_generate(lm, v, p, x, tokens))
    mismatches = sum(a != b for a, b in zip(sched["texts"], lock["texts"]))
    from steer_ui.steering.hooks import hooks_left

    note = (f"smollm2-135m fp32, {clients} clients x {per_client} requests, {tokens} new tokens each (greedy), "
            f"layer {v.default_layer}; both arms in this process, one after the other, wall clock")
    rows = [
        Row(NAME, "aggregate tokens/s: scheduler / one generation at a time", [sched["tps"] / lock["tps"]], 4.0, ">=",
            note=note, extra={"scheduler_tps": sched["tps"], "lock_tps": lock["tps"]}),
        Row(NAME, "p50 latency (s): lock path", [lock["p50"]], None, "", note="information"),
        Row(NAME, "p50 latency (s): scheduler", [sched["p50"]], None, "", note="information"),
        Row(NAME, "p95 latency (s): lock path", [lock["p95"]], None, "", note="information"),
        Row(NAME, "p95 latency (s): scheduler", [sched["p95"]], None, "", note="information"),
        Row(NAME, "scheduler outputs that differ from the request run alone", [float(mismatches)], 0, "==",
            agg="max", note="alone: transformers' generate under the lock, the same vector and intensity"),
        Row(NAME, "errors (both arms)", [float(lock["errors"] + sched["errors"])], 0, "==", agg="max"),
        Row(NAME, "hooks left on the model", [float(hooks_left(lm))], 0, "==", agg="max"),
    ]
    return rows + [_ceiling(lm, clients, args)] + _api_overhead(lm, v, args)


def _ceiling(lm, k: int, args) -> Row:
    """What batching can give at most on this machine: tokens/s of one k-row decode step
    over one 1-row step, bare forward passes on a prompt-length cache (no scheduler)."""
    import torch

    from steer_ui.models.tokens import token_ids

    ids = torch.tensor([token_ids(lm, [lm.chat(PROMPTS[0])])[0]])

    def step_seconds(rows: int) -> float:
        with lm.lock, torch.inference_mode():
            cache = lm.model(input_ids=ids.repeat(rows, 1), use_cache=True).past_key_values
            t0 = time.perf_counter()
            for _ in range(8):
                lm.model(input_ids=torch.zeros(rows, 1, dtype=torch.long), past_key_values=cache, use_cache=True)
            return (time.perf_counter() - t0) / 8

    ratios = []
    for _ in range(3 if args.quick else 5):
        one, many = step_seconds(1), step_seconds(k)
        ratios.append(k * one / many)
    return Row(NAME, f"ceiling: tokens/s of a bare {k}-row decode step / a 1-row step", ratios, None, "",
               note="information: the most any batching can gain here (2 CPU cores: a step is compute-bound)")


def _hammer(jobs, call) -> dict:
    """Every client on its own thread at once; wall time, tokens/s, latencies, texts in job order."""
    texts = [[None] * len(j) for j in jobs]
    latencies, errors, tokens = [], [], [0]
    barrier = threading.Barrier(len(jobs))

    def client(c):
        barrier.wait()
        for i, (prompt, x) in enumerate(jobs[c]):
            t0 = time.perf_counter()
            try:
                texts[c][i], n = call(prompt, x)
                tokens[0] += n
            except Exception as exc:  # noqa: BLE001 - counted, reported
                errors.append(exc)
            latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(len(jobs))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=20)
    return {"tps": tokens[0] / wall, "p50": statistics.median(latencies), "p95": q[18], "errors": len(errors),
            "texts": [t for row in texts for t in row], "wall": wall}


def _lock_generate(lm, v, prompt, x, tokens):
    """Version one: one generation holds the model for its whole length."""
    import torch

    from steer_ui.models.tokens import encode
    from steer_ui.steering.hooks import steer

    with lm.lock:
        batch = encode(lm, [lm.chat(prompt)], padding_side="left")
        with steer(lm, v, x, None), torch.inference_mode():
            out = lm.model.generate(**batch, max_new_tokens=tokens, do_sample=False, temperature=None, top_p=None,
                                    top_k=None, pad_token_id=lm.tokenizer.pad_token_id)
    new = out[0, batch["input_ids"].shape[1]:]
    return lm.tokenizer.decode(new, skip_special_tokens=True), len(new)


def _scheduler_generate(lm, v, prompt, x, tokens):
    from steer_ui.steering.generation import Sampling, generate

    text = generate(lm, prompt, v, [x], None, Sampling(tokens))[0]
    return text, len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])


def _api_overhead(lm, v, args) -> list[Row]:
    import openai

    from steer_ui.app.api import ApiConfig
    from steer_ui.app.pool import ModelPool
    from steer_ui.app.published import VectorStore
    from steer_ui.app.server import make_app, running
    from steer_ui.steering.generation import Sampling, generate

    tokens, runs = (24, 3) if args.quick else (48, args.runs)
    pool, store = ModelPool(), VectorStore()
    pool.put("slm", lm)
    store.publish("happy-sad", v)
    messages = [{"role": "user", "content": "Tell me about your weekend."}]
    text = lm.chat_messages(messages)
    ratios, same = [], []
    with running(make_app(pool, store, ApiConfig(), ui=False)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="-", max_retries=0)

        def api():
            t0 = time.perf_counter()
            parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
                model=lm.name, messages=messages, max_tokens=tokens, temperature=0, stream=True,
                extra_body={"steering": [{"vector": "happy-sad", "intensity": 0.5}]})]
            return "".join(parts), time.perf_counter() - t0

        def library():
            t0 = time.perf_counter()
            out = generate(lm, text, v, [0.5], None, Sampling(tokens), chat=False)[0]
            return out, time.perf_counter() - t0

        api(), library()  # warm up
        for r in range(runs):
            order = (api, library) if r % 2 == 0 else (library, api)
            res = {f.__name__: f() for f in order}
            ratios.append(res["library"][1] / res["api"][1])  # tokens/s api / library = time library / time api
            same.append(float(res["api"][0] == res["library"][0]))
            log(f"  api round {r + 1}: api {res['api'][1]:.2f}s, library {res['library'][1]:.2f}s")
    note = f"one streamed steered request, {tokens} tokens, greedy, openai client on loopback, alternating"
    return [Row(NAME, "tokens/s: streamed API request / library call", ratios, 0.9, ">=", note=note),
            Row(NAME, "API text identical to the library's", same, 1.0, "==", agg="min")]
