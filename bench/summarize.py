"""Turn the JSON results under docs/results/ into the Markdown tables of the docs.

    python bench/summarize.py transfer docs/results/transfer-*.json   # tables for TRANSFER.md
    python bench/summarize.py experiments docs/results/*/             # tables for RESULTS.md
    python bench/summarize.py grid docs/results/gen-*-smollm2/         # one row per preset: maps vs native
    python bench/summarize.py dose docs/results/gen-*-smollm2/         # the same at one fixed intensity
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


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


def _x(ratio) -> str:
    """A perplexity ratio: 1.23, or 6.0e+09 for a broken model's."""
    return "-" if ratio is None else (f"{ratio:.2f}" if ratio < 100 else f"{ratio:.1e}")


def _ci(ci) -> str:
    return "" if not ci else f" [{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _fraction(arm: dict, native: dict) -> str:
    """The arm's change as a fraction of native's, with the paired CI when the run kept it."""
    t = arm["test"]
    if "fraction_of_native" in t:
        f, ci = t["fraction_of_native"], t.get("fraction_ci")
    else:  # runs from before per-prompt scores were kept: the point estimate only
        d = native["test"].get("delta_vs_baseline")
        f, ci = (t["delta_vs_baseline"] / d if d else None), None
    return "-" if f is None else f"{f:.2f}" + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


def grid_table(folders: list[str]) -> str:
    """Generation transfer, one row per run: native's change, then each map's change as a
    fraction of native's, its margin over random at the same intensity, and perplexity
    as a multiple of unsteered; random's and prompting's changes beside."""
    reports = [json.loads((Path(f) / "report.json").read_text()) for f in folders if (Path(f) / "report.json").is_file()]
    maps = sorted({n for r in reports for n in r["arms"] if n.startswith("transferred:")})
    head = ("| concept -> SLM | baseline | native delta (x, ppl) | "
            + " | ".join(f"{m.split(':')[1]}: fraction of native; vs random; (x, ppl)" for m in maps)
            + " | random delta (x) | prompting delta |")
    out = [head, "|---" * (len(maps) + 5) + "|"]
    for r in reports:
        a, base = r["arms"], r["arms"]["baseline"]
        ppl0 = base.get("perplexity") or 1.0

        def at(arm: dict) -> str:
            return f"{arm['intensity']:+g}, {(arm.get('perplexity') or float('nan')) / ppl0:.2f}x"
        cells = [f"{Path(str(r['pairs'])).name} -> {r['models']['slm']}", f"{base['test']['efficacy']:.2f}",
                 f"{a['native']['test']['delta_vs_baseline']:+.2f}{_ci(a['native']['test']['delta_ci'])} ({at(a['native'])})"]
        for m in maps:
            arm = a.get(m)
            if arm is None:
                cells.append("-")
                continue
            t = arm["test"]
            vs = "-" if "vs_random" not in t else f"{t['vs_random']:+.2f}{_ci(t.get('vs_random_ci'))}"
            cells.append(f"{_fraction(arm, a['native'])}; {vs}; ({at(arm)})")
        cells.append(f"{a['random']['test']['delta_vs_baseline']:+.2f} ({a['random']['intensity']:+g})")
        p = a.get("prompting")
        cells.append("-" if p is None else f"{p['test']['delta_vs_baseline']:+.2f}{_ci(p['test']['delta_ci'])}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _at(arm: dict, x: float):
    """(mean test efficacy, per-prompt scores or None, perplexity) of ``arm`` at intensity ``x``."""
    c = arm["curve"]
    k = c["intensity"].index(x) if x in c["intensity"] else 0  # unsteered arms have only 0
    scores = None if "scores" not in c else np.array(c["scores"])[:, k]
    return c["efficacy"][k], scores, (c.get("perplexity") or [None] * (k + 1))[k]


def dose_table(folders: list[str], x: float = 0.25) -> str:
    """Every arm at one fixed intensity ``x`` (no dev choice): the change vs unsteered, each
    map's change as a fraction of native's (paired CI over test prompts where the run kept
    per-prompt scores), and perplexity as a multiple of unsteered."""
    from common import ROOT  # noqa: F401  (puts the project on sys.path)
    from steer_ui.evaluation.scoring import ci, ratio_ci

    reports = [json.loads((Path(f) / "report.json").read_text()) for f in folders if (Path(f) / "report.json").is_file()]
    maps = sorted({n for r in reports for n in r["arms"] if n.startswith("transferred:")})
    out = [f"| concept -> SLM | native delta at {x:+g} (ppl) | "
           + " | ".join(f"{m.split(':')[1]}: fraction of native (ppl)" for m in maps) + " | random delta (ppl) |",
           "|---" * (len(maps) + 3) + "|"]
    for r in reports:
        base, base_s, ppl0 = _at(r["arms"]["baseline"], 0.0)
        nat, nat_s, nat_p = _at(r["arms"]["native"], x)
        d_nat = None if nat_s is None or base_s is None else nat_s - base_s
        row = [f"{Path(str(r['pairs'])).name} -> {r['models']['slm']}",
               f"{nat - base:+.2f}{_ci(None if d_nat is None else ci(d_nat))} ({_x(nat_p / ppl0 if nat_p else None)}x)"]
        for m in maps:
            if m not in r["arms"]:
                row.append("-")
                continue
            e, s_m, p = _at(r["arms"][m], x)
            frac = (e - base) / (nat - base) if nat != base else None
            band = None if d_nat is None or s_m is None else ratio_ci(s_m - base_s, d_nat)
            row.append(f"{_f(frac)}" + ("" if band is None else f" [{band[0]:.2f}, {band[1]:.2f}]")
                       + f" ({_x(p / ppl0 if p else None)}x)")
        e, _, p = _at(r["arms"]["random"], x)
        row.append(f"{e - base:+.2f} ({_x(p / ppl0 if p else None)}x)")
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    kind, *paths = sys.argv[1:]
    tables = {"transfer": transfer_tables, "experiments": experiment_tables, "grid": grid_table,
              "dose": dose_table}
    print(tables[kind](paths))
