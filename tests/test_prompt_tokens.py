"""Prompt tokens on every Completion and Record: the server's usage when it sends it, else counted in this process
with the engine's own chat template and tokenizer (llama.cpp), else the server's tokenize route given the messages
(vLLM). The real server is the reference: a streamed request's count equals its own non-streaming usage."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest

from assay.client import Client, Completion, SamplingParams
from assay.engines import Capabilities, Endpoint
from assay.evals.base import Record, Turn
from assay.stub import StubServer

CASES = {
    "user": [{"role": "user", "content": "What is the capital of France? One word."}],
    "system": [{"role": "system", "content": "You answer in JSON only."},
               {"role": "user", "content": "Give me an object with a key 'a' set to 1."}],
    "multi-turn": [{"role": "user", "content": "Name a fruit."},
                   {"role": "assistant", "content": "Apple."},
                   {"role": "user", "content": "Another one, and say why — in émoji too 🍐?"}],
    "system multi-turn": [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "Hello! How can I help?"},
                          {"role": "user", "content": "Count to three.\n\n<|im_end|> is just text here"}],
}
TOOLS = [{"type": "function", "function": {"name": "add", "description": "Add two numbers",
                                           "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}}]


def gguf() -> str:
    from assay.models import resolve

    return str(resolve("smollm2-135m").gguf_path())


def run(coro):
    return asyncio.run(coro)


async def _chat(client: Client, messages, params=None) -> Completion:
    try:
        return await client.chat(messages, params)
    finally:
        await client.aclose()


class NoUsage(StubServer):
    """A server that sends no usage (llama-cpp-python when streaming) and counts its tokenize calls; with
    ``chat_tokenize`` its /tokenize reads ``messages`` the way vLLM's does (here: one token per word + 3 per
    message + 2 for the generation prompt)."""

    def __init__(self, *a, chat_tokenize: bool = False, **kw):
        super().__init__(*a, **kw)
        self.chat_tokenize, self.tokenize_bodies = chat_tokenize, []

    async def _chat(self, req, writer):
        await super()._chat({**req, "stream_options": None}, writer)

    async def _route(self, method, path, body, writer):
        if method == "POST" and path == "/tokenize":
            req = json.loads(body or b"{}")
            self.tokenize_bodies.append(req)
            if self.chat_tokenize and "messages" in req:
                n = sum(3 + len(str(m.get("content", "")).split()) for m in req["messages"])
                n += 2 if req.get("add_generation_prompt") else 0
                self._send(writer, 200, {"count": n, "max_model_len": 2048, "tokens": list(range(n))})
                await writer.drain()
                return
        await super()._route(method, path, body, writer)


# ---- the server's usage wins; the tokenize route when nothing better ----------------------------------------------
def test_a_server_that_sends_usage_keeps_its_figure(stub):
    s = stub(reply="one two three")
    done = run(_chat(Client(s.endpoint()), CASES["system"]))
    words = sum(len(m["content"].split()) for m in CASES["system"])
    assert done.prompt_tokens == words and done.prompt_tokens_source == "usage"
    assert done.usage_source == "server"


def test_a_non_streamed_reply_keeps_the_servers_usage_too(stub):
    # a request with tools on an engine that cannot stream them goes out unstreamed
    s = stub(reply="fine")
    e = s.endpoint(caps=Capabilities(tool_stream=False))
    done = run(_chat(Client(e), CASES["user"], SamplingParams(tools=TOOLS)))
    assert done.prompt_tokens == 8 and done.prompt_tokens_source == "usage" and done.ttft_s is None


def test_without_usage_the_tokenize_route_counts_the_messages():
    s = NoUsage(reply="one two", chat_tokenize=True).start()
    try:
        e = s.endpoint(caps=Capabilities(tokenize_routes=("/tokenize", "/extras/tokenize")))
        params = SamplingParams(tools=TOOLS, chat_template_kwargs={"enable_thinking": False})
        done = run(_chat(Client(e), CASES["multi-turn"], params))
    finally:
        s.stop()
    assert done.prompt_tokens_source == "tokenize"
    assert done.prompt_tokens == sum(3 + len(m["content"].split()) for m in CASES["multi-turn"]) + 2
    chat_body = next(b for b in s.tokenize_bodies if "messages" in b)
    assert chat_body["messages"] == CASES["multi-turn"] and chat_body["add_generation_prompt"] is True
    assert chat_body["tools"] == TOOLS and chat_body["chat_template_kwargs"] == {"enable_thinking": False}
    assert chat_body["model"] == s.model


def test_a_text_only_tokenize_route_is_asked_once_and_the_count_stays_unknown():
    # the route answers, but reads no messages (0 tokens): never a 0 prompt, and not asked again for this endpoint
    s = NoUsage(reply="one two").start()
    try:
        async def go():
            async with Client(s.endpoint()) as c:
                return [await c.chat(CASES["user"]) for _ in range(3)]

        done = run(go())
    finally:
        s.stop()
    assert all(d.prompt_tokens is None and d.prompt_tokens_source is None for d in done)
    assert all(d.completion_tokens == 2 for d in done)  # the completion is still counted
    assert sum("messages" in b for b in s.tokenize_bodies) == 1


def test_count_without_usage_off_counts_nothing():
    s = NoUsage(reply="one two", chat_tokenize=True).start()
    try:
        e = s.endpoint(caps=Capabilities(tokenize_routes=("/tokenize",)))
        done = run(_chat(Client(e, count_without_usage=False), CASES["user"]))
    finally:
        s.stop()
    assert done.prompt_tokens is None and done.prompt_tokens_source is None and not s.tokenize_bodies


# ---- the local counter (no server) ----------------------------------------------------------------------------------
def test_local_counter_renders_the_gguf_template_and_adds_no_second_bos():
    from llama_cpp import llama_chat_format as lcf

    from assay.engines.llamacpp import _vocab
    from assay.engines.prompt_count import counter

    count = counter(Endpoint("http://127.0.0.1:9/v1", "m", engine="llama.cpp", extra={"gguf": gguf()}))
    assert count is not None
    vocab = _vocab(gguf())
    md = vocab.metadata()
    fmt = lcf.Jinja2ChatFormatter(template=md["tokenizer.chat_template"], eos_token="<|im_end|>",
                                  bos_token="<|im_start|>")
    for msgs in CASES.values():
        prompt = fmt(messages=msgs).prompt
        assert prompt.endswith("<|im_start|>assistant\n")
        assert count(msgs) == len(vocab.tokenize(prompt.encode(), add_bos=False, special=True))
    # SmolLM2's template adds its default system prompt when the conversation has none
    assert count(CASES["user"]) > count([{"role": "system", "content": "x"}, *CASES["user"]])


def test_local_counter_is_none_where_the_render_is_not_reproducible():
    from assay.engines.prompt_count import counter

    assert counter(Endpoint("http://127.0.0.1:9/v1", "m")) is None  # a remote server: no tokenizer here
    assert counter(Endpoint("http://127.0.0.1:9/v1", "m", engine="llama.cpp")) is None  # no GGUF known
    # the server-wide tool format renders with its own inline template
    tool_ep = Endpoint("http://127.0.0.1:9/v1", "m", engine="llama.cpp",
                       extra={"gguf": gguf(), "tool_format": "chatml-function-calling"})
    assert counter(tool_ep) is None


@pytest.mark.parametrize("flags, expect", [
    (["--chat_format", "chatml"], "chatml"),
    (["--chat_format=chatml"], "chatml"),
    (["--chat_format", "chatml-function-calling"], None),
    (["--hf_pretrained_model_name_or_path", "HuggingFaceTB/SmolLM2-135M-Instruct"], None),
    ([], "gguf"),
])
def test_local_counter_follows_the_servers_command_line(flags, expect):
    """A chat format passed to the server (``assay serve -- --chat_format X``) is what it renders with."""
    from llama_cpp import llama_chat_format as lcf

    from assay.engines.llamacpp import _vocab
    from assay.engines.prompt_count import counter

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "llama_cpp.server",
                             "--model", gguf(), *flags])
    try:
        e = Endpoint("http://127.0.0.1:9/v1", "m", engine="llama.cpp", pid=proc.pid, extra={"gguf": gguf()})
        count = counter(e)
    finally:
        proc.kill()
        proc.wait()
    if expect is None:
        assert count is None
        return
    msgs = CASES["user"]
    if expect == "chatml":  # a registered formatter: no special tokens added by it, so the BOS rule adds them
        want = len(_vocab(gguf()).tokenize(lcf.format_chatml(messages=msgs).prompt.encode(), add_bos=True,
                                           special=True))
        assert count(msgs) == want
    else:
        assert count(msgs) == counter(Endpoint("http://127.0.0.1:9/v1", "m", engine="llama.cpp",
                                               extra={"gguf": gguf()}))(msgs)


# ---- records ------------------------------------------------------------------------------------------------------
def test_records_from_before_load_without_a_source():
    rec = Record.model_validate({"sample_id": "a", "prompt_tokens": None, "turns": [{"prompt_tokens": 3}]})
    assert rec.prompt_tokens_source is None and rec.turns[0].prompt_tokens_source is None


def test_a_conversation_record_says_where_its_prompt_counts_came_from():
    from assay.evals.runner import _conversation_record

    class Chat:
        messages, endpoint = [{"role": "user", "content": "x"}], "e"
        turns = [Turn(prompt_tokens=10, prompt_tokens_source="local", e2e_s=1.0),
                 Turn(prompt_tokens=20, prompt_tokens_source="usage", e2e_s=1.0)]

    rec = _conversation_record(Record(sample_id="a"), Chat())
    assert rec.prompt_tokens == 30 and rec.prompt_tokens_source == "local+usage"
    Chat.turns = [*Chat.turns, Turn(prompt_tokens=None, e2e_s=1.0)]
    rec = _conversation_record(Record(sample_id="a"), Chat())
    assert rec.prompt_tokens is None and rec.prompt_tokens_source is None


# ---- the real embedded llama.cpp ----------------------------------------------------------------------------------
def _server_usage(ep: Endpoint, messages: list[dict], **extra) -> int:
    body = {"model": ep.model, "messages": messages, "max_tokens": 1, "temperature": 0.0, "stream": False, **extra}
    r = httpx.post(f"{ep.base_url}/chat/completions", json=body, timeout=120.0)
    r.raise_for_status()
    return r.json()["usage"]["prompt_tokens"]


@pytest.mark.engine
def test_streamed_prompt_tokens_equal_the_servers_own_usage(embedded):
    async def go():
        async with Client(embedded) as c:
            out = {name: await c.chat(msgs, SamplingParams(max_tokens=4)) for name, msgs in CASES.items()}
            # tools on a server started without a tool format: it renders them into its template all the same
            out["tools"] = await c.chat(CASES["user"], SamplingParams(max_tokens=4, tools=TOOLS))
            return out

    done = run(go())
    for name, msgs in CASES.items():
        want = _server_usage(embedded, msgs)
        assert done[name].prompt_tokens == want, name
        assert done[name].prompt_tokens_source == "local", name  # llama-cpp-python streams no usage
    assert done["tools"].prompt_tokens == _server_usage(embedded, CASES["user"], tools=TOOLS, tool_choice="auto")


@pytest.mark.engine
def test_every_record_of_a_real_run_has_prompt_tokens(embedded, tmp_path):
    from assay.evals.runner import run as run_eval
    from assay.store import RECORDS, RunStore

    res = run_eval(["json"], [embedded], out_dir=tmp_path / "runs", limit=3, concurrency=2, seed=0,
                   params=SamplingParams(temperature=0.0, max_tokens=48))
    records = list(RunStore(res.run_dir, Record, RECORDS).records())
    assert records and all(r.status != "error" for r in records), [r.error for r in records]
    assert all(r.prompt_tokens is not None and r.prompt_tokens > 0 for r in records)
    assert {r.prompt_tokens_source for r in records} == {"local"}
    r = records[0]
    assert r.prompt_tokens == _server_usage(embedded, r.messages)


def test_a_gguf_endpoint_counts_in_process_and_never_asks_the_server():
    """An engine served from a GGUF counts locally, a long prompt in a worker thread; its tokenize route (which waits
    behind generations on llama-cpp-python) is never called."""
    from assay.engines.prompt_count import counter

    s = NoUsage(reply="one two", chat_tokenize=True).start()
    try:
        e = s.endpoint(engine="llama.cpp", extra={"gguf": gguf()})
        long = [{"role": "user", "content": "lorem ipsum dolor " * 2000}]  # past the inline limit: a thread

        async def go():
            async with Client(e) as c:
                return await c.chat(CASES["system"]), await c.chat(long)

        short_done, long_done = run(go())
    finally:
        s.stop()
    count = counter(e)
    assert (short_done.prompt_tokens, short_done.prompt_tokens_source) == (count(CASES["system"]), "local")
    assert (long_done.prompt_tokens, long_done.prompt_tokens_source) == (count(long), "local")
    assert long_done.prompt_tokens > 4000 and not s.tokenize_bodies
