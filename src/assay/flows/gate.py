"""``assay gate BASE CANDIDATE``: may the candidate replace the base? Paired by sample, per suite, against a margin:
exit 0 (non-inferior: the interval of candidate − base lies above −margin), 1 (worse: it lies below), 2 (the data
cannot tell: it straddles; with how many more samples would likely decide).

BASE and CANDIDATE are stored eval runs, or models / endpoints to evaluate first (on the same suites, samples,
sampling and seed). With ``until_decided`` the models are evaluated in batches — each batch a larger ``--limit``, so
earlier answers come from the answer cache — and an anytime-valid confidence sequence (``assay.stats.sequential``)
is looked at after every batch: stopping as soon as it clears the margin keeps the error rate at alpha.

Statistics: ``assay.stats.gate`` (fixed n) and ``assay.stats.sequential`` (confidence sequence); docs/gate.md.

Example:
    report = gate_runs(Path("runs/A"), Path("runs/B"), Margins(Margin(0.05)))
    print(report.exit_code, to_markdown(report))
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import assay.evals.base  # noqa: F401 - registers the eval record kind that store.open reads
from assay.common import short_model, stable_hash
from assay.errors import AssayError
from assay.stats.gate import EXIT_CODES, NON_INFERIOR, UNDECIDED, WORSE, Margin, gate_decision
from assay.stats.sequential import sequential_gate

DEFAULT_MARGIN = 0.05  # five points of accuracy (score units)


@dataclass(frozen=True)
class Margins:
    """The margin per suite: ``default`` for suites not named in ``per_suite``."""

    default: Margin = Margin(DEFAULT_MARGIN)
    per_suite: dict = field(default_factory=dict)

    def of(self, suite: str) -> Margin:
        return self.per_suite.get(suite, self.default)


def parse_margin(text: str) -> Margin:
    """``0.05`` (absolute, score units: five points of accuracy) or ``5%`` (relative: the candidate keeps at least
    95 % of the base's score)."""
    t = text.strip()
    try:
        if t.endswith("%"):
            v = float(t[:-1]) / 100
            rel = True
        else:
            v, rel = float(t), False
    except ValueError:
        raise AssayError(f"--margin {text!r}: a number in score units (0.05 = five points) or a percentage of the "
                         "base's score (5%), optionally per suite (math=0.05)") from None
    if v < 0 or (rel and v >= 1):
        raise AssayError(f"--margin {text!r}: must be ≥ 0 (and a relative margin below 100%)")
    return Margin(v, relative=rel)


def parse_margins(specs: list[str] | None) -> Margins:
    """``--margin`` values: ``0.05``, ``5%``, or ``suite=0.05`` / ``suite=5%`` (repeatable, comma-separated)."""
    default, per = Margin(DEFAULT_MARGIN), {}
    for spec in specs or []:
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            name, eq, value = part.partition("=")
            if eq:
                per[name.strip()] = parse_margin(value)
            else:
                default = parse_margin(part)
    return Margins(default, per)


@dataclass
class SuiteGate:
    suite: str
    result: Any  # stats.gate.GateResult (fixed n) or stats.sequential.SequentialResult (until decided)
    sequential: bool = False
    samples_offered: int | None = None  # until decided: the most samples the budget allowed
    # until decided: the n of a fixed design with the same power (80 %) at the effect and spread observed
    fixed_n: int | None = None


@dataclass
class GateReport:
    base: str  # labels
    candidate: str
    rows: list[SuiteGate]
    alpha: float
    base_run: str | None = None
    candidate_run: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        verdicts = {r.result.verdict for r in self.rows}
        if not self.rows:
            return UNDECIDED
        return WORSE if WORSE in verdicts else UNDECIDED if UNDECIDED in verdicts else NON_INFERIOR

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict:
        return {"kind": "gate", "verdict": self.verdict, "exit_code": self.exit_code, "base": self.base,
                "candidate": self.candidate, "base_run": self.base_run, "candidate_run": self.candidate_run,
                "alpha": self.alpha, "notes": self.notes,
                "suites": {r.suite: {**r.result.to_dict(), "sequential": r.sequential,
                                     "samples_offered": r.samples_offered, "fixed_n": r.fixed_n}
                           for r in self.rows}}


# ---- pairing ------------------------------------------------------------------------------------------------------
def paired(base_records, cand_records, suites: list[str] | None = None) -> dict[str, list[tuple[str, float, float]]]:
    """(sample id, base score, candidate score) per suite, for the samples both scored (errors and unscored left
    out, as in the scorecard); the last record of a sample wins (a resumed run can hold a retried error)."""
    def scores(records):
        out: dict[str, dict[str, float]] = {}
        for r in records:
            if suites and r.suite not in suites:
                continue
            d = out.setdefault(r.suite, {})
            if r.value is None:
                d.pop(str(r.sample_id), None)
            else:
                d[str(r.sample_id)] = float(r.value)
        return out

    a, b = scores(base_records), scores(cand_records)
    return {s: [(sid, a[s][sid], b[s][sid]) for sid in a[s] if sid in b[s]] for s in sorted(set(a) & set(b))}


def _run_label(run) -> str:
    return short_model((run.manifest.fingerprint or {}).get("model")) or run.run_id


def gate_runs(base_dir: Path | str, cand_dir: Path | str, margins: Margins, *, alpha: float = 0.05,
              suites: list[str] | None = None, out_dir: Path | str | None = None, seed: int = 0) -> GateReport:
    """The fixed-n gate of two stored eval runs, per shared suite, on their shared scored samples."""
    from assay import store

    ra, rb = store.open(base_dir, out_dir), store.open(cand_dir, out_dir)
    for r in (ra, rb):
        if r.kind != "eval":
            raise AssayError(f"{r.dir} is a {r.kind} run: assay gate compares eval runs (or models to evaluate)")
    pairs = paired(ra.records(), rb.records(), suites)
    report = GateReport(_run_label(ra), _run_label(rb), [], alpha, str(ra.dir), str(rb.dir))
    if suites:
        missing = [s for s in suites if s not in pairs]
        if missing:
            report.notes.append(f"not in both runs: {', '.join(missing)}")
    if not pairs:
        raise AssayError(f"no suite with scored samples in both {ra.dir} and {rb.dir}: gate runs of the same suites")
    fp_a, fp_b = ra.manifest.fingerprint or {}, rb.manifest.fingerprint or {}
    for key in ("params", "seed", "system_prompt"):
        if fp_a.get(key) != fp_b.get(key):
            report.notes.append(f"the runs differ in {key}: a difference may come from it, not only the model")
    for s, rows in pairs.items():
        base, cand = [x[1] for x in rows], [x[2] for x in rows]
        report.rows.append(SuiteGate(s, gate_decision(base, cand, margins.of(s), alpha=alpha, seed=seed)))
    return report


def _fixed_n(base: list[float], cand: list[float], margin: Margin, alpha: float) -> int | None:
    """The n a fixed design needs for 80 % power at the effect and spread seen so far (``stats.gate``)."""
    from assay.stats.gate import decision_values, samples_needed

    if len(base) < 2:
        return None
    v = decision_values(base, cand, margin).values
    return samples_needed(float(v.mean()), float(v.std(ddof=1)), alpha)


# ---- evaluating models first --------------------------------------------------------------------------------------
def _order_key(seed: int, sid: str) -> str:
    return stable_hash({"seed": seed, "id": sid}, n=16)


def gate_models(base, cand, suite_names: list[str], margins: Margins, *, params, limit: int = 50,
                until_decided: bool = False, batch: int = 20, alpha: float = 0.05, seed: int = 0,
                out_dir: str | Path = "runs", cache: bool = True, suite_opts: dict | None = None,
                system_prompts: tuple[str | None, str | None] = (None, None),
                say: Callable[[str], None] = lambda m: None) -> GateReport:
    """Evaluate ``base`` and ``cand`` (``EngineChoice``s) on the same suites and samples, then gate. Fixed: both at
    ``limit`` samples per suite. ``until_decided``: in batches of ``batch`` more samples per suite (up to ``limit``),
    looking at the confidence sequence after each and stopping a suite's sampling once it is decided (a suite
    still undecided keeps the next batch for all of them). Samples enter the sequence batch by batch, and within a
    batch in a seeded random order, so what the sequence sees is a random order of the suite's samples.
    ``system_prompts``: (base's, candidate's) system message before every prompt — the same model with two system
    prompts is a gate too (does the new prompt regress?)."""
    from assay.answers import AnswerCache
    from assay.evals.runner import run_eval
    from assay.flows.eval import build_suites

    if batch < 1 or limit < 1:
        raise AssayError("--batch and --limit must be at least 1")
    answers = AnswerCache.default() if cache else None
    seen_at: dict[tuple[str, str], tuple[int, str]] = {}  # (suite, id) -> (batch number, order key)
    decided: dict[str, SuiteGate] = {}
    report = GateReport(base.label, cand.label, [], alpha)
    try:
        with base.provide() as eps_a, cand.provide() as eps_b:
            report.base, report.candidate = short_model(eps_a[0].model), short_model(eps_b[0].model)
            if report.base == report.candidate and base.label != cand.label:
                report.base, report.candidate = base.label, cand.label
            if system_prompts[0] != system_prompts[1]:
                report.base += " (base system prompt)" if system_prompts[0] else ""
                report.candidate += " (candidate system prompt)" if system_prompts[1] else ""
            steps = list(range(batch, limit, batch)) + [limit] if until_decided else [limit]
            for k, n in enumerate(steps):
                todo = [s for s in suite_names if s not in decided]
                if not todo:
                    break
                say(f"gate: {', '.join(todo)} at {n} samples per suite"
                    + (f" (batch {k + 1} of at most {len(steps)})" if until_decided else "") + " ...")
                runs = []
                for eps, prompt in zip((eps_a, eps_b), system_prompts):
                    runs.append(asyncio.run(run_eval(build_suites(todo, suite_opts or {}), eps, out_dir=out_dir,
                                                     params=params, seed=seed, limit=n, cache=answers,
                                                     suite_options=suite_opts or {}, system_prompt=prompt)))
                report.base_run, report.candidate_run = str(runs[0].run_dir), str(runs[1].run_dir)
                from assay import store

                pairs = paired(store.open(runs[0].run_dir).records(), store.open(runs[1].run_dir).records(), todo)
                for s in todo:
                    rows = pairs.get(s, [])
                    for sid, _, _ in rows:
                        seen_at.setdefault((s, sid), (k, _order_key(seed, sid)))
                    rows.sort(key=lambda x: seen_at[(s, x[0])])
                    base_v, cand_v = [x[1] for x in rows], [x[2] for x in rows]
                    if until_decided:
                        res = sequential_gate(base_v, cand_v, margins.of(s), alpha)
                        gate = SuiteGate(s, res, sequential=True, samples_offered=limit,
                                         fixed_n=_fixed_n(base_v, cand_v, margins.of(s), alpha))
                        exhausted = len(rows) < n  # the suite has no more samples than these
                        if res.verdict != UNDECIDED or exhausted or n == steps[-1]:
                            decided[s] = gate
                    else:
                        decided[s] = SuiteGate(s, gate_decision(base_v, cand_v, margins.of(s), alpha=alpha,
                                                                seed=seed))
    finally:
        if answers is not None:
            answers.close()
    report.rows = [decided[s] for s in suite_names if s in decided]
    return report


# ---- rendering ----------------------------------------------------------------------------------------------------
_MARK = {NON_INFERIOR: "✅ non-inferior", WORSE: "❌ worse", UNDECIDED: "⚠️ undecided"}


def _pct(x: float | None) -> str:
    return "—" if x is None or x != x else f"{100 * x:.1f}"


def margin_text(r) -> str:
    return f"{100 * r.margin:g} % of the base" if r.relative else f"{100 * r.margin:g} pts"


def to_markdown(report: GateReport) -> str:
    """A summary fit for a pull-request comment."""
    lines = [f"### assay gate: {_MARK[report.verdict]} (exit {report.exit_code})", "",
             f"candidate `{report.candidate}` vs base `{report.base}`, paired by sample, α = {report.alpha}; "
             "scores in points (0–100).", "",
             "| suite | n | base | candidate | candidate − base [interval] | margin | verdict | note |",
             "|---|---:|---:|---:|---|---|---|---|"]
    for row in report.rows:
        r = row.result
        base = getattr(r, "mean_base", None)
        cand = getattr(r, "mean_candidate", None)
        if row.sequential:
            note = (f"decided at n = {r.decided_at} of up to {row.samples_offered} (confidence sequence)"
                    if r.decided_at else f"undecided after {r.n} of up to {row.samples_offered}")
            if row.fixed_n:
                note += f"; a fixed design of the same power: n ≈ {row.fixed_n}"
        else:
            note = (f"~{r.more_samples} more samples would likely decide" if r.more_samples is not None
                    else (r.notes[0] if r.notes else ""))
        lines.append(f"| {row.suite} | {r.n} | {_pct(base)} | {_pct(cand)} | {100 * r.diff:+.1f} "
                     f"[{100 * r.low:+.1f}, {100 * r.high:+.1f}] | {margin_text(r)} | {_MARK[r.verdict]} | {note} |")
    lines += ["", "Exit 0: every suite non-inferior (its interval lies above −margin); 1: some suite worse (its "
              "interval lies below −margin); 2: the data cannot tell yet."]
    lines += [f"> note: {n}" for n in report.notes]
    if report.base_run or report.candidate_run:
        lines += ["", f"runs: base `{report.base_run}`, candidate `{report.candidate_run}`"]
    return "\n".join(lines) + "\n"
