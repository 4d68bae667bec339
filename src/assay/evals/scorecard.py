"""Scorecards from stored records: per suite and per category, score with n and a 95 % interval, and the
harness-failure columns (errors, truncated, unparsed) beside it.

Counting rule (the same everywhere assay prints a score):
- ``error`` records (the request failed after the client's bounded retries, or the suite raised) have no score:
  they are excluded from the score and from ``n`` and counted in ``errors``.
- ``truncated`` (finish_reason "length") and ``unparsed`` (the scorer could not read an answer, an unclosed
  ``<think>``, a scoring timeout) records are scored exactly as the scorer said (usually 0) and *are* in ``n``; they
  are also counted in their own columns so that a low score caused by the harness is visible, never silent.
- ``total`` is the number of records, so ``n + errors == total``.

Binary suites (``suite.binary``, default True) get a Wilson interval; continuous ones a seeded percentile bootstrap
of the mean, so the same records always give the same summary (``--rescore`` relies on that).

Example:
    from assay.evals.scorecard import load_run, summarize, suites_for
    manifest, records = load_run("runs/20250101-120000-ab12cd34")
    card = summarize(records, suites_for(manifest))
    print(card["suites"]["math"]["value"], card["suites"]["math"]["low"], card["suites"]["math"]["high"])
"""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from assay import stats
from assay.evals.base import Metric, Record, Suite, as_suite
from assay import store
from assay.store import EvalManifest

_FAILS = ("error", "truncated", "unparsed")


def load_run(run_dir: str | Path) -> tuple[EvalManifest, Iterator[Record]]:
    """(manifest, records) of an eval run folder (``assay.store.open``). Records are streamed lazily from
    records.jsonl (a torn last line from a crash is skipped), in the order they finished. Raises RunMismatch if
    ``run_dir`` is not an eval run folder."""
    from assay.errors import RunMismatch

    run = store.open(run_dir)
    if not isinstance(run, store.EvalRun):
        raise RunMismatch(f"{run_dir} is a {run.kind} run, not an eval run")
    return run.manifest, run.records()


def suites_for(manifest: EvalManifest, *, strict: bool = False) -> dict[str, Suite]:
    """Suite objects for a run's suites, rebuilt with the options the run used: from the registry (built-in suites
    and the ``assay.suites`` entry points) or, for a suite object passed in from outside, from the class the manifest
    names. A suite that cannot be built is left out unless ``strict``."""
    from assay.errors import AssayError
    from assay.evals.suites import available, build_ref, get_suite

    out = {}
    for name in manifest.suites:
        opts = manifest.suite_options.get(name) or {}
        try:
            ref = manifest.suite_refs.get(name)
            if ref and ref.startswith("assay.evals.suites.") and name in available():
                # a built-in suite recorded by another built-in's class (flores runs made when flores was a
                # translate.Translate built by a make()): the registry rebuilds it by its name
                ref = None
            out[name] = build_ref(ref, opts) if ref else get_suite(name, **opts)
        except (AssayError, ImportError, TypeError, ValueError, OSError, AttributeError):
            if strict:
                raise
    return out


class _Acc:
    """Streaming counts for one suite or one category (values kept as packed doubles — 8 bytes each, no objects —
    because a continuous score's bootstrap needs them all)."""

    __slots__ = ("values", "errors", "truncated", "unparsed", "total")

    def __init__(self):
        self.values = array("d")
        self.errors = self.truncated = self.unparsed = self.total = 0

    def add(self, status: str, value: float | None) -> None:
        self.total += 1
        if status == "error" or value is None:
            self.errors += 1 if status == "error" else 0
            if status != "error":  # a non-error record without a score: count it as unparsed, not in n
                self.unparsed += 1
            return
        if status == "truncated":
            self.truncated += 1
        elif status == "unparsed":
            self.unparsed += 1
        self.values.append(float(value))

    def summary(self, binary: bool, seed: int = 0) -> dict:
        n = len(self.values)
        if binary:
            k = int(round(sum(self.values)))
            k = min(max(k, 0), n)
            lo, hi = stats.wilson(k, n)
            value = (sum(self.values) / n) if n else None
            if n == 0:
                lo = hi = None
        else:
            s = stats.mean_summary(list(self.values), seed=seed)
            value, lo, hi = s["value"], s["low"], s["high"]
            if n == 0:
                lo = hi = None
        return {"value": value, "low": lo, "high": hi, "n": n, "errors": self.errors, "truncated": self.truncated,
                "unparsed": self.unparsed, "total": self.total}


def metrics_dict(metrics: Iterable[Metric] | Mapping[str, dict] | None) -> dict[str, dict]:
    """Corpus metrics as stored in summary.json: ``{key: {value, low, high, n, category, kind, ...}}``. A hook of a
    suite that does not use the base class may return the old mapping ``{name: {value, low, high, n}}``."""
    if not metrics:
        return {}
    if isinstance(metrics, Mapping):
        metrics = [v if isinstance(v, Metric) else Metric(name=k, **v) for k, v in metrics.items()]
    return {m.key: m.model_dump(mode="json") for m in metrics}


def summarize(records: Iterable[Record | dict], suites: Mapping[str, Any] | Iterable[Any] | None = None) -> dict:
    """The scorecard of some records (Records, or their dicts), deterministic for the same records.

    ``suites`` (name -> Suite, or a list of suites; optional) supplies the hooks: ``binary`` (default: True if every
    score is 0 or 1), ``metric`` (default "accuracy" / "mean score"), ``aggregate(records)`` -> corpus ``Metric``s and
    ``notes(records)`` -> named facts; both hooks receive all of that suite's Records (errors included).

    Returns ``{"suites": {suite: {"metric", "binary", "value", "low", "high", "n", "errors", "truncated",
    "unparsed", "total", "categories": {category: {value, low, high, n, errors, truncated, unparsed, total}},
    "metrics": {key: Metric dump}, "notes": {name: text}}}}``. ``value`` is the mean score over non-error records
    (None when n == 0); ``n`` excludes error records only — truncated and unparsed ones are scored as the scorer said
    and counted beside the score.
    """
    if suites is None:
        by_name: dict[str, Suite] = {}
    elif isinstance(suites, Mapping):
        by_name = {n: as_suite(s, to_run=False) for n, s in suites.items()}
    else:
        by_name = {s.name: as_suite(s, to_run=False) for s in suites}
    accs: dict[str, _Acc] = {}
    cats: dict[str, dict[str, _Acc]] = {}
    nonbinary: set[str] = set()
    kept: dict[str, list[Record]] = {name: [] for name in by_name}
    cached: dict[str, int] = {}
    for r in records:
        rec = r if isinstance(r, Record) else Record.model_validate(r)
        value = rec.value
        if rec.cached:
            cached[rec.suite] = cached.get(rec.suite, 0) + 1
        accs.setdefault(rec.suite, _Acc()).add(rec.status, value)
        cats.setdefault(rec.suite, {}).setdefault(rec.category or "all", _Acc()).add(rec.status, value)
        if value is not None and value not in (0.0, 1.0):
            nonbinary.add(rec.suite)
        if rec.suite in kept:
            kept[rec.suite].append(rec)
    out: dict[str, dict] = {}
    for suite in sorted(accs):
        s = by_name.get(suite)
        binary = bool(s.binary) if s is not None else suite not in nonbinary
        metric = (s.metric if s is not None else None) or ("accuracy" if binary else "mean score")
        entry = {"metric": metric, "binary": binary, **accs[suite].summary(binary)}
        if cached.get(suite):  # answers reused from the answer cache (assay.answers), no model call
            entry["cached"] = cached[suite]
        entry["categories"] = {c: acc.summary(binary) for c, acc in sorted(cats[suite].items())}
        recs = kept.pop(suite, None)
        entry["metrics"] = metrics_dict(s.aggregate(recs)) if s is not None else {}
        notes = dict(s.notes(recs) or {}) if s is not None else {}
        if notes:
            entry["notes"] = notes
        out[suite] = entry
    return {"suites": out}


def headline(run_id: str, run_dir: str | Path, card: dict) -> dict:
    """The one-line JSON a machine reads at the end of ``assay eval`` (``cached``: answers reused from the answer
    cache, per suite, when any were)."""
    return {"run_id": run_id, "run_dir": str(run_dir),
            "suites": {name: {k: s[k] for k in ("metric", "value", "low", "high", "n", "errors", "truncated",
                                                 "unparsed", "cached") if k in s}
                       for name, s in card["suites"].items()}}


def _fmt(v: float | None, places: int = 3) -> str:
    return "—" if v is None else f"{v:.{places}f}"


def per_category(metric: dict) -> bool:
    """A corpus metric for one slice (BLEU of one direction): left to the report, unless the suite says otherwise."""
    d = metric.get("detail")
    return bool(d) if d is not None else metric.get("category") is not None


def render(card: dict, *, title: str = "scorecard", footer: str | None = None, console=None,
           detail: bool = False) -> None:
    """Print the scorecard as a rich table that fits an 80-column terminal: per suite its headline row, one row per
    category, and its corpus metrics (per-category corpus metrics only with ``detail``; ``assay report`` has them).
    The failure columns belong to record rows; corpus-metric rows leave them blank."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    t = Table(title=title, caption=footer, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("suite / category · metric", no_wrap=True, overflow="ellipsis", min_width=18, max_width=30)
    for col in ("score", "95% CI", "n", "err", "trunc", "unparsed"):
        t.add_column(col, justify="right", no_wrap=True)
    hidden = 0

    def row(label, s, *, fails=True, style=None):
        nums = [s.get(k) for k in ("value", "low", "high")]
        places = 1 if any(x is not None and abs(x) > 1 for x in nums) else 3  # BLEU / chrF (0-100) vs proportions
        v, lo, hi = (_fmt(x, places) for x in nums)
        ci = "—" if nums[1] is None or nums[2] is None else f"{lo}–{hi}"
        cols = [str(s.get(k, 0)) for k in ("errors", "truncated", "unparsed")] if fails else ["", "", ""]
        t.add_row(label, v, ci, str(s.get("n", "")), *cols, style=style)

    for name, s in card["suites"].items():
        row(f"{name} ({s['metric']})", s, style="bold")
        cats = s.get("categories") or {}
        if len(cats) > 1:
            for c, cs in cats.items():
                row(f"  {c}", cs)
        for mname, m in (s.get("metrics") or {}).items():
            if not isinstance(m, dict):
                continue
            if per_category(m) and not detail:
                hidden += 1
                continue
            row(f"  · {mname}", m, fails=False)
        for note, text in (s.get("notes") or {}).items():
            t.add_row(f"  · {note}: {text}", "", "", "", "", "", "")
        t.add_section()
    console.print(t)
    reused = {n: s["cached"] for n, s in card["suites"].items() if s.get("cached")}
    if reused:
        console.print(f"answers from the answer cache (no model call): {sum(reused.values())} of "
                      f"{sum(s.get('total', 0) for s in card['suites'].values())} ("
                      + ", ".join(f"{n} {k}" for n, k in reused.items()) + "); --no-cache asks the model again")
    if hidden:
        console.print(f"[dim]{hidden} per-category corpus metrics are in report.html / report.md "
                      "(assay report RUN)[/dim]")
