"""`assay chat` without a browser: rendering, settings, export, and the SQLite schema against the installed Chainlit.

The schema tests are the guard against a Chainlit upgrade: they read the installed data layer's own SQL and the dicts
it writes, so a new column in a future Chainlit fails here instead of silently dropping history rows.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import sqlite3
import tempfile
import uuid

import pytest

# Importing chainlit creates .chainlit/ and .files/ in its app root (default: the working directory). Keep them out
# of the checkout.
os.environ.setdefault("CHAINLIT_APP_ROOT", tempfile.mkdtemp(prefix="assay-chainlit-"))

from assay.chat import export, render  # noqa: E402
from assay.chat.history import SCHEMA, create_schema, list_threads, table_columns  # noqa: E402
from assay.chat.settings import DEFAULTS, build_messages, normalize, sampling_from  # noqa: E402

# ---- render ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("src, want", [
    (r"so \[ \boxed{4} \] done", "so $$\n\\boxed{4}\n$$ done"),
    (r"inline \(x^2\) here", "inline $x^2$ here"),
    (r"two \(a\) and \(b\)", "two $a$ and $b$"),
    ("multi \\[\n\\frac{1}{2}\n\\]", "multi $$\n\\frac{1}{2}\n$$"),
    ("already $x$ and $$y$$", "already $x$ and $$y$$"),
    ("code `\\(not math\\)` stays", "code `\\(not math\\)` stays"),
    ("```latex\n\\[ a \\]\n```\nthen \\(b\\)", "```latex\n\\[ a \\]\n```\nthen $b$"),
    ("unclosed \\[ stays", "unclosed \\[ stays"),
    ("", ""),
])
def test_latex_delimiters(src, want):
    assert render.latex_delimiters(src) == want


def test_stats_line_and_display():
    stats = {"ttft_s": 0.2134, "decode_tok_s": 85.26, "completion_tokens": 42, "prompt_tokens": 14,
             "finish_reason": "length", "model": "smollm2-135m"}
    line = render.stats_line(stats)
    assert line == "TTFT 0.21 s · 85.3 tok/s · 42 tokens out · 14 in · cut at max tokens · smollm2-135m"
    assert render.stats_line({"stopped": True, "model": "m"}) == "stopped (partial answer) · m"
    assert render.stats_line({}) == ""
    shown = render.display("The answer is \\(4\\).", {"completion_tokens": 5})
    assert shown == "The answer is $4$.\n\n*5 tokens out*"
    assert render.display("", {"stopped": True}).startswith("*(empty reply)*")
    # Stopped inside a code block: the fence is closed so the stats line is not swallowed as code.
    shown = render.display("```python\nprint(1)", {"stopped": True})
    assert shown.count("```") == 2 and shown.endswith("*stopped (partial answer)*")


# ---- settings -------------------------------------------------------------------------------------------------------


def test_normalize_fills_clamps_and_survives_bad_values():
    assert normalize(None) == DEFAULTS
    got = normalize({"temperature": "1.2", "max_tokens": "77", "top_p": None, "system_prompt": "Be brief.",
                     "junk": 1})
    assert got == {"temperature": 1.2, "max_tokens": 77, "top_p": 1.0, "system_prompt": "Be brief.",
                   "python_tool": False}
    assert normalize({"python_tool": True})["python_tool"] is True
    assert normalize({"python_tool": "on"})["python_tool"] is True  # a form may send strings
    assert normalize({"python_tool": "maybe"}, {"python_tool": True})["python_tool"] is True
    assert normalize({"temperature": 9, "max_tokens": 0, "top_p": 0})["temperature"] == 1.5
    assert normalize({"max_tokens": 0})["max_tokens"] == 1
    assert normalize({"max_tokens": "lots"})["max_tokens"] == DEFAULTS["max_tokens"]
    assert normalize({"max_tokens": "64.0"})["max_tokens"] == 64  # NumberInput sends floats
    assert normalize({"temperature": 0.30000000000000004})["temperature"] == 0.3  # slider float noise
    assert normalize({}, {"max_tokens": 24})["max_tokens"] == 24  # start values from ASSAY_CHAT_SETTINGS


def test_sampling_and_messages():
    p = sampling_from({"temperature": 0.0, "max_tokens": 16, "top_p": 0.9})
    assert (p.temperature, p.max_tokens, p.top_p) == (0.0, 16, 0.9)
    turns = [{"role": "user", "content": "hi", "id": "1"}, {"role": "assistant", "content": "yo", "stats": {}}]
    assert build_messages("  ", turns) == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert build_messages("sys", turns)[0] == {"role": "system", "content": "sys"}


# ---- export ---------------------------------------------------------------------------------------------------------


def _steps():
    answer_meta = {"assay": {"kind": "answer", "answer": "4", "stats": {"completion_tokens": 1, "ttft_s": 0.1}}}
    return [
        {"id": "u1", "type": "user_message", "output": "2+2?", "metadata": "{}"},
        {"id": "a1", "type": "assistant_message", "output": "4\n\n*1 tokens out*", "metadata": json.dumps(answer_meta)},
        {"id": "n1", "type": "assistant_message", "output": "Task manually stopped.", "metadata": {}},
        {"id": "e1", "type": "assistant_message", "output": "Exported", "metadata": {"assay": {"kind": "export"}}},
        {"id": "s1", "type": "run", "output": "", "metadata": {}},
    ]


def test_python_tool_steps_rejoin_the_history_on_resume_and_in_exports():
    tool_meta = {"assay": {"kind": "tool", "status": "passed", "feedback": "Output of your code:\n```output\n4\n```"}}
    steps = _steps()[:2] + [{"id": "t1", "type": "tool", "name": "python", "input": "print(2+2)", "output": "4",
                             "metadata": json.dumps(tool_meta)}]
    turns = export.turns_from_steps(steps)
    assert turns[-1] == {"role": "user", "content": tool_meta["assay"]["feedback"], "tool": True, "id": "t1"}
    assert build_messages("", turns)[-1]["content"].startswith("Output of your code:")
    md = export.to_markdown({"title": "t", "turns": turns, "settings": {}})
    assert "## Python tool" in md and "```output\n4\n```" in md


def test_turns_from_steps_keeps_raw_answers_and_skips_notices():
    turns = export.turns_from_steps(_steps())
    assert [(t["role"], t["content"]) for t in turns] == [("user", "2+2?"), ("assistant", "4")]
    assert turns[1]["stats"]["completion_tokens"] == 1 and turns[1]["id"] == "a1"


def test_export_json_and_markdown():
    conv = {"thread_id": "abcdef123456", "title": "2+2?", "model": "smollm2-135m",
            "settings": normalize({"system_prompt": "Be brief.", "max_tokens": 8}),
            "turns": export.turns_from_steps(_steps())}
    doc = json.loads(export.to_json(conv))
    assert doc["format"] == "assay.chat/1" and doc["model"] == "smollm2-135m"
    assert doc["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                               {"role": "assistant", "content": "4",
                                "stats": {"completion_tokens": 1, "ttft_s": 0.1}}]
    md = export.to_markdown(conv)
    assert md.startswith("# 2+2?\n")
    assert "## System\n\nBe brief.\n\n## User\n\n2+2?\n\n## Assistant\n\n4\n\n*TTFT 0.10 s · 1 tokens out*" in md
    assert "max_tokens 8" in md
    assert export.filename(conv, "md") == "assay-chat-abcdef12.md"
    empty = {"turns": []}
    assert json.loads(export.to_json(empty))["messages"] == []
    assert export.to_markdown(empty).startswith("# Conversation")


# ---- the schema against the installed Chainlit (fails on an upgrade that adds columns) -------------------------------


def _sql_columns_in_source() -> dict[str, set[str]]:
    """Every column the installed SQLAlchemyDataLayer names in its SQL, by table alias / INSERT target."""
    from chainlit.data import sql_alchemy

    src = inspect.getsource(sql_alchemy)
    alias = {"t": "threads", "s": "steps", "e": "elements", "f": "feedbacks"}
    found: dict[str, set[str]] = {t: set() for t in SCHEMA}
    for a, col in re.findall(r'\b([tsef])\."(\w+)"', src):
        found[alias[a]].add(col)
    for table, cols in re.findall(r"INSERT INTO (\w+) \(([^)]*\"[^)]*)\)", src):
        found[table] |= set(re.findall(r'"(\w+)"', cols))
    return found


def test_schema_has_every_column_chainlit_writes(tmp_path):
    import dataclasses

    from chainlit.element import ElementDict
    from chainlit.step import StepDict
    from chainlit.types import Feedback, ThreadDict

    have = table_columns(create_schema(tmp_path / "h.sqlite"))
    # Dicts the data layer turns into INSERT columns key by key.
    written = {
        "steps": set(StepDict.__annotations__),
        "elements": set(ElementDict.__annotations__),
        "feedbacks": {f.name for f in dataclasses.fields(Feedback)},
        "threads": set(ThreadDict.__annotations__) - {"steps", "elements"},
    }
    for table, cols in written.items():
        assert cols <= have[table], f"{table} lacks {sorted(cols - have[table])} (Chainlit upgrade?)"
    for table, cols in _sql_columns_in_source().items():
        assert cols <= have[table], f"{table} lacks {sorted(cols - have[table])} named in Chainlit's SQL"
    # The ones the issue calls out, so this test cannot pass vacuously.
    assert {"command", "modes", "defaultOpen", "autoCollapse"} <= written["steps"] <= have["steps"]
    assert {"createdAt", "output", "threadId"} <= _sql_columns_in_source()["steps"]


def test_create_schema_is_idempotent_and_adds_missing_columns(tmp_path):
    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.execute('CREATE TABLE steps ("id" TEXT PRIMARY KEY, "output" TEXT)')  # an older, narrower file
    con.execute("INSERT INTO steps VALUES ('x', 'kept')")
    con.commit()
    con.close()
    create_schema(db)
    create_schema(db)
    cols = table_columns(db)
    assert cols["steps"] == set(SCHEMA["steps"]) and cols["threads"] == set(SCHEMA["threads"])
    assert sqlite3.connect(db).execute("SELECT output FROM steps WHERE id='x'").fetchone() == ("kept",)


def test_chainlit_data_layer_round_trip(tmp_path):
    """The real data layer on our schema: user, thread, every step field, listing, delete. Nothing dropped."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
    from chainlit.types import Pagination, ThreadFilter
    from chainlit.user import User

    from assay.chat.history import make_data_layer

    db = tmp_path / "h.sqlite"
    create_step = SQLAlchemyDataLayer.create_step.__wrapped__  # skip the "wait for first message" queue

    async def go():
        dl = make_data_layer(db)
        user = await dl.create_user(User(identifier="local", metadata={"provider": "local"}))
        assert user is not None and user.identifier == "local"
        tid = str(uuid.uuid4())
        await dl.update_thread(tid, name="first question", user_id=user.id, metadata={"assay_settings": {"a": 1}})
        now = "2026-01-01T00:00:00.000000Z"
        step = {  # every StepDict field Chainlit 2.12 fills for a message or a step
            "id": str(uuid.uuid4()), "threadId": tid, "parentId": None, "name": "smollm2-135m",
            "type": "assistant_message", "command": "search", "streaming": False, "waitForAnswer": False,
            "isError": False, "metadata": {"assay": {"kind": "answer", "answer": "4"}}, "tags": None,
            "input": "", "output": "4\n\n*1 tokens out*", "createdAt": now, "start": now, "end": now,
            "generation": None, "showInput": "false", "defaultOpen": True, "autoCollapse": False,
            "language": "markdown", "icon": "bot",
        }
        await create_step(dl, dict(step))
        await create_step(dl, {**step, "output": "4 (edited)"})  # upsert
        got = await dl.get_thread(tid)
        listed = await dl.list_threads(Pagination(first=20), ThreadFilter(userId=user.id))
        await dl.delete_thread(tid)
        gone = await dl.get_thread(tid)
        await dl.close()
        return step, got, listed, gone

    step, got, listed, gone = asyncio.run(go())
    assert got is not None and got["name"] == "first question" and got["userIdentifier"] == "local"
    assert [s["output"] for s in got["steps"]] == ["4 (edited)"]
    assert json.loads(got["steps"][0]["metadata"])["assay"]["answer"] == "4"
    assert [t["id"] for t in listed.data] == [got["id"]]
    assert gone is None and list_threads(db) == []


# ---- the command ----------------------------------------------------------------------------------------------------


def test_assay_chat_command_starts_and_stops_cleanly(stub, tmp_path):
    """`assay chat --endpoint URL` serves the page, and SIGINT (Ctrl-C) stops the Chainlit process it started."""
    import signal
    import subprocess
    import sys
    import time

    import httpx
    import psutil

    from assay.engines import free_port

    srv = stub(reply="hi")
    port = free_port()
    env = {**os.environ, "CI": "true", "ASSAY_CHAT_DB": str(tmp_path / "h.sqlite")}  # CI must not leak to chainlit
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", "chat", "--endpoint", srv.base_url,
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True)
    lines = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("chat:"):
                break
        assert any(line.startswith("chat:") for line in lines), "".join(lines)
        assert httpx.get(f"http://127.0.0.1:{port}/auth/config").json()["headerAuth"] is True
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "chainlit child process not found"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, "".join(lines) + out
        assert "stopped." in out
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left running: {alive}"
        assert (tmp_path / "h.sqlite").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
