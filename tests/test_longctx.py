"""longctx suite and the longdocs generators: needle placement, scorers on tricky strings, refusal, heatmap, live."""

from __future__ import annotations

import asyncio
import re

import pytest

from assay.errors import AssayError
from assay.evals import longdocs
from assay.evals.suites import get_suite, longctx
from assay.evals.suites.longctx import (default_lengths, exact_match, extract_span, parse_depths, parse_length,
                                        retrieved_number, rouge_l, score_niah, score_qa, score_summary, token_f1)
from helpers import suite_metrics

NEEDLE = longdocs.Needle("amber-falcon", "4829173")


# ---- generators ----------------------------------------------------------------------------------------------------
def test_filler_is_deterministic_and_has_no_digits():
    a, b = longdocs.filler(20_000, seed=3), longdocs.filler(20_000, seed=3)
    assert a == b and a != longdocs.filler(20_000, seed=4)
    assert 19_800 < len(a) <= 20_000
    assert not re.search(r"\d", a)


@pytest.mark.parametrize("depth", [i / 10 for i in range(11)])
def test_needle_sits_at_its_depth(depth):
    text = longdocs.haystack(30_000, [(depth, NEEDLE.sentence)], seed=1)
    assert text.count(NEEDLE.sentence) == 1
    pos = text.index(NEEDLE.sentence)
    filler_len = len(text) - len(NEEDLE.sentence) - 1
    longest = max(len(s) for s in re.split(r"(?<=\.) ", text))
    if depth == 0:
        assert pos == 0
    elif depth == 1:
        assert text.endswith(NEEDLE.sentence)
    else:
        # the nearest sentence boundary to depth x filler: off by at most half a sentence
        assert abs(pos - depth * filler_len) <= longest / 2 + 1
        assert text[pos - 2:pos] == ". "  # between sentences, never inside one
    assert 29_800 <= len(text) <= 30_000


def test_several_needles_keep_their_order_and_bad_depths_fail():
    other = longdocs.Needle("iron-comet", "1234567")
    text = longdocs.haystack(10_000, [(0.8, NEEDLE.sentence), (0.2, other.sentence)], seed=2)
    assert text.index(other.sentence) < text.index(NEEDLE.sentence)
    with pytest.raises(ValueError):
        longdocs.haystack(1000, [(1.5, NEEDLE.sentence)])


def test_company_documents_hold_every_answer_span_and_the_summary_facts():
    for seed in range(25):
        c = longdocs.make_company(seed)
        doc = longdocs.company_document(c, 8000, seed=seed)
        assert 7_800 <= len(doc) <= 8_000
        for q, a in longdocs.company_questions(c):
            assert a in doc, (seed, q, a)
        summary = longdocs.company_summary(c)
        for fact in (c.city, c.founder, c.ceo, c.employees, c.product, str(c.founded)):
            assert fact in summary
    # facts are spread: the first and last fact paragraphs are far apart in a long document
    c = longdocs.make_company(0)
    doc = longdocs.company_document(c, 40_000, seed=0)
    spans = sorted(doc.index(a) for _, a in longdocs.company_questions(c))
    assert spans[-1] - spans[0] > 20_000


# ---- scorers -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reply, value", [
    ("4829173", 1.0),
    ("The special magic number for amber-falcon is 4829173.", 1.0),
    ("**4,829,173**", 1.0),
    ("4 829 173", 1.0),
    ("48291730", 0.0),  # a longer number is not the value
    ("1234567, or maybe 4829173", 0.0),  # the first number is the answer
    ("I could not find it.", 0.0),
    ("", 0.0),
])
def test_niah_exact_retrieval(reply, value):
    assert score_niah(reply, "4829173").value == value


def test_niah_extracted_number_and_no_number():
    assert retrieved_number("It is 4829173.") == "4829173"
    s = score_niah("none", "4829173")
    assert s.extracted is None and "no number" in s.reason


@pytest.mark.parametrize("pred, gold, f1, em", [
    ("Lisbon", "Lisbon", 1.0, 1.0),
    ("The Lisbon.", "lisbon", 1.0, 1.0),  # articles, case, punctuation
    ("1,240", "1240", 1.0, 1.0),
    ("41.2 million", "41.2 million euros", 0.8, 0.0),  # P 1, R 2/3
    ("Rafael Santoro", "Amara Santoro", 0.5, 0.0),  # same surname, other person
    ("It is headquartered in Accra", "Accra", 2 / 6, 0.0),  # 1 of 5 predicted tokens ("it is headquartered in accra")
    ("", "Accra", 0.0, 0.0),
    ("Kraków — Poland", "Kraków", 2 / 3, 0.0),  # a Unicode dash is punctuation too
    ("an otter", "the otter", 1.0, 1.0),
])
def test_token_f1_and_exact_match(pred, gold, f1, em):
    assert token_f1(pred, gold) == pytest.approx(f1)
    assert exact_match(pred, gold) == em


def test_qa_reads_the_answer_line_and_takes_the_best_gold():
    assert extract_span("Answer: **Accra**\nBecause the document says so.") == "Accra"
    assert extract_span("\n\nFinal answer: 1987") == "1987"
    s = score_qa("Answer: Halen Instruments.", "Halen Instruments")
    assert s.value == 1.0 and s.extra["em"] == 1.0 and s.extracted == "Halen Instruments."
    s = score_qa("Accra", ["Lisbon", "Accra"])
    assert s.value == 1.0


def test_rouge_l_values():
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat")["f1"] == pytest.approx(1.0)
    r = rouge_l("the cat on the mat", "the cat sat on the mat")  # LCS 5: P 5/5, R 5/6
    assert r["precision"] == pytest.approx(1.0) and r["recall"] == pytest.approx(5 / 6)
    assert r["f1"] == pytest.approx(2 * (5 / 6) / (1 + 5 / 6))
    assert rouge_l("running dogs", "the dog runs")["f1"] > 0  # Porter stemming: run, dog
    assert rouge_l("completely unrelated words", "the cat sat")["f1"] == 0.0
    assert score_summary("", "the cat").value == 0.0


def test_a_faithful_summary_beats_a_wrong_one():
    c = longdocs.make_company(5)
    ref = longdocs.company_summary(c)
    good = (f"{c.name} was founded by {c.founder} in {c.founded}. It is based in {c.city} and run by {c.ceo}; "
            f"it employs {c.employees} people and sells the {c.product}.")
    bad = "The company makes things. It has offices and staff, and it grew over the years."
    assert score_summary(good, ref).value > score_summary(bad, ref).value + 0.2


# ---- options, refusal ----------------------------------------------------------------------------------------------
def test_option_parsing():
    assert parse_length("1K") == 1024 and parse_length("256k") == 262144 and parse_length(3000) == 3000
    assert parse_depths("0,50,100") == (0.0, 0.5, 1.0)
    assert parse_depths([0, 0.25, 1]) == (0.0, 0.25, 1.0)
    with pytest.raises(AssayError):
        parse_depths("0,150")
    with pytest.raises(AssayError):
        parse_length("lots")
    with pytest.raises(AssayError, match="unknown task"):
        get_suite("longctx", tasks="niah,poetry")


def test_default_lengths_fit_the_window():
    assert default_lengths(4096) == (1024, 2048, 3686)
    assert default_lengths(8192) == (1024, 2048, 4096, 7372)
    assert default_lengths(262144)[-1] == 235929 and 131072 in default_lengths(262144)
    assert default_lengths(None) == (1024, 2048, 3686)
    for ctx in (4096, 8192, 32768):
        suite = get_suite("longctx", max_context=ctx)  # no refusal
        assert max(suite.lengths) + longctx.ANSWER_TOKENS["niah"] <= ctx
        assert suite.doc_length + longctx.ANSWER_TOKENS["summary"] <= ctx


def test_refuses_lengths_beyond_the_window_in_one_line():
    with pytest.raises(AssayError) as e:
        get_suite("longctx", lengths="1K,8K", max_context=4096)
    msg = str(e.value)
    assert "\n" not in msg and "8192" in msg and "4096" in msg and "4064" in msg
    from assay.engines import Endpoint

    with pytest.raises(AssayError, match="context window of 2048"):
        get_suite("longctx", tasks="niah", lengths="2K", endpoint=Endpoint(base_url="http://x/v1", model="m", context=2048))
    with pytest.raises(AssayError, match="summary prompt of 4000"):
        get_suite("longctx", tasks="summary", doc_length=4000, max_context=4096)
    get_suite("longctx", tasks="niah", lengths="2K,3K", max_context=4096)  # fits


# ---- samples and prompts -------------------------------------------------------------------------------------------
def test_default_samples_cover_the_grid_and_tasks():
    suite = get_suite("longctx", max_context=4096)
    samples = list(suite.samples(0, None))
    assert len({s.id for s in samples}) == len(samples)
    niah = [s for s in samples if s.category == "niah"]
    assert len(niah) == 3 * 11
    assert {s.category for s in samples} == {"niah", "qa", "summary"}
    assert [s.category for s in suite.samples(0, 3)] == ["niah", "qa", "summary"]  # a small limit sees each task
    assert list(suite.samples(0, None)) == list(suite.samples(7, None))  # items do not depend on the seed


def test_prompts_hold_the_answer_and_match_the_length_estimate():
    suite = get_suite("longctx", max_context=8192)
    for s in suite.samples(0, None):
        prompt = suite.messages(s)[0]["content"]
        target_chars = s.input["length"] * longctx.EST_CHARS_PER_TOKEN
        assert 0.9 * target_chars <= len(prompt) <= target_chars, s.id
        if s.category in ("niah", "qa"):
            assert prompt.count(s.target) == 1, s.id
        if s.category == "niah":
            needle = longdocs.make_needle(s.input["seed"])
            body = prompt.split("<text>\n")[1].split("\n</text>")[0]
            pos = body.index(needle.sentence) / max(1, len(body) - len(needle.sentence))
            assert abs(pos - s.input["depth"]) < 0.05, s.id
    assert suite.request_params(s)["max_tokens"] == longctx.ANSWER_TOKENS[s.category]


def test_distractor_needles_have_other_keys():
    suite = get_suite("longctx", tasks="niah", lengths="1K", depths="50", needles=3)
    (s,) = list(suite.samples(0, None))
    prompt = suite.messages(s)[0]["content"]
    assert s.id == "niah:1024:d050:k3"
    assert len(re.findall(r"The special magic number for [a-z-]+ is \d{7}\.", prompt)) == 3
    assert prompt.count(s.target) == 1


# ---- aggregate and heatmap ------------------------------------------------------------------------------------------
def _records(suite, correct):
    recs = []
    for s in suite.samples(0, None):
        ok = correct(s)
        reply = {"niah": s.target if ok else "0000000", "qa": s.target if ok else "no idea",
                 "summary": s.target if ok else "nothing"}[s.category]
        recs.append({"sample_id": s.id, "category": s.category, "status": "ok", "input": s.input,
                     "target": s.target, "completion": reply, "score": suite.score(reply, s).to_dict()})
    return recs


def test_aggregate_reports_the_grid_and_task_scores():
    suite = get_suite("longctx", lengths="1K,2K", depths="0,50,100", docs=2, questions=2)
    recs = _records(suite, lambda s: not (s.category == "niah" and s.input["length"] == 2048
                                          and s.input["depth"] == 0.5))
    recs.append({**recs[0], "sample_id": "x", "status": "error", "score": None})  # errors are left out
    agg = suite_metrics(suite, recs)
    assert agg["niah"]["n"] == 6 and agg["niah"]["value"] == pytest.approx(5 / 6)
    assert agg["niah:L=2K"]["value"] == pytest.approx(2 / 3) and agg["niah:L=1K"]["value"] == 1.0
    assert agg["niah:depth=50%"]["value"] == 0.5
    assert agg["niah:L=2K,depth=50%"]["value"] == 0.0 and agg["niah:L=1K,depth=0%"]["value"] == 1.0
    assert agg["qa:f1"]["value"] == 1.0 and agg["qa:em"]["n"] == 4
    assert agg["summary:rougeL"]["value"] == pytest.approx(1.0)
    for m in agg.values():
        assert m["low"] <= m["value"] <= m["high"]


def test_heatmap_png_is_written(tmp_path):
    suite = get_suite("longctx", lengths="1K,2K,3K", depths="0,25,50,75,100", tasks="niah")
    recs = _records(suite, lambda s: s.input["depth"] != 0.5 or s.input["length"] == 1024)
    paths = suite.write_artifacts(recs, tmp_path)
    png, csv = tmp_path / "niah_heatmap.png", tmp_path / "niah_grid.csv"
    assert paths == [png, csv]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    rows = csv.read_text().splitlines()
    assert rows[0] == "length,depth_pct,correct,n" and len(rows) == 1 + 15
    assert "2048,50,0,1" in rows and "1024,50,1,1" in rows
    assert suite.write_artifacts([r for r in recs if r["category"] != "niah"], tmp_path / "none") == []


# ---- prepare hook ----------------------------------------------------------------------------------------------------
class _FakeClient:
    def __init__(self, context, chars_per_token):
        from assay.engines import Endpoint

        self.endpoints = [Endpoint(base_url="http://127.0.0.1:9/v1", model="m", context=context)]
        self.cpt = chars_per_token

    async def tokenize(self, text):
        return list(range(int(len(text) / self.cpt)))


def test_prepare_learns_the_window_and_the_ratio():
    suite = get_suite("longctx", tasks="niah", depths="50")
    assert suite.lengths == (1024, 2048, 3686) and suite.cpt["niah"] == 4.0
    asyncio.run(suite.prepare(_FakeClient(8192, 4.6)))
    assert suite.max_context == 8192 and suite.lengths == (1024, 2048, 4096, 7372)
    assert suite.cpt["niah"] == 4.5 and suite.tokens_from == "server tokenizer"
    s = next(iter(suite.samples(0, None)))
    assert s.meta["chars_per_token"] == 4.5
    assert len(suite.messages(s)[0]["content"]) > 1024 * 4.3
    fixed = get_suite("longctx", tasks="niah", lengths="4K")
    with pytest.raises(AssayError, match="context window of 2048"):
        asyncio.run(fixed.prepare(_FakeClient(2048, 4.0)))


# ---- live, against the embedded model -----------------------------------------------------------------------------
def test_live_niah_1k_on_the_embedded_model(embedded, tmp_path):
    from assay.client import Client, SamplingParams

    suite = get_suite("longctx", tasks="niah", lengths="1K", depths="50")

    async def go():
        async with Client(embedded) as client:
            await suite.prepare(client)
            (s,) = list(suite.samples(0, None))
            prompt = suite.messages(s)[0]["content"]
            comp = await client.chat(suite.messages(s), SamplingParams(**suite.request_params(s)))
            return s, comp, await client.count_tokens(prompt)

    s, comp, n_tokens = asyncio.run(go())
    assert suite.tokens_from == "server tokenizer" and suite.max_context == embedded.context
    # the calibrated prompt lands near its target length in the server's own token count (chat template aside)
    assert 0.85 * 1024 <= n_tokens <= 1024
    assert comp.text is not None
    score = suite.score(comp.text, s)
    assert score.value in (0.0, 1.0)
    rec = {"category": "niah", "status": "ok", "input": s.input, "score": score.to_dict()}
    assert [p.name for p in suite.write_artifacts([rec], tmp_path)] == ["niah_heatmap.png", "niah_grid.csv"]


def test_prepare_keeps_the_stated_estimate_without_a_tokenizer():
    class NoTokenizer(_FakeClient):
        async def tokenize(self, text):
            return None

    suite = get_suite("longctx", tasks="niah,qa", lengths="1K")
    asyncio.run(suite.prepare(NoTokenizer(4096, 0)))
    assert suite.cpt["niah"] == suite.cpt["qa"] == longctx.EST_CHARS_PER_TOKEN
    assert suite.tokens_from.startswith("estimate") and suite.max_context == 4096
    s = next(iter(suite.samples(0, None)))
    assert s.meta == {"chars_per_token": 4.0, "tokens_from": "estimate (4.0 chars/token)"}
