"""End-to-end bench runs: the CLI against the stub (exact bytes), and one tiny run against the real embedded model."""

from __future__ import annotations

import json

import pytest

from assay.engines.llamacpp_perf import perf_blocks, request_delta
from assay.bench.run import BenchOptions, run_bench

LOG = """\
Llama.generate: 24 prefix-match hit, remaining 70 prompt tokens to eval
llama_perf_context_print:        load time =       0.44 ms
llama_perf_context_print: prompt eval time =     296.56 ms /    70 tokens (    4.24 ms per token,   236.04 tokens per second)
llama_perf_context_print:        eval time =     403.17 ms /    15 runs   (   26.88 ms per token,    37.20 tokens per second)
llama_perf_context_print:       total time =     704.45 ms /    85 tokens
"""


def test_perf_log_parsing():
    blocks = perf_blocks(LOG + LOG.replace("296.56", "100.00").replace("15 runs", "7 runs"))
    assert blocks[0] == {"prompt_ms": 296.56, "prompt_tokens": 70, "eval_ms": 403.17, "eval_runs": 15}
    assert blocks[1]["prompt_ms"] == 100.0 and blocks[1]["eval_runs"] == 7
    d = request_delta(blocks[:1], blocks)
    assert d["prompt_ms"] == 100.0 and not d["cumulative"]  # llama-cpp-python 0.3.x restarts counters per request
    c = request_delta(blocks[:1], blocks, cumulative=True)
    assert c["prompt_ms"] == pytest.approx(100.0 - 296.56)
    assert request_delta(blocks, blocks) is None  # no new block: nothing to compare


def test_bench_cli_against_stub(stub, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    s = stub(reply="one two three four five six", gap_s=0.001)
    res = CliRunner().invoke(app, ["bench", "-e", s.base_url, "--workload", "fixed:12:4", "--requests", "3",
                                   "--concurrency", "1,2", "--slo", "ttft=5000", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    line = json.loads(res.stdout.strip().splitlines()[-1])  # the JSON line is last on stdout
    assert line["kind"] == "bench" and [g["concurrency"] for g in line["groups"]] == [1, 2]
    g = line["groups"][0]
    assert g["completed"] == 3 and g["output_tokens"] == 4 and g["goodput_rps"] > 0
    run_dir = tmp_path / line["run_id"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["kind"] == "bench" and manifest["run_id"] == line["run_id"]
    assert manifest["workload"]["spec"] == "fixed:12:4"
    reqs = [json.loads(x) for x in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert len(reqs) == 6 and all(r["ok"] and r["output_tokens"] == 4 for r in reqs)
    # the stub counts words as tokens: prompts were sized to 12 tokens as the server counts them; the second level's
    # requests reuse them with a one-word "N." prefix that keeps every prompt unique
    assert [r["input_tokens"] for r in reqs] == [12, 12, 12, 13, 13, 13]
    assert len({json.dumps(r["messages"]) for r in s.requests if r.get("stream")}) == 8
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"groups", "memory", "roofline", "notes"} <= set(summary)
    # forcing the length: the stub saw ignore_eos and min_tokens on benchmark requests
    bench_reqs = [r for r in s.requests if r.get("stream")]
    assert bench_reqs and all(r["ignore_eos"] and r["min_tokens"] == 4 for r in bench_reqs)
    assert all(r["stream_options"] == {"include_usage": True} for r in bench_reqs)


def test_bench_cli_bad_options_are_one_line_errors(stub):
    from typer.testing import CliRunner

    from assay.cli import app

    s = stub()
    for args in (["--workload", "fixed:x"], ["--concurrency", "0"], ["--slo", "speed=1"], ["--rate", "-1"]):
        res = CliRunner().invoke(app, ["bench", "-e", s.base_url, *args])
        assert res.exit_code == 1, (args, res.output)


@pytest.mark.engine
def test_tiny_bench_on_embedded_model(embedded, tmp_path):
    run = run_bench([embedded], BenchOptions(workloads="fixed:40:8", requests=2, warmup=0, out=tmp_path))
    files = {p.name for p in run.run_dir.iterdir()}
    assert files == {"manifest.json", "requests.jsonl", "summary.json", "vllm_bench.json"}
    reqs = [json.loads(x) for x in (run.run_dir / "requests.jsonl").read_text().splitlines()]
    assert len(reqs) == 2 and all(r["ok"] for r in reqs), reqs
    for r in reqs:
        assert r["output_tokens"] == 8  # forced with min_tokens (llama-cpp-python) despite EOS
        assert abs(r["input_tokens"] - 40) <= 2  # sized with the server's tokenizer, template included
        assert r["ttft_s"] > 0 and r["e2e_s"] >= r["ttft_s"] and r["tpot_s"] > 0
        assert len(r["itl_s"]) >= 1 and r["tokens_source"] == "max_tokens" and r["finish_reason"] == "length"
    m = run.manifest
    assert m["engine"] == "llama.cpp" and m["engine_version"] and m["machine"]["bandwidth"]["bytes_per_s"] > 1e8
    roof = run.summary["roofline"]
    assert roof["weight_bytes"] > 50e6 and roof["kv_bytes_per_token"] == 30 * 3 * 64 * 2 * 2
    w = roof["per_workload"][0]
    assert w["bound_tok_s"] > 0 and 0 < w["percent"]
    assert run.summary["memory"]["peak_rss"] > 50e6  # the engine holds at least its weights
    cc = run.summary["crosscheck"]
    assert cc and not cc.get("error"), cc
    assert cc["engine"]["eval_runs"] >= 1 and cc["engine"]["prompt_tokens_evaluated"] >= 1
    assert cc["ours"]["ttft_ms"] > 0


def test_self_test_small():
    from assay.bench.selftest import self_test

    res = self_test(n=60, concurrency=8, sdk=False)
    lean = res["lean"]
    assert lean["ok"] == 60 and lean["chunks_per_req"] == 16 and lean["usage_tokens_ok"]
    assert lean["client_cpu_ms_per_req"] > 0 and lean["req_per_s"] > 0
    assert set(res) >= {"meets_target", "wall_meets_target", "load_avg", "pinned"}
