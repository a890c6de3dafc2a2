"""Target 4: re-use of recorded activations and of fitted transfer maps.

Per run, starting from an empty activation cache: one extraction (mean-diff) records
the contrast set; then the method is switched (``extract_concept`` with pca and probe,
and the UI's ``app.actions.concept.rescore``) and the layer is switched (``pca_figure`` at
three other layers). ``LoadedModel.forward_passes`` counts the forward passes
each step ran. Transfer: per run, with a fresh, empty map cache (a temporary
``STEER_UI_CACHE``), the same vector is transferred twice; ``LayerMap.fitted``
counts the maps actually fitted by each.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from common import Row, concept, log, model

NAME = "reuse"


def _switches(lm, cs, runs: int) -> list[Row]:
    from steer_ui.app.actions import concept as session
    from steer_ui.app.state import SessionState
    from steer_ui.concepts import recording
    from steer_ui.concepts.extraction import extract_concept

    first_passes, switch_passes, time_ratio = [], [], []
    for r in range(runs):
        recording._CACHE.clear()
        p0 = lm.forward_passes
        t0 = time.process_time()
        ex = extract_concept(lm, cs, "mean-diff")
        t1 = time.process_time()
        p1 = lm.forward_passes
        extract_concept(lm, cs, "pca")
        extract_concept(lm, cs, "probe")
        state = SessionState(extractions={"slm": ex})
        session.rescore(state, "pca")
        for layer in (3, lm.n_layers // 2, lm.n_layers - 2):
            session.pca_figure(state, "slm", layer)
        t2 = time.process_time()
        p2 = lm.forward_passes
        first_passes.append(p1 - p0)
        switch_passes.append(p2 - p1)
        time_ratio.append((t2 - t1) / 6 / (t1 - t0))  # per switch, over the first extraction
        log(f"  switch run {r + 1}: first extraction {p1 - p0} passes, switches {p2 - p1} passes")
    n = len(cs)
    return [
        Row(NAME, f"{lm.name}: forward passes, first extraction ({2 * n} texts)", first_passes, None, "",
            note="batches of 16 texts"),
        Row(NAME, f"{lm.name}: forward passes, 3 method switches + 3 layer switches", switch_passes, 0, "==",
            agg="max", note="extract_concept(pca), extract_concept(probe), session.rescore, "
                            "session.pca_figure at 3 layers"),
        Row(NAME, f"{lm.name}: CPU time per switch / first extraction", time_ratio, None, "",
            note="the switches still refit directions and separability on every layer"),
    ]


def _transfer(runs: int) -> list[Row]:
    from steer_ui.concepts.recording import typical_norms
    from steer_ui.transfer import paired
    from steer_ui.transfer.maps import transfer

    llm, slm = model("qwen2.5-0.5b"), model("smollm2-135m")
    v = concept(llm)
    old = os.environ.get("STEER_UI_CACHE")
    base = tempfile.mkdtemp(prefix="steer-bench-reuse-")
    first_fits, second_fits, time_ratio = [], [], []
    try:
        os.environ["STEER_UI_CACHE"] = os.path.join(base, "acts")
        pairs = paired.collect(llm, slm, ("neutral",), n_neutral=32)  # 64 paired rows, recorded once
        typical_norms(llm), typical_norms(slm)
        for r in range(runs):
            os.environ["STEER_UI_CACHE"] = os.path.join(base, f"run{r}")
            t0 = time.process_time()
            _, maps1, _ = transfer(v, llm, slm, pairs, "ridge")
            t1 = time.process_time()
            _, maps2, _ = transfer(v, llm, slm, pairs, "ridge")
            t2 = time.process_time()
            first_fits.append(sum(m.fitted for m in maps1))  # fitted now, not read from the cache
            second_fits.append(sum(m.fitted for m in maps2))
            time_ratio.append((t2 - t1) / (t1 - t0))
            log(f"  transfer run {r + 1}: first {first_fits[-1]} fits, second {second_fits[-1]} fits")
    finally:
        if old is None:
            os.environ.pop("STEER_UI_CACHE", None)
        else:
            os.environ["STEER_UI_CACHE"] = old
        shutil.rmtree(base, ignore_errors=True)
    note = f"{llm.name} -> {slm.name}, ridge, depth matching, 64 neutral paired rows, fresh map cache per run"
    return [
        Row(NAME, "transfer: maps fitted, first transfer", first_fits, None, "", note=note),
        Row(NAME, "transfer: maps fitted, second transfer (cached maps)", second_fits, 0, "==", agg="max",
            note=note),
        Row(NAME, "transfer: CPU time second / first transfer", time_ratio, None, "", note=note),
    ]


def run(args) -> list[Row]:
    from steer_ui.concepts.contrast import from_preset

    lm = model("smollm2-135m")
    rows = _switches(lm, from_preset("happy-sad", 8 if args.quick else 16), args.runs)
    return rows + _transfer(args.runs)
