"""Chunker properties (hypothesis): no chunk over budget, every paragraph covered, order kept."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from assay.doc.chunker import chunk_text, parse_paragraphs


def words(s: str) -> int:
    return len(s.split())


word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
sentence = st.lists(word, min_size=1, max_size=30).map(lambda ws: " ".join(ws) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=12).map(" ".join)
heading = word.map(lambda w: "## " + w.capitalize())
block = st.one_of(paragraph, paragraph, paragraph, heading)
document = st.lists(block, min_size=1, max_size=40).map("\n\n".join)


@settings(max_examples=200, deadline=None)
@given(document, st.integers(min_value=8, max_value=200), st.booleans())
def test_chunks_within_budget_cover_everything_in_order(doc, budget, overlap):
    chunks = chunk_text(doc, budget, words, overlap=overlap)
    paras = parse_paragraphs(doc)
    assert all(c.tokens <= budget and words(c.text) <= budget for c in chunks)
    covered = {i for c in chunks for i in c.paragraphs}
    assert covered == {p.index for p in paras}
    # order kept: first paragraph of each chunk never goes backwards, ids are S1..Sn
    firsts = [c.paragraphs[0] for c in chunks]
    assert firsts == sorted(firsts)
    assert [c.id for c in chunks] == [f"S{i}" for i in range(1, len(chunks) + 1)]
    # every word of the document appears in the chunks, in document order (overlap may repeat, never reorder)
    doc_words = doc.split()
    chunk_words = [w for c in chunks for w in c.text.split()]
    it = iter(chunk_words)
    assert all(any(w == x for x in it) for w in doc_words)


def test_headings_become_sections():
    doc = "# Report\n\nIntro text here.\n\n## Revenue\n\nSales rose 12%.\n\n## Costs\n\nCosts fell.\n\nMore costs."
    paras = parse_paragraphs(doc)
    assert [p.section for p in paras] == ["Report", "Report", "Report > Revenue", "Report > Revenue",
                                          "Report > Costs", "Report > Costs", "Report > Costs"]


def test_plain_text_headings_detected():
    doc = "ANNUAL RESULTS\n\nThe year went well.\n\n2. Outlook\n\nWe expect growth."
    secs = [p.section for p in parse_paragraphs(doc)]
    assert secs[1] == "ANNUAL RESULTS" and secs[3] == "2. Outlook"


def test_oversized_paragraph_split_on_sentences():
    para = " ".join(f"Sentence number {i} is here." for i in range(50))
    chunks = chunk_text(para, 20, words)
    assert len(chunks) > 5 and all(words(c.text) <= 20 for c in chunks)
    assert all(re.search(r"\.$", c.text) for c in chunks[:-1])  # cut at sentence ends when possible


def test_giant_token_is_cut():
    blob = "x" * 5000
    chunks = chunk_text(f"start\n\n{blob}\n\nend", 50, lambda s: len(s) // 10 + 1)
    assert all(len(c.text) // 10 + 1 <= 50 for c in chunks)
    assert "".join(c.text for c in chunks).count("x") >= 5000
