"""math with a Python tool: which code a reply asks to run, what the model is shown of a sandbox run, a real round trip
through the sandbox (stub model: code, then the answer from its output), native tool calls, sandbox failures fed
back, rounds capped, the paired comparison with the tool-less run, and a live run on the embedded model."""

from __future__ import annotations

import json
import re

import pytest

from assay.errors import AssayError
from assay.evals.base import Record
from assay.evals.runner import rescore, run
from assay.sandbox import SandboxResult
from assay.evals.suites import get_suite
from assay.evals.suites.math import MathSuite, MathToolSuite, code_to_run, tool_output
from assay.store import iter_records


@pytest.mark.parametrize("text, code", [
    ("Let me compute.\n```python\nprint(2 + 2)\n```", "print(2 + 2)"),
    ("```python\nx = 1\n```\nthen\n```py\nprint(x * 3)\n```", "x = 1\nprint(x * 3)"),  # blocks joined
    ("```python\nprint(1)\n```\nSo the answer is \\boxed{1}.", None),  # already answered: nothing to run
    ("No code here, \\boxed{5}", None),
    ("```bash\nls\n```", None),  # only Python runs
    ("```python\n\n```", None),
    ("<think>```python\nprint(9)\n```</think>The answer is 9", None),  # code inside the reasoning is not a request
])
def test_code_to_run(text, code):
    assert code_to_run(text) == code


def _res(**kw):
    base = dict(passed=True, status="passed", returncode=0, stdout="", stderr="", wall_s=0.1, mode="netns", fs="x")
    return SandboxResult(**{**base, **kw})


def test_tool_output():
    assert tool_output(_res(stdout="4\n")) == "4"
    assert "ZeroDivisionError" in tool_output(_res(passed=False, status="failed", returncode=1,
                                                   stderr="Traceback ...\nZeroDivisionError: division by zero"))
    assert "[timeout: killed after 10 s" in tool_output(_res(passed=False, status="timeout",
                                                             detail="killed after 10 s wall clock"))
    assert tool_output(_res()).startswith("(no output")
    long = tool_output(_res(stdout="x" * 5000))
    assert len(long) < 2100 and "more characters cut" in long


def test_make_and_options():
    assert type(get_suite("math")) is MathSuite
    s = get_suite("math", tool="python", max_rounds=2)
    assert isinstance(s, MathToolSuite) and s.name == "math" and s.max_rounds == 2 and s.requires == ()
    assert get_suite("math", tool="python", tool_mode="native").requires == ("tools",)
    with pytest.raises(AssayError, match="tool=python"):
        get_suite("math", tool="bash")
    with pytest.raises(AssayError, match="tool_mode"):
        get_suite("math", tool="python", tool_mode="magic")
    # same problems and ids with and without the tool: the runs pair in compare
    assert [x.id for x in get_suite("math").samples(0, 5)] == [x.id for x in s.samples(0, 5)]


def _answers(req: dict) -> str:
    """A stub 'model': asks to compute the problem's number squared with Python, then reads the output."""
    last = req["messages"][-1]["content"]
    if last.startswith("Output of your code:"):
        out = re.search(r"```output\n(.*?)\n```", last, re.S).group(1)
        return f"The code printed {out}, so the answer is \\boxed{{{out.strip()}}}."
    return "I will compute it.\n```python\nimport os\nprint(sum(range(10)), os.getcwd() != '/root')\n```"


class FixedMath(MathToolSuite):
    """One problem whose answer is 45 True (what the stub's code prints)."""

    def samples(self, seed, limit):
        from assay.evals.base import Sample

        yield Sample(id="p1", input={"question": "What is 0+1+...+9?"}, target="45", category="x")


def test_real_round_trip_through_the_sandbox(stub, tmp_path):
    st = stub(reply=_answers)
    res = run([FixedMath()], [st.endpoint("stub-model")], out_dir=tmp_path)
    (raw,) = list(iter_records(res.run_dir / "records.jsonl"))
    r = Record.from_dict(raw)
    assert len(r.turns) == 2 and [m["role"] for m in r.messages] == ["user", "assistant", "user", "assistant"]
    (tr,) = r.turns[0].tool_results
    assert tr.status == "passed" and tr.content == "45 True"  # it ran, contained, in its own working directory
    assert tr.detail["mode"] in ("netns", "socket-guard") and "sum(range(10))" in tr.detail["code"]
    assert "```output\n45 True\n```" in r.messages[2]["content"]
    assert r.completion.endswith("\\boxed{45 True}.")
    metrics = res.summary["suites"]["math"]["metrics"]
    assert metrics["tool_calls_per_problem"]["value"] == 1.0 and metrics["sandbox_failure_rate"]["value"] == 0.0
    assert rescore(res.run_dir)["changed"] == 0


def test_failures_are_fed_back_and_rounds_are_capped(stub, tmp_path):
    st = stub(reply="Again.\n```python\n1/0\n```")  # never answers: always more code
    suite = FixedMath(max_rounds=2)
    res = run([suite], [st.endpoint("stub-model")], out_dir=tmp_path)
    (raw,) = list(iter_records(res.run_dir / "records.jsonl"))
    r = Record.from_dict(raw)
    assert len(r.turns) == 3  # two tool runs, then the last reply is the answer whatever it holds
    results = [x for t in r.turns for x in t.tool_results]
    assert [x.status for x in results] == ["failed", "failed"]
    assert "ZeroDivisionError" in results[0].content and "ZeroDivisionError" in r.messages[2]["content"]
    assert r.score.value == 0.0
    m = res.summary["suites"]["math"]["metrics"]
    assert m["sandbox_failure_rate"]["value"] == 1.0 and m["sandbox_failure_rate"]["n"] == 2


def test_native_tool_calls_run_in_the_sandbox(stub, tmp_path):
    def calls(req):
        if any(m["role"] == "tool" for m in req["messages"]):
            return None
        return [{"name": "python", "arguments": json.dumps({"code": "print(6 * 7)"})},
                {"name": "python", "arguments": '{"code": "print(1)'}]  # malformed: answered with an error

    def reply(req):
        tools = [m["content"] for m in req["messages"] if m["role"] == "tool"]
        return f"\\boxed{{{tools[0]}}}" if tools else ""

    st = stub(reply=reply, tool_calls=calls)
    suite = FixedMath(tool_mode="native")
    res = run([suite], [st.endpoint("stub-model")], out_dir=tmp_path)
    r = Record.from_dict(next(iter(iter_records(res.run_dir / "records.jsonl"))))
    assert st.requests[0]["tools"][0]["function"]["name"] == "python"
    ok, bad = r.turns[0].tool_results
    assert ok.status == "passed" and ok.content == "42" and ok.call_id == r.turns[0].tool_calls[0].id
    assert bad.status == "bad_call" and "not JSON" in bad.content
    assert [m["role"] for m in r.messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert r.completion == "\\boxed{42}"


def test_with_and_without_the_tool_pair_in_compare(stub, tmp_path):
    from assay.report.compare import compare_runs
    from assay.report.runs import load_eval_run

    st = stub(reply=_answers)
    plain_stub = stub(reply="It is \\boxed{45 True}")

    class Plain(MathSuite):
        def samples(self, seed, limit):
            return FixedMath().samples(seed, limit)

    a = run([Plain()], [plain_stub.endpoint("stub-model")], out_dir=tmp_path)
    b = run([FixedMath()], [st.endpoint("stub-model")], out_dir=tmp_path)
    runs = [load_eval_run(a.run_dir), load_eval_run(b.run_dir)]
    cmp = compare_runs(runs)
    (pair,) = [p for p in cmp.pairs if p.suite == "math"]
    assert pair.result.n == 1 and not pair.only_a and not pair.only_b


def test_live_math_with_python_on_the_embedded_model(embedded, tmp_path):
    from assay.client import SamplingParams

    res = run([get_suite("math", tool="python", max_rounds=1)], [embedded], out_dir=tmp_path, limit=2,
              concurrency=1, params=SamplingParams(max_tokens=160))
    recs = [Record.from_dict(r) for r in iter_records(res.run_dir / "records.jsonl")]
    assert len(recs) == 2 and all(r.status != "error" for r in recs), [r.error for r in recs]
    assert all(1 <= len(r.turns) <= 2 for r in recs)
    for r in recs:  # every tool run that happened went through the sandbox and was shown to the model
        for t in r.turns:
            for x in t.tool_results:
                assert x.detail["mode"] in ("netns", "socket-guard")
    assert "tool_calls_per_problem" in res.summary["suites"]["math"]["metrics"]


def test_an_answer_inside_code_is_not_the_answer():
    from assay.evals.base import Sample, Turn

    suite = get_suite("math", tool="python")
    s = Sample(id="x", input={"question": "?"}, target="6")
    code_only = Turn(completion='Check:\n```python\nprint(f"The answer is: {round(3, 6)}")\n```')
    assert suite.score_turns([code_only], s).value == 0.0
    boxed = Turn(completion="```python\nprint(6)\n```\nSo the answer is \\boxed{6}.")
    assert suite.score_turns([boxed], s).value == 1.0
    unclosed = Turn(completion="\\boxed{6} then\n```python\nprint('\\\\boxed{7}')")
    assert suite.score_turns([unclosed], s).value == 1.0
