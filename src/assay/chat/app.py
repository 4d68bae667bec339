"""The Chainlit app behind ``assay chat``. Run by ``chainlit run`` (see assay.chat.launch), never imported by assay.

It talks to the model only through ``assay.client.Client``. Configuration arrives in environment variables:

- ``ASSAY_CHAT_ENDPOINTS``  JSON list of {"base_url", "model", "api_key"}; one chat profile per distinct model.
- ``ASSAY_CHAT_DB``         SQLite history file (tables created at start, see assay.chat.history).
- ``ASSAY_CHAT_PASSWORD``   set: a login form (user ``ASSAY_CHAT_USER``, default "local"); unset: one local user,
                            logged in by a header-auth callback (no form), which history needs.

Example:
    ASSAY_CHAT_ENDPOINTS='[{"base_url": "http://127.0.0.1:8000/v1", "model": "smollm2-135m"}]' \\
        chainlit run src/assay/chat/app.py --headless      # `assay chat` does this for you
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from typing import Any

import chainlit as cl
from chainlit.data import get_data_layer
from chainlit.utils import utc_now

from assay.chat import export, render
from assay.chat.history import default_db_path, make_data_layer
from assay.chat.settings import build_messages, normalize, sampling_from, widgets
from assay.client import Client, Completion, Delta
from assay.engines import Endpoint
from assay.errors import AssayError

# ---- configuration -------------------------------------------------------------------------------------------------


def _endpoints() -> list[Endpoint]:
    raw = os.environ.get("ASSAY_CHAT_ENDPOINTS")
    if not raw:
        raise RuntimeError("ASSAY_CHAT_ENDPOINTS is not set: start the app with `assay chat`")
    return [Endpoint(base_url=e["base_url"], model=e["model"], api_key=e.get("api_key")) for e in json.loads(raw)]


def _profiles(endpoints: list[Endpoint]) -> dict[str, list[Endpoint]]:
    """Profile name (the model id) -> its endpoints. Several URLs serving one model share a Client (load spread)."""
    out: dict[str, list[Endpoint]] = {}
    for e in endpoints:
        out.setdefault(e.model, []).append(e)
    return out


PROFILES = _profiles(_endpoints())
DEFAULT_PROFILE = next(iter(PROFILES))
DB_PATH = os.environ.get("ASSAY_CHAT_DB") or str(default_db_path())
USER = os.environ.get("ASSAY_CHAT_USER") or "local"
PASSWORD = os.environ.get("ASSAY_CHAT_PASSWORD") or None
# Starting values of the settings panel, e.g. '{"max_tokens": 64}' (`assay chat --max-tokens`, tests).
START_SETTINGS = normalize(json.loads(os.environ.get("ASSAY_CHAT_SETTINGS") or "{}"))
_clients: dict[str, Client] = {}
# `assay chat --arena`: every prompt goes to two anonymous models side by side (assay.chat.arena)
ARENA = os.environ.get("ASSAY_CHAT_ARENA") == "1"
_arena_clients: dict[str, Client] = {}


def _arena() -> dict[str, Client]:
    """The arena's contestants (name -> client), built once per app process."""
    from assay.chat import arena

    if not _arena_clients:
        _arena_clients.update(arena.contestants(_endpoints()))
    return _arena_clients


def _client(profile: str | None) -> Client:
    name = profile if profile in PROFILES else DEFAULT_PROFILE
    if name not in _clients:
        # One quick retry only: a person is waiting, and a dead endpoint should be reported, not waited on.
        _clients[name] = Client(PROFILES[name], max_retries=1, backoff_s=0.2)
    return _clients[name]


@cl.data_layer
def _data_layer():
    return make_data_layer(DB_PATH)


# ---- auth: history needs a user ------------------------------------------------------------------------------------

if PASSWORD:

    @cl.password_auth_callback
    async def _login(username: str, password: str):
        ok_user = hmac.compare_digest(username.encode(), USER.encode())
        ok_pw = hmac.compare_digest(password.encode(), PASSWORD.encode())
        return cl.User(identifier=USER, metadata={"provider": "password"}) if ok_user and ok_pw else None

else:

    @cl.header_auth_callback
    async def _local_user(headers):
        return cl.User(identifier=USER, metadata={"provider": "local"})


if len(PROFILES) > 1 and not ARENA:  # in the arena the models stay anonymous: no picker

    @cl.set_chat_profiles
    async def _chat_profiles(user=None, language=None):
        return [
            cl.ChatProfile(name=name, default=(name == DEFAULT_PROFILE),
                           markdown_description=f"`{name}` at " + ", ".join(e.base_url for e in eps))
            for name, eps in PROFILES.items()
        ]


# ---- per-session state ---------------------------------------------------------------------------------------------


class State:
    """Kept in the user session. A plain object on purpose: Chainlit copies JSON-serialisable session values into the
    thread metadata, and the turns already live in the steps table. (Not a dataclass: chainlit loads this file
    without registering it in sys.modules, which dataclasses need.)"""

    def __init__(self) -> None:
        self.turns: list[dict] = []
        self.last_answer_id: str | None = None
        self.actions: list = []
        self.title: str | None = None


def _state() -> State:
    st = cl.user_session.get("assay_state")
    if not isinstance(st, State):
        st = State()
        cl.user_session.set("assay_state", st)
    return st


def _settings() -> dict[str, Any]:
    return normalize(cl.context.session.chat_settings or None, START_SETTINGS)


def _profile() -> str:
    p = cl.user_session.get("chat_profile") or cl.context.session.chat_profile
    return p if p in PROFILES else DEFAULT_PROFILE


async def _persist_settings(settings: dict) -> None:
    """Write the settings into the thread's metadata now (Chainlit itself only does so when the socket closes, so a
    killed server would lose them)."""
    s = cl.context.session
    cl.user_session.set("assay_settings", settings)
    if not (s.thread_id and s.has_first_interaction):
        return  # no thread row yet; the first message's reply persists them
    if dl := get_data_layer():
        await dl.update_thread(thread_id=s.thread_id,
                               metadata={"chat_settings": settings, "assay_settings": settings,
                                         "chat_profile": _profile()})


def _conversation() -> dict:
    st = _state()
    return {"thread_id": cl.context.session.thread_id, "title": st.title, "model": _profile(),
            "settings": _settings(), "turns": st.turns}


# ---- lifecycle -----------------------------------------------------------------------------------------------------


@cl.on_chat_start
async def _start():
    _state()
    settings = _settings()
    await cl.ChatSettings(widgets(settings)).send()
    if ARENA:
        from assay.chat import arena

        await arena.start_notice(list(_arena()))


@cl.on_settings_update
async def _settings_update(values: dict):
    settings = normalize(values, START_SETTINGS)
    cl.context.session.chat_settings = settings
    await _persist_settings(settings)


@cl.on_chat_resume
async def _resume(thread: dict):
    meta = thread.get("metadata") or {}
    if isinstance(meta, str):
        meta = json.loads(meta or "{}")
    settings = normalize(meta.get("assay_settings") or meta.get("chat_settings"), START_SETTINGS)
    st = _state()
    st.turns = export.turns_from_steps(thread.get("steps") or [])
    st.title = thread.get("name")
    await cl.ChatSettings(widgets(settings)).send()  # sets session.chat_settings to these values too
    answers = [t for t in st.turns if t["role"] == "assistant"]
    if answers and answers[-1].get("id"):
        st.last_answer_id = answers[-1]["id"]
        await _attach_actions(st.last_answer_id)


# ---- answering -----------------------------------------------------------------------------------------------------


async def _attach_actions(for_id: str) -> None:
    st = _state()
    for a in st.actions:
        try:
            await a.remove()
        except Exception:  # the message may already be gone
            pass
    st.actions = [
        cl.Action(name="regenerate", payload={}, label="Regenerate", icon="refresh-cw",
                  tooltip="Answer the last message again"),
        cl.Action(name="export", payload={"format": "md"}, label="Markdown", icon="file-text",
                  tooltip="Download this conversation as Markdown"),
        cl.Action(name="export", payload={"format": "json"}, label="JSON", icon="file-json",
                  tooltip="Download this conversation as JSON"),
    ]
    for a in st.actions:
        await a.send(for_id=for_id)


def _stats(done: Completion | None, *, stopped: bool = False, error: str | None = None,
           model: str | None = None) -> dict:
    s: dict[str, Any] = {"model": model}
    if done is not None:
        s.update(ttft_s=done.ttft_s, decode_tok_s=done.decode_tok_s, prompt_tokens=done.prompt_tokens,
                 completion_tokens=done.completion_tokens, e2e_s=round(done.e2e_s, 4),
                 finish_reason=done.finish_reason)
        if done.model:
            s["model"] = done.model
    if stopped:
        s["stopped"] = True
    if error:
        s["error"] = error
    return s


async def _finish(msg: cl.Message, answer: str, stats: dict) -> None:
    """Final content (answer + stats line), the raw answer and stats in metadata, the history turn, the buttons."""
    st = _state()
    msg.content = render.display(answer, stats)
    msg.metadata = {"assay": {"kind": "answer", "answer": answer, "stats": stats}}
    await msg.send()  # ends the stream and persists the step (upsert)
    st.turns.append({"role": "assistant", "content": answer, "stats": stats, "id": msg.id})
    st.last_answer_id = msg.id
    await _attach_actions(msg.id)
    await _persist_settings(_settings())


TOOL_ROUNDS = 3  # sandbox runs per user message at most, then the last reply stands


async def _answer() -> None:
    """A reply to the conversation so far; with the Python tool on, each reply's ```python blocks run in the sandbox
    (a collapsible step shows the code and its output), the output goes back to the model, and it answers again."""
    from assay.sandbox.pytool import code_to_run

    for rnd in range(TOOL_ROUNDS + 1):
        answer = await _answer_once()
        if answer is None or not _settings()["python_tool"] or rnd == TOOL_ROUNDS:
            return
        code = code_to_run(answer)
        if code is None:
            return
        await _run_tool(code)


async def _run_tool(code: str) -> None:
    """Run ``code`` in the sandbox inside a Chainlit tool step; its output joins the history as a user turn."""
    from assay.sandbox.pytool import feedback_message, tool_output
    from assay.sandbox import Limits, run_python

    st = _state()
    async with cl.Step(name="python", type="tool", language="python", show_input="python") as step:
        step.input = code
        res = await asyncio.to_thread(run_python, code, limits=Limits(cpu_s=5, wall_s=10.0))
        out = tool_output(res)
        feedback = feedback_message(out)["content"]
        step.output = out
        step.metadata = {"assay": {"kind": "tool", "status": res.status, "mode": res.mode, "fs": res.fs,
                                   "wall_s": round(res.wall_s, 3), "feedback": feedback}}
    st.turns.append({"role": "user", "content": feedback, "tool": True, "id": step.id})


async def _answer_once() -> str | None:
    """Stream a reply to the conversation so far. Stop keeps the partial answer; endpoint errors become a message.
    Returns the answer text (None when there was none)."""
    st = _state()
    settings = _settings()
    profile = _profile()
    client = _client(profile)
    messages = build_messages(settings["system_prompt"], st.turns)
    msg = cl.Message(content="", author=profile, created_at=utc_now())
    raw: list[str] = []
    done: Completion | None = None
    try:
        async for item in client.stream(messages, sampling_from(settings)):
            if isinstance(item, Delta):
                raw.append(item.text)
                await msg.stream_token(item.text)
            else:
                done = item
    except asyncio.CancelledError:
        # The stop button cancels this task: keep what was written, then let the cancellation finish.
        await _finish(msg, "".join(raw), _stats(None, stopped=True, model=profile))
        raise
    except AssayError as e:
        if raw:  # failed mid-answer: keep the partial text, marked
            await _finish(msg, "".join(raw), _stats(None, error=str(e), model=profile))
        await cl.Message(
            content=f"**No reply from `{profile}`.** {e}\n\nThe chat keeps running: check the endpoint "
                    "(is the server up?) and send again.",
            author="assay", metadata={"assay": {"kind": "error"}},
        ).send()
        return None
    assert done is not None
    answer = done.text if not done.think_unclosed else done.raw_text
    await _finish(msg, answer, _stats(done, model=profile))
    return answer


@cl.on_message
async def _on_message(message: cl.Message):
    st = _state()
    if st.title is None:
        st.title = message.content[:80]
    if ARENA:  # each prompt is one blind battle; the vote callback is below
        from assay.chat import arena

        await arena.battle(message.content, _settings(), _arena())
        return
    st.turns.append({"role": "user", "content": message.content, "id": message.id})
    await _answer()


@cl.action_callback("arena_vote")
async def _arena_vote(action: cl.Action):
    from assay.chat import arena

    await arena.on_vote(action, DB_PATH, USER)


@cl.action_callback("regenerate")
async def _regenerate(action: cl.Action):
    st = _state()
    if not st.turns or st.turns[-1]["role"] != "assistant":
        await cl.Message(content="Nothing to regenerate yet.", author="assay",
                         metadata={"assay": {"kind": "notice"}}).send()
        return
    last = st.turns.pop()
    for a in st.actions:
        try:
            await a.remove()
        except Exception:
            pass
    st.actions = []
    await cl.Message(content="", id=last["id"]).remove()
    # Actions run inside an HTTP request; run the answer as the session's task so the stop button can cancel it.
    session = cl.context.session

    async def run():
        await cl.context.emitter.task_start()
        try:
            await _answer()
        except asyncio.CancelledError:
            pass
        finally:
            await cl.context.emitter.task_end()

    session.current_task = asyncio.create_task(run())


@cl.action_callback("export")
async def _export(action: cl.Action):
    conv = _conversation()
    fmt = (action.payload or {}).get("format", "md")
    if fmt == "json":
        content, mime, ext = export.to_json(conv), "application/json", "json"
    else:
        content, mime, ext = export.to_markdown(conv), "text/markdown", "md"
    name = export.filename(conv, ext)
    n = len(conv["turns"])
    await cl.Message(
        content=f"Exported {n} message{'s' if n != 1 else ''} as {ext.upper()}: click the file to download.",
        author="assay",
        elements=[cl.File(name=name, content=content.encode(), mime=mime, display="inline")],
        metadata={"assay": {"kind": "export"}},
    ).send()
