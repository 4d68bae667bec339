"""Shipped math problems and the seeded generator: every answer is recomputed here."""

from __future__ import annotations

from collections import Counter

import pytest
import sympy

from assay.common import data_path, read_jsonl
from assay.errors import AssayError
from assay.evals import mathlib
from assay.evals.suites import get_suite

SHIPPED = read_jsonl(data_path("math_problems.jsonl"))
CATEGORIES = {"algebra", "geometry", "probability_combinatorics", "sequences_functions", "word_problems"}


def _exact_equal(answer_tex: str, value) -> bool:
    """Exact sympy check (no float tolerance): the stored LaTeX answer minus the computed value simplifies to 0."""
    parsed = [p for p in mathlib._parse(answer_tex) if isinstance(p, sympy.Basic)]
    assert parsed, f"stored answer {answer_tex!r} does not parse"
    return sympy.simplify(parsed[0] - value) == 0


def test_at_least_100_problems_over_the_five_categories():
    assert len(SHIPPED) >= 100
    counts = Counter(it["category"] for it in SHIPPED)
    assert set(counts) == CATEGORIES
    assert min(counts.values()) >= 20
    assert len({it["id"] for it in SHIPPED}) == len(SHIPPED)
    assert len({it["question"] for it in SHIPPED}) == len(SHIPPED)


@pytest.mark.parametrize("item", SHIPPED, ids=[it["id"] for it in SHIPPED])
def test_shipped_answer_verified_by_computation(item):
    value = mathlib.compute(item["verify"])
    assert _exact_equal(item["answer"], value), (item["answer"], value)
    # and the scorer accepts the computed value written by sympy as a model's boxed answer
    assert mathlib.score_math(f"\\boxed{{{sympy.latex(value)}}}", item["answer"]).value == 1.0


def test_verification_can_fail():
    # negative control: a wrong stored answer is caught by the same check
    item = SHIPPED[0]
    assert not _exact_equal(item["answer"] + "+1", mathlib.compute(item["verify"]))


def test_generator_is_deterministic_and_ids_are_stable():
    a, b, c = mathlib.generate(7, 60), mathlib.generate(7, 60), mathlib.generate(8, 60)
    assert a == b
    assert [x["id"] for x in a] != [x["id"] for x in c]
    assert len({x["id"] for x in a}) == 60
    # an id names the problem, not its position: the same question keeps its id under another seed or size
    longer = {x["id"]: x["question"] for x in mathlib.generate(7, 120)}
    assert all(longer[x["id"]] == x["question"] for x in a)
    kinds = Counter(x["kind"] for x in a)
    assert set(kinds) == {"linear", "quadratic", "fraction", "counting", "arithmetic", "geometric"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_answers_verified_by_computation(seed):
    for item in mathlib.generate(seed, 60):
        assert _exact_equal(item["answer"], mathlib.compute(item["verify"])), item


def test_suite_sources():
    shipped = list(get_suite("math").samples(0, None))
    assert len(shipped) == len(SHIPPED)
    # interleaved: the first five cover all five categories, so --limit 5 is balanced
    assert {s.category for s in shipped[:5]} == CATEGORIES
    gen = list(get_suite("math", source="generated", n_generated=30).samples(3, None))
    assert len(gen) == 30 and all(s.id.startswith("gen-") for s in gen)
    assert [s.id for s in gen] == [s.id for s in get_suite("math", source="generated", n_generated=30).samples(3, None)]
    mixed = list(get_suite("math", source="mixed", n_generated=10).samples(3, 6))
    assert len(mixed) == 6 and sum(s.id.startswith("gen-") for s in mixed) == 3
    assert all(s.target for s in shipped + gen)
    with pytest.raises(AssayError, match="unknown source"):
        get_suite("math", source="web")


def test_data_hash_covers_the_source_option():
    assert get_suite("math").data_hash() != get_suite("math", source="generated").data_hash()
