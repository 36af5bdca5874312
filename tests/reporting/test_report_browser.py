"""The demo's report in a real browser: headless Chromium opens it from disk, every image decodes, the
console stays clean, nothing is fetched, and screenshots are kept as test artifacts.

Chromium comes from Debian's ``chromium`` package (scripts/ensure_chromium.sh installs it). Without it the
test skips on a workstation and fails under CI (``CI=true``). Artifacts go to ``$BABYSIT_TEST_ARTIFACTS``
(default: ``build/test-artifacts/`` in the repository).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from _report_browser import Browser, find_chromium

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("BABYSIT_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))


def test_the_demo_report_in_headless_chromium(full_demo) -> None:
    chromium = find_chromium()  # fails in CI when the browser is missing
    runs, result = full_demo  # the whole demo (gradient check, sanity, search, training), run once per session
    assert result.exit_code in (0, 1), result.output  # 1: the demo ran and found a problem; still a report
    page = runs / "demo" / "report.html"
    assert page.is_file(), result.output
    source = page.read_text(encoding="utf-8")

    with Browser(chromium, width=1280, height=900) as browser:
        browser.open(page.as_uri())
        images = browser.evaluate(
            "Array.from(document.images).map(i => ({alt: i.alt, w: i.naturalWidth, h: i.naturalHeight,"
            " done: i.complete}))"
        )
        sections = browser.evaluate("Array.from(document.querySelectorAll('section')).map(s => s.id)")
        overflow = browser.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        top = browser.screenshot(ARTIFACTS / "report-top.png")
        full = browser.screenshot(ARTIFACTS / "report-full.png", full_page=True)
        errors = browser.console_errors()
        fetched = browser.requests()

    # every figure of the page is an image that loaded and decoded
    assert len(images) == source.count("<img ") and len(images) >= 5
    assert all(i["done"] and i["w"] > 0 and i["h"] > 0 for i in images), images
    # no console errors, no failed loads, and nothing fetched beyond the file itself and its inline images
    assert errors == []
    assert all(re.match(r"(file|data):", url) for url in fetched), fetched
    # the page is laid out for a laptop screen: summary first, no sideways scrolling
    assert sections[:2] == ["summary", "findings"] and "training" in sections
    assert overflow <= 0
    assert top.stat().st_size > 10_000 and full.stat().st_size > top.stat().st_size
