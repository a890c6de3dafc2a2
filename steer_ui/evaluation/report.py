"""Write an experiment's ``report.json`` and its plots (HTML always, PNG when kaleido
can find a Chromium to render with)."""

from __future__ import annotations

import json
from pathlib import Path

from .. import plots


def curves_figure(report: dict, metric: str, title: str):
    """Test-split ``metric`` against intensity, one curve per arm."""
    grid = report["intensities"]
    curves = {}
    for name, arm in report["arms"].items():
        xs, ys = arm["curve"]["intensity"], arm["curve"][metric]
        curves[name] = [ys[xs.index(x)] if x in xs else ys[0] for x in grid] if ys else []
    return plots.lines(grid, curves, title, "intensity (relative)", metric)


def write(report: dict, out: str | Path, task: str, prefix: str = "", titles: dict[str, str] | None = None) -> list[Path]:
    """``out/<prefix>report.json`` plus one HTML (and PNG) per plot; returns the files written.

    The HTML embeds plotly.js (``include_plotlyjs=True``, no CDN): it opens offline. PNG
    needs kaleido and a Chromium it can drive; without them the HTML is all, and the
    report's ``notes`` say so. ``titles``: a plot title per metric (default: a plain one).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{prefix}report.json"
    path.write_text(json.dumps(report, indent=2, default=float))
    written = [path]
    metrics = ["accuracy", "p_match"] if task == "ab" else ["efficacy", "perplexity"]
    for metric in metrics:
        if not any(arm["curve"].get(metric) for arm in report["arms"].values()):
            continue
        fig = curves_figure(report, metric, (titles or {}).get(metric, f"{metric} against intensity (test split)"))
        html = out / f"{prefix}{metric}.html"
        fig.write_html(html, include_plotlyjs=True)
        written.append(html)
        try:
            fig.write_image(out / f"{prefix}{metric}.png", width=900, height=500)
            written.append(out / f"{prefix}{metric}.png")
        except Exception as exc:  # kaleido needs a Chromium; HTML is the fallback
            report.setdefault("notes", []).append(f"PNG for {metric} skipped: {exc.__class__.__name__}")
    if report.get("notes"):  # written again so the file carries the notes added above
        path.write_text(json.dumps(report, indent=2, default=float))
    return written
