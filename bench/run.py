"""steer-ui performance benchmarks: ratios measured side by side, with targets.

    python bench/run.py [--quick] [--only NAME[,NAME]] [--peers] [--runs N] [--threads N] [--clock cpu|wall]
    make bench ARGS=--peers

Each benchmark is a module with ``run(args) -> list[Row]``. The table shows, per metric,
min/median/max over the runs (or layers, where stated), the target and PASS/MISS (the
median decides unless the target column names another statistic). Results are merged
into ``bench/results.json`` per benchmark, so ``--only`` refreshes just that part.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

BENCHES = ["overhead", "batching", "extraction", "reuse", "startup", "scoring", "interop", "server", "engine",
           "calibration"]
HERE = Path(__file__).resolve().parent


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller workloads (one model, fewer tokens/pairs)")
    ap.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHES)}")
    ap.add_argument("--peers", action="store_true",
                    help="compare extraction with repeng and steering-vectors (builds bench/.venv-peers once)")
    ap.add_argument("--runs", type=int, default=5, help="runs per ratio (default 5)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch/BLAS threads in every process (default 1: steadiest on a shared machine)")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="which clock decides the ratios (both are recorded; default: process CPU time)")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--report", action="store_true",
                    help="run nothing: print the table of --out as Markdown (for docs/PERFORMANCE.md)")
    args = ap.parse_args(argv)
    args.selected = [b.strip() for b in args.only.split(",") if b.strip()] or list(BENCHES)
    unknown = set(args.selected) - set(BENCHES)
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; choose from {', '.join(BENCHES)}")
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    sys.path.insert(0, str(HERE))
    if args.report:
        return report(Path(args.out))
    import common

    common.configure(args.threads)  # before numpy/torch load anywhere
    common.CLOCK = args.clock
    results_path = Path(args.out)
    previous = json.loads(results_path.read_text()) if results_path.is_file() else {}
    benches = previous.get("benchmarks", {}) if isinstance(previous, dict) else {}
    all_rows, failed = [], []
    for name in args.selected:
        common.log(f"== {name}")
        start = time.perf_counter()
        try:
            rows = importlib.import_module(name).run(args)
        except Exception:  # noqa: BLE001 - one failing benchmark must not hide the others
            failed.append(name)
            err = traceback.format_exc()
            common.log(err)
            rows = [common.Row(name, "FAILED (see results.json)", [], None, "", note=err.strip().splitlines()[-1])]
            benches[name] = {"error": err}
        else:
            benches[name] = {"rows": [r.to_json() for r in rows]}
        seconds = time.perf_counter() - start
        benches[name].update(seconds=round(seconds, 1), when=dt.datetime.now().isoformat(timespec="seconds"),
                             args={k: getattr(args, k) for k in ("quick", "peers", "runs", "threads", "clock")})
        common.log(f"   {name}: {seconds:.0f} s")
        all_rows += rows
        print(common.table(rows) + "\n", flush=True)
    out = {"machine": common.machine(), "clock": args.clock, "threads": args.threads,
           "benchmarks": {b: benches[b] for b in BENCHES if b in benches}}
    tmp = results_path.with_name(results_path.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=1, default=str))
    os.replace(tmp, results_path)
    print("== all\n" + common.table(all_rows))
    print(f"\nwritten: {results_path}")
    return 1 if failed else 0


def report(path: Path) -> int:
    """The saved results as a Markdown table (no model is loaded)."""
    import common

    data = json.loads(path.read_text())
    rows = []
    for name, b in data["benchmarks"].items():
        for r in b.get("rows", []):
            rows.append(common.Row(**{k: r[k] for k in ("bench", "metric", "values", "target", "op", "agg", "over",
                                                         "note", "extra")}))
    print(common.table(rows, markdown=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
