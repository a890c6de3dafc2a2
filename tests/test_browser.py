"""The app in a real browser: Debian's Chromium driven by Playwright, like a person would.

Open the page, type two prompt lists in the Concept tab, extract in both models, see the
PCA plots, then steer the SLM on the Steer tab and check that the steered text differs.
Screenshots of each step go to ``test-artifacts/browser-*.png`` (git-ignored).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest


from conftest import served_app

pytestmark = [pytest.mark.browser, pytest.mark.real]

playwright_api = pytest.importorskip("playwright.sync_api")

LLM, SLM = "qwen2.5-0.5b", "smollm2-135m"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

JOYFUL = [
    "Write a joyful note about Monday.",
    "Describe a sunny morning with delight.",
    "Tell a friend some wonderful news.",
    "Write a cheerful birthday message.",
    "Describe a happy walk in the park.",
    "Say something uplifting about your job.",
    "Write a delighted review of a meal.",
    "Describe the best holiday you ever had.",
]
GLOOMY = [
    "Write a gloomy note about Monday.",
    "Describe a grey morning with dread.",
    "Tell a friend some terrible news.",
    "Write a bleak birthday message.",
    "Describe a miserable walk in the park.",
    "Say something discouraging about your job.",
    "Write a disappointed review of a meal.",
    "Describe the worst holiday you ever had.",
]

# CPU-only and shared with other jobs: generous, but bounded (the whole test stays well under 3 min)
LOAD_MS = 60_000
EXTRACT_MS = 150_000
GENERATE_S = 120


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: `make test` should have installed Debian's chromium "
                        "(its `browser` target runs apt-get install chromium).")
        pytest.skip(f"{CHROMIUM} is not installed (`make browser` installs it)")
    return CHROMIUM


@pytest.fixture(scope="module")
def app_url(chromium):
    """URL of the app served in this process on 127.0.0.1 with the real LLM and SLM; closed at module end."""
    with served_app(LLM, SLM) as (_, _, url):
        yield url


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname
    return url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost", "::1")


@pytest.fixture
def browser_page(app_url, chromium):
    """(page, problems): a fresh 1400 px wide page on the app. Like the socket guard in conftest,
    any request that would leave 127.0.0.1 is aborted and recorded in ``problems``."""
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []  # uncaught exceptions, console errors, blocked requests

    def route(r):
        if _loopback(r.request.url):
            r.continue_()
        else:
            problems.append(f"blocked request: {r.request.url}")
            r.abort()

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.route("**/*", route)
            pg.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
            pg.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
            pg.set_default_timeout(30_000)
            pg.goto(app_url, wait_until="load", timeout=LOAD_MS)
            yield pg, problems
        finally:
            browser.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)


def _plot_block(page, label: str):
    """The block of the ``gr.Plot`` whose label is exactly ``label``."""
    tag = page.get_by_test_id("block-label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return tag.locator("xpath=..")


def _busy(page, elem_id: str) -> bool:
    """Whether the status tracker of the component ``#elem_id`` is showing (a job pending or streaming)."""
    return page.locator(f"#{elem_id}").evaluate(
        "el => { const t = el.querySelector('[data-testid=status-tracker]');"
        " return !!t && !t.classList.contains('hide') || el.classList.contains('generating'); }")


def _wait_for_texts(page, ids: list[str], timeout_s: float, settle_s: float = 3.0) -> list[str]:
    """Texts of the textareas ``#id textarea`` once all are non-empty, idle, and unchanged for ``settle_s``.

    Setting the intensity may start a generation of its own (the slider's release event) before
    Generate queues the same one again; ``settle_s`` spans the short idle gap between the two."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        texts = [page.locator(f"#{i} textarea").input_value() for i in ids]
        busy = any(_busy(page, i) for i in ids)
        if texts != last or busy:
            last, since = texts, time.monotonic()
        elif all(t.strip() for t in texts) and time.monotonic() - since >= settle_s:
            return texts
        page.wait_for_timeout(500)
    raise AssertionError(f"generation did not finish in {timeout_s:.0f} s; last texts: {last!r}")


def test_extract_then_steer_in_the_browser(browser_page):
    page, problems = browser_page
    t0 = time.monotonic()
    expect = playwright_api.expect
    expect(page.get_by_role("tab", name="Concept")).to_be_visible(timeout=LOAD_MS)
    _shot(page, "01-loaded")

    # ---- Concept tab: two typed lists, extract in both models ----
    page.get_by_role("tab", name="Concept").click()
    page.get_by_label("Two lists").check()
    page.get_by_label("Max pairs (0 = all)").fill("8")
    page.get_by_label("Positive prompts (one per line)").fill("\n".join(JOYFUL))
    page.get_by_label("Negative prompts (line i pairs with line i)").fill("\n".join(GLOOMY))
    _shot(page, "02-concept-filled")
    page.get_by_role("button", name="Extract in both models").click()

    summary = page.get_by_test_id("markdown").filter(has_text=SLM)
    expect(summary).to_contain_text(f"{SLM}: 8 pairs", timeout=EXTRACT_MS)
    expect(summary).to_contain_text(f"{LLM}: 8 pairs")
    expect(summary).to_contain_text("best layer")
    for label in ("SLM PCA", "LLM PCA"):
        expect(_plot_block(page, label).locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    expect(_plot_block(page, "SLM PCA").locator(".js-plotly-plot .scatterlayer .point").first).to_be_attached()
    page.wait_for_timeout(1000)  # let plotly finish drawing before the screenshot
    _shot(page, "03-extracted")
    t_extract = time.monotonic() - t0

    # ---- Steer tab: few tokens, intensity 0.8, Generate ----
    page.get_by_role("tab", name="Steer").click()
    page.get_by_role("button", name="Sampling").click()
    max_new = page.get_by_label("number input for Max new tokens")
    max_new.fill("16")
    max_new.press("Tab")
    expect(page.get_by_label("range slider for Max new tokens")).to_have_value("16")
    intensity = page.get_by_label(re.compile(r"^number input for Intensity"))
    intensity.fill("0.8")
    intensity.press("Tab")  # may also fire the slider's release event: a generation, which is fine
    expect(page.get_by_label(re.compile(r"^range slider for Intensity"))).to_have_value("0.8")
    page.get_by_role("button", name="Generate", exact=True).click()

    plain, steered = _wait_for_texts(page, ["slm-plain", "slm-steered"], GENERATE_S)
    _shot(page, "04-steered")
    print(f"\nSLM unsteered: {plain!r}\nSLM steered:   {steered!r}")
    print(f"extract {t_extract:.0f} s, total {time.monotonic() - t0:.0f} s")
    assert steered != plain
    # only the SLM was asked for: the LLM boxes stay empty
    assert page.locator("#llm-plain textarea").input_value() == ""
    assert page.locator("#llm-steered textarea").input_value() == ""
    assert not problems, problems
