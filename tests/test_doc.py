"""assay doc: map-reduce, ask and extract against the real embedded model; retry/failure paths against the stub."""

from __future__ import annotations

import asyncio
import re

import jsonschema
import pytest

from assay.client import Client
from assay.doc.core import NOT_FOUND, ExtractionError, ask, extract, summarize

CITIES = ["Lisbon", "Nairobi", "Osaka", "Quito", "Tallinn", "Perth", "Accra", "Bergen"]
PRODUCTS = ["solar pumps", "bicycle frames", "water filters", "ceramic tiles", "fishing nets", "school desks"]


def company_document(n_sections: int = 8, planted: str | None = None) -> str:
    parts = ["# Regional Company Register"]
    for i in range(n_sections):
        city, product = CITIES[i % len(CITIES)], PRODUCTS[i % len(PRODUCTS)]
        name = f"{city} {product.split()[0].capitalize()} Works"
        parts.append(f"## {name}")
        parts.append(f"{name} was founded in {1950 + 7 * i} in {city}. It makes {product} and employs "
                     f"{120 + 35 * i} people. Its director is {['Ana', 'Kofi', 'Yuki', 'Lucia'][i % 4]} "
                     f"{['Silva', 'Mensah', 'Tanaka', 'Moreno'][i % 4]}.")
        parts.append(f"In {2010 + i} the company opened a second plant. Revenue last year was {3 + i}.{i} million "
                     f"dollars, and exports went mostly to neighbouring countries. The board meets every quarter "
                     f"to review safety, hiring and the order book for {product}.")
        if planted and i == n_sections // 2:
            parts.append(planted)
    return "\n\n".join(parts)


def run(endpoint, fn):
    async def go():
        async with Client(endpoint) as c:
            return await fn(c)

    return asyncio.run(go())


@pytest.mark.engine
def test_map_reduce_summary_cites_sections_and_resumes_from_cache(embedded, tmp_path):
    doc = company_document(8)
    res = run(embedded, lambda c: summarize(c, doc, budget=420, max_tokens=80, cache_dir=tmp_path))
    assert len(res.chunks) >= 3 and res.levels >= 1
    assert res.token_count_exact  # counted with the served tokenizer
    assert all(c.tokens <= 420 - 80 - 96 for c in res.chunks)
    bullets = [line for line in res.text.splitlines() if line.startswith("- ")]
    assert bullets and all(re.search(r"\[S\d+", b) for b in bullets), res.text
    assert set(res.sources) == {c.id for c in res.chunks}
    assert res.requests > len(res.chunks)  # map requests plus at least one reduce
    # second run: every chunk summary comes from the cache, only the reduce step (also cached) remains
    again = run(embedded, lambda c: summarize(c, doc, budget=420, max_tokens=80, cache_dir=tmp_path))
    assert again.cached == len(res.chunks) and again.requests == 0
    assert again.text == res.text


@pytest.mark.engine
def test_ask_finds_a_planted_fact(embedded):
    fact = "Security note: the vault combination at the Harbor Street office is 7391."
    doc = company_document(12, planted=fact)
    ans = run(embedded, lambda c: ask(c, doc, "What is the vault combination at the Harbor Street office?",
                                      budget=900, chunk_tokens=200))
    assert any("7391" in c.text for c in ans.chunks[:1]), "BM25 should rank the planted chunk first"
    assert ans.found and "7391" in ans.text
    assert ans.citations


@pytest.mark.engine
def test_ask_unrelated_question_is_not_found_without_guessing(embedded):
    ans = run(embedded, lambda c: ask(c, company_document(4), "Quantum chromodynamics gluon?", budget=900))
    assert not ans.found and ans.text == NOT_FOUND and ans.chunks == []


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "founded": {"type": "integer"}, "city": {"type": "string"}},
    "required": ["name", "founded", "city"],
    "additionalProperties": False,
}


@pytest.mark.engine
def test_extract_returns_schema_valid_json(embedded):
    text = "Tallinn Ceramic Works was founded in 1978 in Tallinn. It makes ceramic tiles."
    res = run(embedded, lambda c: extract(c, text, SCHEMA, max_tokens=96))
    jsonschema.validate(res.data, SCHEMA)
    assert res.constrained and res.attempts in (1, 2)


def test_extract_retries_once_with_the_validation_error(stub):
    def reply(req):
        if len(req["messages"]) == 1:
            return '{"name": "X", "founded": "nineteen", "city": "Y"}'
        assert "founded" in req["messages"][-1]["content"]  # the validation error is sent back
        return '```json\n{"name": "X", "founded": 1999, "city": "Y"}\n```'

    s = stub(reply=reply)
    res = run(s.endpoint(), lambda c: extract(c, "X in Y since 1999", SCHEMA))
    assert res.data == {"name": "X", "founded": 1999, "city": "Y"} and res.attempts == 2
    assert "founded" in res.errors[0]
    assert s.requests[0]["response_format"]["json_schema"]["schema"] == SCHEMA


def test_extract_fails_clearly_after_the_retry(stub):
    s = stub(reply="I cannot do that.")
    with pytest.raises(ExtractionError, match="no schema-valid JSON after 2 attempts"):
        run(s.endpoint(), lambda c: extract(c, "text", SCHEMA))
    assert s.count == 2


def test_extract_rejects_an_invalid_schema(stub):
    s = stub()
    with pytest.raises(ExtractionError, match="schema itself is invalid"):
        run(s.endpoint(), lambda c: extract(c, "text", {"type": "objekt"}))
    assert s.count == 0


def test_doc_cli_missing_file_is_one_line(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "assay.cli", "doc", "summarize", str(tmp_path / "nope.txt")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == f"error: document not found: {tmp_path / 'nope.txt'}"
