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
    reqs = list(RunStore(runs / BENCH_V0.name).records())
    assert reqs and reqs[0].ttft_s is not None and reqs[0].ok


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
