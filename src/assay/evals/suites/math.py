"""math — our own math problems (110 shipped, answers verified by computation) plus seeded fresh ones.

Data: ``evals/data/math_problems.jsonl`` written for assay (MIT, see evals/data/SOURCES.md); categories algebra,
geometry, probability_combinatorics, sequences_functions, word_problems. Each item stores a sympy/Python ``verify``
expression and a test recomputes every answer. ``source="generated"`` draws fresh problems (linear and quadratic
equations, fractions, counting, arithmetic and geometric sequences) from the seed, so a score can be checked on items
no model has seen; ``"mixed"`` is both.

Prompt: reason step by step, final answer in ``\\boxed{}``. Score: last box (or "answer is ..."), Math-Verify equality.

With a Python tool (``tool=python``): the model may run code, up to ``max_rounds`` times. In ``tool_mode=prompted``
(the default; any engine) a reply with a ```python block and no ``\\boxed{}`` is run and the output comes back in a
user message; in ``tool_mode=native`` the model calls a ``python`` function through the OpenAI ``tools`` field and the
output comes back as a ``role: tool`` message (llama-cpp-python's function-calling template does not show tool
messages to the model: use prompted mode there). The code runs **only** in ``assay.sandbox`` (the code suite's
containment and limits; ``sandbox_cpu_s`` / ``sandbox_wall_s``); stdout and stderr are the tool's answer. The suite
keeps its name and sample ids, so ``assay compare RUN_WITHOUT RUN_WITH`` pairs the two runs problem by problem; the
run also reports tool calls per problem and sandbox failures.

Example:
    assay eval --suite math --limit 20
    assay eval --suite math --limit 20 --suite-opt tool=python        # then: assay compare RUN_A RUN_B
    assay eval --suite math -o source=generated -o n_generated=50 --seed 3
"""

from __future__ import annotations

import asyncio
from typing import Iterable

from assay.errors import AssayError
from assay.evals import mathlib
from assay.common import data_path, file_digest, read_jsonl
from assay.evals.base import Metric, Record, Sample, SuiteOptions, ToolResult, as_records
from assay.sandbox.pytool import code_to_run, feedback_message, strip_code, tool_output  # noqa: F401 - re-exported
from assay.stats import mean_summary, proportion_summary

DATA = data_path("math_problems.jsonl")
SOURCES = ("shipped", "generated", "mixed")


class MathSuite(mathlib.BoxedMathSuite):
    name = "math"
    version = "1"

    class Options(SuiteOptions):
        source: str = "shipped"  # shipped | generated | mixed
        n_generated: int = 100  # fresh problems drawn from the seed (generated, mixed)
        tool: str | None = None  # "python": the model may run code (the MathToolSuite variant below)
        max_rounds: int = 3  # with tool=python: code runs per problem
        tool_mode: str = "prompted"  # with tool=python: prompted | native
        sandbox_cpu_s: int = 5  # with tool=python: the sandbox's limits
        sandbox_wall_s: float = 10.0

    def __new__(cls, **options):
        # tool=python is the conversational variant: the same suite (name, samples, scorer) with a Python tool
        tool = options.get("tool")
        if cls is MathSuite and tool is not None:
            if tool != "python":
                raise AssayError(f"math: unknown tool {tool!r}: the one tool is python (--suite-opt tool=python)")
            cls = MathToolSuite
        return super().__new__(cls)

    def __init__(self, **options):
        super().__init__(**options)
        source = self.options.source
        if source not in SOURCES:
            raise AssayError(f"math: unknown source {source!r}: choose from {', '.join(SOURCES)}")
        self.source = source
        self.n_generated = int(self.options.n_generated)

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


TOOL_PROMPT = (
    "Solve the following math problem. You can run Python code to compute or check a result: write the code in one "
    "```python block and end your reply there; you will get its output (print what you need). When you know the "
    "answer, give the final answer on its own line as \\boxed{{answer}}.\n\nProblem: {question}"
)
NATIVE_TOOL_PROMPT = (
    "Solve the following math problem. You can call the python tool to compute or check a result (print what you "
    "need). When you know the answer, give the final answer on its own line as \\boxed{{answer}}.\n\n"
    "Problem: {question}"
)
PYTHON_TOOL = {"type": "function", "function": {
    "name": "python", "description": "Run Python 3 code in a sandbox (no network, no files kept) and return its "
                                     "stdout and stderr. Print the values you need.",
    "parameters": {"type": "object", "properties": {"code": {"type": "string", "description": "Python source"}},
                   "required": ["code"]}}}
TOOL_MODES = ("prompted", "native")
class MathToolSuite(MathSuite):
    """``math`` with a Python tool: same problems, ids and scorer; a conversation of up to max_rounds tool runs.
    ``get_suite("math", tool="python")`` (or ``MathSuite(tool="python")``) builds it; its options are math's."""

    version = "1+python"

    def __init__(self, **options):
        super().__init__(**{**options, "tool": "python"})  # stored so: rescore rebuilds this variant
        o = self.options
        tool_mode = o.tool_mode
        if tool_mode not in TOOL_MODES:
            raise AssayError(f"math: unknown tool_mode {tool_mode!r}: choose from {', '.join(TOOL_MODES)}")
        if o.max_rounds < 1:
            raise AssayError("math: max_rounds must be at least 1 (or leave out tool=python)")
        self.max_rounds, self.tool_mode = int(o.max_rounds), tool_mode
        self.sandbox_cpu_s, self.sandbox_wall_s = int(o.sandbox_cpu_s), float(o.sandbox_wall_s)
        self.prompt_template = TOOL_PROMPT if tool_mode == "prompted" else NATIVE_TOOL_PROMPT
        self.requires = ("tools",) if tool_mode == "native" else ()

    async def converse(self, sample: Sample, chat) -> None:
        from assay.sandbox import Limits, run_python

        limits = Limits(cpu_s=self.sandbox_cpu_s, wall_s=self.sandbox_wall_s)
        params = {"tools": [PYTHON_TOOL]} if self.tool_mode == "native" else None
        for rnd in range(self.max_rounds + 1):
            comp = await chat.ask(params, label="answer" if rnd == 0 else f"after tool run {rnd}")
            if rnd == self.max_rounds:
                break  # out of tool rounds: this reply is the answer, code or not
            if self.tool_mode == "native":
                jobs = [(c.id, (c.args or {}).get("code") if c.ok else None, c) for c in comp.tool_calls
                        if c.name == "python"]
            else:
                code = code_to_run(comp.text)
                jobs = [(None, code, None)] if code is not None else []
            if not jobs:
                break
            for call_id, code, call in jobs:
                if not isinstance(code, str):  # a native call whose arguments are not {"code": "..."}
                    why = call.error if call is not None and call.error else 'arguments must be {"code": "..."}'
                    chat.tool_result(ToolResult(call_id=call_id, name="python", content=f"error: {why}",
                                                status="bad_call"))
                    continue
                # model-written code runs only in the sandbox, in a thread (it is a blocking subprocess)
                res = await asyncio.to_thread(run_python, code, limits=limits)
                content = tool_output(res)
                detail = {"mode": res.mode, "fs": res.fs, "wall_s": round(res.wall_s, 3), "detail": res.detail,
                          "code": code[:4000]}
                msg = None if self.tool_mode == "native" else feedback_message(content)
                chat.tool_result(ToolResult(call_id=call_id, name="python", content=content, status=res.status,
                                            detail=detail), as_message=msg)

    def score_turns(self, turns, sample: Sample):
        """The last reply, scored as in ``math`` after its code blocks are removed: an "answer is ..." or a box inside
        code the model wrote (``print(f"The answer is {x}")``) is code, not its answer."""
        last = turns[-1].completion if turns else ""
        return self.score(strip_code(last or ""), sample)

    def aggregate(self, records: list[Record]) -> list[Metric]:
        """Tool calls per problem (bootstrap interval), the share of problems that used the tool, and sandbox
        failures over all runs (anything but a clean exit: an exception, a timeout, the output limit)."""
        recs = [r for r in as_records(records) if r.value is not None]
        runs = [[x for t in r.turns for x in t.tool_results] for r in recs]
        flat = [x for rs in runs for x in rs]
        failed = sum(x.status != "passed" for x in flat)
        return [
            Metric.of("tool_calls_per_problem", mean_summary([len(rs) for rs in runs]), kind="bootstrap",
                      detail=False),
            Metric.of("used_tool_rate", proportion_summary(sum(bool(rs) for rs in runs), len(runs)),
                      kind="proportion", detail=False),
            Metric.of("sandbox_failure_rate", proportion_summary(failed, len(flat)), kind="proportion",
                      detail=False),
        ]

    def notes(self, records: list[Record]) -> dict[str, str]:
        modes = sorted({f"{x.detail.get('mode')} / {x.detail.get('fs')}" for r in as_records(records)
                        for t in r.turns for x in t.tool_results if x.detail.get("mode")})
        return {"python tool": f"{self.tool_mode} mode, up to {self.max_rounds} runs per problem, sandbox "
                               f"{', '.join(modes) or '(not used)'}; cpu {self.sandbox_cpu_s} s, wall "
                               f"{self.sandbox_wall_s:g} s"}
