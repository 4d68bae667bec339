"""Compare eval runs: the model × dimension table, and for every pair on every shared suite a paired test on the
*shared sample ids only* (difference with a paired bootstrap 95 % interval, McNemar exact p for binary scores,
win/tie/loss, minimum detectable difference, verdict), fingerprint warnings, and the samples where models disagree.

Example:
    from assay.report.compare import compare_runs
    from assay.report.runs import load_eval_run
    cmp = compare_runs([load_eval_run("runs/a"), load_eval_run("runs/b")], seed=0)
    for p in cmp.pairs:
        print(p.suite, p.a, p.b, p.result.verdict)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from assay.evals.base import Record
from assay.report.runs import EvalRun, flatten, unique_labels
from assay.stats import ALPHA, PairedResult, compare_scores

# Fingerprint keys that may differ between runs being compared without a warning: the model is the point of the
# comparison; the engine version and run bookkeeping do not change what was asked.
_IGNORED_KEYS = ("model",)


@dataclass
class PairCell:
    suite: str
    a: str  # run labels
    b: str
    ia: int  # indices into Comparison.runs
    ib: int
    result: PairedResult
    only_a: int  # scored samples in A missing from B (left out of the test)
    only_b: int
    disagreements: list[dict] = field(default_factory=list)
    n_disagree: int = 0

    def to_dict(self) -> dict:
        return {"suite": self.suite, "a": self.a, "b": self.b, "only_a": self.only_a, "only_b": self.only_b,
                **self.result.to_dict(), "n_disagree": self.n_disagree}


@dataclass
class Comparison:
    runs: list[EvalRun]
    suites: list[str]
    pairs: list[PairCell]
    warnings: list[str]
    alpha: float
    seed: int
    claims: list = field(default_factory=list)  # ClaimCheck
    claims_meta: dict = field(default_factory=dict)
    judge: list = field(default_factory=list)  # pairwise LLM-judge results (assay compare --judge), one per pair

    def to_dict(self) -> dict:
        return {
            "runs": [{"label": r.label, "run_id": r.run_id, "path": str(r.path), "model": r.model,
                      "suites": {s: {k: v.get(k) for k in ("metric", "binary", "value", "low", "high", "n", "errors",
                                                             "truncated", "unparsed")}
                                 for s, v in r.suites.items()},
                      "speed": r.speed()} for r in self.runs],
            "pairs": [p.to_dict() for p in self.pairs],
            "warnings": self.warnings,
            "alpha": self.alpha,
            "seed": self.seed,
            "claims": [c.to_dict() for c in self.claims],
            "judge": self.judge,
        }


def fingerprint_differences(a: EvalRun, b: EvalRun, suites: list[str]) -> list[tuple[str, Any, Any]]:
    """(key, value in A, value in B) for every fingerprint key that differs, other than the model. Suite entries are
    compared for the shared suites only (a suite only one run has is simply not compared)."""
    fa, fb = dict(a.fingerprint), dict(b.fingerprint)
    for f in (fa, fb):
        f["suites"] = {s: v for s, v in (f.get("suites") or {}).items() if s in suites}
    xa, xb = flatten(fa), flatten(fb)
    out = []
    for k in sorted(set(xa) | set(xb)):
        if k in _IGNORED_KEYS:
            continue
        va, vb = xa.get(k), xb.get(k)
        if json.dumps(va, sort_keys=True, default=str) != json.dumps(vb, sort_keys=True, default=str):
            out.append((k, va, vb))
    return out


def _brief(v: Any, width: int = 40) -> str:
    s = json.dumps(v, default=str) if not isinstance(v, str) else repr(v)
    return s if len(s) <= width else s[: width - 1] + "…"


def _extracted(rec: Record | None) -> str | None:
    return rec.score.extracted if rec is not None and rec.score is not None else None


def _disagreements(a: EvalRun, b: EvalRun, suite: str, shared: list[str], sa: dict, sb: dict,
                   limit: int) -> tuple[list[dict], int]:
    rows = []
    n = 0
    ra = {str(r.sample_id): r for r in a.records if r.suite == suite}
    rb = {str(r.sample_id): r for r in b.records if r.suite == suite}
    for sid in shared:
        if abs(sa[sid] - sb[sid]) <= 1e-9:
            continue
        n += 1
        if len(rows) >= limit:
            continue
        x, y = ra.get(sid), rb.get(sid)
        either = x or y
        rows.append({"sample_id": sid, "category": either.category if either else None,
                     "prompt": _last_user((x.messages if x else None) or (y.messages if y else None)),
                     "target": either.target if either else None,
                     "a_score": sa[sid], "a_extracted": _extracted(x), "a_completion": x.completion if x else None,
                     "a_status": x.status if x else None,
                     "b_score": sb[sid], "b_extracted": _extracted(y), "b_completion": y.completion if y else None,
                     "b_status": y.status if y else None})
    return rows, n


def _last_user(messages: list[dict] | None) -> str | None:
    for m in reversed(messages or []):
        if m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else json.dumps(c, default=str)
    return None


def compare_runs(runs: list[EvalRun], *, seed: int = 0, alpha: float = ALPHA, n_boot: int = 10000,
                 diff_limit: int = 50, allow_single: bool = False) -> Comparison:
    """``allow_single``: one run is enough when only its claims are checked (``--against-claims``)."""
    if len(runs) < (1 if allow_single else 2):
        from assay.errors import AssayError

        raise AssayError("compare needs at least two runs: assay compare RUN_A RUN_B [RUN_C ...] "
                         "(or one run with --against-claims)")
    unique_labels(runs)
    suites: list[str] = []
    for r in runs:
        for s in r.suites:
            if s not in suites:
                suites.append(s)
    pairs: list[PairCell] = []
    warnings: list[str] = []
    for ia, ib in combinations(range(len(runs)), 2):
        a, b = runs[ia], runs[ib]
        shared_suites = [s for s in suites if s in a.suites and s in b.suites]
        if not shared_suites:
            warnings.append(f"{a.label} and {b.label} share no suite: nothing to compare between them")
            continue
        diffs = fingerprint_differences(a, b, shared_suites)
        if diffs:
            shown = "; ".join(f"{k}: {_brief(va)} vs {_brief(vb)}" for k, va, vb in diffs[:6])
            more = f" (+{len(diffs) - 6} more)" if len(diffs) > 6 else ""
            warnings.append(f"{a.label} vs {b.label}: fingerprints differ in more than the model — {shown}{more}. "
                            "The difference may come from these settings, not from the model.")
        for suite in shared_suites:
            sa, sb = a.scores(suite), b.scores(suite)
            shared = sorted(set(sa) & set(sb))
            binary = bool(a.suites[suite].get("binary", True)) and bool(b.suites[suite].get("binary", True))
            res = compare_scores([sa[k] for k in shared], [sb[k] for k in shared], binary=binary, seed=seed,
                                 n_boot=n_boot, alpha=alpha)
            only_a, only_b = len(set(sa) - set(sb)), len(set(sb) - set(sa))
            if only_a or only_b:
                res.notes.append(f"{only_a} sample(s) only in {a.label}, {only_b} only in {b.label}: left out")
            rows, nd = _disagreements(a, b, suite, shared, sa, sb, diff_limit)
            pairs.append(PairCell(suite=suite, a=a.label, b=b.label, ia=ia, ib=ib, result=res, only_a=only_a,
                                  only_b=only_b, disagreements=rows, n_disagree=nd))
    return Comparison(runs=runs, suites=suites, pairs=pairs, warnings=warnings, alpha=alpha, seed=seed)


def _same_model(a: str, b: str) -> bool:
    from assay.common import short_model

    return short_model(a).lower() == short_model(b).lower()


def attach_bench(loaded: list, benches: list, runs_dir, *, given: bool) -> None:
    """Join a bench run to each eval run for the quality × speed columns. ``given`` (--bench was passed): the bench
    run of the same model, or — one bench per eval run, in order — the one at the same position; else the newest
    bench run of the same model found in ``runs_dir``."""
    from assay.report.runs import find_bench_runs

    for i, r in enumerate(loaded):
        mine = [b for b in benches if b.model and _same_model(b.model, r.model)]
        if not given:
            mine = find_bench_runs(runs_dir, r.model)[:1]
        elif not mine and len(benches) == len(loaded):
            mine = [benches[i]]
        r.bench = mine[:1]


def build_comparison(refs: list[str], *, runs_dir, bench: list[str] | None = None, against_claims=None,
                     seed: int = 0, alpha: float = ALPHA, lm_eval_filter: str | None = None) -> "Comparison":
    """`assay compare` without the judge: load the runs (assay run folders or lm-eval samples files, paired by
    document), join bench runs, compare on shared samples, and check published claims when a claims file is given."""
    from pathlib import Path

    from assay.report.export import is_lm_eval_samples, load_lm_eval_samples, pair_by_doc_hash
    from assay.report.runs import load_bench_run, load_eval_run

    loaded = [load_lm_eval_samples(Path(r), lm_filter=lm_eval_filter) if is_lm_eval_samples(Path(r))
              else load_eval_run(r, runs_dir) for r in refs]
    pairing_warnings = pair_by_doc_hash(loaded)
    pairing_warnings += [n for r in loaded if is_lm_eval_samples(r.path) for n in r.notes[1:]]  # the filter
    attach_bench(loaded, [load_bench_run(b, runs_dir) for b in bench or []], runs_dir, given=bool(bench))
    cmp = compare_runs(loaded, seed=seed, alpha=alpha, allow_single=against_claims is not None)
    cmp.warnings.extend(pairing_warnings)
    if against_claims is not None:
        from assay.report.claims import check_claims, load_claims

        meta, claims = load_claims(against_claims)
        cmp.claims, warns = check_claims(claims, cmp.runs, meta)
        cmp.claims_meta = meta
        cmp.warnings.extend(warns)
    return cmp


def comparison_json(cmp: "Comparison") -> dict:
    """The machine-readable part of ``assay compare``'s last stdout line: each pair's paired test and, with a judge,
    each pair's pairwise verdicts."""
    out: dict = {"pairs": [{"suite": p.suite, "a": p.a, "b": p.b, "n": p.result.n, "diff": p.result.diff,
                            "low": p.result.low, "high": p.result.high, "p": p.result.p,
                            "verdict": p.result.verdict} for p in cmp.pairs]}
    if cmp.judge:
        out["judge"] = [{"a": j["a"], "b": j["b"], **{k: j["pairwise"][k] for k in (
            "n", "wins", "ties", "losses", "diff", "low", "high", "verdict", "position_consistency")}}
            for j in cmp.judge]
    return out
