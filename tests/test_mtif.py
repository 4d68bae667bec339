"""mtif: composition (enough conversations, compatible constraints in force, changes and cancellations applied),
the per-turn scorer on strings (cumulative constraints, a turn after a failed one still scored), the Multi-IF loader,
aggregate metrics, and a live run on the embedded model (a few conversations; its low scores are fine)."""

from __future__ import annotations

import json

import pytest

from assay.errors import DataError
from assay.evals.base import Record, Score, Turn
from assay.evals.suites import get_suite
from assay.evals.suites.ifeval import compatible
from assay.evals.suites.mtif import aggregate, compose_conversations, load_multi_if, score_conversation


@pytest.fixture(scope="module")
def convs():
    return compose_conversations(120)


def test_at_least_100_deterministic_conversations_of_three_turns(convs):
    assert len(convs) >= 100 and len({c["key"] for c in convs}) == len(convs)
    assert compose_conversations(120) == convs
    assert compose_conversations(120, gen_seed=1) != convs
    assert all(len(c["turns"]) == 3 and all(t["instruction_id_list"] for t in c["turns"]) for c in convs)


def test_constraints_in_force_are_compatible_and_follow_the_changes(convs):
    kinds = {"add": 0, "cancel": 0, "change": 0}
    for c in convs:
        prev: dict = {}
        for k, t in enumerate(c["turns"]):
            ids = t["instruction_id_list"]
            assert len(set(ids)) == len(ids)
            assert all(compatible(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]), ids
            now = dict(zip(ids, map(json.dumps, t["kwargs"])))
            for ch in t["changes"]:
                kind, x = ch.split()
                kinds[kind] += 1
                if kind == "cancel":
                    assert x in prev and x not in now and "no longer need" in t["prompt"]
                elif kind == "change":
                    assert x in prev and x in now and now[x] != prev[x] and "Change of plan" in t["prompt"]
                else:
                    assert x in now and x not in prev
            # what was in force and not cancelled or changed is still in force, unchanged
            touched = {ch.split()[1] for ch in t["changes"]}
            assert all(now.get(x) == v for x, v in prev.items() if x not in touched)
            prev = now
    assert all(v >= 20 for v in kinds.values()), kinds


TURNS = [
    {"prompt": "p1", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
    {"prompt": "p2", "instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase"],
     "kwargs": [{}, {}]},
    {"prompt": "p3", "instruction_id_list": ["change_case:english_lowercase",
                                             "keywords:existence"], "kwargs": [{}, {"keywords": ["kiwi"]}]},
]


@pytest.mark.parametrize("replies, value, turns_ok", [
    (["No commas here.", "no commas and all lower case", "we ate a kiwi in lower case, with a comma"], 1.0, "111"),
    # turn 2 keeps turn 1's constraint: a comma there fails it
    (["No commas here.", "lower case, but with a comma", "we ate a kiwi today, all in lower case"], 0.0, "101"),
    # a turn after a failed one is still scored on its own
    (["Commas, commas.", "this is fine and all lower case", "we ate a kiwi today in lower case"], 0.0, "011"),
    # turn 3 cancelled no_comma: a comma is fine then, but the new keyword is required
    (["No commas here.", "no commas and all lower case", "no fruit today, none at all"], 0.0, "110"),
    (["", "", ""], 0.0, "000"),
    (["No commas here.", "No Commas But Capitals", "we ate a kiwi in lower case"], 0.0, "101"),
    # markdown stars are not letters: a bold lower-case reply is still lower case
    (["**Bold claim.**", "**all lower case here**", "**we ate a kiwi in lower case**"], 1.0, "111"),
])
def test_score_conversation(replies, value, turns_ok):
    s = score_conversation(replies, TURNS)
    assert (s.value, s.extracted) == (value, turns_ok), s.reason
    assert len(s.extra["turns"]) == 3


def test_loose_rescues_a_preamble_per_turn():
    turns = [{"prompt": "p", "instruction_id_list": ["startend:quotation"], "kwargs": [{}]}]
    s = score_conversation(['Sure, here it is:\n"quoted answer"'], turns)
    assert s.value == 0.0 and s.extra["turns"][0]["loose"] == [True] and s.extra["all_loose"]


def test_missing_reply_counts_as_empty():
    s = score_conversation(["No commas here."], TURNS)  # only one reply for three turns
    assert s.extracted == "100"


def test_score_turns_reads_turn_completions():
    suite = get_suite("mtif", n=3)
    sample = next(iter(suite.samples(0, None)))
    turns = [Turn(completion="x"), Turn(completion=None), Turn(completion="y")]
    s = suite.score_turns(turns, sample)
    assert isinstance(s, Score) and len(s.extra["turns"]) == 3


def test_aggregate_per_turn_and_all_turns():
    recs = []
    for replies in (["No commas here.", "no commas and all lower case", "we ate a kiwi in lower case"],
                    ["Commas, yes.", "no commas and all lower case", "we ate a kiwi in lower case"]):
        s = score_conversation(replies, TURNS)
        recs.append(Record(suite="mtif", sample_id=str(len(recs)), score=s, status="ok"))
    recs.append(Record(suite="mtif", sample_id="err", status="error"))
    agg = aggregate(recs)
    assert agg["all_turns_strict"]["value"] == 0.5 and agg["all_turns_strict"]["n"] == 2
    assert agg["turn1_prompt_strict"]["value"] == 0.5
    assert agg["turn2_prompt_strict"]["value"] == 1.0
    assert agg["turn2_inst_strict"]["n"] == 4
    assert agg["turn3_prompt_strict"]["low"] < 1.0  # a Wilson interval, not a point
    metrics = get_suite("mtif", n=3).aggregate(recs)
    assert {m.key for m in metrics} >= {"all_turns_strict", "turn3_inst_loose"}
    assert all(m.kind == "proportion" for m in metrics)


def _multi_if_row(**over):
    row = {"key": 7, "turns": 2, "language": "English",
           "turn_1_prompt": json.dumps({"role": "user", "content": "Write a poem. No commas."}),
           "turn_1_instruction_id_list": ["punctuation:no_comma"], "turn_1_kwargs": ["{}"],
           "turn_2_prompt": json.dumps({"role": "user", "content": "Now in lower case."}),
           "turn_2_instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase"],
           "turn_2_kwargs": ["{}", "{}"], "turn_3_prompt": None}
    row.update(over)
    return row


def test_multi_if_loader(tmp_path):
    p = tmp_path / "multi_if.jsonl"
    p.write_text(json.dumps(_multi_if_row()) + "\n" + json.dumps(_multi_if_row(
        key=8, turn_1_instruction_id_list=["keywords:existence"],
        turn_1_kwargs=[json.dumps({"keywords": ["sun"], "num_words": None})])) + "\n")
    items = load_multi_if(p)
    assert [len(i["turns"]) for i in items] == [2, 2]
    assert items[0]["turns"][1]["prompt"] == "Now in lower case." and items[0]["category"] == "English"
    assert items[1]["turns"][0]["kwargs"] == [{"keywords": ["sun"]}]  # HF-style null padding dropped
    suite = get_suite("mtif", data=str(p))
    assert [s.id for s in suite.samples(0, None)] == ["mtif-7", "mtif-8"]


def test_multi_if_loader_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_multi_if(tmp_path / "nope.jsonl")
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"prompt": "single turn"}) + "\n")
    with pytest.raises(DataError, match="no turn_1_prompt"):
        load_multi_if(p)
    p.write_text(json.dumps(_multi_if_row(turn_1_instruction_id_list=["made:up"])) + "\n")
    with pytest.raises(DataError, match="made:up.*skip_unsupported"):
        load_multi_if(p)
    assert load_multi_if(p, skip_unsupported=True) == []


def test_live_mtif_on_the_embedded_model(embedded, tmp_path):
    from assay.client import SamplingParams
    from assay.evals.runner import rescore, run

    res = run(["mtif"], [embedded], out_dir=tmp_path, limit=2, concurrency=1,
              params=SamplingParams(max_tokens=96))
    recs = [Record.from_dict(r) for r in __import__("assay.store", fromlist=["x"]).iter_records(
        res.run_dir / "records.jsonl")]
    assert len(recs) == 2 and all(r.status in ("ok", "truncated") for r in recs), [r.error for r in recs]
    for r in recs:
        assert len(r.turns) == 3 and [m["role"] for m in r.messages] == ["user", "assistant"] * 3
        assert all(t.completion_tokens is not None and t.e2e_s > 0 for t in r.turns)
        assert len(r.score.extra["turns"]) == 3
    card = res.summary["suites"]["mtif"]
    assert card["n"] == 2 and "turn3_prompt_strict" in card["metrics"]
    again = rescore(res.run_dir)
    assert again["changed"] == 0 and again["summary"]["suites"]["mtif"]["value"] == card["value"]
