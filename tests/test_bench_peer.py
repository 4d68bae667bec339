"""Bench output in peer names: vLLM's --goodput syntax, a result JSON with `vllm bench serve`'s keys and definitions
(checked against numpy and, where vLLM is installed, against its own source), and CSV of groups and scorecards."""

from __future__ import annotations

import ast
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from assay.bench.metrics import parse_slo
from assay.bench.peer import METRICS, VLLM_KEYS, groups_csv, scorecard_csv, vllm_result
from assay.bench.run import RequestRecord
from assay.errors import AssayError

FIX = Path(__file__).parent / "fixtures" / "runs_v0"


def test_goodput_accepts_vllm_syntax_and_ours():
    assert parse_slo("ttft:500 tpot:50 e2el:2000") == {"ttft": 0.5, "tpot": 0.05, "e2e": 2.0}
    assert parse_slo("ttft=500,tpot=50") == {"ttft": 0.5, "tpot": 0.05}
    with pytest.raises(AssayError, match="bad --slo item 'latency:5'"):
        parse_slo("latency:5")


def _recs():
    rows = [(0.10, 1.10, 11, [0.1] * 10), (0.20, 0.80, 7, [0.1] * 6), (0.05, 0.45, 5, [0.05, 0.15, 0.1, 0.1]),
            (0.30, 0.30, 1, [])]
    out = [RequestRecord(workload="w", concurrency=2, input_tokens=20, output_tokens=n, ttft_s=t, e2e_s=e, itl_s=itl,
                         ok=True) for t, e, n, itl in rows]
    out.append(RequestRecord(workload="w", concurrency=2, ok=False, error="HTTP 500"))
    return out


def test_vllm_result_uses_vllms_definitions():
    recs = _recs()
    res = vllm_result(recs, {"workload": "w", "concurrency": 2, "rate": None, "duration_s": 2.0},
                      slo={"ttft": 0.25})
    ok = [r for r in recs if r.ok]
    assert (res["completed"], res["failed"], res["total_output_tokens"]) == (4, 1, 24)
    assert res["request_throughput"] == 2.0 and res["request_goodput"] == 1.5  # 3 of 5 meet ttft ≤ 250 ms
    tpot = np.array([(r.e2e_s - r.ttft_s) / (r.output_tokens - 1) for r in ok if r.output_tokens > 1]) * 1000
    assert res["mean_tpot_ms"] == pytest.approx(tpot.mean()) and res["std_tpot_ms"] == pytest.approx(tpot.std())
    itl = np.array([g for r in ok for g in r.itl_s]) * 1000
    assert res["p99_itl_ms"] == pytest.approx(np.percentile(itl, 99))
    assert res["median_ttft_ms"] == pytest.approx(np.median([r.ttft_s * 1000 for r in ok]))
    assert res["mean_e2el_ms"] == pytest.approx(np.mean([r.e2e_s * 1000 for r in ok]))
    for key in VLLM_KEYS:
        assert key in res
    for m in METRICS:
        assert {f"mean_{m}_ms", f"median_{m}_ms", f"std_{m}_ms", f"p99_{m}_ms"} <= set(res)


def _vllm_serve_source() -> Path | None:
    """vLLM's benchmarks/serve.py where assay's launcher finds vLLM (this interpreter, $ASSAY_VLLM_PYTHON, or the
    `assay vllm-install` venv), without importing vLLM."""
    import subprocess

    from assay.engines.vllm import find_vllm
    from assay.errors import PrerequisiteError

    try:
        py = find_vllm()["python"]
    except PrerequisiteError:
        return None
    out = subprocess.run([py, "-c", "import importlib.util as u; print(list(u.find_spec('vllm')"
                                    ".submodule_search_locations)[0])"], capture_output=True, text=True, timeout=60)
    src = Path(out.stdout.strip()) / "benchmarks" / "serve.py"
    return src if out.returncode == 0 and src.is_file() else None


def test_keys_match_vllm_bench_serve_source():
    src = _vllm_serve_source()
    if src is None:
        pytest.skip("vLLM is not installed here (assay vllm-install): the key list is checked against its source "
                    "where it is (CI)")
    tree = ast.parse(src.read_text())
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "duration" for k in node.keys):
            if any(isinstance(k, ast.Constant) and k.value == "failed" for k in node.keys):
                keys |= {k.value for k in node.keys if isinstance(k, ast.Constant)}
    assert keys, "vLLM's result dict was not found in benchmarks/serve.py"
    ours = set(VLLM_KEYS)
    # per-request start/queue times, texts and vLLM's audio rtfx and 1-s output peak are not recorded by assay
    missing = keys - ours - {"start_times", "queue_times", "generated_texts", "rtfx", "max_output_tokens_per_s"}
    assert not missing, missing


def test_groups_and_scorecard_csv():
    bench = json.loads((FIX / "bench-20261202-122049-1036" / "summary.json").read_text())
    rows = list(csv.DictReader(io.StringIO(groups_csv(bench["groups"]))))
    g = bench["groups"][0]
    assert len(rows) == 1 and float(rows[0]["ttft_ms_p50"]) == pytest.approx(g["ttft_s"]["median"] * 1000, abs=1e-3)
    card = json.loads((FIX / "20261202-121957-be70b240" / "summary.json").read_text())
    rows = list(csv.DictReader(io.StringIO(scorecard_csv(card))))
    head = next(r for r in rows if r["suite"] == "math" and r["category"] == "all")
    assert float(head["value"]) == card["suites"]["math"]["value"] and head["n"] == "2"
    assert any(r["suite"] == "translate" and r["metric"] == "bleu:en-fr" for r in rows)  # legacy keys still read


def test_bench_run_writes_the_vllm_named_file(stub, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    s = stub(reply="one two three four", gap_s=0.001)
    res = CliRunner().invoke(app, ["bench", "-e", s.base_url, "--workload", "fixed:8:4", "--requests", "3",
                                   "--goodput", "ttft:5000 e2el:9000", "--format", "csv", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 1 and rows[0]["completed"] == "3" and float(rows[0]["goodput_rps"]) > 0
    run_dir = next(tmp_path.glob("bench-*"))
    v = json.loads((run_dir / "vllm_bench.json").read_text())
    assert v[0]["completed"] == 3 and v[0]["total_output_tokens"] == 12 and v[0]["request_goodput"] > 0
