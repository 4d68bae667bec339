"""mbpp — Mostly Basic Python Problems (Austin et al., 2021; CC BY 4.0), loaded from the public JSONL.

The file is not shipped: pass ``data=PATH`` (``--data`` on the CLI) pointing at ``mbpp.jsonl`` from
https://github.com/google-research/google-research/tree/master/mbpp (fields ``task_id``, ``text``, ``code``,
``test_list``, ``test_setup_code``). ``split="test"`` (default) keeps task ids 11-510, the paper's test split;
``split="all"`` keeps all 974. The prompt follows the paper: the task text and its three asserts (they also name the
function). Scoring: the code suite's sandbox and pass@k; the program is setup code + solution + the asserts.

Example:
    assay eval --suite mbpp --data ../shared/benchmarks/mbpp.jsonl --limit 50
"""

from __future__ import annotations

import re
from pathlib import Path

from assay.common import iter_jsonl
from assay.errors import DataError
from assay.evals.base import SuiteOptions
from assay.evals.suites.code import CodeSuite

INSTRUCTION = ("You are an expert Python programmer, and here is your task: {prompt}\n"
               "Reply with the function in a single ```python code block.")

_SPLITS = {"test": range(11, 511), "validation": range(511, 601), "train": range(601, 975), "prompt": range(1, 11)}


def load(path: str | Path, split: str = "test") -> list[dict]:
    path = Path(path)
    if split != "all" and split not in _SPLITS:
        raise DataError(f"unknown MBPP split {split!r}: choose all, {', '.join(_SPLITS)}")
    out = []
    for i, row in iter_jsonl(path, missing="MBPP file not found: {path} (pass --data PATH/mbpp.jsonl)"):
        if not {"task_id", "text", "test_list"} <= row.keys():
            raise DataError(f"{path}:{i}: missing task_id/text/test_list: is this mbpp.jsonl?")
        if split != "all" and int(row["task_id"]) not in _SPLITS[split]:
            continue
        tests = list(row["test_list"])
        m = re.search(r"assert\s+(?:not\s+)?\(?\s*(?:set\()?\s*([A-Za-z_]\w*)\s*\(", tests[0]) if tests else None
        entry = m.group(1) if m else "solution"
        setup = row.get("test_setup_code") or ""
        check = "def check(candidate):\n" + "".join(f"    {t.strip()}\n" for t in tests)
        out.append({"id": f"mbpp/{row['task_id']}", "entry_point": entry, "category": "all",
                    "prompt": f"{row['text'].strip()} Your code should pass these tests:\n\n" + "\n".join(tests),
                    "test": (setup + "\n" if setup.strip() else "") + check, "asserts": tests, "setup": setup})
    if not out:
        raise DataError(f"{path}: no MBPP problems for split {split!r}")
    return out


class _DataOptions(SuiteOptions):
    data: str | None = None  # mbpp.jsonl (required)
    split: str = "test"  # test | validation | train | prompt | all


class MBPP(CodeSuite):
    name = "mbpp"
    version = "1"
    prompt_template = INSTRUCTION

    class Options(CodeSuite.Options, _DataOptions):  # data, split, then the code suite's n, k, temperature
        pass

    def __init__(self, **options):
        if not options.get("data"):  # checked before n and k, as it always was
            raise DataError("mbpp needs the MBPP file: pass --data PATH/mbpp.jsonl (google-research/google-research, "
                            "mbpp/mbpp.jsonl)")
        super().__init__(**options)
        self.path, self.split = str(self.options.data), self.options.split
        self._problems = load(self.path, self.split)

    def problems(self) -> list[dict]:
        return self._problems

    def program(self, code, sample):
        # MBPP asserts call the function by name (not through `candidate`): setup + solution + asserts
        inp = sample.input
        return f"{inp.get('setup', '')}\n{code}\n\n" + "\n".join(inp["asserts"]) + "\n"
