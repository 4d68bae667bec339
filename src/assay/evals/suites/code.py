"""code — function-writing problems run against hidden tests in the sandbox; pass@1 and pass@k.

Source: ``evals/data/code_problems.jsonl``, 51 LeetCode-medium-style problems written for assay (MIT; see
SOURCES.md). Each has a HumanEval-shaped ``prompt`` (signature + docstring with one example), a ``reference``
solution and hidden ``tests`` (``assert`` lines over ``candidate``); ``tests/test_code.py`` runs every reference
through the sandbox against its tests.

Prompt: complete the function; reply with the whole function in one ```python block.
Scoring: the code block is extracted (the last ```python fence that defines the function, else the longest fence,
else the whole reply; a reply with only a body is appended to the prompt), then solution + tests run in
``assay.sandbox`` (no network, no parent environment, resource limits). Pass = every assert holds.
pass@k uses the unbiased estimator of Chen et al. (2021) over ``n`` samples per problem
(``--suite-opt n=10 --suite-opt k=5``).

The same machinery serves the ``humaneval`` and ``mbpp`` suites.

Example:
    assay eval --suite code --model smollm2-135m --limit 10
    assay eval --suite code --suite-opt n=10 --suite-opt k=5   # 10 samples per problem at temperature 0.8
"""

from __future__ import annotations

import re
from math import comb

from assay.errors import AssayError
from assay.common import data_path, fenced_blocks, read_jsonl, stable_hash
from assay.evals.base import Metric, as_records, Record, Sample, Score, Suite, SuiteOptions
from assay.sandbox import Limits, run_python
from assay.stats import mean_summary

INSTRUCTION = ("Complete the following Python function. Reply with the complete function (signature included) in a "
               "single ```python code block.\n\n```python\n{prompt}```")



def extract_code(text: str, entry_point: str | None = None) -> str:
    """The code in a reply: the last fenced block that defines ``entry_point`` (python/py/unlabelled fences), else
    the longest such fence, else the whole reply. An unclosed final fence (a truncated reply) still counts."""
    text = text or ""
    blocks = [f.body for f in fenced_blocks(text) if f.lang.lower() in ("", "python", "py", "python3")]
    if not blocks:
        return text.strip("\n")
    if entry_point:
        defining = [b for b in blocks if re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", b, re.M)]
        if defining:
            return defining[-1].strip("\n")
    return max(blocks, key=len).strip("\n")


def assemble(code: str, prompt: str, entry_point: str) -> str:
    """Solution source: the code as given, or the prompt + code when the reply is only the function body."""
    if re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return code
    return prompt + code


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): 1 - C(n-c, k) / C(n, k), for n samples of which c passed."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


class CodeSuite(Suite):
    """Shared by code / humaneval / mbpp: n samples per problem, sandboxed scoring, pass@k aggregate.

    Subclasses provide ``problems()`` -> list of {"id", "prompt", "entry_point", "test" (source defining
    ``check(candidate)``), "category"} and may override ``instruction``.
    """

    name = ""  # a base, not a suite: each subclass names itself
    version = "1"
    binary = True
    metric = "pass@1"
    slow_scoring = True
    prompt_template = INSTRUCTION

    class Options(SuiteOptions):
        n: int = 1  # samples per problem (temperature > 0 when n > 1)
        k: int | None = None  # pass@k besides pass@1 (default n)
        temperature: float = 0.8  # for the n > 1 draws

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        self.n = int(o.n)
        self.k = int(o.k) if o.k is not None else self.n
        if self.n < 1 or not 1 <= self.k <= self.n:
            raise AssayError(f"{self.name}: need n >= 1 and 1 <= k <= n (got n={self.n}, k={self.k})")
        self.temperature = float(o.temperature)
        self.limits = Limits()
        self.scoring_timeout_s = self.limits.wall_s + 15.0  # the sandbox's own wall clock fires first

    # --- data -------------------------------------------------------------------------------------------------------
    def problems(self) -> list[dict]:
        raise NotImplementedError

    def data_hash(self) -> str:
        return stable_hash(self.problems()) + f":n={self.n}"

    def samples(self, seed: int, limit: int | None):
        probs = self.problems()
        if limit is not None:
            probs = probs[:limit]  # --limit counts problems, so every problem keeps its n samples
        for p in probs:
            for i in range(self.n):
                yield Sample(id=f"{p['id']}#{i}" if self.n > 1 else p["id"],
                             input={k: p[k] for k in ("prompt", "entry_point", "test", "asserts", "setup") if k in p},
                             target=None, category=p.get("category", "all"),
                             meta={"problem": p["id"], "draw": i})

    def messages(self, sample: Sample) -> list[dict]:
        return [{"role": "user", "content": self.prompt_template.format(prompt=sample.input["prompt"])}]

    def request_params(self, sample: Sample) -> dict:
        # n > 1 needs distinct draws: sample at temperature > 0 with a different seed per draw (a server that honours
        # seeds would otherwise return the same text n times)
        if self.n > 1:
            return {"temperature": self.temperature, "top_p": 0.95, "seed": 1000 + int(sample.meta.get("draw", 0))}
        return {}

    # --- scoring ----------------------------------------------------------------------------------------------------
    def program(self, code: str, sample: Sample) -> str:
        inp = sample.input
        solution = assemble(code, inp["prompt"], inp["entry_point"])
        return f"{solution}\n\n{inp['test']}\n\ncheck({inp['entry_point']})\n"

    def score(self, completion: str, sample: Sample) -> Score:
        code = extract_code(completion, sample.input["entry_point"])
        extra = {"problem": sample.meta.get("problem", sample.id)}
        if not code.strip():
            return Score(0.0, extracted="", reason="no code in the reply", parsed=False, extra=extra)
        r = run_python(self.program(code, sample), limits=self.limits)
        extra.update(sandbox=r.mode, fs=r.fs, status=r.status, wall_s=round(r.wall_s, 3))
        reason = "passed all tests" if r.passed else f"{r.status}: {r.detail}"
        return Score(1.0 if r.passed else 0.0, extracted=code[:4000], reason=reason[:500], extra=extra)

    def aggregate(self, records: list[Record]) -> list[Metric]:
        """pass@1 and pass@k over problems (bootstrap CI over problems); errored requests are left out."""
        records = as_records(records)
        per: dict[str, list[float]] = {}
        for r in records:
            if r.value is None:
                continue
            pid = (r.meta or {}).get("problem") or str(r.sample_id).rsplit("#", 1)[0]
            per.setdefault(pid, []).append(r.value)
        out = []
        for k in sorted({1, self.k}):
            vals = [pass_at_k(len(v), int(sum(v)), k) for v in per.values() if len(v) >= k]
            if vals:
                out.append(Metric.of(f"pass@{k}", mean_summary(vals)))
        return out

    def notes(self, records: list[Record]) -> dict[str, str]:
        """Which containment was in force (see sandbox.py): the report must say it beside the pass rates."""
        records = as_records(records)
        modes = {(r.score.extra or {}).get("sandbox") for r in records if r.value is not None}
        modes.discard(None)
        return {"sandbox": ",".join(sorted(modes))} if modes else {}


def _read_shipped(name: str) -> list[dict]:
    return read_jsonl(data_path(name))


def to_check(tests: list[str]) -> str:
    return "def check(candidate):\n" + "".join(f"    assert {t}\n" for t in tests)


class Code(CodeSuite):
    name = "code"
    version = "1"

    def problems(self) -> list[dict]:
        if not hasattr(self, "_problems"):
            self._problems = [{"id": p["id"], "prompt": p["prompt"], "entry_point": p["entry_point"],
                               "test": to_check(p["tests"]), "category": p["category"]}
                              for p in _read_shipped("code_problems.jsonl")]
        return self._problems
