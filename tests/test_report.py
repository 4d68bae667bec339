"""`assay report` on run folders written in the documented format (manifest.json + records.jsonl + summary.json)."""

from __future__ import annotations

import json
import re

import pytest

from helpers import rows, write_eval_run


@pytest.fixture
def one_run(tmp_path):
    vals = [1] * 14 + [0] * 6
    return write_eval_run(tmp_path / "runs", "20250101-120000-aaaa1111", suites={
        "math": rows(20, vals, statuses={3: "error", 7: "truncated", 19: "unparsed"}),
        "ifeval": rows(10, [1, 0] * 5, cat=lambda i: "all", prefix="if"),
    })


def test_load_eval_run_scorecard_counts(one_run):
    from assay.report.runs import load_eval_run

    run = load_eval_run(one_run)
    m = run.suites["math"]
    assert (m["n"], m["errors"], m["truncated"], m["unparsed"], m["total"]) == (19, 1, 1, 1, 20)
    assert m["value"] == pytest.approx(13 / 19)  # sample 3 errored: left out of n, not scored 0
    assert set(m["categories"]) == {"algebra", "geometry"}
    assert run.scores("math").keys() == {f"q{i:03d}" for i in range(20)} - {"q003"}
    sp = run.speed()
    assert sp["ttft_s"] == pytest.approx(0.05)
    # tokens per correct: 29 answered records × 40 tokens over 13 + 5 correct answers
    assert sp["tokens_per_correct"] == pytest.approx(29 * 40 / 18)


def test_resolve_by_run_id_and_latest(one_run):
    from assay.errors import RunMismatch
    from assay.report.runs import load_eval_run

    runs_dir = one_run.parent
    assert load_eval_run("20250101-120000-aaaa1111", runs_dir).path == one_run
    assert load_eval_run("latest", runs_dir).path == one_run
    with pytest.raises(RunMismatch, match="no run"):
        load_eval_run("nope", runs_dir)


def test_report_writes_self_contained_html_and_markdown(one_run, tmp_path):
    from assay.report import write_report
    from assay.report.runs import load_eval_run

    run = load_eval_run(one_run)
    paths = write_report(run, tmp_path / "out", top=5)
    html = paths["html"].read_text()
    # self-contained: no external URL is loaded (the SVG namespace URIs are identifiers, not fetches)
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "<script" not in html and "<link" not in html
    assert html.count("<svg") == 2  # scorecard + timing charts, inline
    assert 'data-chart="scorecard"' in html and 'data-chart="timing"' in html
    # the scorecard table, the failure columns and the highlighted extracted answers are there
    assert "<th>unparsed</th>" in html
    assert "68.4" in html  # 13/19
    assert "<mark>42</mark>" in html or "<mark>4" in html
    assert "HTTP 500 after 3 retries" in html  # the error is data, shown
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "two inline SVGs share an id"
    md = paths["md"].read_text()
    assert "| math | all | accuracy | 68.4 |" in md
    assert "| suite | category | metric | score % | 95 % CI | n | errors | truncated | unparsed |" in md


def test_failed_samples_order_harness_failures_first(one_run):
    from assay.report import views
    from assay.report.runs import load_eval_run

    run = load_eval_run(one_run)
    failed = views.sample_rows(run.records, "failed", 50)
    assert [r.status for r in failed[:3]] == ["error", "truncated", "unparsed"]
    assert all((r.score.value if r.score else None) != 1.0 or r.status != "ok" for r in failed)
    slow = views.sample_rows(run.records, "slowest", 3)
    assert [r.e2e_s for r in slow] == sorted([r.e2e_s for r in slow], reverse=True)


def test_highlight_marks_last_occurrence_and_escapes():
    from assay.report.html import highlight

    out = highlight("x = 4 <b>, so 4 + 0 = 4", "4")
    assert out.endswith("<mark>4</mark>")
    assert "&lt;b&gt;" in out
    assert highlight(None, "4").startswith("<span")
    assert "<mark>" not in highlight("no answer here", "7")


def test_cli_report(one_run, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    res = CliRunner().invoke(app, ["report", str(one_run), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "math" in res.output and "0.684" in res.output  # the same scorecard as assay eval prints
    last = json.loads(res.output.strip().splitlines()[-1])
    assert last["suites"]["math"]["n"] == 19
    assert (tmp_path / "r" / "report.html").is_file()
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert bad.exit_code == 1
