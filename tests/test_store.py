"""The run store: runs written before format_version existed still load, report, rescore and resume; a newer format
is refused in one line; rewrites are atomic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assay.errors import RunMismatch
from assay.evals.base import Record
from assay.store import (FORMAT_VERSION, BenchManifest, EvalManifest, RunStore, find_run, iter_records, migrate,
                         read_manifest)

V0 = Path(__file__).parent / "fixtures" / "runs_v0"  # written by assay before this store (commit ac436a6)
EVAL_V0 = V0 / "20261202-121957-be70b240"
BENCH_V0 = V0 / "bench-20261202-122049-1036"


@pytest.fixture
def runs(tmp_path) -> Path:
    out = tmp_path / "runs"
    shutil.copytree(V0, out)
    return out


def test_v0_eval_run_loads_typed(runs):
    raw = json.loads((EVAL_V0 / "manifest.json").read_text())
    assert "format_version" not in raw  # the fixture really is the old format
    store = RunStore(runs / EVAL_V0.name)
    m = store.manifest
    assert isinstance(m, EvalManifest) and m.format_version == FORMAT_VERSION and m.status == "finished"
    assert m.fingerprint_hash == raw["fingerprint_hash"] and set(m.suites) == set(raw["fingerprint"]["suites"])
    recs = list(store.records())
    assert all(isinstance(r, Record) for r in recs) and len(recs) == sum(c["total"] for c in raw["counts"].values())
    assert {r.suite for r in recs} == set(raw["counts"])
    code = [r for r in recs if r.suite == "code"]
    assert code and all(r.score is not None and "sandbox" in r.score.extra for r in code)


def test_v0_eval_run_rescores_to_the_same_scorecard_and_is_found_for_resume(runs):
    from assay.evals.runner import rescore

    d = runs / EVAL_V0.name
    old = json.loads((EVAL_V0 / "summary.json").read_text())
    res = rescore(d)
    assert res["changed"] == 0
    for name, s in old["suites"].items():
        new = res["summary"]["suites"][name]
        assert (new["value"], new["n"], new["errors"], new["truncated"]) == (s["value"], s["n"], s["errors"],
                                                                            s["truncated"]), name
    # the rewritten manifest is the new format, and the run is still found by its fingerprint
    assert json.loads((d / "manifest.json").read_text())["format_version"] == FORMAT_VERSION
    assert find_run(runs, read_manifest(d).fingerprint_hash) == d
    # per-direction BLEU is a typed metric with its category (was the string key "bleu:en-fr")
    metrics = res["summary"]["suites"]["translate"]["metrics"]
    assert any(m["name"] == "bleu" and m["category"] for m in metrics.values())
    assert res["summary"]["suites"]["code"]["notes"]["sandbox"]


def test_v0_runs_report(runs, tmp_path):
    from assay.report.html import report_html
    from assay.report.runs import load_bench_run, load_eval_run

    run = load_eval_run(runs / EVAL_V0.name)
    html = report_html(run)
    assert run.run_id in html and "translate" in html
    bench = load_bench_run(runs / BENCH_V0.name)
    assert isinstance(bench.manifest, BenchManifest) or bench.manifest["kind"] == "bench"
    assert bench.speed()["ttft_s"] is not None
    from assay.bench.run import RequestRecord  # registers the bench record type with the store

    reqs = list(RunStore(runs / BENCH_V0.name).records())
    assert reqs and isinstance(reqs[0], RequestRecord) and reqs[0].ttft_s is not None and reqs[0].ok


def test_newer_format_and_corrupt_records_are_one_line_errors(runs):
    d = runs / EVAL_V0.name
    raw = json.loads((d / "manifest.json").read_text())
    with pytest.raises(RunMismatch, match="newer assay.*upgrade"):
        migrate({**raw, "format_version": FORMAT_VERSION + 1})
    (d / "manifest.json").write_text(json.dumps({**raw, "status": "exploded"}))
    with pytest.raises(RunMismatch, match="field status"):
        read_manifest(d)
    lines = (d / "records.jsonl").read_text().splitlines()
    (d / "records.jsonl").write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(RunMismatch, match=r"records.jsonl:2: corrupt record"):
        list(iter_records(d / "records.jsonl", Record))


def test_rewrite_is_atomic_when_the_transform_fails(runs):
    store = RunStore(runs / EVAL_V0.name)
    before = store.records_path.read_bytes()

    def boom(r):
        if r.suite == "math":
            raise RuntimeError("disk on fire")
        return r

    with pytest.raises(RuntimeError):
        store.rewrite(boom)
    assert store.records_path.read_bytes() == before
    assert not [p for p in store.dir.iterdir() if p.name.endswith(".tmp")]
    kept, dropped = store.rewrite(lambda r: None if r.suite == "math" else r)
    assert dropped == 2 and kept == sum(1 for _ in store.records())


# ---- store.open: the one way to read a run folder ---------------------------------------------------------------------
def _judgement(pass_id: str = "p1", sample_id: str = "s1", status: str = "ok") -> dict:
    return {"pass_id": pass_id, "kind": "rubric", "template": "naturalness.v1@abc", "judge_model": "j",
            "run_a": "r", "suite": "math", "sample_id": sample_id, "reply": "[[4]]", "value": 4.0, "status": status}


def test_open_eval_run_applies_migrations(runs):
    from assay import store

    run = store.open(runs / EVAL_V0.name)
    assert isinstance(run, store.EvalRun) and run.kind == "eval" and run.run_id == EVAL_V0.name
    raw = json.loads((EVAL_V0 / "manifest.json").read_text())
    assert isinstance(run.manifest, EvalManifest) and run.manifest.format_version == FORMAT_VERSION
    recs = list(run.records())
    assert recs and all(isinstance(r, Record) for r in recs)
    assert len(recs) == sum(c["total"] for c in raw["counts"].values())
    assert all(isinstance(r, dict) for r in run.records(raw=True))
    assert run.summary == json.loads((EVAL_V0 / "summary.json").read_text())
    assert run.judge == {"format_version": store.JUDGE_FORMAT_VERSION, "passes": {}}  # never judged: empty index
    assert list(run.judgements()) == []
    assert isinstance(run.store(), RunStore) and run.store().records_path == run.records_path
    # a run id under a runs folder, and "latest", open the same run
    assert store.open(EVAL_V0.name, runs).dir == run.dir and store.open("latest", runs).dir == run.dir


def test_open_bench_run_applies_migrations(runs):
    from assay import store
    from assay.bench.run import RequestRecord

    raw = json.loads((BENCH_V0 / "manifest.json").read_text())
    assert "format_version" not in raw and "status" not in raw  # the old format
    run = store.open(runs / BENCH_V0.name)
    assert isinstance(run, store.BenchRun) and isinstance(run.manifest, BenchManifest)
    assert run.manifest.status == "finished" and run.manifest.format_version == FORMAT_VERSION
    assert run.records_path.name == "requests.jsonl"
    reqs = list(run.records())
    assert reqs and all(isinstance(r, RequestRecord) for r in reqs)
    assert run.summary is not None


def test_open_judge_pass_folder_migrates_its_index(tmp_path):
    """A folder of judge passes only (assay arena agree): judge.json without format_version (0) is brought to the
    current one; its records are the judgements, typed."""
    from assay import store
    from assay.judge.run import JudgeRecord, read_index

    d = tmp_path / "arena-judge"
    d.mkdir()
    (d / "judge.json").write_text(json.dumps({"passes": {"p1": {"kind": "rubric", "n_jobs": 2}}}))
    (d / "judgements.jsonl").write_text("".join(json.dumps(_judgement(sample_id=s)) + "\n" for s in ("a", "b")))
    run = store.open(d)
    assert isinstance(run, store.JudgePass) and run.manifest is None and run.kind == "judge"
    assert run.judge == {"format_version": store.JUDGE_FORMAT_VERSION, "passes": {"p1": {"kind": "rubric",
                                                                                          "n_jobs": 2}}}
    assert read_index(d) == run.judge  # the judge package reads the index through the store
    recs = list(run.records())
    assert [r.sample_id for r in recs] == ["a", "b"] and all(isinstance(r, JudgeRecord) for r in recs)
    assert [r.sample_id for r in run.judgements("p1")] == ["a", "b"] and list(run.judgements("other")) == []


def test_judge_index_of_an_old_format_is_migrated_and_a_newer_one_refused(runs):
    from assay import store

    d = runs / EVAL_V0.name
    (d / "judge.json").write_text(json.dumps({"format_version": 0}))  # old: no passes table
    assert store.open(d).judge == {"format_version": store.JUDGE_FORMAT_VERSION, "passes": {}}
    assert migrate({"passes": {"x": {}}}, store.JUDGE_INDEX)["format_version"] == store.JUDGE_FORMAT_VERSION
    (d / "judge.json").write_text(json.dumps({"format_version": store.JUDGE_FORMAT_VERSION + 1, "passes": {}}))
    with pytest.raises(RunMismatch, match="judge.json was written by a newer assay.*upgrade"):
        store.open(d).judge
    (d / "judge.json").write_text("{torn")
    with pytest.raises(RunMismatch, match="judge.json is not valid JSON"):
        store.open(d).judge


def test_recheck_index_goes_through_the_same_chain(runs):
    from assay import store
    from assay.evals.recheck import read_index

    d = runs / EVAL_V0.name
    assert read_index(d) == {"format_version": 1, "latest": None, "rechecks": {}}
    (d / "recheck.json").write_text(json.dumps({"rechecks": {"r1": {"k": 3}}, "latest": "r1"}))
    assert store.open(d).recheck == {"format_version": store.RECHECK_FORMAT_VERSION, "latest": "r1",
                                     "rechecks": {"r1": {"k": 3}}}


def test_open_refuses_what_is_not_a_run(tmp_path):
    from assay import store

    with pytest.raises(RunMismatch, match="not a run folder"):
        store.open(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "chat", "run_id": "x"}))
    with pytest.raises(RunMismatch, match="unknown run kind 'chat'"):
        store.open(tmp_path)
    with pytest.raises(RunMismatch, match="no record type is registered for 'nope'"):
        store.record_type("nope")


def test_group_commit_writes_before_it_hands_on_and_drains_on_failure(tmp_path):
    import asyncio

    from assay.store import GroupCommit, RecordWriter

    path = tmp_path / "x.jsonl"
    seen: list[int] = []

    def on_batch(batch):
        on_disk = [json.loads(x)["i"] for x in path.read_text().splitlines()]
        assert all(r["i"] in on_disk for r in batch)  # durable before counted
        seen.extend(r["i"] for r in batch)

    async def work(put, fail_at=None):
        for i in range(50):
            if i == fail_at:
                raise RuntimeError("worker died")
            await put({"i": i})

    async def main():
        gc = GroupCommit(RecordWriter(path), on_batch, maxsize=4)
        await gc.run(asyncio.gather(work(gc.put)))
        assert gc.writer.f.closed
        gc2 = GroupCommit(RecordWriter(path), on_batch, maxsize=4)
        with pytest.raises(RuntimeError, match="worker died"):
            await gc2.run(asyncio.gather(work(gc2.put, fail_at=7)))

    asyncio.run(main())
    assert seen == list(range(50)) + list(range(7))  # what was handed over before the failure is still written
    assert len(path.read_text().splitlines()) == 57


def test_group_commit_failing_writer_stops_the_producers(tmp_path):
    import asyncio

    from assay.store import GroupCommit, RecordWriter

    class Full(RecordWriter):
        def append(self, records):
            raise OSError("No space left on device")

    async def forever(put):
        i = 0
        while True:
            await put({"i": i})
            i += 1

    async def main():
        gc = GroupCommit(Full(tmp_path / "x.jsonl"), maxsize=2)
        await asyncio.wait_for(gc.run(forever(gc.put)), 10)

    with pytest.raises(OSError, match="No space"):
        asyncio.run(main())
