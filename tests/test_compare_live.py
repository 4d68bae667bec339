"""A comparison of two REAL runs on the embedded SmolLM2-135M (temperature 0, short vs long max_tokens), then the HTML
opened in headless Chromium: tables and SVG charts must render. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def real_runs(embedded, tmp_path_factory):
    """Two tiny real evals that differ only in max_tokens: the short one truncates, so the models 'disagree'."""
    from assay.client import SamplingParams
    from assay.evals.runner import run

    runs = tmp_path_factory.mktemp("live") / "runs"
    out = []
    # Tiny on purpose (3 samples, <= 24 tokens): the machine is shared, and the point is the real record format.
    for max_tokens in (6, 24):
        res = run(["ifeval"], [embedded], out_dir=runs, limit=3, concurrency=1, seed=0,
                  params=SamplingParams(temperature=0.0, max_tokens=max_tokens))
        out.append(res.run_dir)
    return out


def test_compare_real_runs(real_runs, tmp_path):
    from assay.report import write_compare
    from assay.report.compare import compare_runs
    from assay.report.runs import load_eval_run

    a, b = (load_eval_run(p) for p in real_runs)
    assert a.suites["ifeval"]["total"] == b.suites["ifeval"]["total"] == 3
    # the 6-token run hits the cap on every sample: its truncated column must say so
    assert a.suites["ifeval"]["truncated"] == 3
    cmp = compare_runs([a, b], seed=0)
    assert {p.suite for p in cmp.pairs} == {"ifeval"}
    for p in cmp.pairs:
        r = p.result
        assert r.n == len(set(a.scores(p.suite)) & set(b.scores(p.suite))) > 0
        assert r.wins + r.ties + r.losses == r.n
        assert r.verdict in ("A better", "B better") or r.verdict.startswith("tied (p = ")
        assert r.mdd >= min(1.0, 6 / r.n)  # a handful of samples cannot resolve anything small
    assert any("params.max_tokens: 6 vs 24" in w for w in cmp.warnings)
    # same model: labels are told apart by what differs
    assert a.label != b.label and "max_tokens" in a.label
    again = compare_runs([load_eval_run(p) for p in real_runs], seed=0)
    assert [(p.result.low, p.result.high) for p in again.pairs] == [(p.result.low, p.result.high) for p in cmp.pairs]
    paths = write_compare(cmp, tmp_path / "cmp")
    assert paths["html"].stat().st_size > 10_000


def test_cli_compare_real_runs_prints_table(real_runs, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    res = CliRunner().invoke(app, ["compare", *map(str, real_runs), "--out", str(tmp_path / "c")],
                             env={"COLUMNS": "220"})
    assert res.exit_code == 0, res.output
    assert "paired tests on shared samples" in res.output and "max_tokens" in res.output
    last = json.loads(res.output.strip().splitlines()[-1])
    assert len(last["pairs"]) == 1
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "compare_live_stdout.txt").write_text(res.output)


@pytest.mark.browser
def test_compare_html_renders_in_chromium(real_runs, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    from assay.report import write_compare, write_report
    from assay.report.compare import compare_runs
    from assay.report.runs import load_eval_run

    cmp_paths = write_compare(compare_runs([load_eval_run(p) for p in real_runs]), tmp_path / "cmp")
    rep_paths = write_report(load_eval_run(real_runs[0]), tmp_path / "rep")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(cmp_paths["html"].as_uri())
            tables = page.evaluate("() => Array.from(document.querySelectorAll('table')).map(t => [t.className, "
                                   "t.rows.length, t.getBoundingClientRect().height])")
            classes = {c for c, _, _ in tables}
            assert {"comparison", "pairs", "diff"} <= classes or {"comparison", "pairs"} <= classes
            assert all(h > 0 for _, _, h in tables)
            pairs = [rows for c, rows, _ in tables if c == "pairs"][0]
            assert pairs == 2  # header + ifeval
            charts = page.evaluate("() => Array.from(document.querySelectorAll('svg.chart')).map(s => "
                                   "{const b = s.getBoundingClientRect(); return [s.dataset.chart, b.width, b.height, "
                                   "s.querySelectorAll('path').length]})")
            names = {c[0] for c in charts}
            assert {"compare", "forest"} <= names
            for name, w, h, paths in charts:
                assert w > 200 and h > 150 and paths > 3, (name, w, h, paths)
            verdicts = page.locator("table.pairs td:last-child").all_inner_texts()
            assert len(verdicts) == 1 and all(("better" in v) or v.startswith("tied") for v in verdicts)
            # self-contained: the page fetched nothing but itself
            assert all(u.startswith("file://") for u in requests), requests
            page.screenshot(path=str(ARTIFACTS / "compare_live.png"), full_page=True)
            page.goto(rep_paths["html"].as_uri())
            assert page.locator("table.scorecard tr").count() >= 3
            assert page.locator("svg.chart").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "report_live.png"), full_page=True)
        finally:
            browser.close()
    shutil.copy(cmp_paths["html"], ARTIFACTS / "compare_live.html")
