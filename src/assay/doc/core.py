"""The three document operations over one OpenAI-compatible client. The CLI is a thin layer over these.

Token budgets are counted with the served model's tokenizer: a chars-per-token ratio is measured on a sample of the
document (one /tokenize call), the chunker packs with that estimate plus a 10 % margin, and every final chunk is then
counted exactly; a chunk that still exceeds the budget is split again. Unknown tokenizer -> 4 chars/token, stated.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from assay.client import Client, SamplingParams
from assay.common import fenced_blocks, stable_hash, text_digest
from assay.doc.chunker import Chunk, chunk_text
from assay.errors import AssayError, DataError

NOT_FOUND = "not found in the document"


def read_document(path: str | Path) -> str:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"document not found: {p}")
    if p.suffix.lower() == ".pdf":
        try:
            from pypdf import PdfReader
        except ImportError:
            raise DataError("reading PDF needs pypdf: pip install pypdf  (or convert the file to .txt)") from None
        pages = [(page.extract_text() or "").strip() for page in PdfReader(str(p)).pages]
        return "\n\n".join(f"# Page {i + 1}\n\n{t}" for i, t in enumerate(pages) if t)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{p} is not UTF-8 text: convert it (assay doc reads .txt, .md and .pdf)") from None


@dataclass
class Tokens:
    """Token counting with the served tokenizer where possible; `exact` says whether it was."""

    chars_per_token: float
    exact: bool

    @classmethod
    async def calibrate(cls, client: Client, text: str) -> "Tokens":
        sample = text[:20_000] if len(text) <= 60_000 else text[:10_000] + text[len(text) // 2: len(text) // 2 + 10_000]
        toks = await client.tokenize(sample) if sample.strip() else None
        if toks:
            return cls(chars_per_token=max(1.0, len(sample) / max(1, len(toks))), exact=True)
        return cls(chars_per_token=4.0, exact=False)

    def estimate(self, s: str) -> int:
        return math.ceil(len(s) / self.chars_per_token * 1.1) + 1


async def make_chunks(client: Client, text: str, budget: int, tokens: Tokens, concurrency: int = 8) -> list[Chunk]:
    """Chunk with the estimate, then verify each chunk exactly (when the tokenizer is available)."""
    chunks = chunk_text(text, budget, tokens.estimate)
    if not tokens.exact:
        return chunks
    sem = asyncio.Semaphore(concurrency)

    async def exact(c: Chunk) -> int:
        async with sem:
            return await client.count_tokens(c.text)

    counts = await asyncio.gather(*(exact(c) for c in chunks))
    out: list[Chunk] = []
    for c, n in zip(chunks, counts):
        if n <= budget:
            c.tokens = n
            out.append(c)
            continue
        scale = budget / n * 0.9  # the estimate was optimistic for this chunk: re-split it tighter
        for sub in chunk_text(c.text, max(8, int(budget * scale)), tokens.estimate, overlap=False):
            sub.section, sub.paragraphs, sub.tokens = c.section, c.paragraphs, await client.count_tokens(sub.text)
            out.append(sub)
    for i, c in enumerate(out, 1):
        c.id = f"S{i}"
    return out


# ---------------------------------------------------------------------------------------------------------- summarise
STYLE_WORDS = {"brief": "in 3 to 5 short bullet points", "detailed": "in 6 to 12 bullet points, keeping figures and dates"}

MAP_PROMPT = """Summarise this section of a longer document {style}. Keep names, numbers and dates exactly.
Write only the bullet points.

Section: {section}
---
{text}
---"""

REDUCE_PROMPT = """Below are bullet-point summaries of consecutive parts of one document; each bullet ends with source
tags like [S3]. Merge them into one summary {style}. Keep the most important facts, names, numbers and dates. End every
bullet with the source tags of the bullets it came from.

{text}"""


@dataclass
class SummaryResult:
    text: str  # final summary (Markdown)
    chunks: list[Chunk]
    levels: int  # reduce levels used (0: whole document fitted)
    requests: int
    prompt_tokens: int
    completion_tokens: int
    wall_s: float
    cached: int  # map summaries reused from the cache
    token_count_exact: bool
    doc_tokens: int
    sources: dict[str, str] = field(default_factory=dict)  # chunk id -> label

    def markdown(self, title: str) -> str:
        lines = [f"# Summary of {title}", "", self.text.strip(), "", "## Sources", ""]
        lines += [f"- **{cid}**: {label}" for cid, label in self.sources.items()]
        return "\n".join(lines) + "\n"


_TAG = re.compile(r"\[(S\d+(?:\s*[,–-]\s*S?\d+)*)\]")


def _bullets(text: str) -> list[str]:
    out = []
    for line in text.strip().splitlines():
        s = line.strip()
        if not s:
            continue
        s = re.sub(r"^([-*•]|\d+[.)])\s*", "", s)
        if s:
            out.append(s)
    return out


def tag_bullets(text: str, tags: list[str]) -> str:
    """Make every bullet cite its sources: keep tags the model wrote, else append the group's tags."""
    fallback = "[" + ", ".join(tags) + "]"
    lines = []
    for b in _bullets(text):
        lines.append(f"- {b}" if _TAG.search(b) else f"- {b} {fallback}")
    return "\n".join(lines)


class Cache:
    """Per-document, per-settings cache of chunk summaries so an interrupted run resumes."""

    def __init__(self, root: Path, key: dict):
        digest = stable_hash(key, 20)
        self.dir = root / digest
        self.dir.mkdir(parents=True, exist_ok=True)

    def get(self, name: str) -> dict | None:
        p = self.dir / f"{name}.json"
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            return None

    def put(self, name: str, value: dict) -> None:
        p = self.dir / f"{name}.json"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(value))
        os.replace(tmp, p)  # atomic: a kill never leaves a half-written cache entry


def cache_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("ASSAY_HOME") or user_cache_dir("assay")) / "doc-cache"


async def summarize(client: Client, text: str, *, budget: int = 2000, style: str = "brief", max_tokens: int = 256,
                    concurrency: int = 4, cache_dir: Path | None = None,
                    progress: Callable[[str, int, int], None] | None = None) -> SummaryResult:
    if style not in STYLE_WORDS:
        raise AssayError(f"unknown style {style!r}: use brief or detailed")
    t0 = time.perf_counter()
    stats = {"requests": 0, "prompt": 0, "completion": 0}
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    tokens = await Tokens.calibrate(client, text)
    doc_tokens = await client.count_tokens(text) if tokens.exact and len(text) < 200_000 else tokens.estimate(text)
    # room for the instructions and the answer inside the budget
    chunk_budget = max(64, budget - max_tokens - 96)
    sem = asyncio.Semaphore(concurrency)

    async def ask(prompt: str) -> str:
        async with sem:
            done = await client.chat([{"role": "user", "content": prompt}], params)
        stats["requests"] += 1
        if done.prompt_tokens is None:  # llama-cpp-python reports no usage when streaming: count the prompt text
            stats["prompt"] += await client.count_tokens(prompt)
        else:
            stats["prompt"] += done.prompt_tokens
        stats["completion"] += done.completion_tokens or 0
        return done.text

    if doc_tokens <= chunk_budget:  # fits whole: one request, no map-reduce
        one = Chunk(id="S1", text=text, section="", paragraphs=[0], tokens=doc_tokens)
        out = tag_bullets(await ask(MAP_PROMPT.format(style=STYLE_WORDS[style], section="whole document",
                                                      text=text)), ["S1"])
        return SummaryResult(out, [one], 0, stats["requests"], stats["prompt"], stats["completion"],
                             time.perf_counter() - t0, 0, tokens.exact, doc_tokens, {"S1": "whole document"})

    chunks = await make_chunks(client, text, chunk_budget, tokens)
    cache = Cache(cache_dir or cache_root(), {"doc": text_digest(text), "budget": budget,
                                              "style": style, "model": client.model, "max_tokens": max_tokens,
                                              "v": 1})
    cached = 0
    done_count = 0

    async def map_one(c: Chunk) -> str:
        nonlocal cached, done_count
        hit = cache.get(f"map-{c.id}")
        if hit and hit.get("text_sha") == text_digest(c.text):
            cached += 1
            summary = hit["summary"]
        else:
            raw = await ask(MAP_PROMPT.format(style=STYLE_WORDS[style], section=c.section or "(untitled)", text=c.text))
            summary = tag_bullets(raw, [c.id])
            cache.put(f"map-{c.id}", {"summary": summary, "text_sha": text_digest(c.text)})
        done_count += 1
        if progress:
            progress("map", done_count, len(chunks))
        return summary

    level_texts = await asyncio.gather(*(map_one(c) for c in chunks))
    level_tags = [[c.id] for c in chunks]
    levels = 0
    # reduce hierarchically: group consecutive summaries that fit the budget, summarise each group, repeat
    while len(level_texts) > 1 or levels == 0:
        levels += 1
        groups: list[tuple[list[str], list[str]]] = []
        cur_t: list[str] = []
        cur_tags: list[str] = []
        for t, tags in zip(level_texts, level_tags):
            if cur_t and tokens.estimate("\n".join(cur_t + [t])) > chunk_budget:
                groups.append((cur_t, cur_tags))
                cur_t, cur_tags = [], []
            cur_t.append(t)
            cur_tags += tags
        groups.append((cur_t, cur_tags))
        if len(groups) == len(level_texts) and len(groups) > 1:  # no progress possible: pairs are forced
            groups = [(level_texts[i:i + 2], sum(level_tags[i:i + 2], [])) for i in range(0, len(level_texts), 2)]
        reduced_n = 0

        async def reduce_one(i: int, g: tuple[list[str], list[str]]) -> str:
            nonlocal reduced_n
            name = f"reduce-{levels}-{i}-{text_digest(''.join(g[0]), 12)}"
            hit = cache.get(name)
            if hit:
                out = hit["summary"]
            else:
                raw = await ask(REDUCE_PROMPT.format(style=STYLE_WORDS[style], text="\n".join(g[0])))
                out = tag_bullets(raw, _compress(g[1]))
                cache.put(name, {"summary": out})
            reduced_n += 1
            if progress:
                progress(f"reduce {levels}", reduced_n, len(groups))
            return out

        level_texts = list(await asyncio.gather(*(reduce_one(i, g) for i, g in enumerate(groups))))
        level_tags = [g[1] for g in groups]
        if len(level_texts) == 1:
            break
    return SummaryResult(level_texts[0], chunks, levels, stats["requests"], stats["prompt"], stats["completion"],
                         time.perf_counter() - t0, cached, tokens.exact, doc_tokens,
                         {c.id: c.label.split(" ", 1)[1].strip("()") for c in chunks})


def _compress(tags: list[str]) -> list[str]:
    """["S1","S2","S3","S7"] -> ["S1–S3", "S7"] so fallback citations stay short."""
    nums = sorted({int(t[1:]) for t in tags})
    out, start, prev = [], None, None
    for n in nums + [None]:
        if start is None:
            start = prev = n
        elif n is not None and n == prev + 1:
            prev = n
        else:
            out.append(f"S{start}" if start == prev else f"S{start}–S{prev}")
            start = prev = n
    return out


# ---------------------------------------------------------------------------------------------------------------- ask
ASK_PROMPT = """Answer the question using ONLY the excerpts below from a document. Cite the excerpt tags you used, like
[S2]. If the excerpts do not contain the answer, reply exactly: {not_found}.

{excerpts}

Question: {question}"""

_WORD = re.compile(r"\w+", re.UNICODE)
STOP = frozenset("a an the of to in on at for and or is are was were be by with what which who whom when where why how "
                 "does do did it its this that these those from as".split())


def _terms(s: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(s)) if w not in STOP]


@dataclass
class Answer:
    text: str
    found: bool
    citations: list[str]
    chunks: list[Chunk]  # the excerpts sent, best first
    scores: list[float]


def select_chunks(chunks: list[Chunk], question: str, budget: int) -> tuple[list[Chunk], list[float]]:
    """BM25 (rank-bm25) over chunks; best first, up to the token budget; zero-score chunks never selected."""
    from rank_bm25 import BM25Okapi

    if not chunks:
        return [], []
    bm = BM25Okapi([_terms(c.text) or ["∅"] for c in chunks])
    scores = bm.get_scores(_terms(question) or ["∅"])
    order = sorted(range(len(chunks)), key=lambda i: -scores[i])
    picked, picked_scores, used = [], [], 0
    for i in order:
        if scores[i] <= 0:
            break
        if used + chunks[i].tokens > budget and picked:
            break
        picked.append(chunks[i])
        picked_scores.append(float(scores[i]))
        used += chunks[i].tokens
    return picked, picked_scores


async def ask(client: Client, text: str, question: str, *, budget: int = 2000, chunk_tokens: int = 300,
              max_tokens: int = 200) -> Answer:
    tokens = await Tokens.calibrate(client, text)
    chunks = await make_chunks(client, text, chunk_tokens, tokens)
    picked, scores = select_chunks(chunks, question, max(chunk_tokens, budget - max_tokens - 120))
    if not picked:  # no excerpt shares a single term with the question: do not ask the model to guess
        return Answer(NOT_FOUND, False, [], [], [])
    excerpts = "\n\n".join(f"[{c.id}] ({c.section or 'untitled'})\n{c.text}" for c in sorted(picked, key=lambda c: int(c.id[1:])))
    prompt = ASK_PROMPT.format(not_found=NOT_FOUND, excerpts=excerpts, question=question)
    done = await client.chat([{"role": "user", "content": prompt}], SamplingParams(temperature=0.0, max_tokens=max_tokens))
    answer = done.text.strip()
    found = NOT_FOUND not in answer.lower()
    cites = sorted(set(re.findall(r"\bS\d+\b", answer)) & {c.id for c in picked}, key=lambda s: int(s[1:]))
    if found and not cites:  # the model forgot to cite: cite the best excerpt it was given
        cites = [picked[0].id]
    return Answer(answer, found, cites, picked, scores)


# ------------------------------------------------------------------------------------------------------------ extract
EXTRACT_PROMPT = """Extract the information described by this JSON Schema from the document below. Answer with one
JSON object only. Use values from the document; use null where the document has no value and the schema allows it.

JSON Schema:
{schema}

Document:
---
{text}
---"""


class ExtractionError(AssayError):
    pass


@dataclass
class Extraction:
    data: dict
    attempts: int
    constrained: bool
    errors: list[str]


def parse_json_answer(text: str):
    s = text.strip()
    fences = [f for f in fenced_blocks(s) if f.closed]
    if fences:
        s = fences[0].body.strip()
    if not s.startswith(("{", "[")):
        start = s.find("{")
        end = s.rfind("}")
        if start >= 0 and end > start:
            s = s[start:end + 1]
    return json.loads(s)


async def extract(client: Client, text: str, schema: dict, *, budget: int = 3000, max_tokens: int = 512,
                  constrained: bool = True) -> Extraction:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ExtractionError(f"the schema itself is invalid: {e.message}") from None
    validator = jsonschema.Draft202012Validator(schema)
    tokens = await Tokens.calibrate(client, text)
    room = max(64, budget - max_tokens - tokens.estimate(json.dumps(schema)) - 100)
    if tokens.estimate(text) > room:  # too long: keep the excerpts most related to the schema's field names
        chunks = await make_chunks(client, text, max(64, room // 4), tokens)
        query = " ".join(_schema_words(schema))
        picked, _ = select_chunks(chunks, query, room)
        text = "\n\n".join(c.text for c in sorted(picked or chunks[:1], key=lambda c: int(c.id[1:])))
    messages = [{"role": "user", "content": EXTRACT_PROMPT.format(schema=json.dumps(schema, indent=1), text=text)}]
    rf = {"type": "json_schema", "json_schema": {"name": "extraction", "schema": schema, "strict": True}}
    errors: list[str] = []
    for attempt in (1, 2):
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, response_format=rf if constrained else None)
        done = await client.chat(messages, params)
        try:
            data = parse_json_answer(done.text)
        except ValueError as e:
            problem = f"the answer is not valid JSON ({e})"
        else:
            errs = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
            if not errs:
                return Extraction(data, attempt, constrained, errors)
            problem = "; ".join(f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errs[:5])
        errors.append(problem)
        # one retry, telling the model exactly what was wrong
        messages = messages + [{"role": "assistant", "content": done.text},
                               {"role": "user", "content": f"That answer is invalid: {problem}. Reply with corrected JSON only."}]
    raise ExtractionError(f"no schema-valid JSON after 2 attempts: {errors[-1]}")


def _schema_words(schema) -> list[str]:
    words: list[str] = []
    if isinstance(schema, dict):
        for k, v in (schema.get("properties") or {}).items():
            words += re.split(r"[_\W]+", k)
            if isinstance(v, dict) and v.get("description"):
                words += _terms(v["description"])
            words += _schema_words(v)
        if isinstance(schema.get("items"), dict):
            words += _schema_words(schema["items"])
    return [w for w in words if w]
