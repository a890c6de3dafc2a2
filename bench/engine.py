"""The llama.cpp engine against llama.cpp's own tool and against our torch engine.

    python bench/run.py --only engine [--quick] [--threads 2]

Per model (SmolLM2-135M Q4_1 and Qwen2.5-Coder-1.5B Q4_K_M, the bundled GGUF files),
greedy, batch 1, the happy-sad vector at its layer (one layer) or at every layer 1..n-1
(all layers), relative intensity 0.4 baked into the GGUF for llama.cpp's tool:
- decode tokens/s of ours on ``llamacpp`` vs ``llama-completion --control-vector`` with
  the same file, vector and threads (its own "eval time" line): target >= 0.8x;
- ours on ``llamacpp`` vs ours on ``torch`` (fp32), whole request: expect >= 3x;
- steered / unsteered on ``llamacpp``: target >= 0.98;
- unsteered + steered side by side, and a 5-intensity sweep, as one request vs the same
  rows one request after another (wall time).
Arms alternate; wall clock (llama.cpp runs its own threads, CPU time would count them all).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Row, concept, log

NAME = "engine"
PROMPT = "Tell me about your weekend."
MODELS = ("smollm2-135m", "qwen2.5-1.5b")


def run(args) -> list[Row]:
    from steer_ui.steering.engines import llamacpp

    try:
        llamacpp.binding()
    except Exception as exc:  # noqa: BLE001 - reported as the row
        return [Row(NAME, "llama.cpp engine", [], None, "", note=f"not run: {exc}")]
    rows = []
    for name in MODELS[:1] if args.quick else MODELS:
        rows += _one_model(name, args)
    return rows


def _pair(name: str):
    from steer_ui.models.loading import ModelSpec, load_model
    from steer_ui.steering import engines

    fast = load_model(ModelSpec(name, device="cpu", dtype="float32", engine="llamacpp"))
    assert engines.engine_of(fast) == "llamacpp", fast.engine_note
    return fast, load_model(ModelSpec(name, device="cpu", dtype="float32", engine="torch"))


def _one_model(name: str, args) -> list[Row]:
    import torch

    from steer_ui.concepts.files import export_gguf
    from steer_ui.steering.engines import gguf_path
    from steer_ui.steering.hooks import as_raw

    fast, slow = _pair(name)
    v = concept(slow)
    layer, tokens, runs = v.default_layer, (24 if args.quick else 64), (3 if args.quick else args.runs)
    all_layers = list(range(1, slow.n_layers))
    tmp = Path(tempfile.mkdtemp(prefix="steer-engine-"))
    baked = as_raw(slow, v, 0.4)
    files = {"one": export_gguf(baked, tmp / "one.gguf", "llama", [layer]),
             "all": export_gguf(baked, tmp / "all.gguf", "llama", all_layers)}
    layers = {"one": [layer], "all": all_layers}
    log(f"  {name}: {tokens} tokens, layer {layer} / all layers, {runs} alternating runs")
    ratio_tool, ratio_torch, overhead, side, sweep = {"one": [], "all": []}, [], [], [], []
    for r in range(runs):
        for k in ("one", "all"):
            ours = _decode_tps(fast, v, 0.4, layers[k], tokens)
            theirs = _tool_tps(gguf_path(fast), files[k], tokens, torch.get_num_threads())
            ratio_tool[k].append(ours / theirs)
            log(f"    run {r + 1} {k}: ours {ours:.1f} tok/s, llama-completion {theirs:.1f} tok/s")
        t_fast, t_slow = _request_seconds(fast, v, [0.4], [layer], tokens), _request_seconds(slow, v, [0.4], [layer],
                                                                                           tokens)
        ratio_torch.append(t_slow / t_fast)
        arms = [lambda: _decode_tps(fast, v, 0.4, [layer], tokens), lambda: _decode_tps(fast, None, 0.0, [layer], tokens)]
        order = arms if r % 2 == 0 else arms[::-1]  # alternate which one runs first
        tps = [f() for f in order]
        overhead.append(tps[0] / tps[1] if r % 2 == 0 else tps[1] / tps[0])
        side.append(_batched_over_sequential(fast, v, [0.0, 0.4], layer, tokens))
        sweep.append(_batched_over_sequential(fast, v, [-0.8, -0.4, 0.0, 0.4, 0.8], layer, tokens))
    note = f"{name}, {tokens} new tokens, greedy, batch 1, {torch.get_num_threads()} threads, wall clock"
    return [
        Row(NAME, f"{name}: decode tok/s, ours (llamacpp) / llama-completion, 1 layer", ratio_tool["one"], 0.8, ">=",
            note=note),
        Row(NAME, f"{name}: decode tok/s, ours (llamacpp) / llama-completion, all layers", ratio_tool["all"], 0.8,
            ">=", note=note),
        Row(NAME, f"{name}: request speed, llamacpp engine / torch engine (fp32)", ratio_torch, 3.0, ">=", note=note),
        Row(NAME, f"{name}: llamacpp steered / unsteered decode tok/s", overhead, 0.98, ">=", note=note),
        Row(NAME, f"{name}: llamacpp time, unsteered + steered as one request / one after another", side, None, "",
            note="information: two steerings are two contexts, decoded one after the other within each step"),
        Row(NAME, f"{name}: llamacpp time, 5-intensity sweep as one request / one after another", sweep, None, "",
            note="information"),
    ]


def _decode_tps(lm, v, x: float, layers, tokens: int) -> float:
    """Decode tokens/s of one row: from its first token to its last (the prompt excluded)."""
    from steer_ui.steering.generation import Sampling, stream

    stamps = []
    for texts in stream(lm, PROMPT, v, [x], layers, Sampling(tokens)):
        stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def _tool_tps(model: Path, cvec: Path, tokens: int, threads: int) -> float:
    exe = Path(sys.prefix) / "llama.cpp" / "bin" / "llama-completion"
    cmd = [str(exe), "-m", str(model), "-p", PROMPT, "-n", str(tokens), "--temp", "0", "-t", str(threads), "-s", "0",
           "-no-cnv", "--no-warmup", "--no-display-prompt", "--perf", "--ignore-eos", "--control-vector", str(cvec)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    m = re.search(r"\beval time =.*?([\d.]+) tokens per second", out.stderr.split("prompt eval time")[-1])
    if out.returncode != 0 or not m:
        raise RuntimeError(f"llama-completion failed: {out.stderr[-800:]}")
    return float(m.group(1))


def _request_seconds(lm, v, xs, layers, tokens: int) -> float:
    from steer_ui.steering.generation import Sampling, generate

    t0 = time.perf_counter()
    generate(lm, PROMPT, v, xs, layers, Sampling(tokens))
    return time.perf_counter() - t0


def _batched_over_sequential(lm, v, xs, layer, tokens: int) -> float:
    together = _request_seconds(lm, v, xs, [layer], tokens)
    apart = sum(_request_seconds(lm, v, [x], [layer], tokens) for x in xs)
    return together / apart
