"""Quality under load (``assay bench --workload suite:NAME --rate R --score``) against stub servers whose answers are
known: one that answers right only when it serves a request alone (a batching effect on answers), one whose answers
never depend on load. The paired comparison must find the first and clear the second."""

from __future__ import annotations

import json
import re

import pytest

from assay.bench.quality import QualityOptions, quality_under_load, summary_lines
from assay.errors import AssayError
from assay.evals.suites import get_suite
from assay.stub import StubServer

N = 12


def _answers() -> dict[str, str]:
    """The math suite's first samples' questions → their targets (the embedded data, no download)."""
    suite = get_suite("math")
    return {suite.messages(s)[-1]["content"]: str(s.target) for s in suite.samples(0, 3 * N)}


def _load_sensitive_stub():
    targets = _answers()
    stub = StubServer(first_delay_s=0.15, gap_s=0.01, record=False)

    def reply(body):
        right = targets[body["messages"][-1]["content"]]
        # alone: the right answer; sharing the server with other requests: a wrong one, as a batch might
        return f"So the answer is \\boxed{{{right}}}." if stub.in_chat <= 1 else "So the answer is \\boxed{-1}."

    stub.reply = reply
    return stub


def test_a_load_dependent_answer_shows_as_a_paired_loss():
    with _load_sensitive_stub() as stub:
        res = quality_under_load([stub.endpoint()], QualityOptions(suite="math", rate=25.0, samples=N, warmup=4))
    assert res["idle"]["score_mean"] == 1.0 and res["idle"]["errors"] == 0  # alone, every answer is right
    wrong = [s for s in res["samples"] if s["loaded_score"] == 0.0]
    assert len(wrong) >= N // 2, res["samples"]  # at 25 req/s with 0.3 s answers, most requests share the server
    # an answer is identical to its idle twin exactly when it was right under load too
    assert all(s["identical"] == (s["loaded_score"] == 1.0) for s in res["samples"])
    assert res["identical"] == N - len(wrong)
    p = res["paired"]
    assert p["n"] == N and p["binary"] and p["diff"] == pytest.approx(-len(wrong) / N)
    assert p["high"] < 0 and p["p"] < 0.05 and tuple(p["discordant"]) == (0, len(wrong))
    assert res["loaded"]["in_flight_at_send_mean"] > 1  # the load was real
    text = "\n".join(summary_lines(res))
    assert f"alone vs under load: {N - len(wrong)}/{N}" in text and "loaded − alone" in text
    assert res["control"]["identical"] == N and f"alone again (the control): {N}/{N}" in text


def test_answers_that_do_not_depend_on_load_pair_as_equal():
    targets = _answers()
    with StubServer(reply=lambda b: f"\\boxed{{{targets[b['messages'][-1]['content']]}}}", first_delay_s=0.05,
                    record=False) as stub:
        res = quality_under_load([stub.endpoint()], QualityOptions(suite="math", rate=30.0, samples=N))
    assert res["identical"] == N and res["idle"]["score_mean"] == res["loaded"]["score_mean"] == 1.0
    assert res["paired"]["diff"] == 0 and res["paired"]["low"] == 0 and res["paired"]["high"] == 0
    assert res["loaded"]["background_requests"] >= 0 and res["loaded"]["requests_sent"] >= N + 4


def test_the_control_catches_an_engine_that_is_not_repeatable_alone():
    """A server whose answer changes once it has seen a prompt (a prompt cache reused differently, say): the answers
    under load differ, but so do the answers alone the second time, and the control says so."""
    targets = _answers()
    seen: set[str] = set()

    def reply(body):
        q = body["messages"][-1]["content"]
        first = q not in seen
        seen.add(q)
        return f"\\boxed{{{targets[q]}}}" if first else "\\boxed{-1}"

    with StubServer(reply=reply, first_delay_s=0.02, record=False) as stub:
        res = quality_under_load([stub.endpoint()], QualityOptions(suite="math", rate=20.0, samples=N))
    assert res["identical"] == 0 and res["control"]["identical"] == 0 and res["control"]["of"] == N
    assert "alone again (the control): 0/" in "\n".join(summary_lines(res))


def test_a_failed_request_is_counted_not_scored():
    targets = _answers()
    first = next(iter(targets))

    def reply(body):
        q = body["messages"][-1]["content"]
        return f"\\boxed{{{targets[q]}}}"

    with StubServer(reply=reply, record=False) as stub:
        stub.status = None
        orig = stub._chat_body

        async def failing(req, writer):  # the first sample fails under load only
            if req["messages"][-1]["content"] == first and stub.count > N:
                stub.count += 1
                stub._send(writer, 500, {"error": {"message": "overloaded"}})
                return
            await orig(req, writer)

        stub._chat_body = failing
        res = quality_under_load([stub.endpoint()], QualityOptions(suite="math", rate=30.0, samples=N))
    assert res["loaded"]["errors"] == 1 and res["paired_n"] == N - 1 and res["identical_of"] == N - 1
    assert res["samples"][0]["loaded_score"] is None and "500" in (res["samples"][0]["loaded_error"] or "")


def test_conversations_and_bad_options_are_one_line_errors():
    with StubServer(record=False) as stub:
        with pytest.raises(AssayError, match="single-call suite"):
            quality_under_load([stub.endpoint()], QualityOptions(suite="mtif", rate=1.0, samples=2))
        with pytest.raises(AssayError, match="positive --rate"):
            quality_under_load([stub.endpoint()], QualityOptions(suite="math", rate=0.0, samples=2))


def test_cli_score_at_a_rate_and_its_errors():
    from typer.testing import CliRunner

    from assay.cli import app

    targets = _answers()
    with StubServer(reply=lambda b: f"\\boxed{{{targets[b['messages'][-1]['content']]}}}", record=False) as stub:
        r = CliRunner().invoke(app, ["bench", "-e", stub.base_url, "--workload", "suite:math:64", "--rate", "20",
                                     "--score", "--requests", "6"])
        assert r.exit_code == 0, r.output
        line = json.loads(r.stdout.strip().splitlines()[-1])
        assert line["kind"] == "bench-quality" and line["n"] == 6 and line["identical"] == 6
        assert line["options"]["max_tokens"] == 64  # suite:NAME:OUT
        bad = CliRunner().invoke(app, ["bench", "-e", stub.base_url, "--workload", "fixed:16:4", "--rate", "2",
                                       "--score"])
        assert bad.exit_code != 0 and re.search(r"--workload suite:NAME", bad.output)
        norate = CliRunner().invoke(app, ["bench", "-e", stub.base_url, "--workload", "suite:math", "--score"])
        assert norate.exit_code != 0 and "--find-max" in norate.output
