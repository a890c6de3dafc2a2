"""Screenshots of every tab, as a user sees them: the app with the real bundled models in
headless Chromium (Debian's, through Playwright), driven through a short demo.

    .venv/bin/python scripts/screenshots.py OUT_DIR [--widths 1400,1000] [--llm qwen2.5-0.5b]

Flow: open the app, extract happy-sad (8 pairs) in both models, draw its heatmap, lens and
calibration (Explore), transfer it (ridge), steer Both models and chat, run a small evaluation; after each step the tab is captured at every
width (``OUT_DIR/<step>-<width>.png``), full page.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def shoot(page, out: Path, step: str, widths: list[int]) -> None:
    for w in widths:
        page.set_viewport_size({"width": w, "height": 1000})
        page.wait_for_timeout(800)  # let plotly re-layout
        page.screenshot(path=str(out / f"{step}-{w}.png"), full_page=True)
    page.set_viewport_size({"width": widths[0], "height": 1000})


def wait_idle(page, seconds: float = 600) -> None:
    """Until no status tracker shows a pending or generating job."""
    deadline = time.monotonic() + seconds
    page.wait_for_timeout(1500)
    while time.monotonic() < deadline:
        busy = page.evaluate("() => [...document.querySelectorAll('[data-testid=status-tracker]')]"
                             ".some(t => !t.classList.contains('hide') && t.offsetParent !== null "
                             "&& !t.classList.contains('error'))")
        if not busy:
            return
        page.wait_for_timeout(500)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--widths", default="1400,1000")
    ap.add_argument("--llm", default="qwen2.5-0.5b")
    ap.add_argument("--slm", default="smollm2-135m")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    widths = [int(w) for w in args.widths.split(",")]
    from playwright.sync_api import sync_playwright

    from conftest import served_app

    with served_app(args.llm, args.slm) as (_, _, url), sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": widths[0], "height": 1000})
        page.set_default_timeout(600_000)
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Models").click()
        page.get_by_role("button", name="Session: save / restore").first.click()
        shoot(page, out, "1-models", widths)
        page.get_by_role("tab", name="Concept").click()
        page.get_by_label("Max pairs (0 = all)").fill("8")
        page.get_by_role("button", name="Extract in both models").click()
        wait_idle(page)
        shoot(page, out, "2-concept", widths)
        page.get_by_role("tab", name="Explore").click()
        page.get_by_role("button", name="Draw heatmap").click()
        wait_idle(page)
        page.get_by_role("button", name="Logit lens").first.click()
        page.get_by_role("button", name="Read the lens").click()
        wait_idle(page)
        page.get_by_role("button", name="Calibrate: which layer").first.click()
        page.get_by_role("button", name="Calibrate", exact=True).click()
        wait_idle(page)
        shoot(page, out, "2b-explore", widths)
        page.get_by_role("tab", name="Transfer").click()
        page.get_by_role("button", name="Transfer", exact=True).click()
        wait_idle(page)
        shoot(page, out, "3-transfer", widths)
        page.get_by_role("tab", name="Steer").click()
        page.get_by_label("Both").check()
        page.get_by_role("button", name="Generate", exact=True).click()
        wait_idle(page)
        for name in ("Compare SLM vectors", "Sweep", "Compose", "Chat"):
            page.get_by_role("button", name=name).first.click()
        page.locator("#chat-message textarea").fill("Hi! What should I cook tonight?")
        page.get_by_role("button", name="Send").click()
        wait_idle(page)
        shoot(page, out, "4-steer", widths)
        page.get_by_role("tab", name="Evaluate").click()
        page.get_by_label("Max items / prompts").fill("20")
        page.get_by_role("button", name="Run evaluation").click()
        wait_idle(page)
        shoot(page, out, "5-evaluate", widths)
        browser.close()
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
