"""logic suite: generator/solver guarantees and the lenient-but-exact grid scorer."""

from __future__ import annotations

import itertools
import json

import pytest

from assay.evals import zebra
from assay.evals.suites import get_suite
from assay.evals.suites.logic import score_grid
from assay.errors import AssayError
from helpers import suite_metrics


def brute_force_count(p: zebra.Puzzle) -> int:
    """Independent check of the solver: enumerate every assignment (only feasible for small grids)."""
    attrs = list(p.attributes)
    total = 0
    for perms in itertools.product(*(itertools.permutations(p.attributes[a]) for a in attrs)):
        where = {(a, v): h + 1 for a, perm in zip(attrs, perms) for h, v in enumerate(perm)}
        if all(c.holds(where) for c in p.clues):
            total += 1
    return total


SIZES = [(n, m) for n in range(2, 7) for m in range(2, 7)]


@pytest.mark.parametrize("n,m", SIZES)
def test_every_generated_puzzle_has_exactly_one_solution_and_the_solver_finds_it(n, m):
    for seed in range(4 if n * m <= 16 else 2):
        p = zebra.generate(n, m, seed=seed)
        where = {(a, v): h for h, row in p.solution.items() for a, v in row.items()}
        assert all(c.holds(where) for c in p.clues), "a clue is false for the planted solution"
        assert zebra.count_solutions(n, p.attributes, p.clues, limit=5) == 1
        assert zebra.solve(n, p.attributes, p.clues) == p.solution
        # minimality: dropping any single clue admits a second solution
        for k in range(len(p.clues)):
            rest = p.clues[:k] + p.clues[k + 1:]
            assert zebra.count_solutions(n, p.attributes, rest) > 1, f"clue {k} is redundant"


@pytest.mark.parametrize("n,m", [(2, 2), (2, 3), (3, 2), (3, 3), (2, 4), (4, 2)])
def test_solver_agrees_with_brute_force(n, m):
    for seed in range(6):
        p = zebra.generate(n, m, seed=seed)
        assert brute_force_count(p) == 1
        # and on clue subsets (0, 1 or many solutions) the counts agree too
        for cut in range(0, len(p.clues), 2):
            sub = zebra.Puzzle(p.n, p.attributes, p.solution, p.clues[:cut])
            assert zebra.count_solutions(n, p.attributes, sub.clues, limit=10**6) == brute_force_count(sub)


def test_solver_detects_contradiction():
    attrs = {"Name": ["Alice", "Bob"], "Pet": ["cat", "dog"]}
    clues = [zebra.Clue("position", ("Name", "Alice"), house=1), zebra.Clue("same", ("Name", "Alice"), ("Pet", "cat")),
             zebra.Clue("position", ("Pet", "cat"), house=2)]
    assert zebra.count_solutions(2, attrs, clues) == 0
    assert zebra.solve(2, attrs, clues) is None


def test_generation_is_seeded_and_covers_clue_kinds():
    a, b = zebra.generate(5, 5, seed=3), zebra.generate(5, 5, seed=3)
    assert a.to_json() == b.to_json()
    assert zebra.generate(5, 5, seed=4).to_json() != a.to_json()
    kinds = {c.kind for s in range(20) for c in zebra.generate(4, 4, seed=s).clues}
    assert kinds == set(zebra.KINDS)


def test_buckets_follow_search_space():
    assert zebra.bucket(2, 2) == "small" and zebra.bucket(3, 3) == "small"  # 4, 216
    assert zebra.bucket(4, 2) == "small"  # 24^2 = 576
    assert zebra.bucket(4, 3) == "medium" and zebra.bucket(4, 4) == "medium"  # 13824, 331776
    assert zebra.bucket(4, 5) == "large"  # 24^5 = 7.96e6
    assert zebra.bucket(5, 5) == "x-large" and zebra.bucket(6, 6) == "x-large"


# ------------------------------------------------------------------------------------------------------- scorer

ATTRS = {"Name": ["Alice", "Bob", "Carol"], "Pet": ["cat", "dog", "fish"]}
TARGET = {"1": {"Name": "Bob", "Pet": "fish"}, "2": {"Name": "Alice", "Pet": "cat"},
          "3": {"Name": "Carol", "Pet": "dog"}}
GOOD = json.dumps({"House 1": {"Name": "Bob", "Pet": "fish"}, "House 2": {"Name": "Alice", "Pet": "cat"},
                   "House 3": {"Name": "Carol", "Pet": "dog"}})


def s(text):
    return score_grid(text, TARGET, ATTRS)


@pytest.mark.parametrize("text", [
    GOOD,
    f"Let me think. Bob has the fish.\n```json\n{GOOD}\n```",
    # houses and attributes reordered, case and whitespace changed
    '{"house 3": {"pet": " DOG ", "name": "carol"}, "HOUSE 1": {"NAME": "bob", "Pet": "Fish"},'
    ' "House 2": {"Pet": "cat", "Name": "Alice"}}',
    '{"solution": {"1": {"Name": "Bob", "Pet": "fish"}, "2": {"Name": "Alice", "Pet": "cat"},'
    ' "3": {"Name": "Carol", "Pet": "dog"}}}',
    # a list of rows, with and without house numbers
    '[{"House": 2, "Name": "Alice", "Pet": "cat"}, {"House": 1, "Name": "Bob", "Pet": "fish"},'
    ' {"House": 3, "Name": "Carol", "Pet": "dog"}]',
    '[{"Name": "Bob", "Pet": "fish"}, {"Name": "Alice", "Pet": "cat"}, {"Name": "Carol", "Pet": "dog"}]',
    # Python-dict quoting and a draft answer first: the last grid wins
    "Draft: {'House 1': {'Name': 'Alice', 'Pet': 'cat'}}\nFinal: {'House 1': {'Name': 'Bob', 'Pet': 'fish'},"
    " 'House 2': {'Name': 'Alice', 'Pet': 'cat'}, 'House 3': {'Name': 'Carol', 'Pet': 'dog'}}",
    # trailing comma, house_1 keys
    '{"house_1": {"Name": "Bob", "Pet": "fish",}, "house_2": {"Name": "Alice", "Pet": "cat"},'
    ' "house_3": {"Name": "Carol", "Pet": "dog"},}',
])
def test_scorer_accepts_correct_answers_in_many_layouts(text):
    sc = s(text)
    assert sc.parsed and sc.value == 1.0, sc
    assert sc.extra["cell_accuracy"] == 1.0


def test_scorer_partial_and_wrong_cells():
    partial = '{"House 1": {"Name": "Bob", "Pet": "fish"}, "House 2": {"Name": "Alice"}}'
    sc = s(partial)
    assert sc.parsed and sc.value == 0.0
    assert sc.extra["correct_cells"] == 3 and sc.extra["cell_accuracy"] == pytest.approx(0.5)
    assert "3 missing" in sc.reason
    swapped = GOOD.replace('"fish"', '"TMP"').replace('"cat"', '"fish"').replace('"TMP"', '"cat"')
    sc = s(swapped)
    assert sc.value == 0.0 and sc.extra["correct_cells"] == 4
    # an extra house 4 and unknown attributes are ignored, not credited
    extra = json.loads(GOOD)
    extra["House 4"] = {"Name": "Dan"}
    extra["House 1"]["Color"] = "red"
    assert s(json.dumps(extra)).value == 1.0


def test_the_stated_json_fence_beats_a_draft_grid_before_it():
    draft = '{"House 1": {"Name": "Alice", "Pet": "cat"}}'
    assert s(f"first guess {draft}\n```json\n{GOOD}\n```").value == 1.0
    # ...but a later fenced block beats an earlier fenced one
    assert s(f"```json\n{GOOD}\n```\nactually:\n```json\n{draft}\n```").value == 0.0


@pytest.mark.parametrize("text", ["", "I think Bob owns the fish.", "{not json at all", '{"Name": "Bob"}',
                                  "```json\n```", '["Bob", "Alice", "Carol"]', '{"House 1": "Bob"}'])
def test_scorer_malformed_is_unparsed_not_a_silent_zero(text):
    sc = s(text)
    assert sc.parsed is False and sc.value == 0.0
    assert sc.extra["cell_accuracy"] == 0.0


def test_values_must_match_exactly_after_normalisation():
    near = GOOD.replace('"Carol"', '"Caroline"')
    sc = s(near)
    assert sc.value == 0.0 and sc.extra["correct_cells"] == 5


# ------------------------------------------------------------------------------------------------------- suite

def test_suite_samples_messages_and_scores_its_own_targets():
    suite = get_suite("logic")
    items = list(suite.samples(seed=0, limit=None))
    assert len(items) == 40 and len({x.id for x in items}) == 40
    cats = {x.category for x in items}
    assert cats == {"small", "medium", "large", "x-large"}
    # limit keeps a mix (round-robin over sizes), small first
    first = list(suite.samples(seed=0, limit=10))
    assert len({x.meta["size"] for x in first}) == 10
    x = first[0]
    msg = suite.messages(x)[0]["content"]
    assert "House 1" in msg and all(c in msg for c in x.input["clues"])
    answer = json.dumps({f"House {h}": row for h, row in x.target.items()})
    assert suite.score(answer, x).value == 1.0
    # same seed -> same samples; different seed -> different puzzles
    assert [y.target for y in suite.samples(0, 5)] == [y.target for y in suite.samples(0, 5)]
    assert [y.input for y in suite.samples(1, 5)] != [y.input for y in suite.samples(0, 5)]


def test_sizes_option_andsuite_metrics():
    suite = get_suite("logic", sizes="2x2:3,6x6:1")
    items = list(suite.samples(seed=5, limit=None))
    assert [x.meta["size"] for x in items] == ["2x2", "6x6", "2x2", "2x2"]
    with pytest.raises(AssayError, match="bad logic puzzle size"):
        get_suite("logic", sizes="9x9")
    recs = []
    for x, text in zip(items, ["", "x", "y", "z"]):
        answer = json.dumps({f"House {h}": row for h, row in x.target.items()})
        sc = suite.score(answer if text else "no idea", x)
        recs.append({"category": x.category, "status": "ok" if sc.parsed else "unparsed", "score": sc.to_dict()})
    recs.append({"category": "small", "status": "error", "score": None})
    agg = suite_metrics(suite, recs)
    assert agg["cell_accuracy"]["n"] == 4 and agg["cell_accuracy"]["value"] == pytest.approx(0.75)
    assert agg["cell_accuracy[x-large]"]["value"] == 1.0
    assert agg["cell_accuracy[small]"]["n"] == 3


def test_live_embedded_model_scores_sanely(embedded):
    import asyncio

    from assay.client import Client, SamplingParams

    suite = get_suite("logic", sizes="2x2:1")
    x = next(iter(suite.samples(seed=0, limit=1)))

    async def go():
        client = Client(embedded)
        try:
            return await client.chat(suite.messages(x), SamplingParams(max_tokens=96, temperature=0.0))
        finally:
            await client.aclose()

    comp = asyncio.run(go())
    sc = suite.score(comp.text, x)
    assert sc.value in (0.0, 1.0)
    assert 0.0 <= sc.extra["cell_accuracy"] <= 1.0
    assert sc.parsed or sc.reason == "no JSON grid of houses found"


def test_scorer_invariant_to_layout_and_exact_on_corruption():
    import random

    rng = random.Random(11)
    for i in range(25):
        n, m = rng.randint(2, 5), rng.randint(2, 5)
        p = zebra.generate(n, m, seed=f"scorer-{i}")
        target = {str(h): row for h, row in p.solution.items()}
        houses = list(p.solution.items())
        rng.shuffle(houses)
        grid = {}
        for h, row in houses:
            cells = list(row.items())
            rng.shuffle(cells)
            key = rng.choice([f"House {h}", f"house{h}", f" HOUSE_{h} ", str(h)])
            grid[key] = {rng.choice([a.upper(), a.lower(), f" {a} "]): rng.choice([v.upper(), f"  {v}", v])
                         for a, v in cells}
        text = json.dumps(grid, indent=rng.choice([None, 2]))
        sc = score_grid(rng.choice([text, f"```json\n{text}\n```", f"Answer:\n{text}\nDone."]), target, p.attributes)
        assert sc.value == 1.0, (text, sc)
        # corrupt k distinct cells by swapping in another value of the same attribute
        k = rng.randint(1, n * m)
        spots = rng.sample([(h, a) for h in p.solution for a in p.attributes], k)
        bad = {str(h): dict(row) for h, row in p.solution.items()}
        for h, a in spots:
            bad[str(h)][a] = next(v for v in p.attributes[a] if v != p.solution[h][a])
        sc = score_grid(json.dumps({f"House {h}": r for h, r in bad.items()}), target, p.attributes)
        assert sc.value == 0.0 and sc.extra["correct_cells"] == n * m - k


def test_copied_template_with_ellipses_is_a_partial_answer_not_unparsed():
    # what SmolLM2-135M actually replied (shape): the layout template, half filled, with a trailing "..."
    text = '{"House 1": {"Name": "Bob", "Pet": "fish"}, "House 2": {"Name": "...", "Pet": "dog"}, ...}'
    sc = s(text)
    assert sc.parsed and sc.value == 0.0
    assert sc.extra["correct_cells"] == 2 and "2 missing" in sc.reason
    sc = s('{"House 1": {...}, "House 2": {"Name": "Alice", "Pet": "cat"}, "House 3": {"Name": "Carol", ...}}')
    assert sc.parsed and sc.extra["correct_cells"] == 3


def test_prompt_spells_out_every_house_in_the_layout():
    suite = get_suite("logic", sizes="4x3:1")
    x = next(iter(suite.samples(0, None)))
    msg = suite.messages(x)[0]["content"]
    layout = msg.rsplit("\n", 1)[-1]
    assert json.loads(layout).keys() == {"House 1", "House 2", "House 3", "House 4"}
    assert all(set(row) == set(x.input["attributes"]) for row in json.loads(layout).values())
