"""`assay gate`: exit codes and wording on constructed runs whose answer is known, the margin syntax, and (engine)
the embedded model against itself and against a damaged copy of its weights."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from helpers import rows, write_eval_run
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import AssayError
from assay.flows.gate import Margins, gate_runs, parse_margin, parse_margins, to_markdown
from assay.stats.gate import Margin


def _runs(tmp_path, base_vals, cand_vals, suite="math"):
    d = tmp_path / "runs"
    a = write_eval_run(d, "base", suites={suite: rows(len(base_vals), base_vals)})
    b = write_eval_run(d, "cand", model="SmolLM2-135M-Instruct-Q2_K", suites={suite: rows(len(cand_vals), cand_vals)})
    return a, b


def _gate(*args):
    res = CliRunner().invoke(app, ["gate", *map(str, args)], env={"COLUMNS": "200"})
    return res, json.loads(res.stdout.strip().splitlines()[-1])


def test_margin_syntax():
    assert parse_margin("0.05") == Margin(0.05) and parse_margin("5%") == Margin(0.05, relative=True)
    m = parse_margins(["math=0.02,3%", "ifeval=10%"])
    assert m.of("math") == Margin(0.02) and m.of("ifeval") == Margin(0.1, True) and m.of("json") == Margin(0.03, True)
    for bad in ("five", "-0.1", "100%"):
        with pytest.raises(AssayError, match="--margin"):
            parse_margin(bad)


def test_identical_runs_are_never_worse(tmp_path):
    rng = random.Random(1)
    vals = [int(rng.random() < 0.6) for _ in range(200)]
    a, b = _runs(tmp_path, vals, vals)
    rep = gate_runs(a, b, Margins(Margin(0.05)))
    assert rep.verdict == "non_inferior" and rep.exit_code == 0  # 200 pairs, no discordant one: clearly within 5 pts
    res, line = _gate(a, b, "--margin", "0.05")
    assert res.exit_code == 0 and line["verdict"] == "non_inferior" and line["suites"]["math"]["n"] == 200
    assert "✅ non-inferior" in res.stdout and "| math | 200 |" in res.stdout


def test_a_clearly_worse_candidate_exits_1(tmp_path):
    base = [1] * 150 + [0] * 50
    cand = [1] * 90 + [0] * 110  # 75 % -> 45 %, every lost answer a base success
    a, b = _runs(tmp_path, base, cand)
    res, line = _gate(a, b, "--margin", "0.05", "--summary", tmp_path / "gate.md")
    assert res.exit_code == 1 and line["verdict"] == "worse"
    s = line["suites"]["math"]
    assert s["high"] < -0.05 and s["diff"] == pytest.approx(-0.30)
    md = (tmp_path / "gate.md").read_text()
    assert md.startswith("### assay gate: ❌ worse (exit 1)") and "| math | 200 | 75.0 | 45.0 | -30.0" in md


def test_too_few_samples_exit_2_with_how_many_more(tmp_path):
    base = [1, 0, 1, 1, 0, 1, 0, 1]
    cand = [1, 0, 0, 1, 0, 1, 1, 1]
    a, b = _runs(tmp_path, base, cand)
    res, line = _gate(a, b)
    assert res.exit_code == 2 and line["verdict"] == "undecided"
    s = line["suites"]["math"]
    assert s["low"] < -0.05 < s["high"] and s["more_samples"] and s["more_samples"] > 0
    assert f"~{s['more_samples']} more samples would likely decide" in res.stdout


def test_relative_margin_reads_against_the_base_score(tmp_path):
    base = [1] * 160 + [0] * 40  # 80 %
    cand = [1] * 156 + [0] * 44  # 78 %: 2.5 % of the base worse
    a, b = _runs(tmp_path, base, cand)
    assert gate_runs(a, b, parse_margins(["10%"])).verdict == "non_inferior"  # may lose up to 8 pts
    assert gate_runs(a, b, parse_margins(["0.001"])).verdict != "non_inferior"  # may lose 0.1 pt: not shown


def test_bad_inputs_are_one_line_errors(tmp_path):
    a, _ = _runs(tmp_path, [1, 0], [1, 0])
    res = CliRunner().invoke(app, ["gate", str(a), "http://127.0.0.1:9"])
    assert res.exit_code == 1 and "is a run and the other is not" in res.output
    res = CliRunner().invoke(app, ["gate", str(a), str(a), "--until-decided"])
    assert res.exit_code == 1 and "--until-decided samples models" in res.output


def test_markdown_names_both_sides_and_the_runs(tmp_path):
    a, b = _runs(tmp_path, [1] * 40, [1] * 40)
    md = to_markdown(gate_runs(a, b, Margins()))
    assert "candidate `SmolLM2-135M-Instruct-Q2_K` vs base `SmolLM2-135M-Instruct`" in md and str(a) in md


@pytest.mark.engine
def test_the_model_against_itself_reuses_answers_and_is_never_worse(tmp_path):
    """Itself: exit 0 or 2, never 1 (the candidate's answers are the same model's: the same run); a second gate with
    a larger --limit asks only the new questions, the others come from the answer cache (counted in the manifest)."""
    common = ["--suite", "json", "--max-tokens", "128", "--out", tmp_path / "runs", "--threads", "1"]
    res, line = _gate("smollm2-135m", "smollm2-135m", "--limit", "20", *common)
    assert res.exit_code in (0, 2), res.output
    assert line["suites"]["json"]["n"] == 20 and line["suites"]["json"]["diff"] == 0.0
    res, line = _gate("smollm2-135m", "smollm2-135m", "--limit", "40", *common)
    assert res.exit_code in (0, 2), res.output
    # the same model, sampling and samples: one run, which the candidate's side resumes (nothing left to ask)
    assert line["base_run"] == line["candidate_run"]
    sessions = json.loads((Path(line["base_run"]) / "manifest.json").read_text())["sessions"]
    assert [(s["samples"], s["from_cache"]) for s in sessions] == [(40, 20), (0, 0)]  # 20 of 40 asked before


@pytest.mark.engine
def test_a_damaged_candidate_exits_1_before_the_budget_ends(tmp_path, stub):
    """The candidate is a broken server (it answers "banana" to everything): --until-decided says "worse" and stops
    before the budget, looking at the confidence sequence after each batch."""
    broken = stub(reply="banana", model="broken")
    # sentence chrF per sample (continuous, ~0.13 for the 135M model, ~0.02 for "banana"); margin 0: is it any
    # worse? Measured on AMD EPYC: decided at n = 67 (the confidence sequence is wide for a small effect on a
    # [-1, 1] difference; a fixed design would have needed ~20 here but must fix n in advance)
    res, line = _gate("smollm2-135m", broken.base_url, "--suite", "translate", "--limit", "150", "--until-decided",
                      "--batch", "25", "--margin", "0", "--max-tokens", "96", "--out", tmp_path / "runs",
                      "--threads", "1")
    assert res.exit_code == 1, res.output
    s = line["suites"]["translate"]
    assert s["sequential"] and s["verdict"] == "worse" and s["decided_at"] is not None and s["n"] < 150
