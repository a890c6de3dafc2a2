"""Turn the JSON results under docs/results/ into the Markdown tables of the docs.

    python bench/summarize.py transfer docs/results/transfer-*.json   # tables for TRANSFER.md
    python bench/summarize.py experiments docs/results/*/             # tables for RESULTS.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(x, digits=2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def transfer_tables(paths: list[str]) -> str:
    out = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        out += [f"### {data['llm']} -> {data['slm']} (intensity {data['intensity']} relative)", "",
                "| preset | SLM layer <- LLM layer | map / fitted on | held-out R^2 (all / concept / neutral) | "
                "cos(transferred, native) | chance p95 (mapped random / SLM random) | AUC transferred / native |",
                "|---|---|---|---|---|---|---|"]
        for row in data["rows"]:
            for key, m in row["maps"].items():
                r2 = m["r2"]
                out.append(f"| {row['preset']} | {m['slm_layer']} <- {m['llm_layer']} | {key} | "
                           f"{_f(r2.get('all'))} / {_f(r2.get('concept'))} / {_f(r2.get('neutral'))} | "
                           f"**{_f(m['cos_native'])}** | {_f(m['chance_mapped_p95'])} / {_f(m['chance_slm_p95'])} | "
                           f"{_f(m['auc_transferred'])} / {_f(m['auc_native'])} |")
        out += ["", "Shift of the concept score of greedy generations (8 neutral prompts, 24 tokens) against "
                "unsteered, at the same relative intensity and layer:", "",
                "| preset | unsteered score | native | transferred ridge/both | transferred ridge/neutral | random |",
                "|---|---|---|---|---|---|"]
        for row in data["rows"]:
            s = row["shift"]
            out.append(f"| {row['preset']} | {_f(s['unsteered'])} | {s['native']:+.2f} | "
                       f"{s['transferred ridge/both']:+.2f} | {s['transferred ridge/neutral']:+.2f} | "
                       f"{s['random']:+.2f} |")
        out.append("")
    return "\n".join(out)


def experiment_tables(folders: list[str]) -> str:
    out = []
    for folder in folders:
        path = Path(folder) / "report.json"
        if not path.is_file():
            continue
        r = json.loads(path.read_text())
        key = "accuracy" if r.get("task", "ab") == "ab" else "efficacy"
        out += [f"### {Path(folder).name}: {r['models']['llm']} -> {r['models']['slm']}, "
                f"{Path(r['dataset']).name}, pairs `{Path(str(r['pairs'])).name}`, "
                f"scaling {r.get('scaling', 'dev-sweep')}, dev {r['n_dev']} / test {r['n_test']}", "",
                f"| arm | intensity (chosen on dev) | test {key} | 95% CI | delta vs baseline | delta 95% CI | "
                + ("p(correct) | " if key == "accuracy" else "") + "perplexity |",
                "|---" * (8 if key == "accuracy" else 7) + "|"]
        for name, arm in r["arms"].items():
            t, x = arm["test"], arm["intensity"]
            x = f"per item (mean {x['mean']:+.2f})" if isinstance(x, dict) else f"{x:+g}"
            ci = t.get(key + "_ci")
            d, dci = t.get("delta_vs_baseline"), t.get("delta_ci")
            ppl = arm.get("perplexity")
            if ppl is None and arm["curve"].get("perplexity") and not isinstance(arm["intensity"], dict):
                ppl = arm["curve"]["perplexity"][arm["curve"]["intensity"].index(arm["intensity"])]
            out.append(f"| {name} | {x} | {t[key]:.3f} | [{_f(ci[0], 3)}, {_f(ci[1], 3)}] | "
                       f"{'-' if d is None else f'{d:+.3f}'} | "
                       f"{'-' if not dci else f'[{dci[0]:+.3f}, {dci[1]:+.3f}]'} | "
                       + (f"{_f(t.get('p_match'), 3)} | " if key == "accuracy" else "") + f"{_f(ppl, 1)} |")
        out += _dose_response(r, key)
        for name, d in (r.get("transfer") or {}).items():
            by_layer = d.get("cos_native_by_layer") or []
            out.append(f"\n{name}: cos(transferred, native) {_f(d.get('cos_native'))} vs chance "
                       f"{_f(d.get('chance_mapped_p95'))}; held-out R^2 {_f(d['r2'].get('all'))}. "
                       "By SLM layer (every third): "
                       + ", ".join(f"L{i} {c:.2f}" for i, c in enumerate(by_layer) if i % 3 == 0) + ".")
        out.append("")
    return "\n".join(out)


def _dose_response(r: dict, key: str) -> list[str]:
    """Test-split metric at every grid intensity, per arm (+ the +-x swing for generation)."""
    grid = r["intensities"]
    swing = [x for x in grid if x > 0 and -x in grid] if key == "efficacy" else []
    head = "| arm | " + " | ".join(f"{x:+g}" for x in grid) + "".join(f" | swing +-{x:g}" for x in swing) + " |"
    out = ["", f"Test {key} at each intensity (dose-response; perplexity on neutral text in brackets):", "",
           head, "|---" * (len(grid) + len(swing) + 1) + "|"]
    for name, arm in r["arms"].items():
        c = arm["curve"]
        vals = dict(zip(c["intensity"], c[key]))
        ppl = dict(zip(c["intensity"], c.get("perplexity") or [None] * len(c["intensity"])))
        cells = [("-" if x not in vals else f"{vals[x]:.3f}" + (f" ({ppl[x]:.0f})" if ppl.get(x) else ""))
                 for x in grid]
        cells += [f"{vals[x] - vals[-x]:+.3f}" if x in vals and -x in vals else "-" for x in swing]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


if __name__ == "__main__":
    kind, *paths = sys.argv[1:]
    print(transfer_tables(paths) if kind == "transfer" else experiment_tables(paths))
