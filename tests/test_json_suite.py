"""The json suite: data validity and the scorer on real, awkward answers (no model)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from assay.errors import AssayError
from assay.evals.base import Sample
from assay.evals.suites import get_suite
from assay.evals.suites.json import parse_json_answer, score_json, values_match
from helpers import suite_metrics

SUITE = get_suite("json")
SAMPLES = list(SUITE.samples(0, None))
TASKS = SUITE.tasks()

PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                                           "email": {"type": "string"}},
          "required": ["name", "age", "email"], "additionalProperties": False}
PERSON_EXP = {"name": "Maria Lopez", "age": 34, "email": "maria.lopez@example.com"}
GOOD = '{"name": "Maria Lopez", "age": 34, "email": "maria.lopez@example.com"}'
TICKET = {"type": "object", "properties": {"priority": {"type": "string", "enum": ["low", "medium", "high"]},
                                           "tags": {"type": "array", "items": {"type": "string"}}},
          "required": ["priority", "tags"], "additionalProperties": False}


def test_at_least_50_tasks_each_run_twice():
    assert len(TASKS) >= 50
    assert len(SAMPLES) == 2 * len(TASKS)
    assert len({s.id for s in SAMPLES}) == len(SAMPLES)
    assert SAMPLES[0].id == f"{TASKS[0]['id']}/freeform" and SAMPLES[1].id == f"{TASKS[0]['id']}/constrained"
    assert {s.category for s in SAMPLES} == {"freeform", "constrained"}
    topics = {t["topic"] for t in TASKS}
    assert {"person", "list", "nested", "enum", "array", "numbers", "boolean"} <= topics


@pytest.mark.parametrize("task", TASKS, ids=[t["id"] for t in TASKS])
def test_task_is_consistent(task):
    jsonschema.Draft202012Validator.check_schema(task["schema"])
    jsonschema.validate(task["expected"], task["schema"])  # the expected answer follows its own schema
    assert set(task["expected"]) == set(task["schema"]["required"])  # every required field has an expected value
    # strings we expect appear in the source text (the answer is drawn from it), enums aside
    for key, value in task["expected"].items():
        prop = task["schema"]["properties"][key]
        if isinstance(value, str) and "enum" not in prop:
            assert value.casefold() in task["text"].casefold(), (key, value)
    for s in (f"{json.dumps(task['expected'])}", f"```json\n{json.dumps(task['expected'], indent=2)}\n```"):
        assert score_json(s, task["schema"], task["expected"]).value == 1.0


def test_request_params_only_for_constrained():
    free, cons = SAMPLES[0], SAMPLES[1]
    assert SUITE.request_params(free) == {}
    rf = SUITE.request_params(cons)["response_format"]
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["schema"] == TASKS[0]["schema"] and rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["name"].replace("_", "").isalnum()


def test_messages_carry_schema_and_text():
    content = SUITE.messages(SAMPLES[0])[-1]["content"]
    assert TASKS[0]["text"] in content and '"required"' in content and "JSON" in content


def test_modes_option():
    only = list(get_suite("json", modes="constrained").samples(0, None))
    assert len(only) == len(TASKS) and all(s.id.endswith("/constrained") for s in only)
    with pytest.raises(AssayError, match="unknown mode"):
        get_suite("json", modes="yaml")
    assert get_suite("json", modes="constrained").data_hash() != SUITE.data_hash()


# (completion, value, parsed, schema_ok, fields_ok, fenced)
CASES = [
    (GOOD, 1.0, True, True, True, False),
    ("```json\n" + GOOD + "\n```", 1.0, True, True, True, True),
    ("```\n" + GOOD + "\n```", 1.0, True, True, True, True),
    ("Sure! Here is the JSON:\n```json\n" + GOOD + "\n```\nLet me know if you need more.", 1.0, True, True, True, True),
    ("```json\n" + GOOD, 1.0, True, True, True, True),  # unclosed fence (cut off)
    (GOOD + "\n\nThe name is Maria and she is 34.", 1.0, True, True, True, False),  # trailing prose
    ("Here it is: " + GOOD, 1.0, True, True, True, False),
    ('{"name": "  maria   LOPEZ ", "age": 34, "email": "Maria.Lopez@Example.com"}', 1.0, True, True, True, False),
    ('{"name": "Maria Lopez", "age": 34.0, "email": "maria.lopez@example.com"}', 1.0, True, True, True, False),
    ("<think>need name, age</think>" + GOOD, 1.0, True, True, True, False),
    ('{"name": "Maria Lopez", "age": "34", "email": "maria.lopez@example.com"}', 0.0, True, False, False, False),
    ('{"name": "Maria Lopez", "age": 35, "email": "maria.lopez@example.com"}', 0.0, True, True, False, False),
    ('{"name": "Maria Lopez", "age": 34}', 0.0, True, False, False, False),  # missing required
    ('{"name": "Maria Lopez", "age": 34, "email": "maria.lopez@example.com", "city": "Madrid"}', 0.0, True, False,
     True, False),  # extra field: values right, schema forbids it
    ('[{"name": "Maria Lopez", "age": 34, "email": "maria.lopez@example.com"}]', 0.0, True, False, False, False),
    ('{"name": null, "age": 34, "email": "maria.lopez@example.com"}', 0.0, True, False, False, False),
]


@pytest.mark.parametrize("completion,value,parsed,schema_ok,fields_ok,fenced", CASES)
def test_score_person(completion, value, parsed, schema_ok, fields_ok, fenced):
    s = score_json(completion, PERSON, PERSON_EXP)
    assert (s.value, s.parsed) == (value, parsed), s
    assert (s.extra["parse_ok"], s.extra["schema_ok"], s.extra["fields_ok"], s.extra["fenced"]) == (
        parsed, schema_ok, fields_ok, fenced), s


@pytest.mark.parametrize("completion", [
    "",
    "  \n",
    "{'name': 'Maria Lopez', 'age': 34, 'email': 'maria.lopez@example.com'}",  # Python dict, not JSON
    '{"name": "Maria Lopez", "age": 34, "email": "maria.lopez@',  # truncated
    "Maria Lopez, 34, maria.lopez@example.com",
    "<think>I should answer with {\"name\": ...",  # unclosed think
    '{"name": "Maria Lopez", "age": 34,}',  # trailing comma
])
def test_unparseable_is_unparsed(completion):
    s = score_json(completion, PERSON, PERSON_EXP)
    assert s.parsed is False and s.value == 0.0 and s.extra["parse_ok"] is False
    assert s.reason


def test_enum_violation_and_array_rules():
    exp = {"priority": "high", "tags": ["db", "outage"]}
    ok = score_json('{"priority": "high", "tags": ["outage", "DB"]}', TICKET, exp)  # scalar arrays: any order, case
    assert ok.value == 1.0
    bad_enum = score_json('{"priority": "urgent", "tags": ["db", "outage"]}', TICKET, exp)
    assert bad_enum.value == 0.0 and not bad_enum.extra["schema_ok"] and "priority" in bad_enum.reason
    short = score_json('{"priority": "high", "tags": ["db"]}', TICKET, exp)
    assert short.value == 0.0 and short.extra["schema_ok"] and not short.extra["fields_ok"]
    wrong_type = score_json('{"priority": "high", "tags": "db, outage"}', TICKET, exp)
    assert wrong_type.value == 0.0 and not wrong_type.extra["schema_ok"]


def test_values_match_rules():
    assert values_match(156.4, 156.40) and values_match(3, 3.0) and not values_match(3, "3")
    assert not values_match(True, 1) and not values_match(1, True) and values_match(None, None)
    assert values_match("LX318", "LX 318") and values_match("The Quiet Orchard", "quiet orchard")
    assert not values_match("01104", 1104)  # a postal code is a string: leading zero matters
    assert values_match([{"a": 1}, {"a": 2}], [{"a": 1, "b": 0}, {"a": 2}])
    assert not values_match([{"a": 1}, {"a": 2}], [{"a": 2}, {"a": 1}])  # object lists keep the text's order
    assert not values_match(["a", "a"], ["a", "b"])  # multiset, not set


def test_parse_reports_fences_and_prose():
    v, info = parse_json_answer("```JSON\n{\"a\": 1}\n```")
    assert v == {"a": 1} and info["fenced"] and not info["prose"]
    v, info = parse_json_answer("Result: {\"a\": 1} done")
    assert v == {"a": 1} and info["prose"] and not info["fenced"]


def test_score_through_suite_andsuite_metrics():
    task = TASKS[0]
    recs = []
    answers = {"freeform": ["```json\n" + json.dumps(task["expected"]) + "\n```", "not json", '{"x": 1}'],
               "constrained": [json.dumps(task["expected"])] * 3}
    for mode, outs in answers.items():
        sample = Sample(id=f"{task['id']}/{mode}", input={"text": task["text"], "schema": task["schema"],
                                                           "mode": mode, "task_id": task["id"]},
                        target=task["expected"], category=mode)
        for out in outs:
            sc = SUITE.score(out, sample)
            recs.append({"category": mode, "status": "ok" if sc.parsed else "unparsed", "score": sc.to_dict()})
    recs.append({"category": "freeform", "status": "error", "score": None})  # errors are not counted here
    agg = suite_metrics(SUITE, recs)
    assert agg["freeform/parse_rate"]["n"] == 3 and agg["freeform/parse_rate"]["value"] == pytest.approx(2 / 3)
    assert agg["freeform/schema_valid_rate"]["value"] == pytest.approx(1 / 3)
    assert agg["freeform/field_accuracy"]["value"] == pytest.approx(1 / 3)
    assert agg["freeform/fenced_rate"]["value"] == pytest.approx(1 / 3)
    assert agg["constrained/schema_valid_rate"]["value"] == 1.0
    for v in agg.values():
        assert set(v) >= {"value", "low", "high", "n"} and v["low"] - 1e-12 <= v["value"] <= v["high"] + 1e-12


@pytest.mark.parametrize("engine,expected_type", [("llama.cpp", "json_object"), ("vllm", "json_schema"),
                                                  ("remote", "json_schema")])
def test_constrained_request_reaches_the_server_in_its_dialect(stub, engine, expected_type):
    # the runner sends SamplingParams(**request_params); the client adapts the OpenAI form for llama-cpp-python,
    # whose server only takes {"type": "json_object", "schema": ...} and answers 422 to "json_schema"
    import asyncio

    from assay.client import Client, SamplingParams

    server = stub(reply=json.dumps(TASKS[0]["expected"]))
    sample = SAMPLES[1]
    ep = server.endpoint(model="stub-model", engine=engine)

    async def go():
        async with Client(ep) as c:
            return await c.chat(SUITE.messages(sample), SamplingParams(max_tokens=64, **SUITE.request_params(sample)))

    comp = asyncio.run(go())
    sent = server.requests[-1]["response_format"]
    assert sent["type"] == expected_type
    schema = sent["schema"] if expected_type == "json_object" else sent["json_schema"]["schema"]
    assert schema == TASKS[0]["schema"]
    assert SUITE.score(comp.text, sample).value == 1.0


def test_every_schema_converts_to_a_llamacpp_grammar():
    # llama-cpp-python silently falls back to "any JSON" when a schema does not convert: that would make the
    # constrained mode a lie, so every shipped schema must convert
    grammar = pytest.importorskip("llama_cpp.llama_grammar")
    for task in TASKS:
        gbnf = grammar.json_schema_to_gbnf(json.dumps(task["schema"]))
        assert "root ::=" in gbnf
        for key in task["schema"]["required"]:
            assert f'\\"{key}\\"' in gbnf, (task["id"], key)
