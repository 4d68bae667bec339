"""Reports and comparisons built only from stored run folders (never from a live model).

- ``write_report(run, out_dir)``  one run: scorecard, failed / slowest samples, charts -> report.html + report.md
- ``write_compare(cmp, out_dir)`` several runs: comparison table, paired tests, charts, per-sample diff
                                  -> compare.html + compare.md + compare.json

Example:
    assay report runs/20250101-120000-ab12cd34
    assay compare runs/A runs/B --against-claims src/assay/report/claims/qwen3-4b-instruct-2507.yaml
"""

from __future__ import annotations

import json
from pathlib import Path

from assay.common import atomic_file


def _write(path: Path, text: str) -> None:
    with atomic_file(path) as f:  # a report in a run folder is replaced atomically, like every file there
        f.write(text)


def write_report(run, out_dir: str | Path | None = None, *, top: int = 15) -> dict[str, Path]:
    from assay.report.html import report_html
    from assay.report.markdown import report_md

    out = Path(out_dir) if out_dir is not None else run.path
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "md": out / "report.md"}
    _write(paths["html"], report_html(run, top=top))
    _write(paths["md"], report_md(run, top=top))
    return paths


def write_compare(cmp, out_dir: str | Path) -> dict[str, Path]:
    from assay.report.html import compare_html
    from assay.report.markdown import compare_md

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "compare.html", "md": out / "compare.md", "json": out / "compare.json"}
    _write(paths["html"], compare_html(cmp))
    _write(paths["md"], compare_md(cmp))
    _write(paths["json"], json.dumps(cmp.to_dict(), indent=2, default=str, ensure_ascii=False) + "\n")
    return paths
