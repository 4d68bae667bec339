"""Multi-call samples through the runner (Suite.converse, Record.turns), against the stub server: the history the
server sees, per-turn records, errors mid-conversation, resume and rescore per conversation; the client's tool calls
where the bytes matter (a call split across stream chunks, malformed arguments JSON, unstreamed tool requests)."""

from __future__ import annotations

import asyncio
import json

import pytest

from assay.client import Client, SamplingParams, ToolCall
from assay.engines import Endpoint
from assay.evals.base import Record, Sample, Score, Suite, ToolResult, conversational
from assay.evals.runner import rescore, run
from assay.store import iter_records


def _last_user(req: dict) -> str:
    return next(m["content"] for m in reversed(req["messages"]) if m["role"] == "user")


def _echo_turns(req: dict) -> str:
    """The stub's reply: which user turn this is and how many messages it was sent."""
    users = [m for m in req["messages"] if m["role"] == "user"]
    return f"reply {len(users)} to {_last_user(req)} ({len(req['messages'])} messages)"


class Chatty(Suite):
    """Three user turns; the score is the fraction of replies that name their turn; ``bad`` ids fail at turn 2."""

    name, version = "chatty", "1"

    def __init__(self, n=4, bad=(), strict=False):
        super().__init__()
        self.n, self.bad, self.strict = n, set(bad), strict

    def samples(self, seed, limit):
        for i in range(self.n):
            yield Sample(id=f"c{i}", input={"turns": [f"a{i}", f"b{i}", f"c{i}"]})

    def messages(self, sample):
        return [{"role": "system", "content": "be brief"}]

    async def converse(self, sample, chat):
        for k, text in enumerate(sample.input["turns"], 1):
            extra = " [[status:400]]" if (sample.id in self.bad and k == 2) else ""
            chat.messages.append({"role": "user", "content": text + extra})
            await chat.ask(label=f"turn {k}")

    def score(self, completion, sample):  # pragma: no cover - score_turns is what conversations use
        raise AssertionError("score() must not be called for a conversation")

    def score_turns(self, turns, sample):
        hits = [f"reply {k}" in (t.completion or "") for k, t in enumerate(turns, 1)]
        if self.strict:  # a stricter scorer: the first reply must also have been sent 3 messages
            hits = [hits[0] and "(3 messages)" in (turns[0].completion or "")]
        return Score(sum(hits) / len(hits), extracted=str(sum(hits)))


def test_conversational_detects_the_hook():
    assert conversational(Chatty())
    assert not conversational(type("Plain", (Suite,), {"name": "p"})())


def test_conversation_history_turns_and_record(stub, tmp_path):
    st = stub(reply=_echo_turns)
    ep = st.endpoint("stub-model")
    res = run([Chatty(n=2)], [ep], out_dir=tmp_path, concurrency=2)
    recs = sorted(iter_records(res.run_dir / "records.jsonl"), key=lambda r: r["sample_id"])
    assert len(recs) == 2
    r = Record.from_dict(recs[0])
    # the server saw the growing history: system + u1; + a1 + u2; + a2 + u3
    sent = sorted((len(q["messages"]) for q in st.requests))
    assert sent == [2, 2, 4, 4, 6, 6]
    assert [m["role"] for m in r.messages] == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert r.messages[2]["content"] == "reply 1 to a0 (2 messages)"
    assert [t.sent for t in r.turns] == [2, 4, 6]
    assert [t.label for t in r.turns] == ["turn 1", "turn 2", "turn 3"]
    assert r.completion == r.turns[-1].completion == "reply 3 to c0 (6 messages)"
    assert r.completion_tokens == sum(t.completion_tokens for t in r.turns)
    assert r.e2e_s == pytest.approx(sum(t.e2e_s for t in r.turns))
    assert r.score.value == 1.0 and r.status == "ok" and r.endpoint == st.base_url
    assert res.summary["suites"]["chatty"]["value"] == 1.0


def test_error_mid_conversation_keeps_turns_and_resume_retries_it(stub, tmp_path):
    st = stub(reply=_echo_turns)
    ep = st.endpoint("stub-model")
    res = run([Chatty(n=3, bad={"c1"})], [ep], out_dir=tmp_path, concurrency=1)
    recs = {r["sample_id"]: Record.from_dict(r) for r in iter_records(res.run_dir / "records.jsonl")}
    bad = recs["c1"]
    assert bad.status == "error" and "400" in bad.error
    assert len(bad.turns) == 1  # the first turn is kept for the post-mortem
    assert res.manifest.counts["chatty"]["error"] == 1
    n_before = len(st.requests)
    # resume with the same fingerprint: the two done conversations are skipped, the errored one is held again whole
    res2 = run([Chatty(n=3, bad={"c1"})], [ep], out_dir=tmp_path, concurrency=1)
    assert res2.run_id == res.run_id
    new = st.requests[n_before:]
    assert [_last_user(q) for q in new] == ["a1", "b1 [[status:400]]"]
    assert len(list(iter_records(res2.run_dir / "records.jsonl"))) == 3


def test_rescore_reads_stored_turns(stub, tmp_path):
    st = stub(reply=_echo_turns)
    ep = st.endpoint("stub-model")
    res = run([Chatty(n=2)], [ep], out_dir=tmp_path)
    n = len(st.requests)
    again = rescore(res.run_dir, {"chatty": Chatty(n=2)})
    assert again["changed"] == 0 and len(st.requests) == n  # no model call
    assert again["summary"]["suites"]["chatty"]["value"] == 1.0
    stricter = rescore(res.run_dir, {"chatty": Chatty(n=2, strict=True)})
    assert stricter["changed"] == 2 and len(st.requests) == n
    assert stricter["summary"]["suites"]["chatty"]["value"] == 0.0
    recs = list(iter_records(res.run_dir / "records.jsonl"))
    assert all(len(r["turns"]) == 3 for r in recs)


def test_old_records_without_turns_still_load():
    r = Record.from_dict({"suite": "math", "sample_id": "x", "completion": "4", "score": {"value": 1.0}})
    assert r.turns == [] and r.value == 1.0


# ---- the client and tool calls, where the bytes matter ------------------------------------------------------------
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def _chat(ep: Endpoint, params: SamplingParams, messages=None):
    async def go():
        async with Client([ep]) as c:
            return await c.chat(messages or [{"role": "user", "content": "weather?"}], params)
    return asyncio.run(go())


def test_tool_call_split_across_chunks_is_assembled(stub):
    args = json.dumps({"city": "Zürich \"old town\"", "days": [1, 2]}, ensure_ascii=False)
    st = stub(reply="", tool_calls=[{"name": "get_weather", "arguments": args}], tool_chunks=7)
    comp = _chat(st.endpoint("stub-model"), SamplingParams(tools=TOOLS))
    assert st.requests[-1]["stream"] is True
    assert st.requests[-1]["tool_choice"] == "auto"  # sent explicitly: llama-cpp-python ignores tools without it
    assert st.requests[-1]["tools"] == TOOLS
    assert comp.finish_reason == "tool_calls"
    (call,) = comp.tool_calls
    assert call.ok and call.name == "get_weather" and call.arguments == args
    assert call.args == {"city": "Zürich \"old town\"", "days": [1, 2]}
    assert comp.message()["tool_calls"][0]["function"]["arguments"] == args


def test_two_parallel_calls_and_malformed_arguments_kept_raw(stub):
    calls = [{"name": "get_weather", "arguments": '{"city": "Oslo"}'},
             {"name": "get_weather", "arguments": '{"city": "Rome",'}]
    st = stub(reply="", tool_calls=calls, tool_chunks=2)
    comp = _chat(st.endpoint("stub-model"), SamplingParams(tools=TOOLS))
    a, b = comp.tool_calls
    assert a.ok and a.args == {"city": "Oslo"}
    assert not b.ok and b.arguments == '{"city": "Rome",' and "not JSON" in b.error and b.args is None


def test_unstreamed_when_the_engine_cannot_stream_tool_calls(stub):
    st = stub(reply="", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Lima"}'}])
    ep = st.endpoint("stub-model", engine="llama.cpp", extra={"tool_format": "chatml-function-calling"})
    assert ep.caps.tools == "native" and ep.caps.tool_stream is False
    comp = _chat(ep, SamplingParams(tools=TOOLS))
    assert st.requests[-1]["stream"] is False
    assert comp.tool_calls[0].args == {"city": "Lima"} and comp.ttft_s is None and comp.prompt_tokens is not None
    # without tools the same endpoint streams as before
    _chat(ep, SamplingParams())
    assert st.requests[-1]["stream"] is True


def test_tool_call_parse_cases():
    assert ToolCall.parse("f", "").args == {}  # no arguments at all: an empty object
    assert not ToolCall.parse("f", "[1, 2]").ok  # JSON, but not an object
    assert ToolCall.parse("f", {"a": 1}).arguments == '{"a": 1}'
    assert not ToolCall.parse("f", "{'a': 1}").ok  # Python repr is not JSON


def test_sampling_params_take_tools_and_refuse_typos():
    p = SamplingParams(tools=TOOLS, tool_choice="none")
    assert p.request_kwargs()["tool_choice"] == "none"
    assert "tools" not in SamplingParams().request_kwargs()
    # added after the first release: a run without tools keeps its old fingerprint (and so resumes)
    assert "tools" not in SamplingParams().fingerprint() and "tool_choice" not in SamplingParams().fingerprint()
    assert SamplingParams(tools=TOOLS).fingerprint()["tools"] == TOOLS
    with pytest.raises(Exception):
        SamplingParams(tool=TOOLS)


class ToolUser(Suite):
    """One native tool round: the stub calls get_weather, the suite answers it, the stub then replies in text."""

    name, version = "tooluser", "1"

    def samples(self, seed, limit):
        yield Sample(id="t0", input={})

    def messages(self, sample):
        return [{"role": "user", "content": "weather in Oslo?"}]

    async def converse(self, sample, chat):
        comp = await chat.ask({"tools": TOOLS})
        for call in comp.tool_calls:
            chat.tool_result(ToolResult(call_id=call.id, name=call.name, content="sunny", status="ok"))
        await chat.ask({"tools": TOOLS}, label="after tool")

    def score(self, completion, sample):
        return Score(1.0 if "sunny" in completion else 0.0)


def test_tool_round_trip_is_recorded(stub, tmp_path):
    def calls(req):
        return None if any(m["role"] == "tool" for m in req["messages"]) else [
            {"name": "get_weather", "arguments": '{"city": "Oslo"}'}]

    def reply(req):
        tool = [m for m in req["messages"] if m["role"] == "tool"]
        return f"It is {tool[-1]['content']}." if tool else ""

    st = stub(reply=reply, tool_calls=calls)
    res = run([ToolUser()], [st.endpoint("stub-model")], out_dir=tmp_path)
    (raw,) = list(iter_records(res.run_dir / "records.jsonl"))
    r = Record.from_dict(raw)
    assert [m["role"] for m in r.messages] == ["user", "assistant", "tool", "assistant"]
    assert r.messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert r.messages[2]["tool_call_id"] == r.turns[0].tool_calls[0].id
    assert r.turns[0].tool_results[0].content == "sunny" and r.turns[0].params == {"tools": TOOLS}
    assert r.completion == "It is sunny." and r.score.value == 1.0
    assert st.requests[1]["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'
