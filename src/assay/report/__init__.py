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


def write_report(run, out_dir: str | Path | None = None, *, top: int = 15) -> dict[str, Path]:
    from assay.report.html import report_html
    from assay.report.markdown import report_md

    out = Path(out_dir) if out_dir is not None else run.path
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "md": out / "report.md"}
    paths["html"].write_text(report_html(run, top=top), encoding="utf-8")
    paths["md"].write_text(report_md(run, top=top), encoding="utf-8")
    return paths


def write_compare(cmp, out_dir: str | Path) -> dict[str, Path]:
    from assay.report.html import compare_html
    from assay.report.markdown import compare_md

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "compare.html", "md": out / "compare.md", "json": out / "compare.json"}
    paths["html"].write_text(compare_html(cmp), encoding="utf-8")
    paths["md"].write_text(compare_md(cmp), encoding="utf-8")
    paths["json"].write_text(json.dumps(cmp.to_dict(), indent=2, default=str, ensure_ascii=False) + "\n",
                             encoding="utf-8")
    return paths
