"""LLM-as-judge for assay: versioned prompt templates (``templates/``), reply parsing (``parse``), the judge pass over
a stored run (``run``) and summaries with intervals (``summary``). The statistics of judges and votes (Cohen's
kappa, Bradley-Terry) are in ``assay.stats`` (``agreement``, ``ratings``). See docs/judges.md.

Example:
    assay judge runs/A --judge embedded --rubric naturalness      # rubric scores, mean with a bootstrap interval
    assay judge runs/A runs/B --judge http://127.0.0.1:8000/v1    # pairwise, both orders
"""

from __future__ import annotations

import contextlib
from typing import Iterator

# A suite's default rubric(s) when --rubric is not given: what no exact-match scorer can rate.
DEFAULT_RUBRICS = {"translate": ("fluency", "adequacy"), "flores": ("fluency", "adequacy"),
                   "code": ("code_quality",), "humaneval": ("code_quality",), "mbpp": ("code_quality",)}
FALLBACK_RUBRIC = ("naturalness",)


def rubrics_for(suites: list[str]) -> list[str]:
    out: list[str] = []
    for s in suites:
        for r in DEFAULT_RUBRICS.get(s, FALLBACK_RUBRIC):
            if r not in out:
                out.append(r)
    return out


@contextlib.contextmanager
def provide_judge(spec: str, *, api_key: str | None = None, reuse: list | None = None) -> Iterator[list]:
    """Endpoints of the judge: a URL (any OpenAI-compatible server), ``self`` (the endpoints being evaluated, passed
    as ``reuse``), ``embedded`` (start SmolLM2-135M), or a model preset / .gguf path (started, stopped on exit)."""
    from assay import engines
    from assay.errors import AssayError

    if spec == "self":
        if not reuse:
            raise AssayError("--judge self needs a model being evaluated (assay eval --judge self)")
        yield reuse
        return
    if spec.startswith(("http://", "https://")):
        with engines.provide(endpoints=[spec], api_key=api_key) as eps:
            yield eps
        return
    with engines.provide(model="smollm2-135m" if spec == "embedded" else spec, api_key=api_key) as eps:
        yield eps


def same_model(judge_model: str | None, judged: str | None) -> bool:
    """True when the judge is the model being judged (self-judging inflates its own scores)."""
    from assay.common import short_model

    if not judge_model or not judged:
        return False
    a, b = short_model(judge_model).lower(), short_model(judged).lower()
    return a == b or a in b or b in a
