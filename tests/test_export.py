"""Peer formats: a run exported as lm-eval results + samples and as Inspect logs (read back by inspect_ai's own
reader), and lm-eval samples files compared against runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli import app

RUN = Path(__file__).parent / "fixtures" / "runs_v0" / "20261202-121957-be70b240"


@pytest.fixture
def run_dir(tmp_path) -> Path:
    d = tmp_path / "runs" / RUN.name
    shutil.copytree(RUN, d)
    return d


def test_lm_eval_export_fields_and_hashes(run_dir, tmp_path):
    from assay.report.export import doc_hash, to_lm_eval
    from assay.report.runs import load_eval_run

    run = load_eval_run(run_dir)
    paths = to_lm_eval(run, tmp_path / "x")
    res = json.loads(paths[0].read_text())
    for key in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config"):
        assert key in res
    math = res["results"]["math"]
    assert math["accuracy,none"] == run.suites["math"]["value"] and isinstance(math["accuracy_stderr,none"], float)
    samples = [json.loads(x) for x in next(p for p in paths if p.name.startswith("samples_math_")).read_text()
               .splitlines()]
    assert len(samples) == run.suites["math"]["total"]
    for s in samples:
        assert {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "doc_hash", "prompt_hash",
                "target_hash"} <= set(s)
        assert s["doc_hash"] == doc_hash(s["doc"]) and len(s["doc_hash"]) == 64
        assert isinstance(s["arguments"]["gen_args_0"]["arg_0"], str) and s["accuracy"] in (0.0, 1.0)


def test_inspect_log_reads_back_with_inspect_ai(run_dir, tmp_path):
    inspect_log = pytest.importorskip("inspect_ai.log", reason="inspect-ai is in the test extras")
    res = CliRunner().invoke(app, ["export", str(run_dir), "--format", "inspect", "--out", str(tmp_path / "logs")])
    assert res.exit_code == 0, res.output
    logs = sorted((tmp_path / "logs").glob("*.json"))
    assert len(logs) == 7  # one per suite
    log = inspect_log.read_eval_log(str(next(p for p in logs if p.name.endswith("_math.json"))))
    assert log.eval.task == "math" and log.status == "success" and len(log.samples) == 2
    score = log.results.scores[0]
    card = json.loads((run_dir / "summary.json").read_text())["suites"]["math"]
    assert score.metrics["accuracy"].value == card["value"] and score.metrics["ci_high"].value == card["high"]
    s0 = log.samples[0]
    assert s0.output.completion and s0.scores["assay"].value in (0.0, 1.0) and s0.messages[-1].role == "assistant"


def test_compare_a_run_with_its_lm_eval_export_pairs_every_sample(run_dir, tmp_path):
    out = tmp_path / "x"
    res = CliRunner().invoke(app, ["export", str(run_dir), "--format", "lm-eval", "--out", str(out)])
    assert res.exit_code == 0, res.output
    samples = next(out.glob("samples_json_*.jsonl"))
    res = CliRunner().invoke(app, ["compare", str(run_dir), str(samples), "--out", str(tmp_path / "cmp")],
                             env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    pairs = json.loads(res.output.strip().splitlines()[-1])["pairs"]
    assert [(p["suite"], p["n"], p["diff"]) for p in pairs] == [("json", 2, 0.0)]


def test_lm_eval_file_of_other_docs_is_compared_unpaired_with_a_warning(run_dir, tmp_path):
    other = tmp_path / "samples_json_2026-01-01T00-00-00.jsonl"
    other.write_text("".join(json.dumps({"doc_id": i, "doc": {"q": f"other {i}"}, "target": "x", "resps": [["x"]],
                                         "filtered_resps": ["x"], "doc_hash": f"h{i}", "metrics": ["acc"],
                                         "acc": 1.0}) + "\n" for i in range(3)))
    res = CliRunner().invoke(app, ["compare", str(run_dir), str(other), "--out", str(tmp_path / "cmp")],
                             env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "shares no doc_hash" in res.output
    bad = tmp_path / "samples_x_1.jsonl"
    bad.write_text(json.dumps({"doc_id": 0, "metrics": ["acc"], "acc": "yes"}) + "\n")
    res = CliRunner().invoke(app, ["compare", str(run_dir), str(bad)])
    assert res.exit_code != 0 and "no numeric 'acc'" in res.output and "Traceback" not in res.output
