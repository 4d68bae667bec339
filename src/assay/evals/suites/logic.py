"""logic — ZebraLogic-style grid puzzles, generated on the fly (no data files; nothing to license).

Source: puzzles come from ``assay.evals.zebra`` (our generator and solver): N houses x M attributes, 2x2 up to 6x6,
each with exactly one solution and no redundant clue. The format follows ZebraLogic (Lin et al., 2025,
"ZebraLogic: On the Scaling Limits of LLMs for Logical Reasoning"); no ZebraLogic item is used.

Prompt: the houses, the attributes with their values, the numbered clues, and the answer layout — one JSON object
``{"House 1": {"Name": "...", ...}, ...}``.

Scoring: puzzle accuracy (1 when every cell is right, the headline binary score) and cell accuracy (share of the N*M
cells right, in ``Score.extra`` and the ``aggregate`` hook). The reader is lenient about layout, not content: houses
and attributes in any order, keys and values in any case / spacing, ```json fences, a ``{"solution": ...}`` wrapper
or a list of rows. No JSON at all is ``unparsed``. Samples are bucketed (category) by search-space size (N!)^M as
ZebraLogic does: small < 10^3 <= medium < 10^6 <= large < 10^10 <= x-large.

Example:
    assay eval --suite logic --model smollm2-135m --limit 10
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from assay.evals import zebra
from assay.common import fenced_blocks
from assay.evals.base import Metric, as_records, Record, Sample, Score, Suite, SuiteOptions
from assay.stats import mean_summary
from assay.errors import AssayError

# Default mix: weighted to small grids so a CPU run of a tiny model stays short, but every bucket is present.
DEFAULT_MIX = [("2x2", 6), ("2x3", 5), ("3x2", 5), ("3x3", 6), ("3x4", 4), ("4x3", 3), ("4x4", 4), ("4x5", 2),
               ("5x5", 3), ("6x6", 2)]

PROMPT = """Solve this logic puzzle.

There are {n} houses in a row, numbered 1 to {n} from left to right. Each house has one person, and each \
attribute below takes each of its values in exactly one house.

{attributes}

"Somewhere to the left of" means in any house with a smaller number; "directly left of" means in the house \
numbered exactly one less; "next to each other" means in adjacent houses.

Clues:
{clues}

Give your answer as one JSON object with a key for every house, each holding every attribute, like this:
{layout}"""


def _layout(attrs: list[str], n: int) -> str:
    # every house spelled out: a small model copies a template, and a trailing "..." would invite invalid JSON
    row = ", ".join(f'"{a}": "..."' for a in attrs)
    return "{" + ", ".join(f'"House {h}": {{{row}}}' for h in range(1, n + 1)) + "}"


def _parse_mix(sizes) -> list[tuple[str, int]]:
    if sizes is None:
        return list(DEFAULT_MIX)
    if isinstance(sizes, str):
        sizes = [s for s in re.split(r"[,\s]+", sizes) if s]
    out = []
    for s in sizes:
        if isinstance(s, (tuple, list)):
            s, k = s
        else:
            s, _, k = str(s).partition(":")
            k = k or 5
        m = re.fullmatch(r"(\d)x(\d)", s.strip().lower())
        if not m or not (2 <= int(m[1]) <= 6 and 2 <= int(m[2]) <= 6):
            raise AssayError(f"bad logic puzzle size {s!r}: use NxM with 2 <= N, M <= 6, e.g. sizes=2x2,3x3:10")
        out.append((f"{m[1]}x{m[2]}", int(k)))
    return out


class Logic(Suite):
    name = "logic"
    version = "1"
    binary = True
    metric = "puzzle accuracy"
    prompt_template = PROMPT

    class Options(SuiteOptions):
        sizes: Any = None  # "2x2,3x3:10" (size[:count], default count 5) or a list; None: the default mix (40)

    def __init__(self, **options):
        super().__init__(**options)
        self.mix = _parse_mix(self.options.sizes)

    def data_hash(self) -> str:
        # the data is the generator: its version and the mix define every sample for a seed
        return f"zebra-v1:{';'.join(f'{s}:{k}' for s, k in self.mix)}"

    def samples(self, seed: int, limit: int | None):
        # Round-robin over sizes so a --limit still sees every size, small ones first.
        queues = [[(size, i) for i in range(k)] for size, k in self.mix]
        order = []
        while any(queues):
            for q in queues:
                if q:
                    order.append(q.pop(0))
        for size, i in order[:limit] if limit is not None else order:
            n, m = (int(x) for x in size.split("x"))
            p = zebra.generate(n, m, seed=f"{seed}:{i}")
            yield Sample(id=f"logic-{size}-{seed}-{i}",
                         input={"n": n, "attributes": p.attributes, "clues": [c.text() for c in p.clues]},
                         target={str(h): row for h, row in p.solution.items()},
                         category=zebra.bucket(n, m), meta={"size": size, "clues": len(p.clues)})

    def messages(self, sample: Sample) -> list[dict]:
        inp = sample.input
        attrs = "\n".join(f"- {a}: {', '.join(vals)}" for a, vals in inp["attributes"].items())
        clues = "\n".join(f"{k}. {c}" for k, c in enumerate(inp["clues"], start=1))
        text = PROMPT.format(n=inp["n"], attributes=attrs, clues=clues, layout=_layout(list(inp["attributes"]),
                                                                                         inp["n"]))
        return [{"role": "user", "content": text}]

    def score(self, completion: str, sample: Sample) -> Score:
        return score_grid(completion, sample.target, sample.input["attributes"])

    def aggregate(self, records: list[Record]) -> list[Metric]:
        """Cell accuracy overall and per bucket (bootstrap CI); puzzle accuracy is the runner's headline score."""
        records = as_records(records)
        by: dict[str | None, list[float]] = {}
        for r in records:
            if r.value is None:
                continue
            v = (r.score.extra or {}).get("cell_accuracy", 0.0)
            by.setdefault(None, []).append(v)
            by.setdefault(r.category or "all", []).append(v)
        return [Metric.of("cell_accuracy", mean_summary(v), category=c,
                          key="cell_accuracy" if c is None else f"cell_accuracy[{c}]")
                for c, v in sorted(by.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))]


# ----------------------------------------------------------------------------------------------------------- scoring



def _norm(s) -> str:
    s = str(s).casefold().strip()
    s = re.sub(r"[\s_\-]+", " ", s)
    return s.strip(" .,;:'\"*`")


def _objects(text: str):
    """Parsed JSON-ish candidates, best first: fenced blocks (last first), then outermost JSON values in the text
    (last first), then brace-balanced spans read as Python literals (single quotes, trailing commas)."""
    for f in reversed([b.body for b in fenced_blocks(text) if b.closed]):
        obj = _load(f.strip())
        if obj is not None:
            yield obj
    dec = json.JSONDecoder()
    found = []  # (start, end, obj)
    i = 0
    starts = [m.start() for m in re.finditer(r"[{\[]", text)]
    for i in starts:
        if found and i < found[-1][1]:
            continue  # inside an outer value already read
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            continue
        found.append((i, end, obj))
    for _, _, obj in reversed(found):
        yield obj
    for span in reversed(_balanced(text)):
        obj = _load(span)
        if obj is not None:
            yield obj


def _balanced(text: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                out.append(text[start:i + 1])
    return out


def _load(s: str):
    try:
        return json.loads(s)
    except ValueError:
        pass
    try:  # Python-dict style with single quotes
        return ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        pass
    # a copied template's bare "..." placeholders ({"House 1": {...}, ...}) and trailing commas
    fixed = re.sub(r"(?<=[{\[,])\s*(?:\.\.\.|…)\s*(?=[,}\]])", "", s)
    fixed = re.sub(r",\s*(?=[,}\]])", "", fixed)
    try:
        return json.loads(fixed)
    except ValueError:
        return None


def _house_no(key) -> int | None:
    m = re.search(r"\d+", str(key))
    return int(m.group()) if m else None


def _grid(obj, n: int) -> dict[int, dict] | None:
    """House number -> {attribute: value} from the shapes models produce, or None if it is not a grid."""
    if isinstance(obj, dict):
        for wrap in ("solution", "answer", "houses", "grid"):
            inner = {_norm(k): v for k, v in obj.items()}.get(wrap)
            if isinstance(inner, (dict, list)):
                g = _grid(inner, n)
                if g:
                    return g
        out = {}
        for k, v in obj.items():
            h = _house_no(k)
            if h is not None and isinstance(v, dict):
                out[h] = v
        return out or None
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        out = {}
        for pos, row in enumerate(obj, start=1):
            hk = next((k for k in row if _norm(k) in ("house", "house number", "position")), None)
            h = _house_no(row[hk]) if hk is not None else pos
            out[h] = {k: v for k, v in row.items() if k != hk}
        return out
    return None


def score_grid(completion: str, target: dict, attributes: dict) -> Score:
    target = {int(h): row for h, row in target.items()}
    n = len(target)
    attrs = list(attributes)
    cells = n * len(attrs)
    grid = None
    for obj in _objects(completion or ""):
        grid = _grid(obj, n)
        if grid:
            break
    if not grid:
        return Score(0.0, extracted=None, reason="no JSON grid of houses found", parsed=False,
                     extra={"cell_accuracy": 0.0, "correct_cells": 0, "cells": cells})
    akey = {_norm(a): a for a in attrs}
    correct = 0
    read: dict[int, dict[str, str]] = {}
    for h, row in grid.items():
        if h not in target:
            continue
        for k, v in row.items():
            a = akey.get(_norm(k))
            if a is None or isinstance(v, (dict, list)):
                continue
            read.setdefault(h, {})[a] = str(v)
    for h, row in target.items():
        for a in attrs:
            if _norm(read.get(h, {}).get(a, "\0")) == _norm(row[a]):
                correct += 1
    acc = correct / cells
    extracted = json.dumps({str(h): read[h] for h in sorted(read)}, ensure_ascii=False)[:500]
    missing = cells - sum(len(r) for r in read.values())
    reason = f"{correct}/{cells} cells right" + (f", {missing} missing" if missing else "")
    return Score(1.0 if correct == cells else 0.0, extracted=extracted, reason=reason,
                 extra={"cell_accuracy": acc, "correct_cells": correct, "cells": cells})
