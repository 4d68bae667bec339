"""translate / flores suites: shipped data, reply cleaning, sacrebleu numbers, FLORES loader on the real files."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import sacrebleu

from assay.errors import AssayError, DataError
from assay.evals.base import Sample
from assay.evals.suites import flores, get_suite, translate
from assay.evals.suites.translate import (DATA, LANGS, clean_translation, corpus_scores, format_table,
                                          parse_directions, tokenizer_for)
from helpers import suite_metrics


def _rec(sample: Sample, hyp: str | None, status: str = "ok") -> dict:
    suite = get_suite("translate")
    score = suite.score(hyp, sample).to_dict() if hyp is not None else None
    return {"category": sample.category, "status": status, "completion": hyp, "target": sample.target,
            "score": score}


# ---- shipped data --------------------------------------------------------------------------------------------------
def test_shipped_set_has_50_plus_sentences_in_every_language():
    rows = translate.load_shipped()
    assert len(rows) >= 50
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        for lang in LANGS:
            assert r[lang].strip() == r[lang] and len(r[lang]) >= 4, (r["id"], lang)
        assert r["zh"] != r["en"] and any("\u4e00" <= ch <= "\u9fff" for ch in r["zh"])
        assert any("\u0600" <= ch <= "\u06ff" for ch in r["ar"])
    assert len({r["en"] for r in rows}) == len(rows)  # no duplicated source sentence


def test_default_suite_has_ten_directions_of_60():
    suite = get_suite("translate")
    samples = list(suite.samples(0, None))
    by_dir: dict[str, int] = {}
    for s in samples:
        by_dir[s.category] = by_dir.get(s.category, 0) + 1
    assert set(by_dir) == {"en-fr", "fr-en", "en-es", "es-en", "en-ar", "ar-en", "en-sw", "sw-en", "en-zh", "zh-en"}
    assert all(n >= 50 for n in by_dir.values())
    assert len({s.id for s in samples}) == len(samples)
    s = next(x for x in samples if x.id == "t001:sw-en")
    assert s.input["text"].startswith("Kwa kawaida") and s.target.startswith("I usually")


def test_limit_spreads_over_directions_and_ids_do_not_depend_on_seed():
    suite = get_suite("translate")
    a = list(suite.samples(1, 20))
    b = list(suite.samples(2, 20))
    assert len(a) == 20 and len({s.category for s in a}) == 10
    assert {s.id for s in a} != {s.id for s in b}  # the seed picks the subset
    full = {s.id: s for s in suite.samples(0, None)}
    assert all(full[s.id] == s for s in a + b)  # ... but an id is always the same item


def test_shipped_set_is_not_copied_from_flores(shared_benchmarks):
    eng = (shared_benchmarks / "flores200_devtest" / "eng_Latn.devtest").read_text(encoding="utf-8").lower()
    for r in translate.load_shipped():
        assert r["en"].lower() not in eng


def test_sources_md_sha256_matches_the_data_file():
    sources = (DATA.parents[1] / "SOURCES.md").read_text(encoding="utf-8")
    assert hashlib.sha256(DATA.read_bytes()).hexdigest() in sources


def test_directions_parsing():
    assert parse_directions("en-fr, zh-en") == [("en", "fr"), ("zh", "en")]
    assert parse_directions(["sw-en"]) == [("sw", "en")]
    for bad in ("en-de", "enfr", "en-en", "en-fr,en-fr"):
        with pytest.raises(AssayError):
            parse_directions(bad)


def test_messages_name_both_languages_and_ask_for_translation_only():
    suite = get_suite("translate", directions="en-zh")
    s = next(iter(suite.samples(0, None)))
    text = suite.messages(s)[0]["content"]
    assert "English" in text and "Chinese" in text and s.input["text"] in text and "only" in text


# ---- reply cleaning ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reply, expected", [
    ("Je bois du thé.", "Je bois du thé."),
    ('Translation: "Je bois du thé."', "Je bois du thé."),
    ("Here is the translation:\n\n« Je bois du thé. »\n\nNote: informal register.", "Je bois du thé."),
    ("Here's the French translation of the text: Bonjour.", "Bonjour."),
    ("**French translation:** Je bois du thé.", "Je bois du thé."),
    ("Translation (Spanish): Hola.", "Hola."),
    ("French: Je bois", "Je bois"),
    ("Spanish translation:\nHola, ¿qué tal?", "Hola, ¿qué tal?"),
    ("翻译：我喝茶。", "我喝茶。"),
    ("“我喝茶。”", "我喝茶。"),
    ("「我喝茶。」", "我喝茶。"),
    ("الترجمة: أشرب الشاي.", "أشرب الشاي."),
    ("Tafsiri: Ninakunywa chai.", "Ninakunywa chai."),
    ("```\nHola\n```", "Hola"),
    ("Je bois du thé. (Note: literal translation)", "Je bois du thé."),
    ("Il a dit : « non ».", "Il a dit : « non »."),  # a colon inside the translation is not a label
    ("'Tis the season.", "'Tis the season."),  # an apostrophe is not a quote pair
    ("", ""),
    ("   \n  ", ""),
    (None, ""),
])
def test_clean_translation(reply, expected):
    assert clean_translation(reply) == expected


# ---- sacrebleu numbers -----------------------------------------------------------------------------------------------
def test_identical_translations_score_100():
    hyps = ["The cat sat on the mat.", "It is raining today."]
    res = corpus_scores(hyps, list(hyps), "en", n_boot=50)
    assert res["bleu"]["value"] == pytest.approx(100.0)
    assert res["chrf"]["value"] == pytest.approx(100.0)
    assert res["bleu"]["low"] == pytest.approx(100.0) and res["bleu"]["high"] == pytest.approx(100.0)


def test_bleu_matches_a_hand_computed_value():
    # hyp 8 tokens, ref 9: precisions 7/8, 4/7, 2/6, 1/5; brevity penalty exp(1 - 9/8)
    hyp, ref = "the quick brown fox jumps over the dog", "the quick brown fox jumped over the lazy dog"
    expected = 100 * math.exp(1 - 9 / 8) * (7 / 8 * 4 / 7 * 2 / 6 * 1 / 5) ** 0.25
    res = corpus_scores([hyp], [ref], "en", n_boot=10)
    assert res["bleu"]["value"] == pytest.approx(expected, abs=1e-6)
    assert res["bleu"]["tokenize"] == "13a"


def test_chinese_targets_use_the_zh_tokenizer():
    assert tokenizer_for("zh") == "zh" and tokenizer_for("fr") == "13a"
    hyp, ref = "我每天喝茶", "我每天喝咖啡"
    # zh splits characters: precisions 4/5, 3/4, 2/3, 1/2; brevity penalty exp(1 - 6/5)
    expected = 100 * math.exp(1 - 6 / 5) * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    res = corpus_scores([hyp], [ref], "zh", n_boot=10)
    assert res["bleu"]["value"] == pytest.approx(expected, abs=1e-6)
    assert res["bleu"]["tokenize"] == "zh"
    # with the default tokenizer the whole unspaced sentence is one token: no match at all
    assert sacrebleu.corpus_bleu([hyp], [[ref]]).score == pytest.approx(0.0, abs=1e-9)


def test_corpus_scores_equal_sacrebleu_and_the_interval_brackets_them():
    rows = translate.load_shipped()
    refs = [r["fr"] for r in rows]
    hyps = [" ".join(r.split()[: max(1, len(r.split()) * 2 // 3)]) for r in refs]  # truncated translations
    res = corpus_scores(hyps, refs, "fr", n_boot=300)
    assert res["bleu"]["value"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-6)
    assert res["chrf"]["value"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-6)
    for key in ("bleu", "chrf"):
        r = res[key]
        assert r["low"] < r["value"] < r["high"] and r["n"] == len(refs)
        assert r["high"] - r["low"] < 40


def test_sentence_score_is_chrf_over_100_and_empty_is_zero():
    suite = get_suite("translate", directions="en-fr")
    s = next(iter(suite.samples(0, None)))
    full = suite.score(f"Translation: {s.target}", s)
    assert full.value == pytest.approx(1.0) and full.extracted == s.target
    part = suite.score("Je bois du thé.", s)
    assert part.value == pytest.approx(sacrebleu.sentence_chrf("Je bois du thé.", [s.target]).score / 100)
    assert 0 < part.value < 0.6
    empty = suite.score("", s)
    assert empty.value == 0.0 and "empty" in empty.reason and empty.parsed


def test_aggregate_per_direction_leaves_errors_out_and_counts_them():
    suite = get_suite("translate", directions="en-fr,en-zh")
    samples = list(suite.samples(0, None))
    recs = [_rec(s, s.target) for s in samples]
    recs[0] = _rec(samples[0], None, status="error")  # en-fr, failed request
    agg = suite_metrics(suite, recs)
    assert set(agg) == {"bleu:en-fr", "chrf:en-fr", "bleu:en-zh", "chrf:en-zh"}
    assert agg["bleu:en-fr"]["n"] == 59 and agg["bleu:en-fr"]["errors"] == 1
    assert agg["bleu:en-zh"]["n"] == 60 and agg["bleu:en-zh"]["tokenize"] == "zh"
    assert agg["bleu:en-fr"]["value"] == pytest.approx(100.0)
    table = format_table(agg)
    assert "| en-fr | 59 | 100.0 [100.0, 100.0] | 100.0 [100.0, 100.0] |" in table


def test_aggregate_reads_stored_json_records(tmp_path):
    suite = get_suite("translate", directions="sw-en")
    samples = list(suite.samples(0, None))
    recs = [json.loads(json.dumps(_rec(s, "Hello there."))) for s in samples]
    agg = suite_metrics(suite, recs)
    assert 0 <= agg["bleu:sw-en"]["value"] < 5 and agg["chrf:sw-en"]["value"] < 25
    paths = suite.write_artifacts(recs, tmp_path)
    assert paths == [tmp_path / "translate_table.md"] and "sw-en" in paths[0].read_text()


# ---- FLORES loader on the real files -------------------------------------------------------------------------------
def test_flores_loader_reads_the_real_devtest(shared_benchmarks):
    path = shared_benchmarks / "flores200_devtest"
    rows, digest = flores.load_flores(path)
    assert len(rows) == 1012 and len(digest) == 16
    first = {lang: (path / f"{code}.devtest").read_text(encoding="utf-8").split("\n")[0].strip()
             for lang, code in flores.CODES.items()}
    assert {k: rows[0][k] for k in first} == first
    assert rows[0]["id"] == "flores-devtest-0001" and rows[-1]["id"] == "flores-devtest-1012"
    assert not rows[0]["sw"].endswith(" ")  # the published swh_Latn line 1 ends with a space
    suite = get_suite("flores", data=str(path), directions="en-sw,zh-en")
    samples = list(suite.samples(0, None))
    assert suite.name == "flores" and len(samples) == 2024
    assert samples[1].category == "zh-en" and samples[1].target == rows[0]["en"]


def test_translate_with_data_reads_flores_too(shared_benchmarks):
    suite = get_suite("translate", data=shared_benchmarks / "flores200_devtest", directions="en-fr")
    s = next(iter(suite.samples(0, None)))
    assert suite.name == "translate" and s.id == "flores-devtest-0001:en-fr"
    assert suite.data_hash() != get_suite("translate", directions="en-fr").data_hash()


def test_flores_accepts_the_tarball_layout(shared_benchmarks, tmp_path):
    sub = tmp_path / "flores200_dataset" / "devtest"
    sub.mkdir(parents=True)
    for f in (shared_benchmarks / "flores200_devtest").iterdir():
        (sub / f.name).write_bytes(f.read_bytes())
    rows, _ = flores.load_flores(tmp_path, langs=["en", "fr"])
    assert len(rows) == 1012 and set(rows[0]) == {"id", "en", "fr"}


def test_flores_without_data_is_a_one_line_error_naming_data(tmp_path):
    with pytest.raises(DataError) as e:
        get_suite("flores")
    assert "--data" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DataError) as e:
        get_suite("flores", data=tmp_path)
    assert "--data" in str(e.value) and "eng_Latn.devtest" in str(e.value)


def test_flores_refuses_misaligned_files(tmp_path):
    (tmp_path / "eng_Latn.devtest").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "fra_Latn.devtest").write_text("a\n", encoding="utf-8")
    with pytest.raises(DataError, match="line count"):
        flores.load_flores(tmp_path, langs=["en", "fr"])
    with pytest.raises(DataError, match="spa_Latn"):
        flores.load_flores(tmp_path, langs=["en", "es"])


def test_a_flores_run_recorded_as_translate_class_rescores_as_flores(shared_benchmarks):
    """Runs made when ``flores`` was a ``translate.Translate`` built by a ``make()`` stored that class as the suite's
    ref; rescore rebuilds them by name, as the flores suite with the same samples and data hash."""
    from assay.evals.scorecard import suites_for
    from assay.store import EvalManifest

    opts = {"data": str(shared_benchmarks / "flores200_devtest"), "directions": "en-sw"}
    man = EvalManifest(run_id="r", fingerprint={"suites": {"flores": {}}}, suite_options={"flores": opts},
                       suite_refs={"flores": "assay.evals.suites.translate:Translate"})
    rebuilt = suites_for(man, strict=True)["flores"]
    now = get_suite("flores", **opts)
    assert type(rebuilt) is flores.Flores and rebuilt.name == "flores" and rebuilt.data_hash() == now.data_hash()
    assert [s.id for s in rebuilt.samples(0, 3)] == [s.id for s in now.samples(0, 3)]
