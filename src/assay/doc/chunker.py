"""Structure-aware, token-bounded chunking of long documents.

A document is parsed into *blocks* (a heading with the paragraphs under it; Markdown ``#`` headings, or lines that
look like headings in plain text). Paragraphs are packed greedily into chunks of at most ``budget`` tokens, never
crossing a heading when it can be avoided, with a small overlap (the tail paragraph of the previous chunk) so a fact
split over a boundary is seen whole once. A paragraph larger than the budget is split on sentences, then on words.

Token counts come from a caller-supplied ``count`` function (the served model's tokenizer in production, a word
counter in tests), so the chunker itself is pure and property-tested.

Example:
    chunks = chunk_text(open("report.md").read(), budget=1500, count=lambda s: len(s.split()))
    for c in chunks: print(c.id, c.section, c.tokens)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


@dataclass(frozen=True)
class Paragraph:
    index: int  # 0-based position in the document
    text: str
    section: str  # heading path, e.g. "Results > Revenue" ("" before any heading)


@dataclass
class Chunk:
    id: str  # "S1", "S2", ... (what citations refer to)
    text: str
    section: str  # heading of the first paragraph in the chunk
    paragraphs: list[int] = field(default_factory=list)  # indices of paragraphs (or pieces) covered
    tokens: int = 0

    @property
    def label(self) -> str:
        ps = self.paragraphs
        where = f"¶{ps[0] + 1}" if len(ps) == 1 or ps[0] == ps[-1] else f"¶{ps[0] + 1}–{ps[-1] + 1}"
        return f"{self.id} ({self.section + ', ' if self.section else ''}{where})"


def _looks_like_plain_heading(line: str, next_blank: bool) -> bool:
    s = line.strip()
    return (next_blank and 0 < len(s) <= 80 and not s.endswith((".", ",", ";", ":", "?", "!"))
            and len(s.split()) <= 10 and (s.isupper() or s.istitle() or re.match(r"^\d+(\.\d+)*\.?\s+\S", s)))


def parse_paragraphs(text: str) -> list[Paragraph]:
    """Split on blank lines; track headings (Markdown, or short title-like lines in plain text) as the section."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    raw_blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()]
    stack: list[tuple[int, str]] = []
    out: list[Paragraph] = []
    for i, block in enumerate(raw_blocks):
        lines = block.strip("\n").split("\n")
        first = lines[0]
        m = _MD_HEADING.match(first.strip())
        level = None
        title = None
        if m:
            level, title = len(m.group(1)), m.group(2).strip()
        elif len(lines) == 1 and _looks_like_plain_heading(first, True):
            level, title = 1, first.strip()
        if title is not None:
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
        section = " > ".join(t for _, t in stack)
        out.append(Paragraph(index=len(out), text=block.strip(), section=section))
    return out


def _split_oversized(text: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """Split one paragraph that exceeds the budget: on sentences, then on words."""
    pieces: list[str] = []
    cur = ""
    for sent in _SENTENCE.split(text):
        cand = f"{cur} {sent}".strip() if cur else sent
        if count(cand) <= budget:
            cur = cand
            continue
        if cur:
            pieces.append(cur)
        if count(sent) <= budget:
            cur = sent
            continue
        cur = ""
        for word in sent.split():  # a single sentence over budget: pack words
            cand = f"{cur} {word}".strip() if cur else word
            if count(cand) <= budget:
                cur = cand
            else:
                if cur:
                    pieces.append(cur)
                cur = ""
                if count(word) <= budget:
                    cur = word
                else:  # one "word" over budget (a URL, a base64 blob): cut it into pieces that fit
                    size = max(1, len(word) // 2)
                    while size > 1 and count(word[:size]) > budget:
                        size //= 2
                    pieces.extend(word[i:i + size] for i in range(0, len(word), size))
    if cur:
        pieces.append(cur)
    return pieces


def chunk_text(text: str, budget: int, count: Callable[[str], int], overlap: bool = True) -> list[Chunk]:
    """Pack paragraphs into chunks of <= budget tokens, in order, every paragraph covered at least once."""
    if budget < 8:
        raise ValueError("chunk budget must be at least 8 tokens")
    units: list[tuple[int, str, str, int]] = []  # (paragraph index, text, section, tokens)
    for p in parse_paragraphs(text):
        n = count(p.text)
        if n <= budget:
            units.append((p.index, p.text, p.section, n))
        else:
            for piece in _split_oversized(p.text, budget, count):
                units.append((p.index, piece, p.section, count(piece)))
    chunks: list[Chunk] = []
    cur: list[tuple[int, str, str, int]] = []

    def flush():
        if cur:
            body = "\n\n".join(u[1] for u in cur)
            chunks.append(Chunk(id=f"S{len(chunks) + 1}", text=body, section=cur[0][2],
                                paragraphs=[u[0] for u in cur], tokens=count(body)))

    for u in units:
        if cur:
            body = "\n\n".join(x[1] for x in cur) + "\n\n" + u[1]
            new_section = u[2] != cur[-1][2] and sum(x[3] for x in cur) >= budget // 2
            if count(body) > budget or new_section:
                prev_tail = cur[-1]
                flush()
                cur = []
                # overlap: carry the previous chunk's last unit when it fits beside the new one and is short
                if overlap and prev_tail[3] <= budget // 8 and count(prev_tail[1] + "\n\n" + u[1]) <= budget:
                    cur.append(prev_tail)
        cur.append(u)
    flush()
    return chunks
