"""gsm8k — GSM8K grade-school word problems (Cobbe et al. 2021, MIT), loaded from the public JSONL.

The file is not shipped: pass ``data=PATH`` (``--data`` on the CLI) pointing at ``test.jsonl`` from
https://github.com/openai/grade-school-math (fields ``question``, ``answer``; the reference is the number after
``####``), or the same file from https://huggingface.co/datasets/openai/gsm8k. Scoring as in the math suite.

Example:
    assay eval --suite gsm8k --data ../shared/benchmarks/gsm8k_test.jsonl --limit 50
"""

from __future__ import annotations

from assay.evals.mathlib import PublicMathSuite


class GSM8K(PublicMathSuite):
    name = "gsm8k"
    version = "1"
    filename = "gsm8k_test.jsonl"
    url = "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/test.jsonl"
    page = "https://github.com/openai/grade-school-math (grade_school_math/data/test.jsonl)"

    def item(self, i: int, row: dict) -> dict:
        q, a = self.field(row, i, "question"), self.field(row, i, "answer")
        ref = str(a).rsplit("####", 1)[-1].strip().replace(",", "")
        return {"id": f"gsm8k-{i:04d}", "question": q, "answer": ref, "category": "all"}


def make(data: str | None = None, download: bool = False) -> GSM8K:
    return GSM8K(data=data, download=download)

