"""aime2025 — the 30 problems of AIME 2025 I and II (answers are integers 0-999).

Not shipped: pass ``data=PATH`` (``--data``) to a JSONL file with a problem field (``problem`` or ``question``) and an
``answer`` field, e.g. ``test.jsonl`` from https://huggingface.co/datasets/math-ai/aime25 (Apache-2.0) or the
concatenated ``aime2025-I.jsonl`` / ``aime2025-II.jsonl`` from https://huggingface.co/datasets/opencompass/AIME2025.
Scoring as in the math suite.

Example:
    assay eval --suite aime2025 --data aime25.jsonl
"""

from __future__ import annotations

from assay.evals.mathlib import PublicMathSuite


class AIME2025(PublicMathSuite):
    name = "aime2025"
    version = "1"
    filename = "aime2025.jsonl"
    url = "https://huggingface.co/datasets/math-ai/aime25/resolve/main/test.jsonl"
    page = "https://huggingface.co/datasets/math-ai/aime25 (test.jsonl)"

    def item(self, i: int, row: dict) -> dict:
        rid = row.get("id", row.get("problem_idx", row.get("ID")))
        return {"id": f"aime2025/{rid if rid not in (None, '') else i + 1}",
                "question": self.field(row, i, "problem", "question", "Problem"),
                "answer": str(self.field(row, i, "answer", "Answer")).strip(), "category": "all"}
