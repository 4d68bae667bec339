"""gsm8k — GSM8K grade-school word problems (Cobbe et al. 2021, MIT), loaded from the public JSONL.

The file is not shipped: pass ``data=PATH`` (``--data`` on the CLI) pointing at ``test.jsonl`` from
https://github.com/openai/grade-school-math (fields ``question``, ``answer``; the reference is the number after
``####``), or the same file from https://huggingface.co/datasets/openai/gsm8k. Scoring as in the math suite.

Example:
    assay eval --suite gsm8k --data ../shared/benchmarks/gsm8k_test.jsonl --limit 50

Few-shot (``--suite-opt shots=5``), the form model cards quote ("GSM8K (5-shot)"): each of the first ``shots``
items of the file becomes one exemplar turn pair (user ``Question: <q>`` + newline + ``Answer:``, lm-eval gsm8k's
``doc_to_text``; assistant: its worked solution ending ``#### N``), as lm-eval does with ``--apply_chat_template
--fewshot_as_multiturn``, and is then not scored: the scored items start after them, so no item is ever its own
exemplar. The test file is used because the train split is not shipped; the exemplars are the same on every run.
The question is asked the same way, with no ``\\boxed{}`` instruction, and the answer is read from the ``#### N``
line (or a box or an "answer is" phrase, as in the math suite).
"""

from __future__ import annotations

from assay.evals.base import Sample
from assay.evals.mathlib import PublicMathSuite


FEWSHOT_TEMPLATE = "Question: {question}\nAnswer:"  # lm-eval gsm8k's doc_to_text


class GSM8K(PublicMathSuite):
    name = "gsm8k"
    version = "1"

    class Options(PublicMathSuite.Options):
        shots: int = 0  # exemplar turn pairs from the head of the file (never scored)

    def __init__(self, **options):
        super().__init__(**options)
        shots = self.options.shots
        if shots < 0:
            raise ValueError(f"shots={shots}: the number of exemplars must be 0 or more (e.g. --suite-opt shots=5)")
        self.shots = shots
        if shots:  # part of the fingerprint: a 5-shot run never resumes into a 0-shot one
            self.prompt_template = f"{shots}-shot multi-turn: " + FEWSHOT_TEMPLATE

    filename = "gsm8k_test.jsonl"
    url = "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/test.jsonl"
    page = "https://github.com/openai/grade-school-math (grade_school_math/data/test.jsonl)"

    def item(self, i: int, row: dict) -> dict:
        q, a = self.field(row, i, "question"), self.field(row, i, "answer")
        ref = str(a).rsplit("####", 1)[-1].strip().replace(",", "")
        return {"id": f"gsm8k-{i:04d}", "question": q, "answer": ref, "category": "all", "solution": str(a)}

    def scored_items(self) -> list[dict]:
        return self.items()[self.shots:]  # the exemplars are never scored

    def messages(self, sample: Sample) -> list[dict]:
        if not self.shots:
            return super().messages(sample)
        turns: list[dict] = []
        for ex in self.items()[:self.shots]:
            turns += [{"role": "user", "content": FEWSHOT_TEMPLATE.format(question=ex["question"])},
                      {"role": "assistant", "content": ex["solution"]}]
        return turns + [{"role": "user", "content": FEWSHOT_TEMPLATE.format(question=sample.input["question"])}]
