"""One short check of the core on a GPU machine: prints PASS/FAIL per step, exits 1 on any FAIL.

    bench/gpu_check.sh [--device cuda] [--slm smollm2-135m] [--llm qwen2.5-0.5b]

Steps: load both bundled models; extract a concept (recording every layer); steer a
generation (the steered text must differ, the unsteered one must equal a plain
``generate``); the same with ``--device-map auto`` and with the SLM's layers split
between the GPU and the CPU (the hooks and readers then meet hidden states on two
devices); transfer LLM -> SLM; A/B scoring under steering (batched fan-out scores
equal one-at-a-time scores). It runs on a CPU too (``--device cpu``), where the
split-device steps are skipped. Not part of CI: CI machines have no GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

RESULTS: list[tuple[str, bool, str]] = []


def step(name: str):
    """Run the decorated check now; record PASS/FAIL with its detail line."""
    def run(fn):
        start = time.perf_counter()
        try:
            detail = fn() or ""
            RESULTS.append((name, True, detail))
        except Exception as exc:  # noqa: BLE001 - reported, then the next step runs
            RESULTS.append((name, False, f"{type(exc).__name__}: {exc}"))
            traceback.print_exc()
        status = "PASS" if RESULTS[-1][1] else "FAIL"
        print(f"[{status}] {name} ({time.perf_counter() - start:.1f} s) {RESULTS[-1][2]}", flush=True)
        return fn
    return run


def split_map(lm_source: str, device: str) -> dict:
    """Embeddings and the first half of the layers on ``device``, the rest on the CPU."""
    from steer_ui.models.loading import ModelSpec, load_model

    n = load_model(ModelSpec(lm_source, device="cpu", dtype="float32")).n_layers
    dm = {"model.embed_tokens": device, "model.rotary_emb": device, "model.norm": "cpu", "lm_head": "cpu"}
    dm.update({f"model.layers.{i}": device if i < n // 2 else "cpu" for i in range(n)})
    return dm


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--slm", default="smollm2-135m")
    ap.add_argument("--llm", default="qwen2.5-0.5b")
    args = ap.parse_args()

    from steer_ui.concepts import contrast
    from steer_ui.concepts.extraction import extract_concept
    from steer_ui.evaluation import scoring as evaluation
    from steer_ui.models.loading import ModelSpec, load_model
    from steer_ui.steering.generation import Sampling, generate
    from steer_ui.steering.hooks import hooks_left
    from steer_ui.transfer import diagnostics, paired
    from steer_ui.transfer import maps as transfer

    cs = contrast.from_preset("happy-sad", 8)
    prompt = "Tell me about your weekend."
    state: dict = {}
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}, device {args.device}")

    @step("load both models")
    def _():
        state["slm"] = load_model(ModelSpec(args.slm, device=args.device))
        state["llm"] = load_model(ModelSpec(args.llm, device=args.device))
        return ", ".join(f"{m.name} on {m.device} in {m.dtype}" for m in (state["slm"], state["llm"]))

    @step("extract a concept in both models")
    def _():
        state["ex"] = {r: extract_concept(state[r], cs) for r in ("slm", "llm")}
        v = state["ex"]["slm"].vector
        assert torch.isfinite(v.directions).all() and v.separability[v.default_layer] > 0.8
        return f"SLM best layer {v.default_layer}, AUC {v.separability[v.default_layer]:.2f}"

    def steer_check(lm, vector) -> str:
        plain, steered = generate(lm, prompt, vector, [0.0, 0.8], None, Sampling(24))
        alone = generate(lm, prompt, None, [0.0], None, Sampling(24))[0]
        assert steered != plain, "steering changed nothing"
        assert hooks_left(lm) == 0
        same = "identical" if alone == plain else "differs (bf16 batching)"
        return f"steered differs; unsteered row vs solo: {same}"

    @step("steer a generation")
    def _():
        return steer_check(state["slm"], state["ex"]["slm"].vector)

    @step("steer with --device-map auto")
    def _():
        lm = load_model(ModelSpec(args.slm, device=args.device, device_map="auto"))
        return steer_check(lm, state["ex"]["slm"].vector) + f"; devices {sorted({str(p.device) for p in lm.model.parameters()})}"

    @step("record and steer with layers split over two devices")
    def _():
        if not args.device.startswith("cuda"):
            return "skipped: needs a GPU (the second device is the CPU)"
        lm = load_model(ModelSpec(args.slm, device=args.device, dtype="float32",
                                  device_map=split_map(args.slm, args.device)))
        devices = sorted({str(p.device) for p in lm.model.parameters()})
        ex = extract_concept(lm, cs, position="mean")
        reference = extract_concept(load_model(ModelSpec(args.slm, device="cpu", dtype="float32")), cs,
                                    position="mean").vector
        cos = torch.nn.functional.cosine_similarity(ex.vector.directions, reference.directions, dim=1)
        assert cos.min() > 0.99, f"split-device extraction differs from CPU: min cos {cos.min():.3f}"
        return steer_check(lm, ex.vector) + f"; devices {devices}; min cos with CPU extraction {cos.min():.4f}"

    @step("transfer LLM -> SLM")
    def _():
        llm, slm = state["llm"], state["slm"]
        pairs = paired.collect(llm, slm, ("concept",), "happy-sad", per_preset=8)
        vec, maps, _ = transfer.transfer(state["ex"]["llm"].vector, llm, slm, pairs, "procrustes")
        native = state["ex"]["slm"]
        rep = diagnostics.diagnose(vec, maps, native.vector, native.pos.numpy(), native.neg.numpy())
        return rep.verdict

    @step("A/B scoring under steering (fan-out = one at a time)")
    def _():
        import numpy as np

        lm, v = state["slm"], state["ex"]["slm"].vector
        items = evaluation.load_items(Path(__file__).resolve().parents[1] / "tests/fixtures/ab_small.json")[:4]
        batched = evaluation.choice_logprobs(lm, items, v, [0.0, 0.5], v.default_layer)
        single = np.stack([evaluation.choice_logprobs(lm, items, v, [x], v.default_layer)[:, 0] for x in (0.0, 0.5)], 1)
        tol = 1e-3 if lm.dtype == torch.float32 else 0.5
        assert np.abs(batched - single).max() < tol, float(np.abs(batched - single).max())
        return f"max |batched - single| {np.abs(batched - single).max():.2e}"

    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} steps passed" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
