"""Read-only views of stored runs for reports: an eval run (manifest + records + scorecard) and bench runs.

Reports are built only from what a run folder holds (docs/architecture.md, contract 2); nothing here calls a model.
Every folder is read through ``assay.store.open`` (typed, migrated); these are the report's views of those runs.

Example:
    from assay.report.runs import load_eval_run
    run = load_eval_run("runs/20250101-120000-ab12cd34")
    print(run.label, run.card["suites"]["math"]["value"], run.speed()["ttft_s"])
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay import store
from assay.common import short_model
from assay.errors import RunMismatch
from assay.evals.base import Record
from assay.store import EvalManifest

DEFAULT_RUNS_DIR = Path("runs")


def resolve(ref: str | Path, runs_dir: Path | None = None) -> Path:
    """A run folder from a path or a run id under ``runs_dir`` (default ./runs); ``latest`` = newest eval run."""
    from assay.store import resolve_run

    return resolve_run(ref, runs_dir if runs_dir is not None else DEFAULT_RUNS_DIR)


def score_value(rec: Record) -> float | None:
    """The per-sample score as the scorecard counts it: None for error records and records without a score."""
    return rec.value


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1} (lists kept as values)."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out


@dataclass
class EvalRun:
    path: Path
    manifest: EvalManifest
    records: list[Record]
    card: dict  # assay.evals.scorecard.summarize(...)
    label: str = ""
    bench: list["BenchRun"] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the report could not compute, shown in it

    @property
    def run_id(self) -> str:
        return self.manifest.run_id or self.path.name

    @property
    def fingerprint(self) -> dict:
        return self.manifest.fingerprint or {}

    @property
    def model(self) -> str:
        return str(self.fingerprint.get("model") or "?")

    @property
    def suites(self) -> dict:
        return self.card.get("suites") or {}

    def scores(self, suite: str) -> dict[str, float]:
        """sample_id -> score for the suite's scored records (errors left out, as in the scorecard)."""
        out = {}
        for r in self.records:
            if r.suite == suite and r.value is not None:
                out[str(r.sample_id)] = r.value
        return out

    def record(self, suite: str, sample_id: str) -> Record | None:
        for r in self.records:
            if r.suite == suite and str(r.sample_id) == sample_id:
                return r
        return None

    def speed(self) -> dict:
        """Quality × speed numbers: from a joined bench run when there is one, else from the records' own timings.

        tokens_per_correct = all completion tokens the run spent (failed answers cost tokens too) ÷ the sum of scores.
        decode_tok_s from records is the median over requests of (completion_tokens − 1) / (e2e − ttft); with eval
        concurrency > 1 on a one-at-a-time server that includes queueing, so the source is named in ``source``."""
        toks = [r.completion_tokens for r in self.records if r.completion_tokens is not None]
        correct = sum(r.value for r in self.records if r.value is not None)
        out: dict[str, Any] = {
            "tokens_per_correct": (sum(toks) / correct) if toks and correct > 0 else None,
            "completion_tokens": sum(toks) if toks else None,
            "correct": correct,
            "ttft_s": None, "decode_tok_s": None, "peak_mem_bytes": None, "source": None,
        }
        ttfts = [r.ttft_s for r in self.records if r.ttft_s is not None and r.status != "error"]
        rates = []
        for r in self.records:
            t, e, n = r.ttft_s, r.e2e_s, r.completion_tokens
            if t is not None and e is not None and n and n > 1 and e > t:
                rates.append((n - 1) / (e - t))
        if ttfts:
            out["ttft_s"] = statistics.median(ttfts)
            out["source"] = f"eval records (concurrency {self.manifest.concurrency})"
        if rates:
            out["decode_tok_s"] = statistics.median(rates)
        for b in self.bench:
            bs = b.speed()
            for k in ("ttft_s", "decode_tok_s", "peak_mem_bytes"):
                if bs.get(k) is not None:
                    out[k] = bs[k]
            out["source"] = f"bench {b.run_id}" + (f" + eval records" if ttfts else "")
            break
        return out


@dataclass
class BenchRun:
    path: Path
    manifest: dict
    summary: dict
    requests: list[dict]

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.path.name)

    @property
    def model(self) -> str:
        return str(self.manifest.get("model") or (self.manifest.get("fingerprint") or {}).get("model") or "?")

    def speed(self) -> dict:
        """TTFT / decode tok/s at the lowest concurrency measured (a single user's view), peak memory overall.

        Reads the bench summary where it has the numbers, and recomputes from requests.jsonl otherwise."""
        groups = [g for g in (self.summary.get("groups") or []) if isinstance(g, dict)]
        if groups:  # assay bench's own aggregates (vLLM bench serve definitions)
            low = min((g.get("concurrency") or 1) for g in groups)
            g = [g for g in groups if (g.get("concurrency") or 1) == low][0]
            ttft = (g.get("ttft_s") or {}).get("median") if isinstance(g.get("ttft_s"), dict) else g.get("ttft_s")
            if ttft is not None or g.get("decode_tok_s") is not None:
                return {"ttft_s": ttft, "decode_tok_s": g.get("decode_tok_s"),
                        "peak_mem_bytes": _find_peak_memory(self.summary)}
        ok = [r for r in self.requests if r.get("ok", True) and r.get("error") is None]
        conc = sorted({r.get("concurrency") for r in ok if r.get("concurrency") is not None})
        if conc:
            ok = [r for r in ok if r.get("concurrency") == conc[0]]
        ttfts = [r["ttft_s"] for r in ok if r.get("ttft_s") is not None]
        tpots = [r["tpot_s"] for r in ok if r.get("tpot_s")]
        out = {"ttft_s": statistics.median(ttfts) if ttfts else None,
               "decode_tok_s": (1.0 / statistics.median(tpots)) if tpots else None,
               "peak_mem_bytes": _find_peak_memory(self.summary)}
        return out


_MEM_KEYS = ("peak_rss_bytes", "peak_gpu_bytes", "peak_mem_bytes", "peak_memory_bytes", "gpu_mem_peak_bytes",
             "rss_peak_bytes", "peak_rss", "peak_gpu_mem_bytes")


def _find_peak_memory(obj: Any) -> float | None:
    """Peak memory of a bench summary (bytes): its top-level ``memory`` block (GPU memory when measured — that is the
    one that limits a GPU engine — else the engine's resident memory), or else the largest value under any
    peak-memory-looking key anywhere in it."""
    mem = obj.get("memory") if isinstance(obj, dict) else None
    if isinstance(mem, dict):
        for k in ("peak_gpu", "peak_rss"):
            if isinstance(mem.get(k), (int, float)) and mem[k]:
                return mem[k]
    best = None
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and (
                    k in _MEM_KEYS or ("peak" in k.lower() and "byte" in k.lower())):
                best = v if best is None else max(best, v)
            elif isinstance(v, (dict, list)):
                sub = _find_peak_memory(v)
                if sub is not None:
                    best = sub if best is None else max(best, sub)
    elif isinstance(obj, list):
        for v in obj:
            sub = _find_peak_memory(v)
            if sub is not None:
                best = sub if best is None else max(best, sub)
    return best


def load_eval_run(ref: str | Path, runs_dir: Path | None = None) -> EvalRun:
    from assay.evals.scorecard import summarize

    path = resolve(ref, runs_dir)
    run = store.open(path)
    if not isinstance(run, store.EvalRun):
        raise RunMismatch(f"{path} is a {run.kind} run, not an eval run: pass it with --bench")
    manifest = run.manifest
    recs = list(run.records())
    try:
        from assay.evals.scorecard import suites_for

        suites = suites_for(manifest)
    except Exception:  # a registry without that suite: the scorecard infers binary from the values
        suites = None
    notes = []
    try:
        card = summarize(recs, suites or None)
    except Exception as e:  # a suite's corpus-metric hook failed: keep the per-sample scorecard, say what is missing
        card = summarize(recs, None)
        notes.append(f"corpus metrics left out: a suite's aggregate() failed ({type(e).__name__}: {e})")
    return EvalRun(path=path, manifest=manifest, records=recs, card=card, notes=notes,
                   label=short_model(manifest.fingerprint.get("model")))


def load_bench_run(ref: str | Path, runs_dir: Path | None = None) -> BenchRun:
    """The report's view of a bench run (``assay.store.open``): its manifest (migrated, as a dict), summary and
    requests (dicts)."""
    try:
        run = store.open(ref, runs_dir if runs_dir is not None else DEFAULT_RUNS_DIR)
    except RunMismatch as e:
        raise RunMismatch(f"no bench run at {ref!r} ({e}): pass a bench run folder") from None
    if not isinstance(run, store.BenchRun):
        raise RunMismatch(f"{run.dir} is not a bench run (kind={run.kind!r})")
    try:
        summary = run.summary or {}
    except RunMismatch:  # a torn or hand-edited summary: the requests still give the numbers
        summary = {}
    return BenchRun(path=run.dir, manifest=run.manifest.to_dict(), summary=summary,
                    requests=list(run.records(raw=True)))


def find_bench_runs(runs_dir: Path, model: str) -> list[BenchRun]:
    """Bench runs in ``runs_dir`` for the same model id (newest first). Matching is on the model id as stored."""
    from assay.store import list_runs

    out = []
    for child, man in list_runs(Path(runs_dir), kind="bench"):  # newest first
        if _same_model(man.model, model):
            try:
                out.append(load_bench_run(child))
            except RunMismatch:
                continue
    return out


def _same_model(a: Any, b: Any) -> bool:
    return bool(a) and bool(b) and short_model(str(a)).lower() == short_model(str(b)).lower()


def unique_labels(runs: list[EvalRun]) -> None:
    """Give runs of the same model distinct labels: the model plus what differs in the fingerprint (or the run id)."""
    by_label: dict[str, list[EvalRun]] = {}
    for r in runs:
        r.label = short_model(r.model)
        by_label.setdefault(r.label, []).append(r)
    for label, group in by_label.items():
        if len(group) < 2:
            continue
        flats = [flatten({k: v for k, v in r.fingerprint.items() if k != "model"}) for r in group]
        keys = sorted({k for f in flats for k in f})
        diff = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats}) > 1]
        for r, f in zip(group, flats):
            parts = [f"{k.split('.')[-1]}={_short(f.get(k))}" for k in diff[:2]]
            r.label = f"{label} ({', '.join(parts)})" if parts else f"{label} ({r.run_id[-8:]})"
        if len({r.label for r in group}) < len(group):
            for r in group:
                r.label = f"{label} ({r.run_id[-8:]})"


def _short(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 16 else s[:7] + "…" + s[-6:]
