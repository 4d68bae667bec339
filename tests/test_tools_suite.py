"""tools: the AST-style call matcher on hand-made calls (argument order, optional and extra arguments, wrong types,
enums, numeric tolerance, nested objects, arrays, parallel order, irrelevance, unparsed), prompted-mode parsing,
the shipped data, the BFCL loader, the one-line refusal of an endpoint without tool calling, and live runs on the
embedded model in both modes (native through llama.cpp's function-calling chat format)."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from assay.client import Client, ToolCall
from assay.common import data_path, read_jsonl
from assay.engines import Endpoint
from assay.errors import AssayError, DataError
from assay.evals.base import Record, Turn
from assay.evals.suites import get_suite
from assay.evals.suites.tools import bfcl_schema, load_bfcl, match_calls, parse_prompted

WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    "days": {"type": "integer"}}, "required": ["city"]}}
CONTACT = {"name": "create_contact", "parameters": {"type": "object", "properties": {
    "name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
    "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}},
    "score": {"type": "number"}, "vip": {"type": "boolean"}}, "required": ["name"]}}
FUNCS = [WEATHER, CONTACT]
W_PARIS = {"name": "get_weather", "arguments": {"city": ["Paris"], "unit": ["celsius", ""], "days": [1, ""]}}
W_OSLO = {"name": "get_weather", "arguments": {"city": ["Oslo"], "unit": ["celsius", ""], "days": [1, ""]}}


def tc(name, args):
    return ToolCall.parse(name, args if isinstance(args, str) else json.dumps(args))


@pytest.mark.parametrize("calls, expected, value, reason", [
    ([tc("get_weather", {"city": "Paris"})], [W_PARIS], 1.0, "all calls match"),
    # argument order in the JSON does not matter
    ([tc("get_weather", '{"days": 1, "unit": "celsius", "city": "Paris"}')], [W_PARIS], 1.0, "match"),
    # strings: case, spaces and punctuation do not matter
    ([tc("get_weather", {"city": " paris."})], [W_PARIS], 1.0, "match"),
    ([tc("get_weather", {"city": "Lyon"})], [W_PARIS], 0.0, "city"),
    # optional argument given with an acceptable value / an unacceptable value
    ([tc("get_weather", {"city": "Paris", "days": 1})], [W_PARIS], 1.0, "match"),
    ([tc("get_weather", {"city": "Paris", "days": 3})], [W_PARIS], 0.0, "days"),
    # an argument the schema does not have
    ([tc("get_weather", {"city": "Paris", "country": "FR"})], [W_PARIS], 0.0, "unknown argument"),
    # an argument the schema has but the request did not ask for
    ([tc("get_weather", {"city": "Paris"})], [{"name": "get_weather", "arguments": {"city": ["Paris"]}}], 1.0, "match"),
    ([tc("get_weather", {"city": "Paris", "unit": "celsius"})],
     [{"name": "get_weather", "arguments": {"city": ["Paris"]}}], 0.0, "not asked for"),
    # wrong types: a string for an integer, a float for an integer, a bool for an integer, an enum miss
    ([tc("get_weather", {"city": "Paris", "days": "1"})], [W_PARIS], 0.0, "not integer"),
    ([tc("get_weather", {"city": "Paris", "days": 1.0})], [W_PARIS], 0.0, "not integer"),
    ([tc("get_weather", {"city": "Paris", "days": True})], [W_PARIS], 0.0, "boolean"),
    ([tc("get_weather", {"city": "Paris", "unit": "kelvin"})], [W_PARIS], 0.0, "not one of"),
    ([tc("get_weather", {"city": 7})], [W_PARIS], 0.0, "not string"),
    # required argument missing; wrong function
    ([tc("get_weather", {"unit": "celsius"})], [W_PARIS], 0.0, "required argument 'city' missing"),
    ([tc("create_contact", {"name": "Paris"})], [W_PARIS], 0.0, "expected 'get_weather'"),
    # numbers: an int where a number is expected, and a relative tolerance of 1e-3
    ([tc("create_contact", {"name": "A", "score": 20})],
     [{"name": "create_contact", "arguments": {"name": ["A"], "score": [20.0]}}], 1.0, "match"),
    ([tc("create_contact", {"name": "A", "score": 20.01})],
     [{"name": "create_contact", "arguments": {"name": ["A"], "score": [20.0]}}], 1.0, "match"),
    ([tc("create_contact", {"name": "A", "score": 20.5})],
     [{"name": "create_contact", "arguments": {"name": ["A"], "score": [20.0]}}], 0.0, "score"),
    ([tc("create_contact", {"name": "A", "vip": 1})],
     [{"name": "create_contact", "arguments": {"name": ["A"], "vip": [True]}}], 0.0, "not boolean"),
    # arrays of scalars compare as multisets; length matters
    ([tc("create_contact", {"name": "A", "tags": ["b", "a"]})],
     [{"name": "create_contact", "arguments": {"name": ["A"], "tags": [["a", "b"]]}}], 1.0, "match"),
    ([tc("create_contact", {"name": "A", "tags": ["a"]})],
     [{"name": "create_contact", "arguments": {"name": ["A"], "tags": [["a", "b"]]}}], 0.0, "tags"),
    # nested objects: key by key, optional keys, no extra keys, inner types checked
    ([tc("create_contact", {"name": "A", "address": {"city": "Rome"}})],
     [{"name": "create_contact", "arguments": {"name": ["A"], "address": [{"city": ["Rome"], "zip": [""]}]}}],
     1.0, "match"),
    ([tc("create_contact", {"name": "A", "address": {"city": "Rome", "zip": "001"}})],
     [{"name": "create_contact", "arguments": {"name": ["A"], "address": [{"city": ["Rome"], "zip": [""]}]}}],
     0.0, "address"),
    ([tc("create_contact", {"name": "A", "address": {"city": "Rome", "floor": 2}})],
     [{"name": "create_contact", "arguments": {"name": ["A"], "address": [{"city": ["Rome"]}]}}], 0.0, "address"),
    ([tc("create_contact", {"name": "A", "address": {"city": 5}})],
     [{"name": "create_contact", "arguments": {"name": ["A"], "address": [{"city": ["Rome"]}]}}], 0.0, "city"),
    # parallel: order-free, counts must agree
    ([tc("get_weather", {"city": "Oslo"}), tc("get_weather", {"city": "Paris"})], [W_PARIS, W_OSLO], 1.0, "match"),
    ([tc("get_weather", {"city": "Paris"})], [W_PARIS, W_OSLO], 0.0, "1 call(s), expected 2"),
    ([tc("get_weather", {"city": "Paris"}), tc("get_weather", {"city": "Paris"})], [W_PARIS, W_OSLO], 0.0, "Oslo"),
    ([tc("get_weather", {"city": "Paris"})] * 2, [W_PARIS], 0.0, "2 call(s), expected 1"),
    # irrelevance
    ([], [], 1.0, "no call"),
    ([tc("get_weather", {"city": "Paris"})], [], 0.0, "although none fits"),
    ([], [W_PARIS], 0.0, "0 call(s)"),
    # BFCL's dotted names go out with "_" and match either way
    ([tc("math_hypot", {"x": 3})], [{"name": "math.hypot", "arguments": {"x": [3]}}], 1.0, "match"),
])
def test_match_calls(calls, expected, value, reason):
    funcs = FUNCS + [{"name": "math.hypot", "parameters": {"type": "object", "properties": {"x": {"type": "number"}}}}]
    s = match_calls(calls, expected, funcs)
    assert s.value == value and s.parsed, s
    assert reason in s.reason, s.reason


def test_malformed_arguments_are_unparsed_not_wrong():
    s = match_calls([tc("get_weather", '{"city": "Paris"'), tc("get_weather", {"city": "Oslo"})], [W_PARIS, W_OSLO],
                    FUNCS)
    assert s.value == 0.0 and not s.parsed and "unparsed" in s.reason
    assert not match_calls([tc("get_weather", "[1]")], [W_PARIS], FUNCS).parsed


@pytest.mark.parametrize("text, names, why", [
    ('[{"name": "get_weather", "arguments": {"city": "Paris"}}]', ["get_weather"], None),
    ('Sure!\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```', ["get_weather"], None),
    ('{"tool_calls": [{"name": "a", "arguments": {}}, {"name": "b", "parameters": {"x": 1}}]}', ["a", "b"], None),
    ("I cannot help with that; no function fits.", [], None),
    ("[]", [], None),
    ("Here you go: {'name': 'get_weather'}", [], None),  # not JSON, and no JSON-looking call either
    ('{"name": "get_weather", "arguments": {"city": "Paris",}}', [], "not valid JSON"),
    ('<think>maybe [{"name": "x"}]</think>No call needed.', [], None),
])
def test_parse_prompted(text, names, why):
    calls, err = parse_prompted(text)
    assert [c.name for c in calls] == names and (err is None) == (why is None)
    if why:
        assert why in err


def test_shipped_data_covers_the_categories_and_matches_its_checksum():
    tasks = read_jsonl(data_path("tools_tasks.jsonl"))
    assert len(tasks) >= 100 and len({t["id"] for t in tasks}) == len(tasks)
    cats = {c: sum(t["category"] == c for t in tasks) for c in ("simple", "multiple", "parallel", "irrelevance")}
    assert all(v >= 20 for v in cats.values()), cats
    for t in tasks:
        names = {f["name"] for f in t["functions"]}
        assert all(e["name"] in names for e in t["expected"]), t["id"]
        assert (t["category"] == "irrelevance") == (not t["expected"])
        assert (t["category"] == "parallel") == (len(t["expected"]) > 1)
        if t["category"] == "multiple":
            assert len(t["functions"]) >= 3
        for e in t["expected"]:  # the expected values themselves are of the schema's types
            fn = next(f for f in t["functions"] if f["name"] == e["name"])
            canonical = {k: next(a for a in v if a != "") for k, v in e["arguments"].items() if v != [""]}
            canonical = {k: ({kk: vv[0] for kk, vv in v.items() if vv != [""]} if isinstance(v, dict) else v)
                         for k, v in canonical.items()}
            assert match_calls([tc(e["name"], canonical)], [e], t["functions"]).value == 1.0, (t["id"], canonical)
            assert set(fn["parameters"]["required"]) <= set(canonical), t["id"]
    sources = data_path("SOURCES.md").read_text()
    digest = hashlib.sha256(data_path("tools_tasks.jsonl").read_bytes()).hexdigest()
    assert digest in sources


def test_samples_interleave_categories_and_run_each_mode():
    suite = get_suite("tools")
    first = list(suite.samples(0, 4))
    assert [s.category for s in first[::2]] == ["native/simple", "native/multiple", "native/parallel",
                                                "native/irrelevance"]
    assert [s.id.split("/")[1] for s in first[:2]] == ["native", "prompted"]
    native, prompted = first[0], first[1]
    assert [m["role"] for m in suite.messages(native)] == ["user"]
    sysmsg = suite.messages(prompted)[0]["content"]
    assert "get_weather" in sysmsg or "functions" in sysmsg
    assert suite.requires == ("tools",) and get_suite("tools", modes="prompted").requires == ()
    with pytest.raises(AssayError, match="unknown mode"):
        get_suite("tools", modes="native,free")


def test_score_turns_reads_native_calls_from_the_stored_turn():
    suite = get_suite("tools")
    native = next(s for s in suite.samples(0, None) if s.id == "tools-simple-001/native")
    good = Turn(completion="", tool_calls=[tc("get_weather", {"city": "Lima"})])
    assert suite.score_turns([good], native).value == 1.0
    text_only = Turn(completion='[{"name": "get_weather", "arguments": {"city": "Lima"}}]')
    assert suite.score_turns([text_only], native).value == 0.0  # native mode wants real tool_calls


def test_aggregate_per_mode_and_category():
    suite = get_suite("tools")
    recs = []
    for s in list(suite.samples(0, 4)):
        ok = s.category.endswith("simple")
        recs.append(Record(suite="tools", sample_id=s.id, category=s.category, target=s.target,
                           score=match_calls([], [], []) if ok else match_calls([], s.target or [W_PARIS], FUNCS),
                           status="ok"))
    m = {x.key: x for x in suite.aggregate(recs)}
    assert m["native/accuracy"].n == 4 and m["native/simple/accuracy"].value == 1.0
    assert m["prompted/parallel/accuracy"].value == 0.0 and m["native/unparsed_rate"].value == 0.0
    assert m["native/no_call_rate"].n == 3


def test_endpoint_without_tool_calling_is_one_line(stub):
    st = stub()
    plain = st.endpoint("m", engine="llama.cpp")
    suite = get_suite("tools")

    async def go(ep):
        async with Client([ep]) as c:
            await suite.prepare(c)

    with pytest.raises(AssayError, match="without tool calling.*modes=prompted"):
        asyncio.run(go(plain))
    asyncio.run(go(st.endpoint("m", engine="llama.cpp", extra={"tool_format": "chatml-function-calling"})))
    asyncio.run(go(st.endpoint("m")))  # a remote server: unknown, so it is tried


def test_bfcl_loader(tmp_path):
    q = tmp_path / "BFCL_v3_simple.json"
    q.write_text(json.dumps({"id": "simple_0", "question": [[{"role": "user", "content": "Area of a triangle with "
                                                              "base 10 and height 5?"}]],
                             "function": [{"name": "geometry.area_triangle", "description": "Triangle area.",
                                           "parameters": {"type": "dict", "properties": {
                                               "base": {"type": "integer"}, "height": {"type": "float"},
                                               "unit": {"type": "string"}, "pts": {"type": "tuple",
                                                                                    "items": {"type": "any"}}},
                                               "required": ["base", "height"]}}]}) + "\n")
    (tmp_path / "possible_answer").mkdir()
    (tmp_path / "possible_answer" / q.name).write_text(json.dumps(
        {"id": "simple_0", "ground_truth": [{"geometry.area_triangle": {"base": [10], "height": [5.0],
                                                                       "unit": ["units", ""]}}]}) + "\n")
    (task,) = load_bfcl(q)
    assert task["category"] == "simple" and task["question"].startswith("Area")
    params = task["functions"][0]["parameters"]
    assert params["type"] == "object" and params["properties"]["height"]["type"] == "number"
    assert params["properties"]["pts"] == {"type": "array", "items": {}}
    assert task["expected"] == [{"name": "geometry.area_triangle",
                                 "arguments": {"base": [10], "height": [5.0], "unit": ["units", ""]}}]
    suite = get_suite("tools", data=str(q), modes="native")
    (s,) = list(suite.samples(0, None))
    good = Turn(tool_calls=[tc("geometry_area_triangle", {"base": 10, "height": 5})])
    assert suite.score_turns([good], s).value == 1.0
    irr = tmp_path / "BFCL_v3_irrelevance.json"
    irr.write_text(json.dumps({"id": "irrelevance_0", "question": [[{"role": "user", "content": "Hi"}]],
                               "function": [{"name": "f", "parameters": {"type": "dict", "properties": {}}}]}))
    assert load_bfcl(irr)[0]["category"] == "irrelevance"
    assert bfcl_schema({"type": "any"}) == {}


def test_bfcl_loader_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_bfcl(tmp_path / "nope.json")
    q = tmp_path / "BFCL_v3_simple.json"
    q.write_text(json.dumps({"id": "simple_0", "question": "x", "function": []}) + "\n")
    with pytest.raises(DataError, match="no possible answer.*answers=PATH"):
        load_bfcl(q)
    q.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(DataError, match="needs id, question, function"):
        load_bfcl(q)


@pytest.fixture(scope="module")
def tool_server(tmp_path_factory, cpu_family):
    server = cpu_family.start(tmp_path_factory.mktemp("tools_home"), ctx=4096, tools=True)
    yield server
    server.stop()


def test_live_tools_both_modes_on_the_embedded_model(tool_server, tmp_path):
    from assay.client import SamplingParams
    from assay.evals.runner import rescore, run
    from assay.store import iter_records

    ep = tool_server.endpoint
    assert ep.caps.tools == "native" and ep.caps.tool_format == "chatml-function-calling"
    res = run(["tools"], [ep], out_dir=tmp_path, limit=2, concurrency=1, params=SamplingParams(max_tokens=48))
    recs = [Record.from_dict(r) for r in iter_records(res.run_dir / "records.jsonl")]
    assert len(recs) == 4 and not [r.error for r in recs if r.status == "error"]
    native = [r for r in recs if r.category.startswith("native/")]
    # the server's grammar makes every native call parse (SmolLM2-135M mostly answers "message:", i.e. no call)
    assert all(c.ok for r in native for t in r.turns for c in t.tool_calls)
    assert res.manifest.fingerprint["tool_format"] == "chatml-function-calling"
    card = res.summary["suites"]["tools"]["metrics"]
    assert {"native/accuracy", "prompted/accuracy"} <= set(card)
    assert rescore(res.run_dir)["changed"] == 0

    # a real native call through the server: forced to the one function, unstreamed, arguments schema-constrained
    suite = get_suite("tools", modes="native")
    sample = next(s for s in suite.samples(0, None) if s.id == "tools-simple-001/native")
    tools = [{"type": "function", "function": {**f}} for f in sample.input["functions"]]

    async def forced():
        async with Client([ep]) as c:
            return await c.chat(suite.messages(sample), SamplingParams(
                max_tokens=48, tools=tools, tool_choice={"type": "function", "function": {"name": "get_weather"}}))

    comp = asyncio.run(forced())
    (call,) = comp.tool_calls
    assert call.ok and call.name == "get_weather" and isinstance(call.args.get("city"), str)
    assert comp.finish_reason == "tool_calls"


@pytest.mark.parametrize("args, tools", [
    (["--suite", "tools"], True),
    (["--suite", "tools", "--suite-opt", "modes=prompted"], False),
    (["--suite", "mtif,math"], False),
    (["--suite", "math", "--suite-opt", "tool=python", "--suite-opt", "tool_mode=native"], True),
])
def test_eval_asks_the_launcher_for_tool_calling_when_a_suite_requires_it(monkeypatch, args, tools):
    import contextlib

    from typer.testing import CliRunner

    import assay.engines
    from assay.cli import app

    seen = {}

    @contextlib.contextmanager
    def fake_provide(**kw):
        seen.update(kw)
        raise AssayError("stop here")
        yield  # pragma: no cover

    monkeypatch.setattr(assay.engines, "provide", fake_provide)
    out = CliRunner().invoke(app, ["eval", *args, "--limit", "1"])
    assert out.exit_code == 1 and "stop here" in out.output
    assert seen["tools"] is tools


def test_engine_flags_for_tool_calling():
    from assay.engines import capabilities
    from assay.engines.llamacpp import LlamaCppServer
    from assay.engines.tools import tool_caps, tool_flags, vllm_parser
    from assay.models import ModelSpec, resolve

    cmd = LlamaCppServer(resolve("smollm2-135m"), port=1, tools=True).command()
    assert cmd[cmd.index("--chat_format") + 1] == "chatml-function-calling"
    assert "--chat_format" not in LlamaCppServer(resolve("smollm2-135m"), port=1).command()
    assert tool_flags("vllm", ModelSpec(name="x", hf_id="meta-llama/Llama-3.1-8B-Instruct")) == [
        "--enable-auto-tool-choice", "--tool-call-parser", "llama3_json"]
    assert vllm_parser(ModelSpec(name="x", hf_id="Qwen/Qwen3-4B-Instruct-2507")) == "hermes"
    assert tool_caps("vllm", None)["tools"] == "unknown" and tool_caps("vllm", "hermes")["tools"] == "native"
    caps = capabilities("llama.cpp", tool_format="chatml-function-calling")
    assert (caps.tools, caps.tool_stream) == ("native", False)
    assert capabilities("llama.cpp").tools == "none" and capabilities("remote").tools == "unknown"
