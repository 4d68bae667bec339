"""The json suite's constrained mode against the real embedded model (SmolLM2-135M on llama.cpp).

A 135M model rarely writes valid JSON for a schema on its own; with grammar-constrained decoding every answer must
parse and validate. That is what this checks - not that the values are right.
"""

from __future__ import annotations

import asyncio

import jsonschema

from assay.client import Client, SamplingParams
from assay.evals.suites import get_suite
from assay.evals.suites.json import parse_json_answer


def test_constrained_outputs_parse_and_validate(embedded):
    suite = get_suite("json", modes="constrained")
    by_task = {s.input["task_id"]: s for s in suite.samples(0, None)}
    picked = [by_task["json-001"], by_task["json-014"]]  # person (string/int fields) and an enum

    async def run():
        async with Client(embedded) as client:
            outs = []
            for s in picked:
                params = SamplingParams(temperature=0.0, max_tokens=128, **suite.request_params(s))
                outs.append(await client.chat(suite.messages(s), params))
            return outs

    outs = asyncio.run(run())
    for s, c in zip(picked, outs):
        assert c.finish_reason == "stop", (s.id, c.finish_reason, c.text)
        value, info = parse_json_answer(c.text)
        assert info["error"] is None and not info["fenced"], (s.id, c.text)
        jsonschema.validate(value, s.input["schema"])
        score = suite.score(c.text, s)
        assert score.parsed and score.extra["schema_ok"], (s.id, score)
