"""The blind arena (`assay chat --arena`) and thumbs, in real headless Chromium against a real Chainlit process.

Two stub servers play two models (a stub because the test must know which bytes came from which model, and see
them stream): the two answers stream side by side with no names, a vote is stored in SQLite with the prompt, both
answers and the models, the names are revealed, and `assay arena report` reads the vote. A thumbs-up on an ordinary
reply lands in the history's feedbacks table and in the report. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

REPLY_A = "Alpha speaking: the sky looks blue because air scatters short wavelengths of sunlight the most."
REPLY_B = "Bravo here. Rayleigh scattering."


@pytest.fixture
def page(browser, local_only):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.route("**/*", local_only)
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _send(page, text: str) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")
    try:
        page.wait_for_function("() => document.querySelector('#chat-input').value === ''", timeout=5_000)
    except sync_api.TimeoutError:
        page.click("#chat-submit")


def _wait(predicate, timeout_s: float = 15):
    deadline = time.monotonic() + timeout_s
    got = None
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"never reached the expected state (last: {got!r})")


def test_arena_streams_two_blind_answers_stores_the_vote_and_reveals(page, stub, tmp_path):
    from typer.testing import CliRunner

    from assay.chat.launch import ChatApp
    from assay.chat.votes import list_votes
    from assay.cli import app as cli_app
    from assay.engines import free_port

    a = stub(reply=REPLY_A, model="model-alpha", gap_s=0.3)  # slow enough to be seen streaming
    b = stub(reply=REPLY_B, model="model-bravo", gap_s=0.8)  # on a loaded machine too
    db = tmp_path / "history.sqlite"
    chat = ChatApp([a.endpoint("model-alpha"), b.endpoint("model-bravo")], port=free_port(),
                   db=db, app_dir=tmp_path / "app", extra_env={"ASSAY_CHAT_ARENA": "1"}).start()
    try:
        page.goto(chat.url)
        page.wait_for_selector("#chat-input")
        page.wait_for_selector("text=Arena mode")
        assert page.locator("#chat-profiles").count() == 0  # no model picker: the models stay anonymous
        page.evaluate("""() => {
            window.__seen = [];
            new MutationObserver(() => {
                const p = document.querySelector('#arena-pair');
                if (p) window.__seen.push([p.dataset.streaming, document.querySelector('#arena-a-text').innerText,
                                           document.querySelector('#arena-b-text').innerText]);
            }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }""")
        _send(page, "Why is the sky blue?")
        try:
            page.wait_for_selector("button:has-text('A is better')", timeout=60_000)
        except Exception:
            _shot(page, "arena-failed.png")
            raise AssertionError("no vote buttons; app log: " + chat.log_path.read_text()[-3000:])
        # side by side: the two columns sit on one row, A left of B
        box_a = page.locator("#arena-a").bounding_box()
        box_b = page.locator("#arena-b").bounding_box()
        assert box_a["x"] + box_a["width"] <= box_b["x"] + 1 and abs(box_a["y"] - box_b["y"]) < 2
        text_a, text_b = page.inner_text("#arena-a-text"), page.inner_text("#arena-b-text")
        assert {text_a.strip(), text_b.strip()} == {REPLY_A, REPLY_B}
        # blind: no model name anywhere on the page before the vote
        body = page.inner_text("body")
        assert "model-alpha" not in body and "model-bravo" not in body
        assert page.inner_text("#arena-a-label").strip() == "Assistant A"
        # streamed: both columns were seen partly written while streaming
        seen = page.evaluate("window.__seen")
        partial = [s for s in seen if s[0] == "1" and s[1].strip() not in ("", "…") and s[1].strip() not in
                   (REPLY_A, REPLY_B)]
        assert partial, f"column A never showed a partial answer: {seen[:5]}"
        assert any(s[0] == "1" and s[2].strip() not in ("", "…", REPLY_A, REPLY_B) for s in seen)
        for label in ("B is better", "Tie", "Both are bad"):
            assert page.locator(f"button:has-text('{label}')").count() == 1
        _shot(page, "arena-before-vote.png")

        page.click("button:has-text('A is better')")
        page.wait_for_selector("#arena-a[data-revealed='1']")
        name_a = "model-alpha" if text_a.strip() == REPLY_A else "model-bravo"
        name_b = "model-bravo" if name_a == "model-alpha" else "model-alpha"
        assert page.inner_text("#arena-a-label").startswith(f"Assistant A: {name_a}")
        assert "your pick" in page.inner_text("#arena-a-label")
        assert page.inner_text("#arena-b-label").strip() == f"Assistant B: {name_b}"
        page.wait_for_selector(f"text=Assistant A was")
        assert page.locator("button:has-text('A is better')").count() == 0  # one vote per battle
        _shot(page, "arena-revealed.png")

        votes = _wait(lambda: list_votes(db))
        v = votes[0]
        assert len(votes) == 1 and v["vote"] == "a" and v["prompt"] == "Why is the sky blue?"
        assert (v["model_a"], v["model_b"]) == (name_a, name_b)
        assert v["answer_a"] == text_a.strip() and v["answer_b"] == text_b.strip()
        assert v["stats"]["a"]["completion_tokens"] and v["settings"]["max_tokens"]

        out = tmp_path / "votes.jsonl"
        r = CliRunner().invoke(cli_app, ["arena", "report", "--db", str(db), "--export", str(out), "--n-boot", "50"])
        assert r.exit_code == 0, r.output
        rep = json.loads(r.stdout.strip().splitlines()[-1])
        assert rep["votes"] == 1 and rep["vote_counts"]["a"] == 1
        assert rep["bt"]["ranking"][0] == name_a and rep["bt"]["games"] == {name_a: 1, name_b: 1}
        assert rep["win_matrix"][name_a][name_b]["rate"] == 1.0
        exported = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(exported) == 1 and exported[0]["vote"] == "a" and exported[0]["answer_a"] == v["answer_a"]
    finally:
        chat.stop()


def test_thumbs_on_an_ordinary_reply_are_stored(page, stub, tmp_path):
    from assay.chat.launch import ChatApp
    from assay.chat.votes import thumbs
    from assay.engines import free_port

    s = stub(reply="Paris is the capital of France.", model="stub-model")
    db = tmp_path / "history.sqlite"
    chat = ChatApp([s.endpoint("stub-model")], port=free_port(), db=db, app_dir=tmp_path / "app").start()
    try:
        page.goto(chat.url)
        page.wait_for_selector("#chat-input")
        _send(page, "Capital of France?")
        page.wait_for_function("() => /tokens out/.test(document.body.innerText)")
        page.locator(".positive-feedback-off").last.click()
        try:  # Chainlit may ask for a comment first
            page.wait_for_selector("#submit-feedback", timeout=3_000)
            page.click("#submit-feedback")
        except sync_api.TimeoutError:
            pass
        page.wait_for_selector(".positive-feedback-on")
        got = _wait(lambda: thumbs(db))
        assert "stub-model" in got, got
        assert got == {"stub-model": {"up": 1, "down": 0, "share_up": got["stub-model"]["share_up"]}}
        assert got["stub-model"]["share_up"]["n"] == 1
        _shot(page, "chat-thumbs.png")
    finally:
        chat.stop()
