"""review.html in a real headless Chromium (Debian's /usr/bin/chromium through Playwright): every section of the
review is there in the documents' order, with its table or its named gap, and the page asks nothing of the network.

The review is made by the flow against two stub servers (fast; tests/test_review.py covers the numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium; .ci/run does this)"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

ORDER = ["identity", "capabilities", "comparison", "speed", "hardware", "judge", "deploy"]


@pytest.fixture
def review_html(stub, tmp_path) -> Path:
    from test_review import _adder, _budget, _choices

    from assay.flows.review import run_review
    from assay.report.review import write_review

    from concurrent.futures import ThreadPoolExecutor

    good, bad = stub(reply=_adder(0), model="good-model"), stub(reply=_adder(1), model="bad-model")
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds an event loop in this thread
        review = pool.submit(run_review, _choices(good, bad), budget_name=_budget(), out_dir=tmp_path / "runs").result()
    assert not [g for g in review["gaps"] if g["section"] == "capabilities"], review["gaps"]
    return write_review(review, tmp_path / "review")["html"]


def test_every_section_renders_in_chromium(browser, review_html):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def route(r):  # a self-contained page loads nothing: any request beyond the file itself is recorded and refused
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    page = ctx.new_page()
    page.goto(review_html.as_uri())
    ids = page.eval_on_selector_all("section[data-section]", "els => els.map(e => e.id)")
    assert ids == ORDER
    titles = page.eval_on_selector_all("section > h2", "els => els.map(e => e.innerText)")
    assert [t.split(".")[0] for t in titles] == [str(i) for i in range(1, 8)]
    for sid in ORDER:  # every section shows something: a table, a code block, or a gap that names its reason
        sec = page.locator(f"section#{sid}")
        assert sec.is_visible()
        filled = sec.locator("table, pre, div.gap").count()
        assert filled > 0, sid
        for gap in sec.locator("div.gap").all_inner_texts():
            assert len(gap.strip()) > 20, (sid, gap)
    cap = page.locator("section#capabilities table.capabilities")
    header = cap.locator("thead th").all_inner_texts()
    assert header[0] == "dimension" and header[-1] == "suites and data" and len(header) == 4  # two models
    rows = cap.locator("tbody tr").all_inner_texts()
    assert any(r.startswith("Logic") and "n=24" in r and "sums" in r for r in rows)
    pairs = page.locator("section#comparison table.pairs tbody tr").all_inner_texts()
    assert any("sums" in r and "better (real)" in r for r in pairs)
    assert any("json" in r and "not real" in r for r in pairs)
    assert page.locator("section#comparison svg").count() == 1  # the quality × speed chart, inline
    speed = page.locator("section#speed table.speed").first.locator("tbody tr").all_inner_texts()
    assert [r.split("\t")[0] for r in speed] == ["daily Q&A (50 → 100)", "long summary (8K → 300)", "code (120 → 200)"]
    assert "measured on" in page.locator("section#speed").inner_text()
    assert "absent" in page.locator("section#judge").inner_text()
    # the nav links jump to the sections
    page.click("nav >> text=Speed")
    assert page.evaluate("location.hash") == "#speed"
    assert outside == []
    ctx.close()
