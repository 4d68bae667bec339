"""math500 — MATH-500, the 500-problem test subset of MATH used by PRM800K (Hendrycks et al.; Lightman et al.; MIT).

Not shipped: pass ``data=PATH`` (``--data``) pointing at ``test.jsonl`` from
https://huggingface.co/datasets/HuggingFaceH4/MATH-500 (fields ``problem``, ``answer``, ``subject``, ``level``,
``unique_id``). Categories are the subjects; the level is kept in the sample's meta. Scoring as in the math suite.

Example:
    assay eval --suite math500 --data ../shared/benchmarks/math500_test.jsonl --limit 50
"""

from __future__ import annotations

from assay.evals.mathlib import PublicMathSuite


class Math500(PublicMathSuite):
    name = "math500"
    version = "1"
    filename = "math500_test.jsonl"
    url = "https://huggingface.co/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl"
    page = "https://huggingface.co/datasets/HuggingFaceH4/MATH-500 (test.jsonl)"

    def item(self, i: int, row: dict) -> dict:
        uid = row.get("unique_id") or f"{i:03d}"
        subject = str(row.get("subject") or "all").lower().replace(" & ", "_").replace(" ", "_")
        return {"id": f"math500/{uid}", "question": self.field(row, i, "problem"),
                "answer": str(self.field(row, i, "answer")), "category": subject,
                "meta": {"level": row.get("level")}}
