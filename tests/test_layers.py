"""The layering of src/assay, read from the source with ``ast`` (no import is executed): ``assay.stats`` is the bottom
layer for statistics, and the top-level packages ``assay.judge`` and ``assay.report`` do not import each other both
ways. Imports anywhere in a file count, module-level and inside functions alike."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "assay"
STATS_MAY_IMPORT = {"stats", "common", "errors"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def assay_imports(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of assay in the file, relative imports resolved against ``package``
    (by default the file's own package under src/assay)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name == "assay" or a.name.startswith("assay.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "assay":  # from assay import stats, errors: each name is a module
                out += [(node.lineno, f"assay.{a.name}") for a in node.names]
            elif mod.startswith("assay."):
                out.append((node.lineno, mod))
    return out


def top_package(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


def package_edges(src: str, dst: str) -> list[str]:
    """'file:line -> module' for each import from package ``src`` into package ``dst``."""
    return [f"{f.relative_to(SRC.parent)}:{line} -> {mod}" for f in sorted((SRC / src).rglob("*.py"))
            for line, mod in assay_imports(f) if top_package(mod) == dst]


def test_stats_imports_nothing_above_common():
    files = sorted((SRC / "stats").rglob("*.py"))
    assert files, "src/assay/stats/ is missing"
    bad = [f"{f.relative_to(SRC.parent)}:{line} imports {mod}" for f in files for line, mod in assay_imports(f)
           if top_package(mod) not in STATS_MAY_IMPORT]
    assert not bad, "assay.stats must import nothing from assay but stats, common, errors:\n" + "\n".join(bad)


def test_the_import_walker_sees_function_level_and_relative_imports(tmp_path):
    f = tmp_path / "probe.py"
    f.write_text("import json\n\ndef g():\n    from assay.report import runs\n    from .. import judge\n"
                 "    import assay.chat.votes\n    from assay import errors, stats\n")
    mods = sorted(m for _, m in assay_imports(f, package="assay.stats"))
    assert mods == ["assay.chat.votes", "assay.errors", "assay.judge", "assay.report", "assay.stats"]


def test_no_copies_of_the_old_statistics_modules():
    old = [p for p in ("evals/stats.py", "report/paired.py", "judge/stats.py") if (SRC / p).exists()]
    assert not old, f"statistics live in assay.stats only; remove {old}"


def test_no_import_cycle_between_judge_and_report():
    judge_to_report, report_to_judge = package_edges("judge", "report"), package_edges("report", "judge")
    assert not (judge_to_report and report_to_judge), (
        "import cycle between assay.judge and assay.report:\n" + "\n".join(judge_to_report + report_to_judge))


def test_statistics_are_not_a_cause_of_the_judge_report_cycle():
    """Whatever else links them, no edge between judge and report is about statistics any more."""
    edges = package_edges("judge", "report") + package_edges("report", "judge")
    assert not [e for e in edges if "paired" in e or "stats" in e], edges
