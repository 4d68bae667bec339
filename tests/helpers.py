"""Small helpers shared by the test modules (imported as ``from helpers import ...``: pytest puts tests/ on the path)."""

from __future__ import annotations


def suite_metrics(suite, recs):
    """A suite's corpus metrics over plain dict records, keyed as in summary.json."""
    from assay.evals.base import Record

    return {m.key: m.model_dump() for m in suite.aggregate([Record.model_validate(r) for r in recs])}
