"""Target 5: start-up. First (GGUF) load vs cached load, and peak RSS with the pair loaded.

Each measurement is a fresh subprocess (``python bench/startup.py --child ...``) so the
loads start cold in Python and memory is the process's own. Per run, a new temporary
``STEER_UI_CACHE`` is created: the first child dequantizes the GGUF files (and joins
split ones) and writes the dense cache, the second loads that cache. The timed region
is ``load_model`` of both models only; imports happen before it. The pair is
smollm2-135m + qwen2.5-0.5b (the default LLM, qwen2.5-1.5b, is too slow to load five
times here). Peak RSS is ``ru_maxrss`` of the child, imports included, over the size of
both models' parameters in their dtype (fp32).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import common
from common import BENCH, Row, log

NAME = "startup"


def child(models: list[str]) -> None:
    import resource
    import time

    import psutil
    import transformers  # noqa: F401  (imported before the timed region)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    from steer_ui.models.loading import ModelSpec, load_model

    rss_before = psutil.Process().memory_info().rss
    w0, c0 = time.perf_counter(), time.process_time()
    lms = [load_model(ModelSpec(m, device="cpu", dtype="float32")) for m in models]
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(json.dumps({
        "wall": wall, "cpu": cpu, "weights": sum(lm.memory_bytes() for lm in lms),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_before": rss_before, "rss_after": psutil.Process().memory_info().rss,
    }))


def _spawn(models: list[str], cache: str, threads: int) -> dict:
    env = {**os.environ, **common.bench_env(threads), "STEER_UI_CACHE": cache}
    proc = subprocess.run([sys.executable, str(BENCH / "startup.py"), "--child", *models],
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        raise RuntimeError(f"startup child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args) -> list[Row]:
    models = ["smollm2-135m"] if args.quick else ["smollm2-135m", "qwen2.5-0.5b"]
    first, cached = [], []
    for r in range(args.runs):
        cache = tempfile.mkdtemp(prefix="steer-bench-startup-")
        try:
            first.append(_spawn(models, cache, args.threads))
            cached.append(_spawn(models, cache, args.threads))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        log(f"  run {r + 1}: first {first[-1][common.CLOCK]:.1f}s, cached {cached[-1][common.CLOCK]:.1f}s, "
            f"peak RSS {cached[-1]['peak_rss'] / 2**20:.0f} MiB")
    c = common.CLOCK
    weights = cached[0]["weights"]
    pair = " + ".join(models)
    return [
        Row(NAME, f"cached load / first (GGUF) load: {pair}", [b[c] / a[c] for a, b in zip(first, cached)],
            0.1, "<=", note="load_model of both models in a fresh process; first load dequantizes the GGUF, "
                            "joins split parts and writes the dense cache",
            extra={"first": first, "cached": cached}),
        Row(NAME, f"peak RSS / weights, cached load of {pair}", [b["peak_rss"] / weights for b in cached],
            1.3, "<=", note=f"weights {weights / 2**20:.0f} MiB fp32; peak RSS includes the Python/torch/"
                            f"transformers runtime (RSS before loading: "
                            f"{cached[0]['rss_before'] / 2**20:.0f} MiB)"),
        Row(NAME, f"peak RSS / weights, first (GGUF) load of {pair}", [a["peak_rss"] / weights for a in first],
            None, "", note="information: the dequantizing load"),
        Row(NAME, "(peak RSS - RSS before loading) / weights, cached load", 
            [(b["peak_rss"] - b["rss_before"]) / weights for b in cached], None, "",
            note="information: the load's own memory, without the runtime"),
    ]


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        common.configure(int(os.environ.get("OMP_NUM_THREADS", "1")))
        child(sys.argv[2:])
