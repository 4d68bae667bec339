"""A live judge run on the embedded model: SmolLM2-135M answers two questions twice and judges its own answers
(rubric and pairwise, both orders). The point is the plumbing through a real llama.cpp server — real replies stored,
parsed or marked unparsed, never an error or a default score — not the quality of a 135M judge."""

from __future__ import annotations

import asyncio

import pytest

from assay.client import Client, SamplingParams
from assay.evals.base import Sample, Score
from assay.evals.runner import run
from assay.judge.run import judge_pairwise, judge_rubric, judgements
from assay.judge.summary import pairwise_summary, rubric_summary
from assay.judge.templates import load_template

pytestmark = [pytest.mark.engine, pytest.mark.slow]


class Ask:
    name, version = "ask", "1"

    def __init__(self, style: str):
        self.style = style

    def samples(self, seed, limit):
        for i, q in enumerate(["What is the capital of France?", "Name a colour."]):
            yield Sample(id=f"q{i}", input={"q": q})

    def messages(self, s):
        return [{"role": "system", "content": self.style}, {"role": "user", "content": s.input["q"]}]

    def score(self, completion, s):
        return Score(1.0)


def test_smollm2_judges_itself(embedded, tmp_path):
    params = SamplingParams(max_tokens=12, temperature=0.0)
    a = run([Ask("Answer in one word.")], [embedded], out_dir=tmp_path, params=params, fsync=False)
    b = run([Ask("Answer in a full sentence.")], [embedded], out_dir=tmp_path, params=params, fsync=False, fresh=True)
    judge_params = SamplingParams(max_tokens=40, temperature=0.0, seed=0)

    async def go():
        async with Client([embedded]) as c:
            r = await judge_rubric(a.run_dir, load_template("naturalness"), c, params=judge_params, concurrency=1)
            p = await judge_pairwise(a.run_dir, b.run_dir, load_template("pairwise"), c, params=judge_params,
                                     concurrency=1)
            return r, p

    r, p = asyncio.run(go())
    assert len(r.records) == 2 and len(p.records) == 4
    for rec in r.records + p.records:
        assert rec.status in ("ok", "unparsed"), rec.error  # a real reply every time; parsed or honestly unparsed
        assert rec.reply is not None and rec.completion_tokens and rec.e2e_s > 0
        assert rec.judge_model == embedded.model
        if rec.status == "unparsed":
            assert rec.value is None and rec.choice is None and rec.reason
    s = rubric_summary(r.records)["ask"]
    assert s["n"] + s["unparsed"] == 2
    ps = pairwise_summary(p.records)
    assert ps["n"] + ps["unparsed"] == 2 and ps["wins"] + ps["ties"] + ps["losses"] == ps["n"]
    assert len(judgements(a.run_dir)) == 6  # rubric and pairwise passes share the run's judgements.jsonl
