"""GSM8K / MATH-500 / AIME 2025 loaders on the real public files (skipped when ../shared is absent)."""

from __future__ import annotations

import json

import pytest

from assay.errors import DataError
from assay.evals import mathlib
from assay.evals.suites import get_suite


def test_gsm8k_real_file_and_reference_self_verifies(shared_benchmarks):
    suite = get_suite("gsm8k", data=str(shared_benchmarks / "gsm8k_test.jsonl"))
    items = list(suite.samples(0, None))
    assert len(items) == 1319
    assert items[0].target == "18" and "Janet" in items[0].input["question"]
    assert len({s.id for s in items}) == 1319
    # every reference (the number after ####) must read back through the extractor and equal itself
    bad = [(s.id, s.target) for s in items if suite.score(f"Reasoning...\n\\boxed{{{s.target}}}", s).value != 1.0]
    assert bad == []
    # ...and a GSM8K-style worked answer ending in "#### n" also parses
    raw = json.loads((shared_benchmarks / "gsm8k_test.jsonl").open().readline())
    assert suite.score(raw["answer"], items[0]).value == 1.0
    assert suite.score("\\boxed{19}", items[0]).value == 0.0


def test_gsm8k_few_shot_exemplars_are_turns_and_never_scored(shared_benchmarks):
    data = str(shared_benchmarks / "gsm8k_test.jsonl")
    zero, five = get_suite("gsm8k", data=data), get_suite("gsm8k", data=data, shots=5)
    ids0 = [s.id for s in zero.samples(0, None)]
    ids5 = [s.id for s in five.samples(0, None)]
    assert ids5 == ids0[5:] and len(ids5) == 1314  # the five exemplars leave the scored set
    first = next(five.samples(0, 1))
    msgs = five.messages(first)
    assert [m["role"] for m in msgs] == ["user", "assistant"] * 5 + ["user"]
    assert msgs[0]["content"].startswith("Question: Janet") and msgs[1]["content"].endswith("#### 18")
    assert msgs[-1]["content"] == f"Question: {first.input['question']}\nAnswer:" and "boxed" not in msgs[-1]["content"]
    assert all(m["content"] != msgs[-1]["content"] for m in msgs[:-1])
    # the exemplar answers' own "#### n" form is what the scorer reads
    assert five.score(msgs[3]["content"].replace("#### ", "#### 1"), first).value == 0.0
    assert five.score("... so she has\n#### " + first.target, first).value == 1.0
    assert five.prompt_template != zero.prompt_template  # part of the fingerprint: no resume across shot counts
    assert zero.messages(next(zero.samples(0, 1)))[0]["content"].startswith("Solve the following")


def test_gsm8k_shots_option_is_validated_on_the_cli(shared_benchmarks, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    res = CliRunner().invoke(app, ["eval", "--suite", "gsm8k", "--data", str(shared_benchmarks / "gsm8k_test.jsonl"),
                                   "--suite-opt", "shots=five", "--endpoint", "http://127.0.0.1:9",
                                   "--out", str(tmp_path)])
    assert res.exit_code != 0 and "shots" in res.output and "integer" in res.output
    assert "Traceback" not in res.output


def test_math500_real_file(shared_benchmarks):
    suite = get_suite("math500", data=str(shared_benchmarks / "math500_test.jsonl"))
    items = list(suite.samples(0, None))
    assert len(items) == 500 and len({s.id for s in items}) == 500
    assert {s.category for s in items} >= {"algebra", "geometry", "precalculus", "counting_probability"}
    assert all(s.meta["level"] in (1, 2, 3, 4, 5) for s in items)
    bad = [(s.id, s.target) for s in items if suite.score(f"\\boxed{{{s.target}}}", s).value != 1.0]
    assert bad == []  # all 500 reference answers (matrices, intervals, \text{}, units) self-verify
    assert len(list(suite.samples(0, 7))) == 7


def test_aime_loader_accepts_both_public_layouts(tmp_path):
    a = tmp_path / "aime_mathai.jsonl"
    a.write_text(json.dumps({"id": "0", "problem": "Find 3+4.", "answer": "7"}) + "\n"
                 + json.dumps({"id": "1", "problem": "Find 2^3.", "answer": "8"}) + "\n")
    b = tmp_path / "aime_oc.jsonl"
    b.write_text(json.dumps({"question": "Find 3+4.", "answer": "7"}) + "\n")
    sa = list(get_suite("aime2025", data=str(a)).samples(0, None))
    sb = list(get_suite("aime2025", data=str(b)).samples(0, None))
    assert [s.id for s in sa] == ["aime2025/0", "aime2025/1"] and sa[1].target == "8"
    assert sb[0].input["question"] == "Find 3+4." and sb[0].id == "aime2025/1"
    assert get_suite("aime2025", data=str(a)).score("\\boxed{7}", sa[0]).value == 1.0


@pytest.mark.parametrize("name", ["gsm8k", "math500", "aime2025"])
def test_no_path_and_no_cache_is_a_one_line_error(name):
    suite = get_suite(name)
    with pytest.raises(DataError) as e:
        list(suite.samples(0, 1))
    msg = str(e.value)
    assert "--data PATH" in msg and "https://" in msg and "\n" not in msg


def test_cached_copy_is_used(tmp_path):
    cache = mathlib.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "gsm8k_test.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "so 2\n#### 2"}) + "\n")
    items = list(get_suite("gsm8k").samples(0, None))
    assert [(s.id, s.target) for s in items] == [("gsm8k-0000", "2")]


def test_download_failure_is_quick_and_clear(monkeypatch):
    from assay.evals.suites import gsm8k

    monkeypatch.setattr(gsm8k.GSM8K, "url", "http://127.0.0.1:9/test.jsonl")  # discard port: refused at once
    with pytest.raises(DataError, match="could not download"):
        list(get_suite("gsm8k", download=True).samples(0, 1))


def test_bad_files(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match="does not exist"):
        list(get_suite("gsm8k", data=str(missing)).samples(0, 1))
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(DataError, match="no question field"):
        list(get_suite("gsm8k", data=str(wrong)).samples(0, 1))
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(DataError, match="broken.jsonl:1"):
        list(get_suite("math500", data=str(broken)).samples(0, 1))
