"""The ifeval suite: composed items, official JSONL loading, pure scoring, aggregate, and one live-model run."""

from __future__ import annotations

import asyncio
import collections
import json

import pytest

from assay.errors import DataError
from assay.evals import ifeval_checks as ic
from assay.evals.base import Sample, Suite
from assay.evals.suites import get_suite
from assay.evals.suites.ifeval import _CONFLICTS, aggregate, compatible, compose_items, instruction_breakdown
from helpers import suite_metrics


def _sample(ids, kwargs, prompt="p"):
    return Sample(id="x", input={"prompt": prompt, "instruction_id_list": ids, "kwargs": kwargs})


# --- composed items --------------------------------------------------------------------------------------------

def test_registry_makes_a_protocol_suite_with_200_plus_items():
    s = get_suite("ifeval")
    assert isinstance(s, Suite)
    items = list(s.samples(seed=0, limit=None))
    assert len(items) >= 200
    assert len({x.id for x in items}) == len(items)
    assert s.messages(items[0]) == [{"role": "user", "content": items[0].input["prompt"]}]


def test_composed_items_are_deterministic_and_ids_stable():
    a, b = compose_items(), compose_items()
    assert a == b
    assert [x["key"] for x in compose_items(gen_seed=1)] != [x["key"] for x in a]
    # Ids are content hashes: the same item gets the same id whatever else is generated.
    small = {x["key"]: x for x in compose_items(n=20)}
    assert all(small[k] == x for x, k in ((x, x["key"]) for x in a[:20]))


def test_composed_items_cover_every_instruction_and_balance_categories():
    items = compose_items()
    used = collections.Counter(x for it in items for x in it["instruction_id_list"])
    assert set(used) == set(ic.REGISTRY)
    cats = collections.Counter(it["category"] for it in items)
    assert len(cats) == 9 and max(cats.values()) - min(cats.values()) <= 1
    assert {len(it["instruction_id_list"]) for it in items} == {1, 2, 3}
    for it in items:
        assert it["category"] == it["instruction_id_list"][0].split(":")[0]
        assert it["prompt"].count(".") >= len(it["instruction_id_list"])  # one sentence per instruction at least


def test_composed_items_never_pair_conflicting_instructions():
    for it in compose_items():
        ids = it["instruction_id_list"]
        assert len(set(ids)) == len(ids)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                assert compatible(a, b), (a, b, it["key"])
        # every kwargs set fits its checker
        for x, kw in zip(ids, it["kwargs"]):
            ic.clean_kwargs(x, kw)
        # keyword instructions in one prompt never share a word (forbidden 'x' + include 'x' is unanswerable)
        kw_words = [w for x, kw in zip(ids, it["kwargs"]) for w in kw.get("keywords", []) + kw.get(
            "forbidden_words", []) + ([kw["keyword"]] if "keyword" in kw else [])]
        assert len(kw_words) == len(set(kw_words))


@pytest.mark.parametrize("a,b", [
    ("change_case:english_lowercase", "change_case:english_capital"),
    ("change_case:english_capital", "change_case:capital_word_frequency"),
    ("detectable_format:json_format", "detectable_format:title"),
    ("combination:repeat_prompt", "keywords:forbidden_words"),
    ("language:response_language", "change_case:english_lowercase"),
    ("detectable_format:constrained_response", "punctuation:no_comma"),
    ("length_constraints:number_words", "length_constraints:number_sentences"),
])
def test_known_conflicts(a, b):
    assert not compatible(a, b) and not compatible(b, a)


def test_compatible_pairs_exist():
    assert compatible("punctuation:no_comma", "detectable_format:title")
    assert compatible("keywords:existence", "length_constraints:number_words")
    assert _CONFLICTS  # the table is what the generator obeys


def test_repeat_prompt_text_is_the_prompt_before_its_sentence():
    items = [it for it in compose_items() if "combination:repeat_prompt" in it["instruction_id_list"]]
    assert items
    for it in items:
        kw = it["kwargs"][it["instruction_id_list"].index("combination:repeat_prompt")]
        assert it["prompt"].startswith(kw["prompt_to_repeat"])
        assert len(it["prompt"]) > len(kw["prompt_to_repeat"])
        # a model that repeats exactly and then answers follows it
        assert ic.check("combination:repeat_prompt", kw["prompt_to_repeat"] + "\nMy answer.", kw)


def test_limit_takes_a_seeded_subset():
    s = get_suite("ifeval")
    a = [x.id for x in s.samples(seed=3, limit=10)]
    assert len(a) == 10 and a == [x.id for x in s.samples(seed=3, limit=10)]
    assert a != [x.id for x in s.samples(seed=4, limit=10)]


# --- scoring ---------------------------------------------------------------------------------------------------

def test_score_strict_and_loose_per_instruction():
    s = get_suite("ifeval")
    smp = _sample(["punctuation:no_comma", "detectable_format:title", "startend:end_checker"],
                  [{}, {}, {"end_phrase": "Any other questions?"}])
    ok = s.score("<<Tea>>\nGreen tea is calm. Any other questions?", smp)
    assert ok.value == 1.0 and ok.parsed and ok.extra["strict"] == [True, True, True]
    # Trailing chatter breaks the end phrase strictly; loose drops the last line and passes.
    r = "<<Tea>>\nGreen tea is calm. Any other questions?\nHope this helps"
    sc = s.score(r, smp)
    assert sc.value == 0.0 and sc.extra["strict"] == [True, True, False] and sc.extra["loose"] == [True, True, True]
    assert sc.extra["prompt_loose"] is True
    assert "startend:end_checker" in sc.reason
    bad = s.score("Tea, calm.", smp)
    assert bad.extra["strict"] == [False, False, False] and bad.extra["loose"] == [False, False, False]


@pytest.mark.parametrize("completion", ["", "   ", "\n\n"])
def test_empty_output_fails_everything_but_is_parsed(completion):
    s = get_suite("ifeval")
    smp = _sample(["punctuation:no_comma", "keywords:forbidden_words"], [{}, {"forbidden_words": ["x"]}])
    sc = s.score(completion, smp)
    assert sc.value == 0.0 and sc.parsed is True
    assert sc.extra["strict"] == [False, False] and sc.extra["loose"] == [False, False]
    assert json.loads(json.dumps(sc.to_dict()))  # JSON-serialisable as stored


def test_aggregate_counts_prompts_and_instructions():
    s = get_suite("ifeval")
    recs = [
        {"status": "ok", "score": {"value": 1.0, "extra": {"strict": [True, True], "loose": [True, True]}}},
        {"status": "ok", "score": {"value": 0.0, "extra": {"strict": [True, False], "loose": [True, True]}}},
        {"status": "truncated", "score": {"value": 0.0, "extra": {"strict": [False], "loose": [False]}}},
        {"status": "error", "score": None},
    ]
    agg = suite_metrics(s, recs)
    assert set(agg) == {"prompt_strict", "prompt_loose", "inst_strict", "inst_loose"}
    assert (agg["prompt_strict"]["k"], agg["prompt_strict"]["n"]) == (1, 3)
    assert (agg["prompt_loose"]["k"], agg["prompt_loose"]["n"]) == (2, 3)
    assert (agg["inst_strict"]["k"], agg["inst_strict"]["n"]) == (3, 5)
    assert (agg["inst_loose"]["k"], agg["inst_loose"]["n"]) == (4, 5)
    assert agg["inst_strict"]["low"] < 0.6 < agg["inst_strict"]["high"]
    assert aggregate([])["prompt_strict"]["n"] == 0


def test_instruction_breakdown_from_records():
    recs = [{"status": "ok", "score": {"value": 0.0, "extra": {"instruction_ids": ["a:x", "b:y"],
                                                                "strict": [True, False], "loose": [True, True]}}},
            {"status": "ok", "score": {"value": 0.0, "extra": {"instruction_ids": ["a:x"], "strict": [False],
                                                                "loose": [False]}}}]
    b = instruction_breakdown(recs)
    assert (b["a:x"]["strict"]["k"], b["a:x"]["strict"]["n"]) == (1, 2)
    assert (b["b:y"]["loose"]["k"], b["b:y"]["strict"]["k"]) == (1, 0)


# --- official data ---------------------------------------------------------------------------------------------

def test_official_jsonl_loads_and_every_id_is_supported(shared_benchmarks):
    path = shared_benchmarks / "ifeval_input_data.jsonl"
    raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ids = {x for r in raw for x in r["instruction_id_list"]}
    unsupported = sorted(ids - set(ic.REGISTRY))
    assert unsupported == [], f"unsupported instruction ids in the official data: {unsupported}"
    s = get_suite("ifeval", data=path)
    assert len(s.items) == len(raw) == 541
    # kwargs map onto the checkers: every kwargs set is accepted and every checker runs on a real-looking answer
    for it in s.items:
        for x, kw in zip(it["instruction_id_list"], it["kwargs"]):
            assert set(kw) <= set(ic.REGISTRY[x].required) | set(ic.REGISTRY[x].optional)
            assert isinstance(ic.check(x, "A short answer. It has two sentences.", kw), bool)
    smp = next(iter(s.samples(0, 1)))
    assert smp.id.startswith("ifeval-") and smp.category in {i.split(":")[0] for i in ids}
    assert len(s.data_hash()) == 16


def test_official_item_scored_by_hand(shared_benchmarks):
    s = get_suite("ifeval", data=shared_benchmarks / "ifeval_input_data.jsonl")
    smp = next(x for x in s.samples(0, None) if x.id == "ifeval-1001")  # no commas, Shakespearean itinerary
    assert s.score("Day one we sail to Kyoto. Thou shalt see temples.", smp).value == 1.0
    assert s.score("Day one, we sail to Kyoto.", smp).value == 0.0


def test_loader_reports_unsupported_ids_and_bad_lines(tmp_path):
    p = tmp_path / "x.jsonl"
    good = {"key": 1, "prompt": "Hi", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    weird = {"key": 2, "prompt": "Hi", "instruction_id_list": ["detectable_format:haiku"], "kwargs": [{}]}
    p.write_text(json.dumps(good) + "\n" + json.dumps(weird) + "\n")
    with pytest.raises(DataError, match=r"unsupported instruction ids: detectable_format:haiku \(1\)"):
        get_suite("ifeval", data=p)
    assert len(get_suite("ifeval", data=p, skip_unsupported=True).items) == 1
    # HF-style padding: every kwarg key present, unused ones null
    padded = dict(good, kwargs=[{"num_words": None, "relation": None}])
    p.write_text(json.dumps(padded) + "\n")
    assert get_suite("ifeval", data=p).items[0]["kwargs"] == [{}]
    p.write_text("{not json\n")
    with pytest.raises(DataError, match=r"x.jsonl:1"):
        get_suite("ifeval", data=p)
    p.write_text(json.dumps(dict(good, kwargs=[{}, {}])) + "\n")
    with pytest.raises(DataError, match="one per instruction id"):
        get_suite("ifeval", data=p)
    misfit = dict(good, instruction_id_list=["length_constraints:number_words"], kwargs=[{"num_words": 3}])
    p.write_text(json.dumps(misfit) + "\n")
    with pytest.raises(DataError, match="missing"):
        get_suite("ifeval", data=p)


def test_missing_file_and_no_hub_give_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="--data PATH") as e:
        get_suite("ifeval", data=tmp_path / "nope.jsonl")
    assert "\n" not in str(e.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="--data PATH") as e:
        get_suite("ifeval", data="hub")
    assert "\n" not in str(e.value)


# --- live: the real embedded model ------------------------------------------------------------------------------

def test_live_embedded_model_two_items(embedded):
    from assay.client import Client, SamplingParams

    s = get_suite("ifeval")
    samples = list(s.samples(seed=0, limit=2))

    async def go():
        async with Client(embedded) as c:
            return [await c.chat(s.messages(x), SamplingParams(max_tokens=96, temperature=0.0)) for x in samples]

    done = asyncio.run(go())
    records = []
    for smp, comp in zip(samples, done):
        sc = s.score(comp.text, smp)
        n = len(smp.input["instruction_id_list"])
        assert sc.parsed and sc.value in (0.0, 1.0)
        assert len(sc.extra["strict"]) == n and len(sc.extra["loose"]) == n
        assert all(lo or not st for st, lo in zip(sc.extra["strict"], sc.extra["loose"]))  # loose >= strict
        records.append({"status": "ok", "score": sc.to_dict()})
    agg = suite_metrics(s, records)
    assert agg["prompt_strict"]["n"] == 2
    assert agg["inst_strict"]["n"] == sum(len(x.input["instruction_id_list"]) for x in samples)
