"""`assay review`: the whole review in one resumable call (src/assay/flows/review.py, report/review.py, cli/review.py).

Fast tests run the flow against stub servers with a test budget (a summing suite the stub can answer right or
wrong on purpose, so a difference is real by construction); one live test reviews the embedded model and the same
weights re-quantised to Q4_0 at the quick budget (marked ``engine``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assay.evals.base import Sample, Score, Suite, SuiteOptions

SECTION_IDS = ("identity", "capabilities", "comparison", "speed", "hardware", "judge", "deploy")
# the review.json keys docs/review.md documents
TOP_KEYS = {"format_version", "kind", "created_at", "budget", "alpha", "seed", "sampling", "machine", "models",
            "dimensions", "comparison", "claims", "speed", "hardware", "judge", "deploy", "chart", "command",
            "wall_s", "model_calls", "bench_requests", "bench_reused", "gaps"}


class Sums(Suite):
    """Add two numbers; the last integer in the reply is the answer (the architecture doc's example suite)."""

    name, version = "sums", "1"

    class Options(SuiteOptions):
        n: int = 20

    def samples(self, seed, limit):
        import random

        rng = random.Random(seed)
        for i in range(self.options.n if limit is None else min(limit, self.options.n)):
            a, b = rng.randrange(100), rng.randrange(100)
            yield Sample(id=f"{seed}-{i}", input={"a": a, "b": b}, target=a + b)

    def messages(self, sample):
        return [{"role": "user", "content": f"What is {sample.input['a']} + {sample.input['b']}? Just the number."}]

    def score(self, completion, sample):
        nums = re.findall(r"-?\d+", completion.replace(",", ""))
        if not nums:
            return Score(0.0, reason="no number in the reply", parsed=False)
        return Score(float(int(nums[-1]) == sample.target), extracted=nums[-1])


def _adder(offset: int):
    """A stub reply that sums the question's two numbers (plus ``offset``: 0 is always right, 1 always wrong)."""

    def reply(req: dict) -> str:
        text = str(req["messages"][-1]["content"])
        m = re.search(r"What is (\d+) \+ (\d+)\?", text)
        return f"It is {int(m.group(1)) + int(m.group(2)) + offset}." if m else "Hello there, friend."

    return reply


def _budget(n: int = 24, *, extra=None, bench: bool = True):
    from assay.flows.review import Budget, Dimension, SuitePlan

    dims = [Dimension("logic", "Logic", "sums", [SuitePlan("test_review:Sums", {"n": n})]),
            Dimension("understanding", "Text understanding", "extraction", [SuitePlan("json", limit=2)]),
            Dimension("naturalness", "Naturalness (judge-rated)", "1-5", [])]
    if extra:
        dims.insert(1, extra)
    return Budget("test", 64, 4, [1], 1 if bench else 0, 0, 2, dims)


def _choices(*stubs):
    from assay.engines.choice import EngineChoice

    return [EngineChoice(endpoints=(s.base_url,)) for s in stubs]


def _chat_calls(*stubs) -> int:
    return sum(len(s.requests) for s in stubs)


# ---- statistics: Holm -------------------------------------------------------------------------------------------------
def test_holm_step_down_in_input_order():
    from assay.stats.paired import holm

    assert holm([0.01, 0.04, 0.03, 0.02]) == pytest.approx([0.04, 0.06, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([0.04, 0.03]) == pytest.approx([0.06, 0.06])  # the running maximum: never below a smaller p's
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1
    assert holm([0.6, 0.7, 0.01]) == pytest.approx([1.0, 1.0, 0.03])
    assert holm([]) == []
    # never below the raw p, never above Bonferroni
    ps = [0.001, 0.2, 0.03, 0.04, 0.5]
    for raw, adj in zip(ps, holm(ps)):
        assert raw <= adj <= min(1.0, raw * len(ps))


# ---- the flow on stubs ------------------------------------------------------------------------------------------------
def test_two_models_every_section_difference_real_and_rerun_asks_nothing(stub, tmp_path):
    from assay.flows.review import run_review
    from assay.report.review import write_review

    good, bad = stub(reply=_adder(0), model="good-model"), stub(reply=_adder(1), model="bad-model")
    runs = tmp_path / "runs"
    review = run_review(_choices(good, bad), budget_name=_budget(), out_dir=runs)
    first_calls = _chat_calls(good, bad)
    assert first_calls > 0 and review["model_calls"] == 2 * (24 + 2)
    assert set(review) >= TOP_KEYS
    labels = [m["label"] for m in review["models"]]
    assert len(set(labels)) == 2

    # 2: every dimension row has a cell per model: a score with n and an interval, or a named gap
    dims = {d["key"]: d for d in review["dimensions"]}
    for lab in labels:
        sums = dims["logic"]["cells"][lab]["suites"][0]
        assert sums["suite"] == "sums" and sums["n"] == 24 and sums["low"] <= sums["value"] <= sums["high"]
        assert "gap" in dims["naturalness"]["cells"][lab]
    assert dims["logic"]["cells"][labels[0]]["suites"][0]["value"] == 1.0
    assert dims["logic"]["cells"][labels[1]]["suites"][0]["value"] == 0.0

    # 3: the 24-of-24 difference is real after Holm; the json difference (both unparsed) is not
    pairs = {p["suite"]: p for p in review["comparison"]["pairs"]}
    assert pairs["sums"]["real"] and pairs["sums"]["p_holm"] < 0.05 and pairs["sums"]["p_holm"] >= pairs["sums"]["p"]
    assert pairs["sums"]["verdict"].startswith(labels[0])
    assert not pairs["json"]["real"]
    assert review["comparison"]["family_size"] == len(review["comparison"]["pairs"]) == 2

    # 4: the bench ran at the seed workloads and names the machine; 5: a URL has no planner input (a named gap)
    for lab in labels:
        sp = review["speed"][lab]
        assert {r["label"].split(" (")[0] for r in sp["rows"]} == {"daily Q&A", "long summary", "code"}
        assert sp["machine"]["cpu"] and all(r["e2e_p95_s"] >= r["e2e_p50_s"] for r in sp["rows"])
        assert "gap" in review["hardware"][lab]
    assert not review["judge"]["given"] and "--judge" in review["judge"]["reason"]
    assert {g["section"] for g in review["gaps"]} >= {"identity", "hardware"}

    paths = write_review(review, tmp_path / "review")
    html, md = paths["html"].read_text(), paths["md"].read_text()
    for key in SECTION_IDS:
        assert f'id="{key}"' in html
    assert all(review["hardware"][lab]["gap"] in md for lab in labels)  # each model's gap, under its heading
    heads = re.findall(r"^## (\d)\. ", md, re.M)
    assert heads == [str(i) for i in range(1, 8)]
    assert not re.search(r"""(src|href)=["']https?://""", html)  # self-contained: nothing fetched from outside
    assert json.loads(paths["json"].read_text())["comparison"]["pairs"][0]["p_holm"] is not None

    # the same call again: every eval run resumes finished, the bench run is reused — no model call at all
    again = run_review(_choices(good, bad), budget_name=_budget(), out_dir=runs)
    assert _chat_calls(good, bad) == first_calls
    assert again["model_calls"] == 0 and again["bench_requests"] == 0 and again["bench_reused"] == 2
    assert {lab: d["cells"] for lab, d in zip(labels, again["dimensions"])} == \
        {lab: d["cells"] for lab, d in zip(labels, review["dimensions"])}


def test_a_failing_dimension_is_a_named_gap_not_a_crash(stub, tmp_path):
    from assay.flows.review import Dimension, SuitePlan, run_review
    from assay.report.review import review_md

    missing = Dimension("coding", "Coding", "pass rate", [SuitePlan("mbpp", data="mbpp.jsonl", public="MBPP"),
                                                           SuitePlan("no-such-suite")])
    ok = stub(reply=_adder(0))
    from assay.engines import free_port
    from assay.engines.choice import EngineChoice

    dead = EngineChoice(endpoints=(f"http://127.0.0.1:{free_port()}/v1",))  # nothing listens there
    review = run_review([*_choices(ok), dead], budget_name=_budget(4, extra=missing, bench=False),
                        out_dir=tmp_path / "runs", data_dir=tmp_path / "no-data")
    gaps = review["gaps"]
    coding = next(d for d in review["dimensions"] if d["key"] == "coding")
    assert any("MBPP" in g and "missing" in g for g in coding["suite_gaps"])
    assert any("no-such-suite" in g for g in coding["suite_gaps"])
    dead_label = review["models"][1]["label"]
    assert any(g["model"] == dead_label and g["section"] == "capabilities" for g in gaps)
    assert "gap" in review["speed"][dead_label]
    assert review["dimensions"][0]["cells"][review["models"][0]["label"]]["suites"][0]["value"] == 1.0
    md = review_md(review)
    assert md.count("## ") >= 7 and "**gap**" in md and "MBPP" in md


def test_cli_kill_9_then_rerun_resumes_without_duplicates(stub, tmp_path):
    """`assay review` killed with SIGKILL mid-run; the same command finishes the review, each sample recorded once."""
    from assay import store

    slow = stub(reply=_adder(0), gap_s=0.02)
    slow.reply = lambda req: "It is " + " ".join(["x"] * 10) + " " + _adder(0)(req)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    code = (
        "import sys, test_review as t\n"
        "from assay.flows import review as R\n"
        "R.budget = lambda name: t._budget(40, bench=False)\n"
        "from assay.cli import app\n"
        "sys.argv = ['assay', 'review', sys.argv[1], '--out', sys.argv[2], '--report-dir', sys.argv[3]]\n"
        "app()\n")
    args = [sys.executable, "-c", code, slow.base_url, str(tmp_path / "runs"), str(tmp_path / "review")]
    p = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and len(slow.requests) < 8:
        time.sleep(0.05)
    assert len(slow.requests) >= 8, "the review never reached the model"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "review" / "review.json").exists()
    done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    review = json.loads((tmp_path / "review" / "review.json").read_text())
    assert line["model_calls"] < 42  # resumed: the samples answered before the kill were not asked again
    for dim in review["models"][0]["runs"].values():
        for run_dir in dim:
            run = store.open(run_dir)
            ids = [r.sample_id for r in run.records()]
            assert len(ids) == len(set(ids)) and run.manifest.status == "finished"
    cell = review["dimensions"][0]["cells"][review["models"][0]["label"]]["suites"][0]
    assert cell["n"] == 40 and cell["value"] == 1.0


def test_cli_help_and_choices():
    from typer.testing import CliRunner

    from assay.cli import app
    from assay.cli.review import choices_for
    from assay.engines.choice import EngineChoice

    res = CliRunner().invoke(app, ["review", "--help"])
    assert res.exit_code == 0 and "--budget" in res.output and "--judge" in res.output
    eng = EngineChoice(endpoints=("http://a:1/v1", "http://b:2/v1"), threads=2)
    got = choices_for(eng, ["smollm2-135m", "http://c:3/v1"])
    assert [(c.model, c.endpoints) for c in got] == [("smollm2-135m", ()), (None, ("http://c:3/v1",)),
                                                     (None, ("http://a:1/v1",)), (None, ("http://b:2/v1",))]
    assert all(c.threads == 2 for c in got)
    assert choices_for(EngineChoice(), []) == [EngineChoice()]


def test_budgets_name_the_documents_dimensions():
    from assay.flows.review import budget

    for name in ("quick", "standard", "full"):
        b = budget(name)
        assert [d.key for d in b.dimensions] == ["instruction", "logic", "understanding", "coding", "multilingual",
                                                 "tools", "naturalness"]
        assert {s.suite for s in b.dimensions[0].suites} >= {"ifeval", "mtif"}  # multi-turn included
    assert all(s.data for d in budget("full").dimensions for s in d.suites if s.public and s.suite != "humaneval")
    from assay.errors import AssayError

    with pytest.raises(AssayError, match="quick, standard or full"):
        budget("huge")


# ---- live: the embedded model and its Q4_0 re-quantisation ---------------------------------------------------------------
@pytest.mark.engine
@pytest.mark.slow
def test_live_quick_review_embedded_and_requantised(tmp_path):
    from assay.engines.choice import EngineChoice
    from assay.engines.quantize import requantize
    from assay.flows.review import run_review
    from assay.models import resolve
    from assay.report.review import write_review

    q4_0 = requantize(resolve(None).gguf_path(), tmp_path / "smollm2-q4_0.gguf", "Q4_0")
    choices = [EngineChoice(), EngineChoice(model=str(q4_0))]
    runs = tmp_path / "runs"
    review = run_review(choices, budget_name="quick", out_dir=runs)
    write_review(review, tmp_path / "review")
    a, b = (m["label"] for m in review["models"])
    ids = [m["identity"]["weights_sha256"] for m in review["models"]]
    assert ids[0] != ids[1]
    assert [m["identity"]["quantisation"] for m in review["models"]] == ["q4_1", "q4_0"]
    assert all(m["architecture"]["layers"] == 30 and m["architecture"]["kv_heads"] == 3 for m in review["models"])
    gapped = {(g["model"], g["what"].split("/")[0]) for g in review["gaps"]}
    for d in review["dimensions"]:  # every cell: a score with n and an interval, or a gap the review names
        for lab in (a, b):
            cell = d["cells"][lab]
            if "gap" in cell:
                assert cell["gap"] and (not d["suites"] or (lab, d["key"]) in gapped or d["suite_gaps"])
            else:
                for e in cell["suites"]:
                    assert e["n"] > 0 and e["low"] <= e["value"] <= e["high"]
    for lab in (a, b):  # speed on this machine, memory measured, plan checked against it
        sp = review["speed"][lab]
        # the quick budget: the three seed workloads at c=1, the two short ones at c=2
        assert [(r["label"].split(" (")[0], r["concurrency"]) for r in sp["rows"]] == [
            ("daily Q&A", 1), ("daily Q&A", 2), ("long summary", 1), ("code", 1), ("code", 2)]
        assert sp["machine"]["cpu"] and sp["memory"]["peak_rss"] > 0
        hw = review["hardware"][lab]
        assert len(hw["rows"]) == 5 and hw["measured"]["peak_bytes"] == sp["memory"]["peak_rss"]
        assert review["deploy"][lab]["command"].startswith("assay serve")
    assert all(0 <= p["p_holm"] <= 1 and p["p_holm"] >= p["p"] for p in review["comparison"]["pairs"])
    assert review["model_calls"] > 0

    again = run_review(choices, budget_name="quick", out_dir=runs)
    assert again["model_calls"] == 0 and again["bench_requests"] == 0 and again["bench_reused"] == 4


def test_judge_section_rates_and_reports_position_consistency(stub, tmp_path):
    """--judge: rubric ratings per model and a pairwise verdict in both orders; a judge that always picks the first
    position is caught by position consistency 0."""
    from assay.flows.review import Budget, Dimension, SuitePlan, run_review
    from assay.report.review import review_md

    def judge_reply(req: dict) -> str:
        text = str(req["messages"][-1]["content"])
        return "Both fine, first is better. [[A]]" if "[[A]]" in text else "Natural enough. Rating: [[4]]"

    judge = stub(reply=judge_reply, model="judge-model")
    good, bad = stub(reply=_adder(0), model="good-model"), stub(reply=_adder(1), model="bad-model")
    plan = Budget("test", 64, 4, [1], 0, 0, 3, [Dimension("instruction", "Instruction following", "accuracy",
                                                         [SuitePlan("test_review:Sums", {"n": 4})],
                                                         judge_rubric="naturalness")])
    review = run_review(_choices(good, bad), budget_name=plan, out_dir=tmp_path / "runs", judge=judge.base_url)
    j = review["judge"]
    assert j["given"] and j["judge_model"] == "judge-model"
    for lab in (m["label"] for m in review["models"]):
        r = j["rubrics"][lab]["instruction"]
        assert r["rubric"] == "naturalness" and r["value"] == 4.0 and r["n"] == 3  # judge_limit 3
    (pw,) = j["pairwise"]
    assert pw["position_consistency"]["value"] == 0.0 and pw["n"] == 3 and pw["ties"] == 3
    assert "position consistency" in review_md(review)
