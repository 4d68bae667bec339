"""The bfcl suite and BFCL rules in the tools suite, without a model (tests/test_bfcl_parity.py compares the verdicts
with BFCL's own checker)."""

from __future__ import annotations

import asyncio

import pytest

from assay.client import ToolCall
from assay.evals.base import Record, Score, Turn
from assay.evals.bfcl import data as bd
from assay.evals.bfcl.checker import standardize
from assay.evals.bfcl.decode import DecodeError, decode_prompted
from assay.evals.jsonmatch import values_equal
from assay.evals.suites import get_suite
from assay.evals.suites.tools import ToolsSuite


def test_decoder_reads_bfclss_python_call_list():
    assert decode_prompted("```\n[math.hypot(x=3, y=-4.0), f(a=[1, 'b'], d={'k': (1, 2)}, n=2**3)]\n```") == [
        {"math.hypot": {"x": 3, "y": -4.0}}, {"f": {"a": [1, "b"], "d": {"k": (1, 2)}, "n": 8}}]
    assert decode_prompted("f(a=x, b=g(1), c=h(k=1), d=s[0])") == [
        {"f": {"a": "x", "b": "g(1)", "c": {"h": {"k": 1}}, "d": "s[0]"}}]
    for bad in ("I cannot help", "[f(a=len('x') + 1)]", "[f(a=lambda: 1)]", "[1, f()]"):
        with pytest.raises(DecodeError):
            decode_prompted(bad)
    assert standardize("April 1, 2024") == standardize("april 1 2024") and standardize("It's") == 'it"s'


def test_tools_rules_bfcl_and_assay_differ_where_documented():
    bfcl, assay = ToolsSuite(rules="bfcl", modes="native"), ToolsSuite(rules="assay", modes="native")
    s_b = next(s for s in bfcl.samples(0, None) if s.id == "tools-simple-002/native")
    s_a = next(s for s in assay.samples(0, None) if s.id == "tools-simple-002/native")

    def turn(days):
        return [Turn(tool_calls=[ToolCall.parse("get_weather", {"city": "Lima", "days": days, "unit": "fahrenheit"})])]
    assert bfcl.score_turns(turn(4), s_b).value == 1.0 and assay.score_turns(turn(4), s_a).value == 1.0
    assert bfcl.score_turns(turn(4.0), s_b).value == 0.0  # BFCL: a float is not an integer
    prompted = ToolsSuite(rules="bfcl", modes="prompted")
    s_p = next(s for s in prompted.samples(0, None) if s.id == "tools-simple-002/prompted")
    assert prompted.messages(s_p)[0]["content"].startswith("You are an expert in composing functions.You are")
    assert prompted.score("[get_weather(city='lima', days=4, unit='Fahrenheit')]", s_p).value == 1.0
    assert prompted.score('[{"name": "get_weather", "arguments": {"city": "Lima"}}]', s_p).value == 0.0
    with pytest.raises(Exception, match="unknown rules"):
        ToolsSuite(rules="nope")


def test_jsonmatch_parameters():
    eq = dict(rel_tol=1e-3, str_equal=lambda g, w: g.lower() == w.lower())
    assert values_equal([2, 1], [1, 2], **eq) and not values_equal([[2], [1]], [[1], [2]], **eq)
    assert values_equal(20.01, 20, **eq) and not values_equal(True, 1, **eq)
    assert values_equal({"a": "X", "b": 1}, {"a": "x"}, **eq)


def test_summaries_aggregate_as_bfcl_does():
    s = bd.summaries({"simple_python": (1, 2), "multiple": (1, 1), "live_simple": (1, 4), "live_multiple": (3, 4),
                      "irrelevance": (1, 1), "live_irrelevance": (0, 1), "multi_turn_base": (1, 4)})
    assert s == {"non_live_ast": 0.75, "live_ast": 0.5, "irrelevance": 0.5, "multi_turn": 0.25}


@pytest.fixture(scope="module")
def root(shared_benchmarks):
    return shared_benchmarks / "bfcl_v4"


def test_bfcl_suite_limit_interleaves_categories_and_scores_ground_truth(root):
    suite = get_suite("bfcl", data=str(root), categories="simple_python,live_multiple,irrelevance")
    samples = list(suite.samples(0, 6))
    assert len(samples) == 12 and {s.category.split("/")[1] for s in samples} == {
        "simple_python", "live_multiple", "irrelevance"}
    for s in samples:
        truth = s.target
        if not truth:
            assert suite.score_turns([Turn(completion="No function fits.")], s).value == 1.0
            continue
        if any(isinstance(a, dict) for c in truth for args in c.values() for acc in args.values() for a in acc):
            continue  # a dict's ground truth is "key -> acceptable values", not itself an answer
        calls = [(n, {p: [a for a in acc if a != ""][0] for p, acc in args.items() if [a for a in acc if a != ""]})
                 for c in truth for n, args in c.items()]
        if s.input["mode"] == "native":
            t = Turn(tool_calls=[ToolCall.parse(n.replace(".", "_"), a) for n, a in calls])
        else:
            t = Turn(completion="[" + ", ".join(f"{n}(" + ", ".join(f"{k}={v!r}" for k, v in a.items()) + ")"
                                                 for n, a in calls) + "]")
        assert suite.score_turns([t], s).value == 1.0, (s.id, suite.score_turns([t], s))


class FakeChat:
    """A Conversation stand-in that answers each turn with the ground truth's calls, then with text."""

    def __init__(self, messages, answers):
        self.messages, self.turns, self.answers = list(messages), [], answers

    async def ask(self, params=None, *, label=""):
        t = int(label[4:])
        done = any(x.label == label for x in self.turns)
        text = "Done." if done or not self.answers[t] else "[" + ", ".join(self.answers[t]) + "]"
        self.turns.append(Turn(completion=text, label=label))
        self.messages.append({"role": "assistant", "content": text})

    def tool_result(self, result, *, as_message=None):
        self.turns[-1].tool_results.append(result)
        self.messages.append(as_message or {"role": "tool", "content": result.content})


def test_multi_turn_through_converse_on_bfcls_apis(root):
    pytest.importorskip("mpmath")
    from assay.evals.bfcl.multiturn import bfcl_eval_root

    if bfcl_eval_root() is None:
        pytest.skip("bfcl-eval is not installed: pip install --no-deps bfcl-eval==2026.3.23")
    suite = get_suite("bfcl", data=str(root), categories="multi_turn_base", modes="prompted")
    import re

    # BFCL's prompted decoder drops positional arguments: take a conversation whose ground truth has none
    s = next(x for x in suite.samples(0, None)
             if all(re.fullmatch(r"\w+\((\w+ ?=.*)?\)", c) for t in x.target for c in t))
    chat = FakeChat(suite.messages(s), s.target)
    asyncio.run(suite.converse(s, chat))
    assert [t.label for t in chat.turns].count("turn0") == 2 and "tool" in chat.messages[3]["content"]
    assert suite.score_turns(chat.turns, s).value == 1.0
    wrong = FakeChat(suite.messages(s), [[]] + s.target[1:])
    asyncio.run(suite.converse(s, wrong))
    sc = suite.score_turns(wrong.turns, s)
    assert sc.value == 0.0 and "turn 0" in sc.reason
    recs = [Record(run_id="r", suite="bfcl", sample_id=s.id, category=s.category, score=Score(1.0))]
    names = {m.key for m in suite.aggregate(recs)}
    assert "prompted/bfcl_multi_turn" in names and "prompted/multi_turn_base/accuracy" in names
