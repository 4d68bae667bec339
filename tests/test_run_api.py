"""One run API: ``assay.store`` is the only module that knows a run folder's file names, and it imports nothing above
``common`` and ``errors`` (record types register with it by kind). Read from the source with ``ast``; nothing runs."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "assay"
STORE = SRC / "store.py"
RUN_FILES = ("manifest.json", "records.jsonl", "requests.jsonl", "summary.json", "judge.json", "judgements.jsonl",
             "recheck.json", "recheck.jsonl")
# Modules that still name a run file and are being moved to the store's names (assay.store.MANIFEST, SUMMARY,
# JUDGE_INDEX, JUDGEMENTS, or store.open(d).judge): each entry must still be true, so the list only shrinks.
NOT_YET: dict[str, set[str]] = {}  # files still naming run files (none left)


def run_file_literals(path: Path) -> set[str]:
    """Run-file names written as a string in code: the whole string ("records.jsonl") or a path ending in one
    (f"{d}/summary.json"). Prose that mentions a file (docstrings, messages) is not a path and does not count."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            s = node.value.strip()
            found |= {n for n in RUN_FILES if s == n or s.endswith("/" + n)}
    return found


def test_only_the_store_names_run_files():
    named = {str(f.relative_to(SRC)): lits for f in sorted(SRC.rglob("*.py")) if f != STORE
             if (lits := run_file_literals(f))}
    new = {f: lits - NOT_YET.get(f, set()) for f, lits in named.items()}
    new = {f: sorted(lits) for f, lits in new.items() if lits}
    assert not new, ("open run files through assay.store (store.open(path), RunStore, the names store.MANIFEST, "
                     f"RECORDS, ...), not by name: {new}")
    stale = {f: sorted(lits - named.get(f, set())) for f, lits in NOT_YET.items() if lits - named.get(f, set())}
    assert not stale, f"no longer named there: take them off NOT_YET: {stale}"
    assert run_file_literals(STORE) >= {"manifest.json", "records.jsonl", "judge.json"}  # the walker sees them


def test_the_literal_walker(tmp_path):
    f = tmp_path / "probe.py"
    f.write_text('"""Reads records.jsonl."""\nP = "records.jsonl"\ng = lambda d: f"{d}/summary.json"\n'
                 'msg = "see the manifest.json of the run"\n')
    assert run_file_literals(f) == {"records.jsonl", "summary.json"}


def test_store_imports_nothing_above_common():
    mods = set()
    for node in ast.walk(ast.parse(STORE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "store.py: no relative imports"
            mods |= ({f"assay.{a.name}" for a in node.names} if node.module == "assay" else {node.module or ""})
    assay = {m for m in mods if m == "assay" or m.startswith("assay.")}
    assert assay <= {"assay.common", "assay.errors"}, f"assay.store must import only common and errors: {assay}"


def test_record_kinds_register_themselves():
    import assay.bench.run
    import assay.evals.base
    import assay.evals.recheck
    import assay.judge.run
    from assay import store

    assert store.record_type("eval") is assay.evals.base.Record
    assert store.record_type("bench") is assay.bench.run.RequestRecord
    assert store.record_type("judge") is assay.judge.run.JudgeRecord
    assert store.record_type("recheck") is assay.evals.recheck.RecheckRecord
    assert set(store.RECORD_FILES) == {"eval", "bench", "judge", "recheck"}
