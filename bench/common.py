"""Shared by every benchmark: environment, models, interleaved timing, result rows.

Timing rule: never compare absolute times across runs or machines. Every benchmark
runs its arms side by side in the same process, in rotated order (A B C, B C A, C A B,
...), and reports per-round ratios. Each measurement records two clocks: wall time and
the process's CPU time (``time.process_time``: all threads of this process, user +
system). On a shared, oversubscribed machine CPU time is the less noisy one (time spent
descheduled does not count), so it decides PASS/MISS by default (``--clock``); with one
torch thread (``--threads 1``, the default) it equals the compute the arm needed.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
QUIET_ENV = {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1", "PYTHONWARNINGS": "ignore",
}
CLOCK = "cpu"  # set by run.py from --clock


def bench_env(threads: int) -> dict[str, str]:
    """Environment for this process and every subprocess we start (same thread counts)."""
    env = {v: str(threads) for v in THREAD_VARS}
    env.update(QUIET_ENV)
    return env


def configure(threads: int) -> None:
    """Call before numpy/torch are imported: thread counts, offline, no progress bars."""
    os.environ.update(bench_env(threads))
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(threads)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass


# ---------- timing ----------

@dataclass
class Timed:
    """An arm's own measurement (e.g. reported by the peer subprocess): overrides ours."""

    wall: float
    cpu: float
    result: object = None


def measure(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, result) of one call, after a gc pass outside the timing."""
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    res = fn()
    w1, c1 = time.perf_counter(), time.process_time()
    if isinstance(res, Timed):
        return res.wall, res.cpu, res.result
    return w1 - w0, c1 - c0, res


def interleave(arms: dict[str, Callable[[], object]], runs: int, warmup: int = 1,
               log: Callable[[str], None] | None = None) -> dict[str, dict[str, list]]:
    """Run every arm once per round, rounds rotating the order; index r of each list is round r."""
    names = list(arms)
    for _ in range(warmup):
        for n in names:
            arms[n]()
    out = {n: {"wall": [], "cpu": [], "result": []} for n in names}
    for r in range(runs):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            wall, cpu, res = measure(arms[n])
            out[n]["wall"].append(wall)
            out[n]["cpu"].append(cpu)
            out[n]["result"].append(res)
        if log:
            log(f"  round {r + 1}/{runs}: " + ", ".join(f"{n} {out[n][CLOCK][-1]:.2f}s" for n in names))
    return out


def ratios(num: dict, den: dict, clock: str | None = None) -> list[float]:
    """Per-round num/den on ``clock`` (default: the configured one)."""
    c = clock or CLOCK
    return [a / b for a, b in zip(num[c], den[c])]


def times(res: dict) -> dict:
    """Both clocks of every arm, per round (for results.json)."""
    return {n: {"wall": [round(x, 4) for x in r["wall"]], "cpu": [round(x, 4) for x in r["cpu"]]}
            for n, r in res.items()}


def other_clock() -> str:
    return "wall" if CLOCK == "cpu" else "cpu"


# ---------- results ----------

@dataclass
class Row:
    """One line of the table. ``values``: one per run (or per layer, see ``over``)."""

    bench: str
    metric: str
    values: list[float]
    target: float | None = None
    op: str = ""  # ">=", "<=", "==" or "" (information only)
    agg: str = "median"  # statistic that decides PASS/MISS: median, min or max
    over: str = "runs"  # what the values range over: runs, layers, items
    note: str = ""
    extra: dict = field(default_factory=dict)

    def stat(self, name: str) -> float:
        vals = [v for v in self.values if v is not None]
        if not vals:
            return float("nan")
        return {"min": min, "max": max, "median": statistics.median}[name](vals)

    @property
    def verdict(self) -> str:
        if not self.op or self.target is None:
            return "info"
        x = self.stat(self.agg)
        ok = {">=": x >= self.target, "<=": x <= self.target, "==": x == self.target}[self.op]
        return "PASS" if ok else "MISS"

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(min=self.stat("min"), median=self.stat("median"), max=self.stat("max"),
                 n=len(self.values), verdict=self.verdict)
        return d


def fmt(x: float) -> str:
    if x != x:  # nan
        return "-"
    if x == int(x) and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.0f}"


def table(rows: list[Row], markdown: bool = False) -> str:
    head = ["bench", "metric", "n", "min", "median", "max", "target", "result"]
    body = []
    for r in rows:
        target = f"{r.op} {fmt(r.target)}" + (f" ({r.agg})" if r.agg != "median" else "") if r.op else ""
        body.append([r.bench, r.metric, f"{len(r.values)} {r.over}", fmt(r.stat("min")),
                     fmt(r.stat("median")), fmt(r.stat("max")), target, r.verdict])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


def machine() -> dict:
    import torch

    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "loadavg_at_start": load, "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform()}


# ---------- models and a concept shared by benchmarks ----------

_MODELS: dict = {}
_CONCEPTS: dict = {}


def model(name: str):
    """A bundled model in fp32 on CPU, loaded once per process (from the dense cache)."""
    if name not in _MODELS:
        from steer_ui.models.loading import ModelSpec, load_model

        _MODELS[name] = load_model(ModelSpec(name, device="cpu", dtype="float32"))
    return _MODELS[name]


def concept(lm, pairs: int = 8):
    """A happy/sad vector for ``lm`` (preset pairs), extracted once per process."""
    key = (lm.name, pairs)
    if key not in _CONCEPTS:
        from steer_ui.concepts.contrast import from_preset
        from steer_ui.concepts.extraction import extract_concept

        _CONCEPTS[key] = extract_concept(lm, from_preset("happy-sad", pairs)).vector
    return _CONCEPTS[key]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
