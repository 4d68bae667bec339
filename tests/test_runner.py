"""The eval runner against the stub server: run folder contract, errors as data, resume (including after a real
kill -9), fingerprints, rescore, slow scoring in a killable process pool, and memory flat with run size."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from assay.client import SamplingParams
from assay.engines import Endpoint
from assay.evals.base import Record, Sample, Score
from assay.evals.runner import Observer, rescore, run
from assay.evals.scorecard import load_run, summarize
from assay.store import iter_records


class Echo:
    """Trivial suite: the stub is told to reply the target word; sample ids in ``wrong`` get a wrong reply and ids in
    ``bad`` get HTTP 400. Scoring: exact match."""

    name, version = "echo", "1"

    def __init__(self, n=20, bad=(), wrong=(), name="echo", version="1", gap=None, directive=True):
        self.n, self.bad, self.wrong, self.gap, self.directive = n, set(bad), set(wrong), gap, directive
        self.name, self.version = name, version

    def samples(self, seed, limit):
        for i in range(self.n if limit is None else min(limit, self.n)):
            yield Sample(id=f"s{i}", input={"w": f"w{i}"}, target=f"w{i}", category="odd" if i % 2 else "even")

    def messages(self, s):
        reply = "nope" if s.id in self.wrong else s.input["w"]
        extra = " [[status:400]]" if s.id in self.bad else ""
        gap = f" [[gap:{self.gap}]]" if self.gap else ""
        say = f" [[reply:{reply}]]" if self.directive else ""
        return [{"role": "user", "content": f"Say it.{say}{extra}{gap}"}]

    def score(self, completion, s):
        got = completion.strip()
        return Score(1.0 if got == s.target else 0.0, extracted=got)


class Echo2(Echo):
    """Same data, a stricter scorer (for rescore): only even-numbered words count."""

    def score(self, completion, s):
        got = completion.strip()
        ok = got == s.target and int(s.target[1:]) % 2 == 0
        return Score(1.0 if ok else 0.0, extracted=got)


class SlowEcho(Echo):
    """slow_scoring suite: scoring the word 'w3' never ends (the pool worker must be killed)."""

    name = "slowecho"
    slow_scoring = True
    scoring_timeout_s = 2.0

    def __init__(self, n=6):
        super().__init__(n=n, name="slowecho")

    def score(self, completion, s):
        if completion.strip() == "w3":
            time.sleep(120)
        return Score(1.0 if completion.strip() == s.target else 0.0, extracted=str(os.getpid()))


def ep(stub) -> Endpoint:
    return stub.endpoint()


def records(run_dir: Path) -> list[dict]:
    return list(iter_records(run_dir / "records.jsonl"))


def test_run_folder_contract_errors_and_scorecard(stub, tmp_path):
    st = stub()
    res = run([Echo(20, bad={"s3"}, wrong={"s4", "s6"})], [ep(st)], out_dir=tmp_path, concurrency=4,
              params=SamplingParams(max_tokens=32), seed=5, command=["assay", "eval", "test"])
    d = res.run_dir
    assert d.parent == tmp_path and {"manifest.json", "records.jsonl", "summary.json"} <= {p.name for p in d.iterdir()}
    m = json.loads((d / "manifest.json").read_text())
    for key in ("kind", "run_id", "created_at", "finished_at", "status", "fingerprint", "fingerprint_hash",
                "endpoints", "counts", "command", "wall_s", "request_s_sum", "concurrency"):
        assert key in m, key
    assert m["kind"] == "eval" and m["status"] == "finished" and m["run_id"] == d.name
    assert m["fingerprint"]["model"] == "stub-model" and m["fingerprint"]["seed"] == 5
    assert m["fingerprint"]["params"]["max_tokens"] == 32
    assert set(m["fingerprint"]["suites"]["echo"]) == {"version", "data_hash", "prompt_template"}
    assert m["counts"]["echo"] == {"ok": 19, "error": 1, "truncated": 0, "unparsed": 0, "total": 20, "done": 20}
    assert m["endpoints"] == [st.base_url] and m["command"] == ["assay", "eval", "test"]
    assert m["request_s_sum"] > 0 and m["wall_s"] > 0

    recs = records(d)
    assert len(recs) == 20 and len({r["sample_id"] for r in recs}) == 20
    err = next(r for r in recs if r["sample_id"] == "s3")
    assert err["status"] == "error" and "400" in err["error"] and err["completion"] is None and err["score"] is None
    ok = next(r for r in recs if r["sample_id"] == "s5")
    assert ok["completion"] == "w5" and ok["score"]["value"] == 1.0 and ok["input"] == {"w": "w5"}
    assert ok["finish_reason"] == "stop" and ok["e2e_s"] > 0 and ok["messages"][0]["role"] == "user"

    s = json.loads((d / "summary.json").read_text())["suites"]["echo"]
    # the error is excluded from n and counted; 17 right of 19 scored
    assert s["n"] == 19 and s["errors"] == 1 and s["total"] == 20
    assert s["value"] == pytest.approx(17 / 19)
    assert s["low"] < 17 / 19 < s["high"] and s["binary"] is True and s["metric"] == "accuracy"
    assert s["categories"]["even"]["n"] == 10 and s["categories"]["even"]["value"] == pytest.approx(8 / 10)
    assert s["categories"]["odd"]["errors"] == 1 and s["categories"]["odd"]["value"] == 1.0


def test_resume_skips_done_and_retries_errors(stub, tmp_path):
    st = stub()
    first = run([Echo(12, bad={"s1"})], [ep(st)], out_dir=tmp_path, concurrency=3)
    assert st.count == 12
    again = run([Echo(12)], [ep(st)], out_dir=tmp_path, concurrency=3)  # the 400 is gone now
    assert again.resumed and again.run_dir == first.run_dir
    assert st.count == 13  # only the errored sample was sent again
    recs = records(first.run_dir)
    assert sorted(r["sample_id"] for r in recs) == sorted(f"s{i}" for i in range(12))  # one record per sample
    assert all(r["status"] == "ok" for r in recs)
    m = json.loads((first.run_dir / "manifest.json").read_text())
    assert len(m["sessions"]) == 2 and m["counts"]["echo"]["ok"] == 12
    # a third run of a finished run does nothing and keeps the numbers
    run([Echo(12)], [ep(st)], out_dir=tmp_path, concurrency=3)
    assert st.count == 13


def test_different_fingerprint_starts_new_run(stub, tmp_path):
    st = stub()
    a = run([Echo(4)], [ep(st)], out_dir=tmp_path, params=SamplingParams(max_tokens=16))
    b = run([Echo(4)], [ep(st)], out_dir=tmp_path, params=SamplingParams(max_tokens=17))
    c = run([Echo(4, version="2")], [ep(st)], out_dir=tmp_path, params=SamplingParams(max_tokens=16))
    d = run([Echo(4)], [ep(st)], out_dir=tmp_path, params=SamplingParams(max_tokens=16), seed=1)
    e = run([Echo(4)], [ep(st)], out_dir=tmp_path, params=SamplingParams(max_tokens=16), limit=3)
    ids = {a.run_id, b.run_id, c.run_id, d.run_id, e.run_id}
    assert len(ids) == 5
    assert not any(x.resumed for x in (a, b, c, d, e))
    same = run([Echo(4)], [ep(st)], out_dir=tmp_path, params=SamplingParams(max_tokens=16))
    assert same.resumed and same.run_id == a.run_id
    fresh = run([Echo(4)], [ep(st)], out_dir=tmp_path, params=SamplingParams(max_tokens=16), fresh=True)
    assert fresh.run_id not in ids
    for r in (a, b, c, d, e):
        assert {x["run_id"] for x in records(r.run_dir)} == {r.run_id}  # never mixed


def test_rescore_reproduces_summary_then_applies_new_scorer(stub, tmp_path):
    st = stub()
    res = run([Echo(10, bad={"s2"}, wrong={"s5"})], [ep(st)], out_dir=tmp_path, concurrency=2)
    before = (res.run_dir / "summary.json").read_text()
    recs_before = (res.run_dir / "records.jsonl").read_text()
    n_requests = st.count
    out = rescore(res.run_dir, {"echo": Echo(10)})
    assert out["changed"] == 0
    assert (res.run_dir / "summary.json").read_text() == before  # byte for byte
    assert (res.run_dir / "records.jsonl").read_text() == recs_before
    out2 = rescore(res.run_dir, {"echo": Echo2(10)})
    assert st.count == n_requests  # no model call
    s = out2["summary"]["suites"]["echo"]
    assert s["n"] == 9 and s["errors"] == 1
    # right under Echo2: even ids, minus the error (s2): s0 s4 s6 s8 -> 4 of 9
    assert s["value"] == pytest.approx(4 / 9)
    assert out2["changed"] == 4  # s1 s3 s7 s9 flipped from 1 to 0
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m["rescored_versions"] == {"echo": "1"}


def test_summarize_counts_truncated_and_unparsed_in_n(stub, tmp_path):
    def rec(i, status, value, cat="a"):
        score = None if status == "error" else Score(value, parsed=status != "unparsed").to_dict()
        return Record(run_id="r", suite="x", sample_id=str(i), category=cat, messages=[], target=None,
                      completion=None if status == "error" else "t", score=score, status=status)

    rs = [rec(0, "ok", 1.0), rec(1, "ok", 0.0, "b"), rec(2, "truncated", 0.0), rec(3, "unparsed", 0.0, "b"),
          rec(4, "error", None)]
    s = summarize(iter(rs))["suites"]["x"]
    assert (s["n"], s["errors"], s["truncated"], s["unparsed"], s["total"]) == (4, 1, 1, 1, 5)
    assert s["value"] == pytest.approx(0.25) and s["binary"] is True
    assert s["categories"]["b"]["n"] == 2 and s["categories"]["b"]["unparsed"] == 1
    cont = summarize([rec(0, "ok", 0.5), rec(1, "ok", 0.7)])["suites"]["x"]
    assert cont["binary"] is False and cont["metric"] == "mean score" and cont["value"] == pytest.approx(0.6)
    assert summarize([]) == {"suites": {}}

    class Agg:
        name, binary, metric = "x", False, "chrF"

        def aggregate(self, recs):
            return {"corpus": {"value": float(len(recs)), "low": None, "high": None, "n": len(recs)}}

    s2 = summarize(rs, {"x": Agg()})["suites"]["x"]
    assert s2["metrics"]["corpus"]["value"] == 5.0 and s2["metric"] == "chrF" and s2["binary"] is False


def test_think_unclosed_is_unparsed_and_length_is_truncated(stub, tmp_path):
    st = stub(reply="<think>I will think forever and never")
    res = run([Echo(2, directive=False)], [ep(st)], out_dir=tmp_path)
    rs = records(res.run_dir)
    assert all(r["status"] == "unparsed" and r["completion"] == "" and r["score"]["parsed"] is False for r in rs)
    assert all("think" in r["score"]["reason"] for r in rs) and rs[0]["reasoning"].startswith("I will")
    st2 = stub(reply="one two three four five six")
    res2 = run([Echo(2, directive=False)], [ep(st2)], out_dir=tmp_path / "b", params=SamplingParams(max_tokens=3))
    rs2 = records(res2.run_dir)
    assert all(r["status"] == "truncated" and r["finish_reason"] == "length" for r in rs2)
    # rescore keeps an unclosed think unparsed (the scorer is not asked about an answer that does not exist)
    rescore(res.run_dir, {"echo": Echo(2, directive=False)})
    assert all(r["status"] == "unparsed" for r in records(res.run_dir))


def test_torn_last_line_is_tolerated_on_resume(stub, tmp_path):
    st = stub()
    res = run([Echo(6)], [ep(st)], out_dir=tmp_path)
    path = res.run_dir / "records.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    # simulate kill -9 mid-write: last record half written, and the manifest still says "running"
    path.write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
    m = json.loads((res.run_dir / "manifest.json").read_text())
    m["status"] = "running"
    (res.run_dir / "manifest.json").write_text(json.dumps(m))
    assert len(list(iter_records(path))) == 4  # the reader skips the torn tail
    again = run([Echo(6)], [ep(st)], out_dir=tmp_path)
    assert again.run_dir == res.run_dir
    rs = records(res.run_dir)
    assert sorted(r["sample_id"] for r in rs) == [f"s{i}" for i in range(6)]
    assert json.loads((res.run_dir / "manifest.json").read_text())["status"] == "finished"


def test_error_after_retries_and_unreachable_endpoint(stub, tmp_path):
    st = stub(fail_first=2, fail_status=503)  # retried by the client, then fine
    res = run([Echo(3)], [ep(st)], out_dir=tmp_path, concurrency=1)
    assert [r["status"] for r in records(res.run_dir)] == ["ok"] * 3
    dead = Endpoint("http://127.0.0.1:9/v1", "nothing")  # port 9 (discard): connection refused
    from assay.client import Client

    client = Client([dead], max_retries=0)
    from assay.errors import EndpointUnreachable

    with pytest.raises(EndpointUnreachable, match="run stopped; 0 finished records kept in .*re-run the same command"):
        run([Echo(200)], None, client=client, out_dir=tmp_path / "dead", concurrency=2)
    d = next((tmp_path / "dead").iterdir())
    m = json.loads((d / "manifest.json").read_text())
    # a server that is gone stops the run at the first request that found nobody (not after 20 failures)
    assert m["status"] == "interrupted" and 1 <= m["counts"]["echo"]["error"] <= 2
    assert "unreachable" in m["ended_by"]
    partial = json.loads((d / "summary.json").read_text())
    assert partial["partial"] is True and partial["suites"]["echo"]["errors"] == m["counts"]["echo"]["error"]
    assert m["counts"]["echo"]["done"] < 200  # stopped early instead of failing 200 requests


def test_slow_scoring_in_process_pool_with_timeout(stub, tmp_path):
    st = stub()
    res = run([SlowEcho(6)], [ep(st)], out_dir=tmp_path, concurrency=3, scoring_workers=2)
    rs = {r["sample_id"]: r for r in records(res.run_dir)}
    assert rs["s3"]["status"] == "unparsed" and "scoring timeout" in rs["s3"]["score"]["reason"]
    others = [rs[f"s{i}"] for i in (0, 1, 2, 4, 5)]
    assert all(r["status"] == "ok" and r["score"]["value"] == 1.0 for r in others)
    assert all(int(r["score"]["extracted"]) != os.getpid() for r in others)  # scored in another process


KILL_SCRIPT = textwrap.dedent("""
    import sys
    from assay.evals.base import Sample, Score
    from assay.engines import Endpoint
    from assay.evals.runner import run

    class Echo:
        name, version = "echo", "1"
        def samples(self, seed, limit):
            for i in range(120):
                yield Sample(id=f"s{i}", input=f"w{i}", target=f"w{i}")
        def messages(self, s):
            return [{"role": "user", "content": f"[[reply:{s.input} a b c d e]] [[gap:0.02]]"}]
        def score(self, c, s):
            return Score(1.0 if c.startswith(s.target) else 0.0)

    r = run([Echo()], [Endpoint(sys.argv[1], "stub-model")], out_dir=sys.argv[2], concurrency=4)
    print(r.manifest["status"])
""")


def test_resume_after_real_kill_9(stub, tmp_path):
    st = stub()
    script = tmp_path / "runit.py"
    script.write_text(KILL_SCRIPT)
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, str(script), st.base_url, str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        n_before = 0
        while time.time() < deadline:
            files = list(out.glob("*/records.jsonl"))
            if files:
                n_before = files[0].read_bytes().count(b"\n")
                if n_before >= 25:
                    break
            if proc.poll() is not None:
                pytest.fail(f"runner ended before the kill: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    run_dir = next(out.iterdir())
    kept_before = [ln for ln in (run_dir / "records.jsonl").read_bytes().split(b"\n")[:-1]]
    assert 25 <= len(kept_before) < 120
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"  # it never got to finish
    sent_before = st.count

    again = subprocess.run([sys.executable, str(script), st.base_url, str(out)], capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert again.stdout.decode().strip() == "finished"
    assert [p.name for p in out.iterdir()] == [run_dir.name]  # resumed the same run
    rs = records(run_dir)
    ids = [r["sample_id"] for r in rs]
    assert len(ids) == 120 and len(set(ids)) == 120  # no loss, no duplicates
    after = (run_dir / "records.jsonl").read_bytes().split(b"\n")
    assert after[: len(kept_before)] == kept_before  # what was durable before the kill is untouched
    # only samples not yet recorded were sent again (the in-flight ones at the kill, at most concurrency 4 + queue)
    assert st.count - sent_before == 120 - len(kept_before)
    assert all(r["score"]["value"] == 1.0 for r in rs)
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "finished" and m["counts"]["echo"]["done"] == 120


class Many:
    name, version = "many", "1"

    def __init__(self, n):
        self.n = n

    def samples(self, seed, limit):
        for i in range(self.n):
            yield Sample(id=str(i), input=i, target="ok", category=f"c{i % 3}")

    def messages(self, s):
        return [{"role": "user", "content": f"item {s.input}"}]

    def score(self, completion, s):
        return Score(1.0 if "ok" in completion else 0.0)


class BlockSampler(Observer):
    """Samples the interpreter's allocated-block count every 500 finished records (cheap, unlike tracemalloc), after
    a full collection: what is counted is what is still reachable. Without it, cyclic garbage waits for a rare
    generation-2 pass (rarer the bigger the heap: late in the full suite it holds ~3.4M blocks) and reads as growth."""

    def __init__(self):
        self.points: list[tuple[int, int]] = []
        self.n = 0

    def record(self, rec) -> None:
        import gc

        self.n += 1
        if self.n % 500 == 0 and (1000 <= self.n <= 2500 or self.n >= 7500):  # the two windows compared below
            gc.collect()
            self.points.append((self.n, sys.getallocatedblocks()))


def test_ten_thousand_samples_memory_flat(stub, tmp_path):
    import psutil

    st = stub(reply="ok", record=False)
    n = 10_000
    rss0 = psutil.Process().memory_info().rss
    sampler = BlockSampler()
    res = run([Many(n)], [ep(st)], out_dir=tmp_path, concurrency=64, observer=sampler)
    rss1 = psutil.Process().memory_info().rss
    ids = set()
    count = 0
    for r in iter_records(res.run_dir / "records.jsonl"):
        ids.add(r["sample_id"])
        count += 1
    assert count == n and len(ids) == n  # all there, none twice
    s = res.summary["suites"]["many"]
    assert s["n"] == n and s["value"] == 1.0 and sum(c["n"] for c in s["categories"].values()) == n
    early = max(b for k, b in sampler.points if 1000 <= k <= 2500)
    late = max(b for k, b in sampler.points if k >= 7500)
    # Holding each finished Record (a dataclass + messages + dicts + strings: ~15 objects) would add ~100k blocks
    # between those two points; streaming keeps the count flat apart from allocator noise.
    assert late - early < 25_000, sampler.points
    assert rss1 - rss0 < 150 * 2**20  # a generous whole-process bound as well


def test_load_run_streams_records(stub, tmp_path):
    st = stub()
    res = run([Echo(5)], [ep(st)], out_dir=tmp_path)
    manifest, recs = load_run(res.run_dir)
    assert manifest["run_id"] == res.run_id
    first = next(recs)
    assert isinstance(first, Record) and first.suite == "echo"
    assert len(list(recs)) == 4
    card = summarize(load_run(res.run_dir)[1], {"echo": Echo(5)})
    assert card["suites"] == json.loads((res.run_dir / "summary.json").read_text())["suites"]


def test_scorecard_fits_80_columns_and_leaves_per_category_corpus_metrics_to_the_report():
    import io

    from rich.console import Console

    from assay.evals.scorecard import render

    cat = {"value": 0.25, "low": 0.05, "high": 0.7, "n": 4, "errors": 1, "truncated": 2, "unparsed": 0, "total": 5}
    card = {"suites": {"translate": {
        "metric": "chrF", **cat,
        "categories": {"probability_and_combinatorics_long": cat, "en-fr": cat},
        "metrics": {"chrf": {"value": 41.25, "low": 0.5, "high": 52.5, "n": 4},
                    "bleu:en-fr": {"value": 12.5, "low": 1.0, "high": 20.0, "n": 2, "category": "en-fr"},
                    "cell_accuracy[small]": {"value": 0.5, "low": 0.1, "high": 0.9, "n": 2, "category": "small"}},
        "notes": {"sandbox": "netns"}}}}
    buf = io.StringIO()
    render(card, title="t", footer="f", console=Console(file=buf, width=80, force_terminal=False))
    lines = buf.getvalue().splitlines()
    assert max(len(x) for x in lines) <= 80
    text = "\n".join(lines)
    assert "0.050–0.700" in text and "41.2" in text and "0.5–52.5" in text  # a 0-100 row keeps one scale
    assert "sandbox: netns" in text  # a named row, not a per-category metric
    assert "bleu:en-fr" not in text and "cell_accuracy[small]" not in text
    assert "2 per-category corpus metrics are in report.html" in text
    chrf = next(x for x in lines if "· chrf" in x)
    assert chrf.rstrip().endswith("4")  # n, then blank failure columns: a corpus metric has no record failures
    head = next(x for x in lines if x.lstrip().startswith("translate"))
    assert head.split()[-3:] == ["1", "2", "0"]
    buf = io.StringIO()
    render(card, console=Console(file=buf, width=80), detail=True)
    assert "bleu:en-fr" in buf.getvalue() and "per-category corpus metrics" not in buf.getvalue()
