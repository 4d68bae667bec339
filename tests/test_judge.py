"""LLM-as-judge: reply parsing on tricky strings, templates, Cohen's kappa and Bradley-Terry against hand-computed
cases, and the judge pass over real stored runs with stub judges where the bytes matter (a judge that always picks
the first answer shown must come out as all ties with position consistency 0)."""

from __future__ import annotations

import asyncio
import json
import math
import re

import pytest

from assay.client import Client
from assay.evals.base import Sample, Score
from assay.evals.runner import run
from assay.judge.parse import parse_choice, parse_rating
from assay.judge.run import JUDGEMENTS, judge_pairwise, judge_rubric, judgements, read_index, rescore_judgements
from assay.judge.summary import pairwise_summary, rubric_summary
from assay.judge.templates import available, load_template, parse_template
from assay.stats import bradley_terry, cohen_kappa, win_matrix
from assay.store import iter_records

# ---- parsing --------------------------------------------------------------------------------------------------------

RATINGS = [
    ("Clear and fluent. Rating: [[4]]", 4.0),
    ("**Rating: [[5]]**", 5.0),
    ("Rating: [[ 3 ]]", 3.0),
    ("Rating: [[4/5]]", 4.0),
    ("[[2]]", 2.0),
    ("The answer is OK.\n\nRating: [[4]] and again [[4]]", 4.0),
    ("Rating: 3", 3.0),
    ("rating: [3]", 3.0),
    ("Score: 3/5", 3.0),
    ("The reply scores 4 out of 5.", 4.0),
    ("I would give it a 4 because it has 3 errors", 4.0),
    ("I give this response 2.", 2.0),
    ("4", 4.0),
    (" 5.\n", 5.0),
    ("Rating: 4.5", 4.5),
    ("<think>maybe [[2]]?</think>Rating: [[3]]", 3.0),  # a reasoning judge's draft is not its verdict
    ("Its 2 sentences are fine; 3 of 10 words are wrong. Rating: [[2]]", 2.0),
]
UNPARSED = [
    ("", "empty"),
    (None, "empty"),
    ("Rating: [[rating]]", "no rating"),  # the prompt's format echoed back
    ("Rating: [[N]]", "no rating"),
    ("[[2]] at first, but on reflection [[4]]", "several"),
    ("Rating: 2. Actually, rating: 5.", "several"),
    ("I cannot rate this reply.", "refusal"),
    ("I'm sorry, but as an AI I am unable to evaluate that.", "refusal"),
    ("Rating: [[7]]", "outside"),
    ("Rating: [[0]]", "outside"),
    ("The answer has 3 mistakes and 2 typos.", "no rating"),  # numbers in prose are not ratings
    ("3/10 of the words are wrong", "no rating"),
    ("<think>I think [[4]]", "empty"),  # unclosed think: no answer at all
]


@pytest.mark.parametrize("reply,value", RATINGS)
def test_rating_is_read(reply, value):
    p = parse_rating(reply)
    assert p.parsed and p.value == value, p


@pytest.mark.parametrize("reply,why", UNPARSED)
def test_rating_unparsed_never_a_default(reply, why):
    p = parse_rating(reply)
    assert not p.parsed and p.value is None and why in p.reason, p


CHOICES = [
    ("[[A]]", "A"),
    ("Assistant B is more accurate. [[B]]", "B"),
    ("Final verdict: [[C]]", "tie"),
    ("[[tie]]", "tie"),
    ("**[[B]]**", "B"),
    ("Both A and B are good, but [[A]] wins.", "A"),
    ("[[A]] ... to restate: [[A]]", "A"),
    ("Assistant B is better.", "B"),
    ("Assistant A's answer is clearly better than B's", "A"),
    ("The final verdict is A.", "A"),
    ("Verdict: B", "B"),
    ("It is a tie.", "tie"),
    ("B", "B"),
    ("[A]", "A"),
]
CHOICE_UNPARSED = [
    ("[[A]] or maybe [[B]]", "several"),
    ("Assistant A is better. No wait, Assistant B is better.", "several"),
    ("I'm sorry, I cannot judge these replies.", "refusal"),
    ("Both replies talk about Paris.", "no verdict"),
    ("", "empty"),
    ("[[A or B]]", "no verdict"),
]


@pytest.mark.parametrize("reply,choice", CHOICES)
def test_choice_is_read(reply, choice):
    p = parse_choice(reply)
    assert p.parsed and p.choice == choice, p


@pytest.mark.parametrize("reply,why", CHOICE_UNPARSED)
def test_choice_unparsed(reply, why):
    p = parse_choice(reply)
    assert not p.parsed and p.choice is None and why in p.reason, p


# ---- templates ------------------------------------------------------------------------------------------------------


def test_shipped_templates_load_render_and_are_versioned():
    have = available()
    for name in ("naturalness", "helpfulness", "fluency", "adequacy", "code_quality", "pairwise"):
        assert name in have
        t = load_template(name)
        assert t.version == have[name][-1] and re.fullmatch(r"[0-9a-f]{12}", t.digest)
        assert t.ref == f"{name}.v{t.version}@{t.digest}"
    t = load_template("naturalness.v1")
    msgs = t.render(question="Hi {there}", answer="def f(): return {'a': 1}", reference="")
    assert msgs[0]["role"] == "system" and "Rating: [[N]]" in msgs[-1]["content"]
    assert "def f(): return {'a': 1}" in msgs[-1]["content"] and "Hi {there}" in msgs[-1]["content"]
    assert t.scale == (1, 5)
    p = load_template("pairwise").render(question="q", answer_a="first", answer_b="second")
    assert p[-1]["content"].index("first") < p[-1]["content"].index("second")
    with pytest.raises(Exception, match="no value for answer"):
        load_template("naturalness").render(question="q")
    with pytest.raises(Exception, match="no judge template"):
        load_template("nope")
    with pytest.raises(Exception, match="no version 9"):
        load_template("naturalness.v9")


def test_editing_a_template_changes_its_digest():
    text = load_template("naturalness").meta and (load_template("naturalness"))
    src = (__import__("assay.judge.templates", fromlist=["x"]).TEMPLATE_DIR / "naturalness.v1.txt").read_text()
    a, b = parse_template(src), parse_template(src.replace("thoughtful", "careful"))
    assert a.version == b.version and a.digest != b.digest and text


# ---- statistics, by hand --------------------------------------------------------------------------------------------


def test_kappa_hand_computed():
    # 2x2 table [[20, 5], [10, 15]]: p_o = 35/50 = 0.7, p_e = (25*30 + 25*20)/2500 = 0.5, kappa = 0.4
    a = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    k = cohen_kappa(a, b, n_boot=500)
    assert k.value == pytest.approx(0.4) and k.observed == pytest.approx(0.7) and k.expected == pytest.approx(0.5)
    assert k.low < 0.4 < k.high and k.n == 50
    # three labels: p_o = 3/5, p_e = (2*1 + 2*2 + 1*2)/25 = 8/25, kappa = (15/25 - 8/25) / (17/25) = 7/17
    k3 = cohen_kappa(["a", "a", "b", "b", "t"], ["a", "b", "b", "t", "t"])
    assert k3.value == pytest.approx(7 / 17)
    assert cohen_kappa(["a"] * 4, ["a"] * 4).value is None  # one label only: kappa is undefined, not 1
    assert cohen_kappa(["a", "b"], ["b", "a"]).value == pytest.approx(-1.0)
    assert cohen_kappa([], []).value is None


def test_bradley_terry_hand_computed():
    # two players, x beats y 3 times, loses once: p_x / p_y = 3 -> 400 log10 3 = 190.85 Elo points apart
    r = bradley_terry([("x", "y", 1.0)] * 3 + [("x", "y", 0.0)], prior=0.0, n_boot=0)
    assert r.ratings["x"] - r.ratings["y"] == pytest.approx(400 * math.log10(3))
    assert (r.ratings["x"] + r.ratings["y"]) / 2 == pytest.approx(1000)  # geometric mean of strengths 1
    # one virtual tie per pair: (3 + .5) / (1 + .5) = 7/3
    r = bradley_terry([("x", "y", 1.0)] * 3 + [("x", "y", 0.0)], prior=1.0, n_boot=0)
    assert r.ratings["x"] - r.ratings["y"] == pytest.approx(400 * math.log10(7 / 3))
    # a tie is half a win each: 2 wins + 2 ties vs 0 wins + 2 ties -> 3 : 1
    r = bradley_terry([("x", "y", 1.0)] * 2 + [("x", "y", 0.5)] * 2, prior=0.0, n_boot=0)
    assert r.ratings["x"] - r.ratings["y"] == pytest.approx(400 * math.log10(3))
    # a rock-paper-scissors cycle: everyone equal
    r = bradley_terry([("a", "b", 1), ("b", "c", 1), ("c", "a", 1)], prior=0.0, n_boot=0)
    assert all(v == pytest.approx(1000) for v in r.ratings.values())
    # three players: the MLE satisfies wins_i = sum_j n_ij p_i / (p_i + p_j) (score equations)
    games = [("a", "b", 1)] * 4 + [("a", "b", 0)] * 2 + [("b", "c", 1)] * 3 + [("b", "c", 0)] + [("a", "c", 1)] * 2 \
        + [("a", "c", 0.5)]
    r = bradley_terry(games, prior=0.0, n_boot=0)
    p = {m: 10 ** ((v - 1000) / 400) for m, v in r.ratings.items()}
    for m in p:
        won = sum(s if a == m else 1 - s for a, b, s in games if m in (a, b))
        expect = sum(p[m] / (p[m] + p[b if a == m else a]) for a, b, s in games if m in (a, b))
        assert won == pytest.approx(expect, abs=1e-6)
    assert r.ranking() == ["a", "b", "c"]
    # an undefeated player with no prior: infinite, reported as None, never a made-up number
    r = bradley_terry([("x", "y", 1.0)] * 3, prior=0.0, n_boot=0)
    assert r.to_dict()["ratings"]["y"] is None


def test_bradley_terry_bootstrap_interval_is_seeded_and_covers():
    games = [("a", "b", 1.0)] * 12 + [("a", "b", 0.0)] * 6 + [("a", "b", 0.5)] * 2
    r1 = bradley_terry(games, n_boot=300, seed=1)
    r2 = bradley_terry(games, n_boot=300, seed=1)
    assert r1.low == r2.low and r1.high == r2.high
    for m in ("a", "b"):
        assert r1.low[m] <= r1.ratings[m] <= r1.high[m]
    assert r1.games == {"a": 20, "b": 20}


def test_win_matrix():
    m = win_matrix([("a", "b", 1.0), ("a", "b", 0.5), ("b", "a", 1.0)])
    assert m["a"]["b"] == {"score": 1.5, "n": 3, "rate": 0.5} and m["b"]["a"]["rate"] == 0.5


# ---- judge passes on stored runs, stub judges -----------------------------------------------------------------------


class Say:
    """Run 'short' gets short answers, run 'long' long ones (the answering stub reads the style from the prompt's
    system message; no stub directive in the question, since the judge prompt quotes the question)."""

    name, version = "say", "1"

    def __init__(self, style: str, n=8):
        self.style, self.n = style, n

    def samples(self, seed, limit):
        for i in range(self.n):
            yield Sample(id=f"q{i}", input={"i": i}, target=None)

    def messages(self, s):
        return [{"role": "system", "content": self.style},
                {"role": "user", "content": f"Question {s.input['i']}?"}]

    def score(self, completion, s):
        return Score(1.0)


def _answer(req):
    style = req["messages"][0]["content"]
    i = re.search(r"Question (\d+)", req["messages"][-1]["content"]).group(1)
    return f"short {i}" if style == "short" else f"a much longer answer number {i}"


def _two_runs(stub, tmp_path, n=8):
    srv = stub(model="answerer", reply=_answer)
    ep = srv.endpoint("answerer")
    a = run([Say("short", n)], [ep], out_dir=tmp_path / "runs", fsync=False)
    b = run([Say("long", n)], [ep], out_dir=tmp_path / "runs", fsync=False, fresh=True)
    assert a.run_dir != b.run_dir
    return a.run_dir, b.run_dir


def _shown(req: dict) -> tuple[str, str]:
    text = req["messages"][-1]["content"]
    a = text.split("[The start of Assistant A's reply]\n")[1].split("\n[The end")[0]
    b = text.split("[The start of Assistant B's reply]\n")[1].split("\n[The end")[0]
    return a, b


def test_rubric_pass_resume_unparsed_and_rescore(stub, tmp_path):
    run_a, _ = _two_runs(stub, tmp_path)

    def rate(req):
        ans = req["messages"][-1]["content"].split("[Assistant's reply]\n")[1]
        i = int(re.search(r"(\d+)\s*$", ans.split("\n")[0]).group(1))
        return ["Rating: [[4]]", "Fine. Rating: [[5]]", "I cannot rate this.", "3 out of 5"][i % 4]

    judge = stub(reply=rate, model="judge-model")
    t = load_template("naturalness")

    async def go():
        async with Client([judge.endpoint("judge-model")]) as c:
            return await judge_rubric(run_a, t, c)

    res = asyncio.run(go())
    assert res.new == 8 and len(res.records) == 8
    stored = list(iter_records(run_a / JUDGEMENTS))
    assert len(stored) == 8 and {r["status"] for r in stored} == {"ok", "unparsed"}
    r0 = next(r for r in stored if r["sample_id"] == "q0")
    assert r0["value"] == 4.0 and r0["reply"] == "Rating: [[4]]" and r0["template"] == t.ref
    assert r0["messages"][-1]["content"].count("short 0") == 1 and r0["judge_model"] == "judge-model"
    assert r0["completion_tokens"] == 2 and r0["e2e_s"] is not None
    unparsed = [r for r in stored if r["status"] == "unparsed"]
    assert len(unparsed) == 2 and all(r["value"] is None and r["reason"] == "refusal" for r in unparsed)
    s = rubric_summary(res.records)["say"]
    # ratings 4, 5, 3 twice each (2 refusals left out): mean 4.0, n 6
    assert s["n"] == 6 and s["value"] == pytest.approx(4.0) and s["unparsed"] == 2
    assert s["distribution"] == {"1": 0, "2": 0, "3": 2, "4": 2, "5": 2} and s["low"] <= 4.0 <= s["high"]
    idx = read_index(run_a)["passes"][res.pass_id]
    assert idx["template_digest"] == t.digest and idx["judge_model"] == "judge-model" and idx["n_done"] == 8

    n_calls = judge.count
    res2 = asyncio.run(go())  # same pass: resumed, no judge call
    assert res2.new == 0 and res2.kept == 8 and judge.count == n_calls and res2.pass_id == res.pass_id

    # rescore: a stored reply re-parsed without calling the judge
    lines = (run_a / JUDGEMENTS).read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    for r in recs:
        if r["status"] == "unparsed":
            r["status"], r["value"] = "ok", 1.0  # as an older, wrong parser might have stored it
    (run_a / JUDGEMENTS).write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert rescore_judgements(run_a) == 2 and judge.count == n_calls
    assert sum(r.status == "unparsed" for r in judgements(run_a)) == 2


def test_judge_errors_are_stored_and_retried(stub, tmp_path):
    run_a, _ = _two_runs(stub, tmp_path, n=3)
    judge = stub(reply="Rating: [[3]]", status=500, model="j")
    t = load_template("helpfulness")

    async def go():
        async with Client([judge.endpoint("j")], max_retries=0) as c:
            return await judge_rubric(run_a, t, c)

    res = asyncio.run(go())
    assert [r.status for r in res.records] == ["error"] * 3 and "HTTP 500" in res.records[0].error
    assert rubric_summary(res.records)["say"]["n"] == 0  # an error is never a score
    judge.status = None
    res = asyncio.run(go())
    assert res.new == 3 and [r.status for r in res.records] == ["ok"] * 3
    assert len(list(iter_records(run_a / JUDGEMENTS))) == 3  # the errors were replaced, not duplicated


def test_pairwise_first_position_judge_is_all_ties(stub, tmp_path):
    """A judge that always says [[A]] prefers whichever answer is shown first: every verdict flips with the order,
    so every sample is a tie, position consistency is 0 and the verdict is 'tied'."""
    run_a, run_b = _two_runs(stub, tmp_path)
    judge = stub(reply="Both fine. [[A]]", model="j")

    async def go():
        async with Client([judge.endpoint("j")]) as c:
            return await judge_pairwise(run_a, run_b, load_template("pairwise"), c)

    res = asyncio.run(go())
    assert res.new == 16 and judge.count == 16  # 8 samples x 2 orders
    firsts = [_shown(r)[0] for r in judge.requests]
    assert sum(f.startswith("short") for f in firsts) == 8  # each run shown first exactly half the time
    s = pairwise_summary(res.records, ("short", "long"))
    assert (s["wins"], s["ties"], s["losses"]) == (0, 8, 0)
    assert s["position_consistency"]["value"] == 0.0 and s["position_consistency"]["n"] == 8
    assert s["first_position_rate"]["value"] == 1.0
    assert s["verdict"].startswith("tied") and s["diff"] == 0
    assert s["length_diff_chars"]["value"] < 0  # run A's answers are shorter
    # AB always says a, BA always says b: raw agreement 0, and kappa 0 (each order is constant, so chance agreement
    # is 0 too)
    assert s["self_kappa"]["observed"] == 0.0 and s["self_kappa"]["value"] == pytest.approx(0.0)


def test_pairwise_consistent_judge_gives_a_verdict(stub, tmp_path):
    """A judge that picks the longer answer, wherever it is shown: consistent, and B (the long run) wins."""
    run_a, run_b = _two_runs(stub, tmp_path, n=10)

    def longer(req):
        a, b = _shown(req)
        return "[[A]]" if len(a) > len(b) else "[[B]]"

    judge = stub(reply=longer, model="j")

    async def go():
        async with Client([judge.endpoint("j")]) as c:
            return await judge_pairwise(run_a, run_b, load_template("pairwise"), c)

    s = pairwise_summary(asyncio.run(go()).records, ("short", "long"))
    assert (s["wins"], s["ties"], s["losses"]) == (0, 0, 10)
    assert s["position_consistency"]["value"] == 1.0 and s["first_position_rate"]["value"] == 0.5
    assert s["verdict"] == "long better" and s["p"] < 0.05 and s["diff"] == -1.0
    assert s["win_rate"]["value"] == 0.0 and s["longer_won"]["value"] == 1.0


def test_pairwise_one_order_unparsed_leaves_the_sample_out(stub, tmp_path):
    run_a, run_b = _two_runs(stub, tmp_path, n=4)

    def judge_reply(req):
        a, _ = _shown(req)
        return "[[B]]" if a.startswith("short") else "I cannot decide."  # BA order: refusal

    judge = stub(reply=judge_reply, model="j")

    async def go():
        async with Client([judge.endpoint("j")]) as c:
            return await judge_pairwise(run_a, run_b, load_template("pairwise"), c)

    s = pairwise_summary(asyncio.run(go()).records)
    assert s["n"] == 0 and s["unparsed"] == 4 and s["verdict"].startswith("no verdict: 4 sample(s) unparsed")


def test_cli_judge_rubric_and_pairwise_with_self_judging_warning(stub, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    run_a, run_b = _two_runs(stub, tmp_path, n=4)
    judge = stub(reply="[[B]] Rating: [[4]]", model="answerer")  # same id as the judged model
    cli = CliRunner()
    r = cli.invoke(app, ["judge", str(run_a), "--judge", judge.base_url, "--rubric", "naturalness"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    s = out["rubrics"]["naturalness"]["summary"]["say"]
    assert s["n"] == 4 and s["value"] == 4.0
    assert any("same model" in w for w in out["warnings"])
    r = cli.invoke(app, ["judge", str(run_a), str(run_b), "--judge", judge.base_url])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["pairwise"]["ties"] == 4 and out["pairwise"]["position_consistency"]["value"] == 0.0
    r = cli.invoke(app, ["judge", str(run_a), "--rescore"])
    assert r.exit_code == 0 and json.loads(r.stdout.strip().splitlines()[-1])["changed"] == 0
    r = cli.invoke(app, ["judge", str(run_a)])
    assert r.exit_code == 1 and "which judge" in r.output


def test_compare_judge_and_report_show_judge_rows(stub, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    run_a, run_b = _two_runs(stub, tmp_path, n=4)
    judge = stub(reply="Rating: [[3]] [[A]]", model="judge-model")
    cli = CliRunner()
    out = tmp_path / "cmp"
    r = cli.invoke(app, ["compare", str(run_a), str(run_b), "--judge", judge.base_url, "--out", str(out),
                         "--runs-dir", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    last = json.loads(r.stdout.strip().splitlines()[-1])
    j = last["judge"][0]
    assert (j["n"], j["ties"]) == (4, 4) and j["position_consistency"]["value"] == 0.0
    md = (out / "compare.md").read_text()
    assert "LLM judge, pairwise" in md and "| 0 / 4 / 0 |" in md
    assert json.loads((out / "compare.json").read_text())["judge"][0]["pairwise"]["ties"] == 4

    r = cli.invoke(app, ["judge", str(run_a), "--judge", judge.base_url, "--rubric", "helpfulness"])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["report", str(run_a), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "LLM judge (rubric" in md and "helpfulness.v1" in md and "3.00 [3.00, 3.00]" in md


def test_eval_judge_self_on_a_stub(stub, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    srv = stub(reply="The answer is \\boxed{42}. Rating: [[5]]", model="stub-model")
    r = CliRunner().invoke(app, ["eval", "-e", srv.base_url, "--suite", "math", "--limit", "3", "--out",
                                 str(tmp_path / "runs"), "--judge", "self", "--judge-rubric", "naturalness"])
    assert r.exit_code == 0, r.output
    head = json.loads(r.stdout.strip().splitlines()[-1])
    assert head["judge"]["naturalness"]["n"] == 3 and head["judge"]["naturalness"]["value"] == 5.0
    assert any("same model" in w for w in head["judge"]["warnings"])
    run_dir = next((tmp_path / "runs").iterdir())
    assert len(judgements(run_dir)) == 3
    r = CliRunner().invoke(app, ["eval", "--rescore", str(run_dir)])
    assert r.exit_code == 0 and json.loads(r.stdout.strip().splitlines()[-1])["judge_changed"] == 0


def test_arena_agree_scores_a_judge_against_people(stub, tmp_path):
    from typer.testing import CliRunner

    from assay.chat.votes import record_vote
    from assay.cli import app

    db = tmp_path / "h.sqlite"
    # people: the longer answer wins in 3 votes, a tie in 1
    for i, (x, y, vote) in enumerate([("long answer one", "s", "a"), ("s", "long answer two", "b"),
                                      ("long answer three", "s", "a"), ("same", "same", "tie")]):
        record_vote(db, prompt=f"p{i}", model_a="m1", model_b="m2", answer_a=x, answer_b=y, vote=vote)

    def longer(req):
        a, b = _shown(req)
        return "[[A]]" if len(a) > len(b) else "[[B]]" if len(b) > len(a) else "[[C]]"

    judge = stub(reply=longer, model="j")
    r = CliRunner().invoke(app, ["arena", "agree", "--judge", judge.base_url, "--db", str(db)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["n"] == 4 and out["agreement"]["value"] == 1.0 and out["kappa"]["value"] == pytest.approx(1.0)
    assert judge.count == 8 and (tmp_path / "arena-judge" / JUDGEMENTS).is_file()
    r = CliRunner().invoke(app, ["arena", "agree", "--judge", judge.base_url, "--db", str(db)])
    assert r.exit_code == 0 and judge.count == 8  # resumed: no new judge call


def test_chat_arena_needs_two_endpoints():
    from typer.testing import CliRunner

    from assay.cli import app
    from assay.engines import free_port

    r = CliRunner().invoke(app, ["chat", "--arena", "-e", "http://127.0.0.1:9/v1", "--port", str(free_port())])
    assert r.exit_code == 1 and "--arena needs two or more" in r.output


def test_summaries_with_nothing_parsed_are_valid_json():
    from assay.judge.run import JudgeRecord

    base = dict(pass_id="p", template="t", judge_model="j", run_a="a", suite="s", status="unparsed")
    rub = rubric_summary([JudgeRecord(kind="rubric", sample_id="x", **base)])
    pair = pairwise_summary([JudgeRecord(kind="pairwise", sample_id="x", order=o, **base) for o in ("AB", "BA")])
    text = json.dumps({"r": rub, "p": pair}, allow_nan=False)  # raises on NaN
    assert rub["s"]["value"] is None and rub["s"]["unparsed"] == 1
    assert pair["n"] == 0 and pair["unparsed"] == 1 and pair["verdict"].startswith("no verdict") and text
