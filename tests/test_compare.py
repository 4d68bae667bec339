"""`assay compare` on synthetic run folders in the documented format: pairing on shared ids, verdicts, fingerprint
warnings, bench join, claims, HTML/Markdown/JSON output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import rows, write_eval_run

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ROOT / "src" / "assay" / "report" / "claims" / "qwen3-4b-instruct-2507.yaml"


@pytest.fixture
def two_runs(tmp_path):
    runs = tmp_path / "runs"
    # math: 60 shared items; A right on 50, B right on 30; B also has 5 items A never ran (must be left out).
    a_vals = [1] * 50 + [0] * 10
    b_vals = [1] * 30 + [0] * 30 + [1] * 5
    a = write_eval_run(runs, "run-a", model="Qwen/Qwen3-4B-Instruct-2507", suites={
        "math": rows(60, a_vals),
        "ifeval": rows(20, [1] * 19 + [0], prefix="if"),
        "json": rows(20, [1] * 18 + [0] * 2, prefix="js"),
    })
    b = write_eval_run(runs, "run-b", model="SmolLM2-135M-Instruct", suites={
        "math": rows(65, b_vals, statuses={61: "error"}),
        "ifeval": rows(20, [1] * 17 + [0] * 3, prefix="if"),
        "json": rows(20, [1] * 10 + [0] * 10, prefix="js"),
    })
    return a, b


def test_compare_pairs_on_shared_ids_only(two_runs):
    from assay.report.compare import compare_runs
    from assay.report.runs import load_eval_run

    cmp = compare_runs([load_eval_run(p) for p in two_runs], seed=0)
    cell = {p.suite: p for p in cmp.pairs}
    m = cell["math"]
    assert m.result.n == 60 and m.only_b == 4 and m.only_a == 0  # 64 scored in B (one error), 60 shared
    assert m.result.mean_a == pytest.approx(50 / 60) and m.result.mean_b == pytest.approx(30 / 60)
    assert m.result.discordant == (20, 0)
    assert m.result.verdict == "A better" and m.result.low > 0
    assert any("only in" in n for n in m.result.notes)
    # 19/20 vs 17/20 on ifeval: the seeds' kind of difference, which is noise at n = 20
    i = cell["ifeval"].result
    assert i.verdict.startswith("tied (p = ") and i.mdd >= 0.30
    assert m.n_disagree == 20 and len(m.disagreements) == 20
    d = m.disagreements[0]
    assert d["a_score"] == 1.0 and d["b_score"] == 0.0 and d["a_extracted"] == "42"


def test_compare_is_reproducible_with_seed(two_runs):
    from assay.report.compare import compare_runs
    from assay.report.runs import load_eval_run

    def cis(seed):
        cmp = compare_runs([load_eval_run(p) for p in two_runs], seed=seed)
        return [(p.suite, p.result.low, p.result.high) for p in cmp.pairs]

    assert cis(3) == cis(3)


def test_fingerprint_warning_names_what_differs(tmp_path):
    from assay.report.compare import compare_runs
    from assay.report.runs import load_eval_run

    runs = tmp_path / "runs"
    vals = [1, 0, 1, 1, 0] * 4
    a = write_eval_run(runs, "a", suites={"math": rows(20, vals)},
                       params={"temperature": 0.0, "top_p": 1.0, "max_tokens": 64})
    b = write_eval_run(runs, "b", suites={"math": rows(20, vals)}, prompt_template="cot-v2",
                       params={"temperature": 0.0, "top_p": 1.0, "max_tokens": 256})
    c = write_eval_run(runs, "c", model="OtherModel", suites={"math": rows(20, vals)},
                       params={"temperature": 0.0, "top_p": 1.0, "max_tokens": 64})
    cmp = compare_runs([load_eval_run(p) for p in (a, b, c)])
    text = "\n".join(cmp.warnings)
    assert "params.max_tokens: 64 vs 256" in text
    assert "suites.math.prompt_template" in text
    # a vs c differ only in the model: no warning for that pair
    assert not any(w.startswith(f"{cmp.runs[0].label} vs {cmp.runs[2].label}") for w in cmp.warnings)
    # two runs of the same model get labels that say what differs
    assert cmp.runs[0].label != cmp.runs[1].label
    assert "max_tokens=64" in cmp.runs[0].label or "prompt_template" in cmp.runs[0].label
    # identical scores: every verdict is a tie with p = 1
    assert all(p.result.verdict == "tied (p = 1)" for p in cmp.pairs)


def test_continuous_suite_uses_permutation_and_bootstrap(tmp_path):
    from assay.report.compare import compare_runs
    from assay.report.runs import load_eval_run

    runs = tmp_path / "runs"
    a = write_eval_run(runs, "a", suites={"summ": rows(12, [0.6 + i / 100 for i in range(12)])})
    b = write_eval_run(runs, "b", model="B", suites={"summ": rows(12, [0.4 + i / 100 for i in range(12)])})
    cmp = compare_runs([load_eval_run(a), load_eval_run(b)])
    r = cmp.pairs[0].result
    assert not r.binary and r.test == "sign-flip permutation"
    assert r.diff == pytest.approx(0.2) and r.p == pytest.approx(2 / 4096)
    assert r.verdict == "A better"


def test_claims_consistent_inconsistent_not_testable(two_runs):
    from assay.report.claims import check_claims, load_claims
    from assay.report.compare import compare_runs
    from assay.report.runs import load_eval_run

    cmp = compare_runs([load_eval_run(p) for p in two_runs])
    meta, claims = load_claims(CLAIMS)
    assert meta["model"] == "qwen3-4b-instruct-2507"
    assert [c.value for c in claims[:2]] == [0.95, 0.92]
    checks, warns = check_claims(claims, cmp.runs, meta)
    assert not warns
    by_text = {c.claim.text: c for c in checks}
    assert all(c.run == cmp.runs[0].label for c in checks)  # only the Qwen run is checked
    # measured math 50/60 = 83.3 % [71.9, 90.7]: the claimed 95 % is above it
    assert by_text["math 95 % (20 Q)"].verdict == "inconsistent"
    assert by_text["math 95 % (20 Q)"].claim_low == pytest.approx(0.7639, abs=1e-3)  # the claim's own Wilson
    # ifeval 19/20 = 95 % [76.4, 99.1]: 92 % is inside
    assert by_text["instruction following 92 %"].verdict == "consistent"
    assert by_text["reliable structured JSON output"].verdict == "not testable"


def test_claims_file_errors(tmp_path):
    from assay.errors import DataError
    from assay.report.claims import load_claims

    p = tmp_path / "c.yaml"
    p.write_text("claims:\n  - suite: math\n    valu: 0.9\n")
    with pytest.raises(DataError, match="unknown keys"):
        load_claims(p)
    with pytest.raises(DataError, match="not found"):
        load_claims(tmp_path / "none.yaml")


def test_bench_join_and_pareto(two_runs, tmp_path):
    from assay.report.compare import compare_runs
    from assay.report.html import compare_html
    from assay.report.runs import find_bench_runs, load_eval_run

    bench = tmp_path / "runs" / "bench-smol"
    bench.mkdir()
    (bench / "manifest.json").write_text(json.dumps({"kind": "bench", "model": "SmolLM2-135M-Instruct",
                                                     "engine": "llamacpp", "run_id": "bench-smol"}))
    reqs = [{"workload": "seed", "concurrency": c, "input_tokens": 100, "output_tokens": 64, "ttft_s": t,
             "e2e_s": 1.0, "tpot_s": tp, "itl_s": [tp] * 3, "ok": True, "error": None, "started_at": 0}
            for c, t, tp in ((1, 0.04, 0.008), (1, 0.06, 0.008), (4, 0.5, 0.03))]
    (bench / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reqs))
    (bench / "summary.json").write_text(json.dumps({"memory": {"peak_rss_bytes": 300 * 2**20}}))
    a, b = (load_eval_run(p) for p in two_runs)
    b.bench = find_bench_runs(tmp_path / "runs", b.model)
    assert len(b.bench) == 1
    sp = b.speed()
    assert sp["ttft_s"] == pytest.approx(0.05)  # median at the lowest concurrency, not the queued c=4 ones
    assert sp["decode_tok_s"] == pytest.approx(125.0)
    assert sp["peak_mem_bytes"] == 300 * 2**20
    html = compare_html(compare_runs([a, b]))
    assert 'data-chart="pareto"' in html and 'data-chart="radar"' in html and "300.0 MiB" in html


def test_cli_compare_writes_html_md_json(two_runs, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    out = tmp_path / "cmp"
    res = CliRunner().invoke(app, ["compare", str(two_runs[0]), str(two_runs[1]), "--out", str(out),
                                   "--against-claims", str(CLAIMS), "--runs-dir", str(tmp_path / "runs")],
                           env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "A better" in res.output and "tied (p = " in res.output and "inconsistent" in res.output
    last = json.loads(res.output.strip().splitlines()[-1])
    assert {p["suite"] for p in last["pairs"]} == {"math", "ifeval", "json"}
    html = (out / "compare.html").read_text()
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html) and "<script" not in html
    for chart in ("compare", "forest", "radar"):
        assert f'data-chart="{chart}"' in html
    assert "Where the models disagree" in html and "<mark>42</mark>" in html
    data = json.loads((out / "compare.json").read_text())
    assert data["pairs"][0]["verdict"] in ("A better", "B better") or data["pairs"][0]["verdict"].startswith("tied")
    assert "| model |" in (out / "compare.md").read_text()
    one = CliRunner().invoke(app, ["compare", str(two_runs[0])])
    assert one.exit_code == 1 and "at least two runs" in one.output


def test_cli_single_run_against_claims(two_runs, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    res = CliRunner().invoke(app, ["compare", str(two_runs[0]), "--against-claims", str(CLAIMS), "--out",
                                   str(tmp_path / "c")], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "inconsistent" in res.output and "consistent" in res.output and "not testable" in res.output
    assert json.loads(res.output.strip().splitlines()[-1])["pairs"] == []


def test_bench_summary_groups_are_preferred(tmp_path):
    """The format assay bench writes: summary.groups[] with ttft_s{median}, decode_tok_s; memory.peak_rss/peak_gpu."""
    from assay.report.runs import load_bench_run

    d = tmp_path / "b"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"kind": "bench", "model": "smollm2-135m", "run_id": "b"}))
    (d / "requests.jsonl").write_text("")
    groups = [{"workload": "seed", "concurrency": 4, "ttft_s": {"median": 0.9}, "decode_tok_s": 40.0},
              {"workload": "seed", "concurrency": 1, "ttft_s": {"median": 0.08}, "decode_tok_s": 120.0}]
    (d / "summary.json").write_text(json.dumps({"groups": groups, "memory": {"peak_rss": 250 * 2**20,
                                                                             "peak_gpu": None}}))
    sp = load_bench_run(d).speed()
    assert sp == {"ttft_s": 0.08, "decode_tok_s": 120.0, "peak_mem_bytes": 250 * 2**20}
