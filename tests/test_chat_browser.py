"""`assay chat` in a real headless Chromium (Debian's /usr/bin/chromium) against a real Chainlit process.

Offline: every request to a non-local host is aborted (Chainlit's page asks for web fonts and KaTeX CSS from CDNs).
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium; .ci/run does this)"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


# ---- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture
def page(browser, local_only):
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 860})
    ctx.route("**/*", local_only)
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()


def _app(endpoints, tmp_path, *, settings: dict | None = None, db: Path | None = None, port: int | None = None):
    from assay.chat.launch import ChatApp
    from assay.engines import free_port

    extra = {"ASSAY_CHAT_SETTINGS": json.dumps(settings)} if settings else None
    return ChatApp(endpoints, port=port or free_port(), db=db or tmp_path / "history.sqlite",
                   app_dir=tmp_path / "app", extra_env=extra).start()


def _echo(req: dict) -> str:
    """The stub's reply: the request's sampling parameters and system prompt, as JSON ("say: X" replies X)."""
    msgs = req.get("messages") or []
    if msgs and str(msgs[-1].get("content", "")).startswith("say: "):
        return msgs[-1]["content"][5:]
    system = next((m["content"] for m in msgs if m.get("role") == "system"), None)
    return json.dumps({"temperature": req.get("temperature"), "max_tokens": req.get("max_tokens"),
                       "top_p": req.get("top_p"), "system": system, "n_messages": len(msgs)})


# ---- helpers --------------------------------------------------------------------------------------------------------

ANSWERS = '[data-step-type="assistant_message"]'


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#chat-input")


def _send(page, text: str) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")
    try:  # sent = the composer empties
        page.wait_for_function("() => document.querySelector('#chat-input').value === ''", timeout=5_000)
    except sync_api.TimeoutError:  # e.g. Enter landed while a just-closed menu still held focus
        page.click("#chat-submit")
        page.wait_for_function("() => document.querySelector('#chat-input').value === ''")


def _wait_answers(page, n: int, timeout_s: float = 60) -> None:
    """Wait until n assistant answers show their stats line (the sign a reply is finished)."""
    page.wait_for_function(
        """([sel, n]) => Array.from(document.querySelectorAll(sel))
              .filter(e => /tokens out|partial answer/.test(e.innerText)).length >= n""",
        arg=[ANSWERS, n], timeout=timeout_s * 1000)


def _last_answer_text(page) -> str:
    return page.locator(ANSWERS).last.inner_text()


def _wait_db(predicate, db: Path, timeout_s: float = 15):
    from assay.chat.history import list_threads

    deadline = time.monotonic() + timeout_s
    threads = []
    while time.monotonic() < deadline:
        threads = list_threads(db)
        if predicate(threads):
            return threads
        time.sleep(0.2)
    raise AssertionError(f"database never reached the expected state; it holds: {threads!r}")


def _answers_in(thread: dict) -> list[dict]:
    return [s for s in thread["steps"] if (s["metadata"].get("assay") or {}).get("kind") == "answer"]


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _switch_profile(page, name: str) -> None:
    """Pick a chat profile and wait until the new session is live.

    Chainlit's switch drops the socket, resets the settings inputs (the gear goes away) and opens a new session whose
    on_chat_start sends the settings back. A message typed before that goes out on the closed socket and is lost, so
    wait for a *new* gear element: the old one is marked first, and only a re-rendered one lacks the mark."""
    page.wait_for_selector("#chat-settings-open-modal")
    page.eval_on_selector("#chat-settings-open-modal", "e => e.setAttribute('data-old-session', '1')")
    page.click("#chat-profiles")
    page.click(f'[data-test="select-item:{name}"]')
    page.wait_for_selector("#chat-settings-open-modal:not([data-old-session])", timeout=60_000)
    page.wait_for_selector("#chat-input")


def _open_settings(page):
    page.click("#chat-settings-open-modal")
    page.wait_for_selector("#chat-settings")


# ---- 1. the real embedded model -------------------------------------------------------------------------------------


@pytest.mark.engine
def test_embedded_model_streams_a_reply(embedded, page, tmp_path):
    app = _app([embedded], tmp_path, settings={"max_tokens": 8, "temperature": 0.0})
    try:
        _open(page, app.url)
        # Record every text the reply shows, as the DOM changes, to see it grow before it is finished.
        page.evaluate("""() => {
            window.__seen = [];
            new MutationObserver(() => {
                const a = document.querySelectorAll('[data-step-type="assistant_message"]');
                if (a.length) window.__seen.push(a[a.length - 1].innerText);
            }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }""")
        _send(page, "What is the capital of France?")
        try:
            # Generous: a shared, overloaded CPU can take a minute for a few tokens. Not a speed check.
            _wait_answers(page, 1, timeout_s=400)
        except Exception:
            _shot(page, "chat-embedded-failed.png")
            raise AssertionError("no finished reply; app log: " + app.log_path.read_text()[-3000:])
        text = _last_answer_text(page)
        reply = text.split("TTFT")[0].strip()
        assert reply, f"empty reply: {text!r}"
        assert re.search(r"TTFT \d+\.\d\d s", text) and "tokens out" in text, text
        m = re.search(r"(\d+) tokens out", text)
        assert 1 <= int(m.group(1)) <= 8  # the start settings' max tokens reached the real server
        seen = page.evaluate("window.__seen")
        partial = [t for t in seen if t.strip() and "tokens out" not in t]
        assert partial, "the reply never showed before it was finished (not streamed?)"
        _shot(page, "chat-embedded.png")
        threads = _wait_db(lambda ts: ts and _answers_in(ts[0]), app.db)
        stored = _answers_in(threads[0])[0]["metadata"]["assay"]
        assert stored["answer"].strip() and stored["answer"].strip()[:20] in reply
        assert stored["stats"]["completion_tokens"] == int(m.group(1))
    finally:
        app.stop()


# ---- 2. settings, stop, errors, LaTeX: a stub server that echoes what it was sent ------------------------------------


@pytest.fixture(scope="module")
def echo_app(tmp_path_factory):
    from assay.stub import StubServer

    tmp = tmp_path_factory.mktemp("chat_echo")
    stub = StubServer(reply=_echo, gap_s=0.02).start()
    app = _app([stub.endpoint("stub-model")], tmp)
    yield stub, app
    app.stop()
    stub.stop()


def test_settings_panel_reaches_the_request(echo_app, page):
    stub, app = echo_app
    _open(page, app.url)
    _open_settings(page)
    thumb = page.locator("#temperature [role=slider]")
    assert thumb.get_attribute("aria-valuenow") == "0.7"  # the default
    thumb.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # step 0.1
    assert thumb.get_attribute("aria-valuenow") == "1"
    page.fill("#max_tokens", "77")
    page.fill("#system_prompt", "You are a pirate.\nAnswer in one line.")
    _shot(page, "chat-settings.png")
    page.click("#confirm")
    n0 = len(stub.requests)
    _send(page, "show me the parameters")
    _wait_answers(page, 1)
    req = stub.requests[n0]
    assert req["temperature"] == pytest.approx(1.0)
    assert req["max_tokens"] == 77
    assert req["top_p"] == pytest.approx(1.0)
    assert req["messages"][0] == {"role": "system", "content": "You are a pirate.\nAnswer in one line."}
    assert req["messages"][-1] == {"role": "user", "content": "show me the parameters"}
    shown = _last_answer_text(page)
    assert '"max_tokens": 77' in shown and '"temperature": 1.0' in shown
    assert "tokens out" in shown  # stats line under the reply

    # The next message carries the history and the same settings.
    _send(page, "again")
    _wait_answers(page, 2)
    req2 = stub.requests[n0 + 1]
    assert [m["role"] for m in req2["messages"]] == ["system", "user", "assistant", "user"]
    assert json.loads(req2["messages"][2]["content"])["max_tokens"] == 77  # raw answer, without the stats line
    assert req2["max_tokens"] == 77

    # Regenerate: the same request again, and the old answer is replaced (still two answers on the page).
    n1 = len(stub.requests)
    old_id = page.locator(ANSWERS).last.locator("[id^=step-]").first.get_attribute("id")
    page.locator("button", has_text="Regenerate").last.click()
    page.wait_for_function(  # two finished answers again, and the old one gone
        "([sel, old]) => { const a = Array.from(document.querySelectorAll(sel))"
        ".filter(e => /tokens out/.test(e.innerText));"
        " return a.length === 2 && !document.getElementById(old) }",
        arg=[ANSWERS, old_id])
    _shot(page, "chat-regenerated.png")
    assert len(stub.requests) == n1 + 1
    assert stub.requests[n1]["messages"] == req2["messages"]


def test_stop_keeps_the_partial_answer(echo_app, page):
    stub, app = echo_app
    words = [f"w{i:03d}" for i in range(200)]
    _open(page, app.url)
    _send(page, f"[[gap:0.1]][[reply:{' '.join(words)}]] go slowly")
    answer = page.locator(ANSWERS).filter(has_text="w000")
    try:
        page.wait_for_function(
            "sel => { const a = document.querySelectorAll(sel); return a.length && /w010/.test(a[a.length-1].innerText) }",
            arg=ANSWERS)
    finally:
        _shot(page, "chat-stop.png")
    page.click("#stop-button")
    _wait_answers(page, 1)
    text = answer.inner_text()
    assert "w000" in text and "w010" in text and "stopped (partial answer)" in text
    assert "w199" not in text  # it really stopped
    threads = _wait_db(lambda ts: any(_answers_in(t) for t in ts), app.db)
    kept = [a for t in threads for a in _answers_in(t) if a["metadata"]["assay"]["stats"].get("stopped")]
    assert kept and kept[-1]["metadata"]["assay"]["answer"].startswith("w000 w001")
    # The stopped answer is part of the history the next request sends.
    n0 = len(stub.requests)
    _send(page, "continue")
    _wait_answers(page, 2)
    sent = stub.requests[n0]["messages"]
    assert sent[-2]["role"] == "assistant" and sent[-2]["content"].startswith("w000 w001")
    assert "w199" not in sent[-2]["content"]


def test_endpoint_error_is_readable_and_app_keeps_running(echo_app, page):
    stub, app = echo_app
    _open(page, app.url)
    _send(page, "[[status:500]] break please")
    err = page.locator(ANSWERS).filter(has_text="No reply from").last
    err.wait_for(timeout=30_000)
    assert "HTTP 500" in err.inner_text() and "stub says 500" in err.inner_text()
    assert app.alive()
    # LaTeX is switched on: \[ \boxed{} \] renders with KaTeX.
    _send(page, r"say: The answer is \[ \boxed{42} \] and \(x^2\).")
    _wait_answers(page, 1)
    last = page.locator(ANSWERS).last
    assert last.locator(".katex").count() >= 2
    assert "\\boxed" not in last.inner_text().split("TTFT")[0]
    _shot(page, "chat-error-and-latex.png")


def test_model_picker_with_two_models(page, stub, tmp_path):

    a = stub(reply="I am model A.", model="model-a")
    b = stub(reply="I am model B.", model="model-b")
    app = _app([a.endpoint("model-a"), b.endpoint("model-b")], tmp_path)
    try:
        _open(page, app.url)
        _switch_profile(page, "model-b")
        _send(page, "who are you?")
        try:
            _wait_answers(page, 1)
        finally:
            _shot(page, "chat-picker.png")
        assert "I am model B." in _last_answer_text(page)
        assert len(b.requests) == 1 and len(a.requests) == 0
    finally:
        app.stop()


# ---- 3. history: resume, restart, delete, export ----------------------------------------------------------------------


def test_history_resume_restart_export_delete(page, stub, tmp_path):

    srv = stub(reply=_echo, gap_s=0.0)
    eps = [srv.endpoint("stub-model")]
    db = tmp_path / "history.sqlite"
    app = _app(eps, tmp_path, db=db)
    port = app.port
    try:
        _open(page, app.url)
        _open_settings(page)
        page.fill("#max_tokens", "55")
        page.fill("#system_prompt", "Be brief.")
        page.click("#confirm")
        _send(page, "first question")
        _wait_answers(page, 1)
        _send(page, "second question")
        _wait_answers(page, 2)

        # Export: both files download and parse.
        page.locator("button", has_text="JSON").last.click()
        link = page.locator('a[download$=".json"]').last
        link.wait_for()
        with page.expect_download() as dl:
            link.click()
        doc = json.loads(Path(dl.value.path()).read_text())
        assert doc["format"] == "assay.chat/1" and doc["settings"]["max_tokens"] == 55
        assert [m["role"] for m in doc["messages"]] == ["system", "user", "assistant", "user", "assistant"]
        assert doc["messages"][1]["content"] == "first question"
        assert json.loads(doc["messages"][2]["content"])["max_tokens"] == 55
        assert doc["messages"][2]["stats"]["completion_tokens"] >= 1
        page.locator("button", has_text="Markdown").last.click()
        link = page.locator('a[download$=".md"]').last
        link.wait_for()
        with page.expect_download() as dl:
            link.click()
        md = Path(dl.value.path()).read_text()
        assert md.startswith("# first question")
        assert "## User\n\nfirst question" in md and "## Assistant" in md and "## System\n\nBe brief." in md

        # the settings reach the thread's metadata just after the first reply's steps: wait for both
        threads = _wait_db(lambda ts: len(ts) == 1 and len(_answers_in(ts[0])) == 2
                           and "assay_settings" in (ts[0]["metadata"] or {}), db)
        tid = threads[0]["id"]
        assert threads[0]["userIdentifier"] == "local"
        assert [s["output"] for s in threads[0]["steps"] if s["type"] == "user_message"] == [
            "first question", "second question"]
        assert threads[0]["metadata"]["assay_settings"]["max_tokens"] == 55

        # Reload: the thread is in the sidebar, and resuming shows its messages and restores its settings.
        _open(page, app.url)
        page.wait_for_selector(f"#thread-{tid}")
        page.click(f"#thread-{tid}")
        page.wait_for_selector("text=second question")
        assert page.locator(ANSWERS).count() >= 2
        _open_settings(page)
        assert page.locator("#max_tokens").input_value() == "55"
        assert page.locator("#system_prompt").input_value() == "Be brief."
        page.keyboard.press("Escape")
        n0 = len(srv.requests)
        _send(page, "third question")
        page.wait_for_function("n => document.body.innerText.includes('\"n_messages\": ' + n)", arg=6)
        req = srv.requests[n0]
        assert req["max_tokens"] == 55 and req["messages"][0]["content"] == "Be brief."
        assert [m["content"] for m in req["messages"] if m["role"] == "user"] == [
            "first question", "second question", "third question"]
        _shot(page, "chat-resumed.png")

        # Restart the app process: the thread is still there.
        app.stop()
        app = _app(eps, tmp_path, db=db, port=port)
        _open(page, app.url)
        page.wait_for_selector(f"#thread-{tid}")
        page.click(f"#thread-{tid}")
        page.wait_for_selector("text=third question")

        # Delete it.
        item = page.locator(f"#thread-{tid}")
        item.hover()
        item.locator("#thread-options").click()
        page.click("#delete-thread")
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_selector(f"#thread-{tid}", state="detached")
        _wait_db(lambda ts: not any(t["id"] == tid for t in ts), db)
    finally:
        app.stop()


def _coder(req: dict) -> str:
    """The stub 'model' with the Python tool: first a code block, then an answer from the output it was given."""
    last = str((req.get("messages") or [{}])[-1].get("content", ""))
    if last.startswith("Output of your code:"):
        out = re.search(r"```output\n(.*?)\n```", last, re.S).group(1)
        return f"The sandbox printed {out}, so the answer is {out}."
    return "Let me compute it.\n```python\nprint(sum(i * i for i in range(10)))\n```"


def test_python_tool_runs_in_a_collapsible_step(page, stub, tmp_path):
    st = stub(reply=_coder)

    app = _app([st.endpoint("stub-model")], tmp_path, settings={"python_tool": True})
    try:
        _open(page, app.url)
        _send(page, "What is the sum of the squares below 10?")
        _wait_answers(page, 2)
        assert "the answer is 285" in _last_answer_text(page)
        step = page.get_by_text("Used python").first  # Chainlit's collapsed tool step
        step.wait_for(timeout=30_000)
        step.click()
        page.get_by_text("sum(i * i for i in range(10))").first.wait_for(timeout=10_000)
        assert page.get_by_text("285").count() >= 1
        # the model got the output as a message: the second request ends with it
        assert st.requests[-1]["messages"][-1]["content"] == "Output of your code:\n```output\n285\n```"
        _shot(page, "chat-python-tool-step.png")
        threads = _wait_db(lambda ts: ts and any(s["type"] == "tool" for s in ts[0]["steps"]), app.db)
        tool = next(s for s in threads[0]["steps"] if s["type"] == "tool")
        assert tool["metadata"]["assay"]["status"] == "passed"
    finally:
        app.stop()
