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


def test_lm_eval_export_loads_in_lm_evals_own_schema_table_and_file_finders(run_dir, tmp_path, lm_eval_readers):
    """Read by lm-eval's own code from the registry package: its result schema (``EvalResults`` / ``SampleResult``
    TypedDicts, validated strictly with pydantic), its ``TaskConfig`` built from each exported config, its results
    table (``make_table``, what ``lm_eval`` prints) and its file finders (how its tools find results and samples)."""
    from pydantic import TypeAdapter, ValidationError

    from lm_eval import result_schema, utils
    from lm_eval.config.task import TaskConfig

    out = tmp_path / "lm"
    res = CliRunner().invoke(app, ["export", str(run_dir), "--format", "lm-eval", "--out", str(out)])
    assert res.exit_code == 0, res.output
    names = sorted(str(p) for p in out.iterdir())
    (results_file,) = utils.get_results_filenames(names)
    samples_files = utils.get_sample_results_filenames(names)
    card = json.loads((run_dir / "summary.json").read_text())["suites"]
    assert sorted(utils.get_file_task_name(Path(f).name) for f in samples_files) == sorted(card)
    assert utils.get_latest_filename(samples_files) in samples_files

    results = json.loads(Path(results_file).read_text())
    # ``configs`` is checked by lm-eval's TaskConfig instead: the TypedDict's value annotation (str | bool | None) is
    # narrower than the configs lm-eval itself writes (num_fewshot is an int, metric_list a list)
    TypeAdapter(result_schema.EvalResults).validate_python({k: v for k, v in results.items() if k != "configs"},
                                                           strict=True)
    for task, cfg in results["configs"].items():
        tc = TaskConfig(**cfg)
        assert tc.task == task and tc.num_fewshot == 0 and tc.output_type == "generate_until"
    table = utils.make_table(results)
    for task, s in card.items():
        metric = next(k for k in results["results"][task] if k.endswith(",none") and "_stderr" not in k)
        row = next(line for line in table.splitlines() if line.startswith(f"|{task}"))
        assert metric.split(",")[0] in row and f"{s['value']:.4f}" in row and "±" in row

    adapter = TypeAdapter(result_schema.SampleResult)
    rows = [json.loads(line) for f in samples_files for line in Path(f).read_text().splitlines()]
    assert len(rows) == sum(s["total"] for s in card.values())
    for row in rows:
        adapter.validate_python(row, strict=True)
        assert isinstance(row["target"], str) and row["truncated"] in (0.0, 1.0)
    assert sum(r["truncated"] for r in rows) == sum(s.get("truncated", 0) for s in card.values()) > 0
    # the check has teeth: what the exporter wrote before it met this schema is refused
    with pytest.raises(ValidationError):
        adapter.validate_python({**rows[0], "target": None}, strict=True)
    with pytest.raises(ValidationError):
        adapter.validate_python({**rows[0], "assay": {"status": "ok"}}, strict=True)


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


# Recorded by `python benchmarks/peer_lm_eval.py --task gsm8k|ifeval --limit 12 --keep tests/fixtures/lm_eval_peer`:
# the same llama.cpp server answered assay and lm-eval 0.4.13 (local-chat-completions); the samples files are
# lm-eval's own output, renamed from its task name to the suite's.
PEER = Path(__file__).parent / "fixtures" / "lm_eval_peer"


@pytest.mark.parametrize("task, filters", [("gsm8k", ["strict-match", "flexible-extract"]), ("ifeval", ["none"])])
def test_compare_pairs_a_run_with_lm_evals_own_samples_file_by_document_text(task, filters, tmp_path):
    from assay.report.export import load_lm_eval_samples

    (samples,) = PEER.glob(f"samples_{task}_*.jsonl")
    (run,) = [d for d in PEER.iterdir() if d.is_dir() and task in json.loads((d / "summary.json").read_text())["suites"]]
    rows = [json.loads(x) for x in samples.read_text().splitlines()]
    assert sorted({r["filter"] for r in rows}) == sorted(filters) and len(rows) == 12 * len(filters)
    # lm-eval's doc is the dataset row, so no doc_hash is shared with assay's records: pairing is by the document text
    for f in filters:
        res = CliRunner().invoke(app, ["compare", str(run), str(samples), "--lm-eval-filter", f,
                                       "--out", str(tmp_path / f)], env={"COLUMNS": "250"})
        assert res.exit_code == 0, res.output
        assert "shares no doc_hash" not in res.output
        (pair,) = json.loads(res.output.strip().splitlines()[-1])["pairs"]
        imported = load_lm_eval_samples(samples, lm_filter=f)
        theirs = sum(r.value for r in imported.records) / 12
        assert pair["suite"] == task and pair["n"] == 12
        ours = json.loads((run / "summary.json").read_text())["suites"][task]["value"]
        assert pytest.approx(pair["diff"], abs=1e-9) in (theirs - ours, ours - theirs)
    imported = load_lm_eval_samples(samples)
    assert len(imported.records) == 12 and len({r.sample_id for r in imported.records}) == 12  # one filter read
    if len(filters) > 1:
        assert any("flexible-extract" in n for n in imported.notes)
        res = CliRunner().invoke(app, ["compare", str(run), str(samples), "--lm-eval-filter", "nope"])
        assert res.exit_code != 0 and "has no filter 'nope'" in res.output and "strict-match" in res.output
