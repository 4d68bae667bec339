"""The BFCL v4 files (``BFCL_v4_<category>.json`` + ``possible_answer/`` + ``multi_turn_func_doc/``) and the
leaderboard's aggregation of category accuracies into its summary numbers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from assay.errors import DataError

# The leaderboard's Python categories assay runs. Not here: simple_java / simple_javascript (BFCL type-converts their
# string arguments with Java / JS rules assay does not have), multi_turn_miss_func / miss_param / long_context,
# web_search (live web), memory (embeddings), format_sensitivity.
SINGLE_TURN = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
               "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance",
               "live_relevance")
MULTI_TURN = ("multi_turn_base",)
CATEGORIES = SINGLE_TURN + MULTI_TURN
DEFAULT_CATEGORIES = tuple(c for c in CATEGORIES if c != "live_relevance")

NON_LIVE_AST = ("simple_python", "multiple", "parallel", "parallel_multiple")
LIVE_AST = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
IRRELEVANCE = ("irrelevance", "live_irrelevance")
MULTI_TURN_ALL = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")


def _repo_shared() -> list[Path]:
    here = Path(__file__).resolve()
    return [Path.cwd().parent / "shared" / "benchmarks" / "bfcl_v4", here.parents[4].parent / "shared" / "benchmarks"
            / "bfcl_v4"]


def find_data(path: str | None = None, bfcl_eval: str | None = None) -> Path:
    """The folder with the v4 files: ``path``, ``$ASSAY_BFCL_DATA``, the installed bfcl-eval package's ``data/``, or
    ``../shared/benchmarks/bfcl_v4`` (a developer checkout)."""
    from assay.evals.bfcl.multiturn import bfcl_eval_root

    if path:
        p = Path(path).expanduser()
        if not (p / "BFCL_v4_simple_python.json").is_file() and not any(p.glob("BFCL_v4_*.json")):
            raise DataError(f"{p}: no BFCL_v4_*.json files (pass the folder holding them, with possible_answer/)")
        return p
    tried = []
    env = os.environ.get("ASSAY_BFCL_DATA")
    root = bfcl_eval_root(bfcl_eval)
    for p in ([Path(env)] if env else []) + ([root / "bfcl_eval" / "data"] if root else []) + _repo_shared():
        tried.append(str(p))
        if any(p.glob("BFCL_v4_*.json")):
            return p
    raise DataError("BFCL v4 data not found (tried " + ", ".join(tried) + "): pass --suite-opt data=DIR, set "
                    "ASSAY_BFCL_DATA, or pip install --no-deps bfcl-eval==2026.3.23 (its data/ folder is used)")


def read_lines(p: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    except ValueError as e:
        raise DataError(f"{p}: not JSON lines ({e})") from None


def load_category(root: Path, category: str) -> list[dict]:
    """Items of one category: ``id``, ``question`` (turns of messages), ``function`` (BFCL docs), ``ground_truth``
    (none for relevance categories), and for multi-turn ``initial_config`` / ``involved_classes``."""
    from assay.evals.bfcl.multiturn import FUNC_DOC_FILES

    q = root / f"BFCL_v4_{category}.json"
    if not q.is_file():
        raise DataError(f"{q} not found: this BFCL folder has no {category!r} (categories: "
                        f"{', '.join(sorted(p.stem[8:] for p in root.glob('BFCL_v4_*.json')))})")
    rows = read_lines(q)
    if "relevance" not in category:
        a = root / "possible_answer" / q.name
        if not a.is_file():
            raise DataError(f"{a} not found: BFCL's possible answers for {category}")
        truth = read_lines(a)
        if len(truth) != len(rows):
            raise DataError(f"{a}: {len(truth)} answers for {len(rows)} questions")
        for r, t in zip(rows, truth):  # aligned by position, as BFCL aligns them
            r["ground_truth"] = t["ground_truth"]
    if category.startswith("multi_turn"):
        docs: dict[str, list] = {}
        for r in rows:
            fns = []
            for cls in r["involved_classes"]:
                if cls not in docs:
                    f = root / "multi_turn_func_doc" / FUNC_DOC_FILES[cls]
                    if not f.is_file():
                        raise DataError(f"{f} not found: the function docs of BFCL's {cls}")
                    docs[cls] = read_lines(f)
                fns.extend(docs[cls])
            r["function"] = fns
    for r in rows:
        r["category"] = category
    return rows


def data_digest(root: Path, categories: list[str]) -> str:
    from assay.common import file_digest

    parts = [file_digest(root / f"BFCL_v4_{c}.json")[:16] for c in categories]
    return "-".join(parts)


# ---- the leaderboard's aggregation -----------------------------------------------------------------------------------
def unweighted(accs: list[float | None]) -> float | None:
    """BFCL's ``calculate_unweighted_accuracy`` over the categories run (a category not run is left out here; BFCL
    counts it as 0 and shows the summary as N/A)."""
    got = [a for a in accs if a is not None]
    return sum(got) / len(got) if got else None


def summaries(per_cat: dict[str, tuple[int, int]]) -> dict[str, float | None]:
    """BFCL's summary numbers from {category: (correct, n)}: non-live AST (unweighted mean of simple, multiple,
    parallel, parallel_multiple), live AST (weighted by n: pooled), irrelevance (unweighted mean of irrelevance and
    live_irrelevance), multi-turn (unweighted mean of the multi-turn categories run)."""
    acc = {c: (k / n if n else None) for c, (k, n) in per_cat.items()}
    out: dict[str, float | None] = {}
    if any(c in per_cat for c in NON_LIVE_AST):
        out["non_live_ast"] = unweighted([acc.get(c) for c in NON_LIVE_AST])
    live = [per_cat[c] for c in LIVE_AST if c in per_cat]
    if live:
        n = sum(x[1] for x in live)
        out["live_ast"] = sum(x[0] for x in live) / n if n else None
    if any(c in per_cat for c in IRRELEVANCE):
        out["irrelevance"] = unweighted([acc.get(c) for c in IRRELEVANCE])
    if any(c in per_cat for c in MULTI_TURN_ALL):
        out["multi_turn"] = unweighted([acc.get(c) for c in MULTI_TURN_ALL])
    return out
