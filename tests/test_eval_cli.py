"""``assay eval`` end to end: against the stub (with a test suite injected into the registry), and against the real
embedded model (a test suite through the runner API, and the registered math/json suites through the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.evals.base import Sample, Score
from assay.store import iter_records

runner = CliRunner()


class Word:
    """A test-only suite: the stub is told which word to reply; scoring is exact match."""

    name, version = "word", "1"

    def __init__(self, n=8, data=None, bad=""):
        self.n, self.data, self.bad = int(n), data, set(filter(None, str(bad).split(",")))

    def samples(self, seed, limit):
        for i in range(self.n if limit is None else min(self.n, limit)):
            yield Sample(id=f"w{i}", input=f"w{i}", target=f"w{i}", category="x" if i < 4 else "y")

    def messages(self, s):
        bad = " [[status:400]]" if s.id in self.bad else ""
        return [{"role": "user", "content": f"Repeat [[reply:{s.input}]]{bad}"}]

    def score(self, completion, s):
        return Score(float(completion.strip() == s.target), extracted=completion.strip())


@pytest.fixture
def word_registry(monkeypatch):
    """Put the test suite into the registry for this test only (the real registry has no toy suites)."""
    import assay.evals.suites as reg

    real_get, real_available = reg.get_suite, reg.available
    made = {}

    def get_suite(name, **opts):
        if name == "word":
            made["opts"] = opts
            return Word(**opts)
        return real_get(name, **opts)

    monkeypatch.setattr(reg, "get_suite", get_suite)
    monkeypatch.setattr(reg, "available", lambda: sorted([*real_available(), "word"]))
    return made


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_help():
    res = runner.invoke(app, ["eval", "--help"])
    assert res.exit_code == 0
    for opt in ("--suite", "--limit", "--seed", "--concurrency", "--temperature", "--max-tokens", "--out",
                "--rescore", "--data", "--suite-opt", "--endpoint", "--model", "--engine", "--fresh", "--top-k",
                "--min-p", "--repeat-penalty", "--probe-identity", "--recheck"):
        assert opt in res.output, opt


def test_eval_against_stub_resume_and_rescore(stub, tmp_path, word_registry):
    st = stub()
    out = tmp_path / "runs"
    args = ["eval", "--endpoint", st.base_url, "--suite", "word", "--out", str(out), "--concurrency", "3",
            "--max-tokens", "16", "--suite-opt", "n=10", "--suite-opt", "word.bad=w2"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    head = last_json(res.stdout)
    assert word_registry["opts"] == {"n": 10, "bad": "w2"}
    run_dir = Path(head["run_dir"])
    assert run_dir.parent == out and head["run_id"] == run_dir.name and head["status"] == "finished"
    w = head["suites"]["word"]
    assert (w["n"], w["errors"], w["value"]) == (9, 1, 1.0) and w["low"] < 1.0 == w["high"]
    assert f"run: {run_dir}" in res.stdout
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["suite_options"] == {"word": {"n": 10, "bad": "w2"}}
    assert m["command"][:2] == ["assay", "eval"] and m["samples_per_s"] > 0 and m["harness_overhead"] is not None
    sent = st.count

    # same command: resumes the same run; only the error sample is tried again (still a 400 here)
    res2 = runner.invoke(app, args)
    assert res2.exit_code == 0, res2.output
    assert last_json(res2.stdout)["run_id"] == head["run_id"] and st.count == sent + 1
    assert len(list(iter_records(run_dir / "records.jsonl"))) == 10

    # --rescore by run id under --out: same numbers, no request
    res3 = runner.invoke(app, ["eval", "--rescore", head["run_id"], "--out", str(out)])
    assert res3.exit_code == 0, res3.output
    h3 = last_json(res3.stdout)
    assert h3["rescored"] and h3["changed"] == 0 and h3["suites"] == {
        k: {**v} for k, v in last_json(res2.stdout)["suites"].items()}
    assert st.count == sent + 1


def test_cli_errors_are_one_line(stub, tmp_path, word_registry):
    st = stub()
    res = runner.invoke(app, ["eval", "--endpoint", st.base_url, "--suite", "word,nosuch", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "unknown suite 'nosuch'" in res.stderr
    res = runner.invoke(app, ["eval", "--endpoint", st.base_url, "--suite", "word,word", "--data", "x.jsonl",
                              "--out", str(tmp_path)])
    assert res.exit_code == 1 and "--data" in res.stderr
    res = runner.invoke(app, ["eval", "--endpoint", st.base_url, "--suite", "word", "--suite-opt", "colour=red",
                              "--out", str(tmp_path)])
    assert res.exit_code == 1 and "does not take" in res.stderr
    res = runner.invoke(app, ["eval", "--rescore", "no-such-run", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "no run" in res.stderr


def test_suite_options_parsing():
    from assay.flows.eval import suite_options

    assert suite_options(["gsm8k"], "a.jsonl", None) == {"gsm8k": {"data": "a.jsonl"}}
    got = suite_options(["math", "json"], None, ["n_generated=5", "json.modes=free", "math.source=\"both\""])
    assert got == {"math": {"n_generated": 5, "source": "both"}, "json": {"n_generated": 5, "modes": "free"}}


def test_default_suites_follow_the_registry(word_registry):
    from assay.flows.eval import DEFAULT_SUITES, default_suites
    from assay.evals.suites import available

    got = default_suites()
    assert got and set(got) <= set(DEFAULT_SUITES) and set(got) <= set(available())


# ---- the real embedded model ----------------------------------------------------------------------------------------
class Capital:
    name, version = "capital", "1"

    def samples(self, seed, limit):
        for i, (country, city) in enumerate([("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome")]):
            yield Sample(id=f"c{i}", input=country, target=city)

    def messages(self, s):
        return [{"role": "user", "content": f"What is the capital of {s.input}? Answer with one word."}]

    def score(self, completion, s):
        return Score(float(s.target.lower() in completion.lower()), extracted=completion.strip()[:40],
                     parsed=bool(completion.strip()))


def test_runner_on_embedded_model(embedded, tmp_path):
    from assay.client import SamplingParams
    from assay.evals.runner import rescore, run

    res = run([Capital()], [embedded], out_dir=tmp_path, params=SamplingParams(max_tokens=12), concurrency=2)
    m = res.manifest
    assert m["status"] == "finished" and m["fingerprint"]["model"] == embedded.model
    assert m["fingerprint"]["engine"] == embedded.engine
    rs = list(iter_records(res.run_dir / "records.jsonl"))
    assert len(rs) == 3 and all(r["status"] in ("ok", "truncated", "unparsed") for r in rs)
    assert all(r["ttft_s"] and r["e2e_s"] >= r["ttft_s"] and r["completion"] for r in rs)
    assert all(r["finish_reason"] in ("stop", "length") for r in rs)
    s = res.summary["suites"]["capital"]
    assert s["n"] == 3 and 0.0 <= s["value"] <= 1.0 and s["low"] <= s["value"] <= s["high"]
    before = (res.run_dir / "summary.json").read_text()
    rescore(res.run_dir, {"capital": Capital()})
    assert (res.run_dir / "summary.json").read_text() == before


@pytest.mark.parametrize("suite", ["math", "json"])
def test_cli_registered_suite_on_embedded_model(embedded, tmp_path, suite):
    from assay.evals.suites import available

    if suite not in available():
        pytest.skip(f"suite {suite} is not in the registry yet")
    args = ["eval", "--endpoint", embedded.base_url, "--suite", suite, "--limit", "2", "--max-tokens", "48",
            "--concurrency", "2", "--out", str(tmp_path)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    head = last_json(res.stdout)
    s = head["suites"][suite]
    assert s["n"] + s["errors"] >= 2 and head["status"] == "finished"
    m = json.loads((Path(head["run_dir"]) / "manifest.json").read_text())
    assert m["fingerprint"]["suites"][suite]["version"] and m["counts"][suite]["done"] == m["counts"][suite]["total"]
    res2 = runner.invoke(app, ["eval", "--rescore", head["run_dir"]])
    assert res2.exit_code == 0, res2.output
    assert last_json(res2.stdout)["suites"] == head["suites"]  # stored completions, same scorers: same numbers
