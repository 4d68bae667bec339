"""math — our own math problems (110 shipped, answers verified by computation) plus seeded fresh ones.

Data: ``evals/data/math_problems.jsonl`` written for assay (MIT, see evals/data/SOURCES.md); categories algebra,
geometry, probability_combinatorics, sequences_functions, word_problems. Each item stores a sympy/Python ``verify``
expression and a test recomputes every answer. ``source="generated"`` draws fresh problems (linear and quadratic
equations, fractions, counting, arithmetic and geometric sequences) from the seed, so a score can be checked on items
no model has seen; ``"mixed"`` is both.

Prompt: reason step by step, final answer in ``\\boxed{}``. Score: last box (or "answer is ..."), Math-Verify equality.

Example:
    assay eval --suite math --limit 20
    assay eval --suite math -o source=generated -o n_generated=50 --seed 3
"""

from __future__ import annotations

from typing import Iterable

from assay.errors import AssayError
from assay.evals import mathlib
from assay.common import data_path, file_digest, read_jsonl
from assay.evals.base import Sample

DATA = data_path("math_problems.jsonl")
SOURCES = ("shipped", "generated", "mixed")


class MathSuite(mathlib.BoxedMathSuite):
    name = "math"
    version = "1"

    def __init__(self, source: str = "shipped", n_generated: int = 100):
        if source not in SOURCES:
            raise AssayError(f"math: unknown source {source!r}: choose from {', '.join(SOURCES)}")
        self.source = source
        self.n_generated = int(n_generated)

    def _items(self, seed: int) -> list[dict]:
        items = []
        if self.source in ("shipped", "mixed"):
            items += mathlib.interleave(read_jsonl(DATA), key=lambda it: it["category"])
        if self.source in ("generated", "mixed"):
            items += mathlib.generate(seed, self.n_generated)
        if self.source == "mixed":
            items = mathlib.interleave(items, key=lambda it: it["id"].startswith("gen-"))
        return items

    def samples(self, seed: int, limit: int | None) -> Iterable[Sample]:
        for it in self._items(seed)[:limit]:
            yield Sample(id=it["id"], input={"question": it["question"]}, target=it["answer"],
                         category=it["category"], meta={"source": "generated" if "kind" in it else "shipped"})

    def data_hash(self) -> str:
        # generated items are a pure function of (seed, n, code version): the fingerprint's seed covers them
        return f"{file_digest(DATA)}:{self.source}:{self.n_generated}"


def make(source: str = "shipped", n_generated: int = 100) -> MathSuite:
    return MathSuite(source=source, n_generated=n_generated)
