"""Which A/B task sets can a small model answer? Unsteered accuracy of the bundled models.

The accuracy claim needs tasks where the SLM (qwen2.5-0.5b) is neither lost nor done:
unsteered accuracy between 0.4 and 0.8, with >= 200 test items (>= 400 items, since the
runner splits half/half). This scores every candidate set as ``experiment.run`` does
(chat-formatted question, summed answer log-prob, lettered items in both orders) and
prints accuracy with its item-level 95% CI, and how often the model picks the first
choice (0.5 for a model without a favourite answer; near 0 or 1 means the accuracy is
mostly the share of that answer among the items).

    .venv/bin/python bench/find_tasks.py                       # qwen2.5-0.5b and smollm2-135m
    .venv/bin/python bench/find_tasks.py --models qwen2.5-0.5b --limit 200 --system "Answer correctly."

Candidates: our sets in assets/tasks/ (bench/make_tasks.py writes the harder ones) and,
read by path when ../shared/data is present, repe/facts/facts_true_false.csv as true/false items.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from common import ROOT  # noqa: F401  (puts the project on sys.path)

TASKS = ROOT / "assets" / "tasks"
FACTS = ROOT.parent / "shared" / "data" / "repe" / "facts" / "facts_true_false.csv"
TF = "Is the following statement true or false?\nStatement: {}"


def candidates() -> dict[str, list]:
    """Every task set there is: ours, then the public facts set when present."""
    from steer_ui.evaluation.scoring import Item, load_items

    out = {p.stem: load_items(p) for p in sorted(TASKS.glob("*.jsonl"))}
    if FACTS.is_file():
        with FACTS.open(encoding="utf-8") as f:
            out["repe_facts"] = [Item(TF.format(r["statement"]), ("true", "false"), 0 if r["label"] == "1" else 1)
                                 for r in csv.DictReader(f)]
    else:
        print(f"skipping repe_facts: {FACTS} is absent")
    return out


def measure(lm, items: list, system: str | None) -> dict:
    """Unsteered accuracy of ``items`` (each lettered item in both orders, counted once)."""
    from steer_ui.evaluation import scoring as ev

    rows, groups = ev.balanced(items)
    start = time.perf_counter()
    logp = ev.choice_logprobs(lm, rows, system=system)[:, 0]  # (rows, choices)
    s = ev.Scores.from_logprobs(logp, np.array([r.answer for r in rows]))
    return {"items": len(items), "rows": len(rows), "accuracy": float(s.correct.mean()),
            "accuracy_ci": ev.ci(s.correct, groups=groups), "first_choice": float((logp.argmax(1) == 0).mean()),
            "p_match": float(s.p_match.mean()), "seconds": time.perf_counter() - start}


def export(name: str, path: str) -> None:
    """Task ``name`` as JSONL the experiment CLI reads (the public facts set is CSV)."""
    items = candidates()[name]
    Path(path).write_text("".join(json.dumps({"prompt": it.prompt, "choices": list(it.choices),
                                              "answer": it.choices[it.answer]}) + "\n" for it in items))
    print(f"wrote {len(items)} items of {name} to {path}")


def verdict(r: dict) -> str:
    """Usable for the claim: accuracy in 0.4-0.8 without answering (nearly) everything one way."""
    if not 0.4 <= r["accuracy"] <= 0.8:
        return "out of 0.4-0.8"
    return "in 0.4-0.8" if 0.1 <= r["first_choice"] <= 0.9 else "in 0.4-0.8 but one-sided (>90% one answer)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="qwen2.5-0.5b,smollm2-135m")
    ap.add_argument("--tasks", help="comma list of task names (default: all)")
    ap.add_argument("--limit", type=int, default=0, help="score a seeded sample of N items per task (0: all)")
    ap.add_argument("--system", help="a system prompt (preview of the prompting arm)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, help="also write the numbers as JSON")
    ap.add_argument("--export", metavar="NAME=PATH", help="only write task NAME as {prompt, choices, answer} "
                    "JSONL to PATH (keep PATH outside the repository for the public sets)")
    args = ap.parse_args()
    if args.export:
        return export(*args.export.split("=", 1))

    import torch

    from steer_ui.models.loading import ModelSpec, load_model

    torch.set_num_threads(args.threads)
    sets = candidates()
    if args.tasks:
        sets = {k: sets[k] for k in args.tasks.split(",") if k in sets}  # in the order given
    results: dict = {}
    for name in args.models.split(","):
        lm = load_model(ModelSpec(name, device="cpu"))
        for task, items in sets.items():
            if args.limit and len(items) > args.limit:
                items = [items[i] for i in sorted(np.random.default_rng(0).choice(len(items), args.limit, False))]
            r = results.setdefault(name, {})[task] = measure(lm, items, args.system)
            ok = verdict(r)
            print(f"{name:<14} {task:<20} {r['items']:>4} items ({r['rows']} rows)  accuracy {r['accuracy']:.3f} "
                  f"[{r['accuracy_ci'][0]:.3f}, {r['accuracy_ci'][1]:.3f}]  first-choice {r['first_choice']:.2f}  "
                  f"p(match) {r['p_match']:.3f}  {ok}  {r['seconds']:.0f}s", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"system": args.system, "results": results}, indent=2))


if __name__ == "__main__":
    main()
