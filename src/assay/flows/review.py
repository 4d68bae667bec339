"""``assay review``: the model review the source documents describe, for one or several models, in one resumable
call. Everything is run through the one-way APIs — evals through ``assay.evals.runner.run_eval`` (resumed by
fingerprint, answers reused from ``assay.answers``), speed through ``assay.bench.run.run_bench`` (a finished bench
run with the same fingerprint is reused), hardware fit through ``assay.bench.plan``, comparisons through
``assay.report.compare.compare_runs`` with a Holm correction (``assay.stats.paired.holm``), claims through
``assay.report.claims``, judges through ``assay.judge.session.judge_runs`` — and every run is read back through
``assay.store.open``. The result is one JSON-able dict (keys in docs/review.md) that ``assay.report.review`` renders.

A step that fails (a suite's data missing, an engine that cannot start, no bench possible) becomes a named gap in
the review, never a crash. Re-running the same call resumes: finished eval runs are found by fingerprint and ask
nothing; a finished bench run with the same fingerprint is reused.

Example:
    from assay.engines.choice import EngineChoice
    review = run_review([EngineChoice()], budget="quick", out_dir="runs")
    print(review["dimensions"][0]["cells"])
"""

from __future__ import annotations

import asyncio
import copy
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from assay.errors import AssayError

FORMAT_VERSION = 1
BUDGETS = ("quick", "standard", "full")
ALPHA = 0.05


# ---- what a review measures -------------------------------------------------------------------------------------------
@dataclass
class SuitePlan:
    suite: str
    options: dict = field(default_factory=dict)
    limit: int | None = None
    data: str | None = None  # a file / folder under --data-dir the suite needs (its `data` option)
    public: str | None = None  # the public benchmark it is, when it is one


@dataclass
class Dimension:
    key: str
    title: str
    documents: str  # what the source documents measured for it
    suites: list[SuitePlan] = field(default_factory=list)
    judge_rubric: str | None = None  # the judge's rubric for this dimension's answers (section 6)
    tools: bool = False  # needs an engine started tool-ready


@dataclass
class Budget:
    name: str
    max_tokens: int
    concurrency: int
    bench_concurrency: list[int]
    bench_requests: int
    bench_warmup: int
    judge_limit: int
    dimensions: list[Dimension]
    # the bench runs: (workloads, concurrency levels); default one run of the seed workloads at bench_concurrency
    bench_runs: list[tuple[str, list[int]]] | None = None

    @property
    def benches(self) -> list[tuple[str, list[int]]]:
        return self.bench_runs or [("seed", self.bench_concurrency)]

    @property
    def bench_units(self) -> int:
        from assay.bench.workloads import parse_workloads

        return sum(len(parse_workloads(w)) * len(c) * (self.bench_requests + self.bench_warmup)
                   for w, c in self.benches)

    def to_dict(self) -> dict:
        return {"name": self.name, "max_tokens": self.max_tokens, "concurrency": self.concurrency,
                "bench": {"runs": [{"workload": w, "concurrency": c} for w, c in self.benches],
                          "requests": self.bench_requests, "warmup": self.bench_warmup},
                "judge_limit": self.judge_limit,
                "dimensions": {d.key: [asdict(s) for s in d.suites] for d in self.dimensions}}


def _dims(ifeval, mtif, logic, understanding, coding, multilingual, tools) -> list[Dimension]:
    return [
        Dimension("instruction", "Instruction following (incl. multi-turn)",
                  "accuracy / completeness of following instructions, single and multi-turn", ifeval + mtif,
                  judge_rubric="naturalness"),
        Dimension("logic", "Logic", "ZebraLogic grid puzzles, AIME25", logic),
        Dimension("understanding", "Text understanding",
                  "long-document summary (ROUGE-L), information extraction (F1)", understanding),
        Dimension("coding", "Coding", "pass rate and code quality", coding, judge_rubric="code_quality"),
        Dimension("multilingual", "Multilingual", "en/fr/es/ar/sw BLEU-4 and fluency", multilingual,
                  judge_rubric="fluency"),
        Dimension("tools", "Tool use", "function calling", tools, tools=True),
        Dimension("naturalness", "Naturalness (judge-rated)", "subjective naturalness, 1-5", []),
    ]


DIRECTIONS = "en-fr,en-es,en-ar,en-sw"  # the documents' languages


def budget(name: str) -> Budget:
    """The suites and sizes of a budget. quick: a few samples per dimension (minutes on 2 CPU cores with the embedded
    model); standard: ~30-40 per suite; full: the public benchmarks at their published sizes (files under
    --data-dir; a missing one is a named gap)."""
    S = SuitePlan
    if name == "quick":
        # an 8K prompt takes about a minute to prefill on 2 CPU cores: quick measures it at c=1 only, and the
        # higher concurrency on the two short workloads
        return Budget("quick", 256, 4, [1, 2], 2, 0, 6, bench_runs=[("seed", [1]), ("fixed:50:100,fixed:120:200", [2])],
                      dimensions=_dims(
            [S("ifeval", limit=8)], [S("mtif", limit=3)], [S("logic", {"sizes": "2x2:4,3x3:4"})],
            [S("longctx", {"tasks": "qa,summary", "doc_length": 1024, "docs": 2, "questions": 1}),
             S("json", limit=6)],
            [S("code", limit=5)], [S("translate", {"directions": DIRECTIONS}, limit=8)], [S("tools", limit=3)]))
    if name == "standard":
        return Budget("standard", 384, 8, [1, 4], 5, 1, 20, _dims(
            [S("ifeval", limit=40)], [S("mtif", limit=20)], [S("logic", {"sizes": "2x2:10,3x3:10,4x4:10"})],
            [S("longctx", {"tasks": "qa,summary", "doc_length": 2048, "docs": 6, "questions": 2}),
             S("json", limit=40)],
            [S("code", limit=30)], [S("translate", {"directions": DIRECTIONS}, limit=40)], [S("tools", limit=20)]))
    if name == "full":
        return Budget("full", 1280, 8, [1, 8], 20, 2, 100, _dims(
            [S("ifeval", data="ifeval_input_data.jsonl", public="IFEval (541 prompts)")], [S("mtif")],
            [S("logic"), S("aime2025", data="aime2025.jsonl", public="AIME 2025")],
            [S("longctx", {"tasks": "qa,summary"}), S("json")],
            [S("code"), S("humaneval", public="HumanEval (164)"),
             S("mbpp", data="mbpp.jsonl", public="MBPP")],
            [S("translate", {"directions": DIRECTIONS}),
             S("flores", {"directions": DIRECTIONS}, data="flores200_devtest", public="FLORES-200 devtest")],
            [S("tools"), S("bfcl", data="bfcl_v4", public="BFCL v4")]))
    raise AssayError(f"--budget {name!r}: choose quick, standard or full")


# ---- progress -----------------------------------------------------------------------------------------------------------
class Progress:
    """The review's progress as one stream of units (eval samples and bench requests). The CLI draws it; the default
    does nothing. ``step`` names what runs now (model, dimension); ``advance`` moves the whole review on."""

    def start(self, total: int) -> None: ...

    def step(self, label: str) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def stop(self) -> None: ...


class _Counter:
    """An eval-runner observer that moves the review's progress and counts the answers that were real model calls."""

    def __init__(self, progress: Progress, planned: int):
        self.progress, self.planned, self.seen, self.calls = progress, planned, 0, 0

    def begin(self, run_dir, totals, done, resumed, scores) -> None:
        already = sum(sum(d.values()) for d in done.values())
        self.seen += already
        self.progress.advance(min(already, self.planned))

    def record(self, rec) -> None:
        self.seen += 1
        if not getattr(rec, "cached", False):
            self.calls += 1
        self.progress.advance(1)

    def rest(self) -> None:  # the planned units a run did not use (fewer samples than planned)
        left = self.planned - min(self.seen, self.planned)
        if left > 0:
            self.progress.advance(left)


# ---- the review ------------------------------------------------------------------------------------------------------------
@dataclass
class ModelEntry:
    choice: Any  # EngineChoice
    label: str
    runs: dict = field(default_factory=dict)  # dimension key -> [eval run dir per suite]
    bench: list = field(default_factory=list)  # bench run dirs
    bench_ctx: int | None = None


def model_label(choice) -> str:
    if choice.endpoints:
        return choice.endpoints[0].split("://", 1)[-1].rstrip("/").removesuffix("/v1")
    m = choice.label
    return Path(m).stem if m.lower().endswith(".gguf") else m


def labels(choices: list) -> list[str]:
    out: list[str] = []
    for c in choices:
        base = model_label(c)
        lab, k = base, 2
        while lab in out:
            lab, k = f"{base} ({k})", k + 1
        out.append(lab)
    return out


def _gap(gaps: list, section: str, model: str | None, what: str, reason: str) -> dict:
    g = {"section": section, "model": model, "what": what, "reason": reason}
    gaps.append(g)
    return g


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if not isinstance(e, AssayError) else str(e)


def _sample_count(suite, limit: int | None, seed: int) -> int:
    try:
        n = 0
        for _ in suite.samples(seed, limit):
            n += 1
        return n
    except Exception:  # a suite that needs its engine to list samples: a guess is enough for progress
        return limit or 10


def run_review(choices: list, *, budget_name: "str | Budget" = "quick", out_dir: str | Path = "runs",
               data_dir: str | Path | None = None, judge: str | None = None, claims: str | Path | None = None,
               seed: int = 0, alpha: float = ALPHA, cache: bool = True, command: list[str] | None = None,
               progress: Progress | None = None, say: Callable[[str], None] = lambda m: None) -> dict:
    """Run (or reuse) everything a review of ``choices`` (one ``EngineChoice`` per model) needs; return the review
    as a JSON-able dict. ``claims``: a claims YAML (default: ``report/claims/<model>.yaml`` where one exists)."""
    from assay.client import SamplingParams

    if not choices:
        raise AssayError("assay review needs at least one model")
    t0 = time.monotonic()
    prog = progress or Progress()
    plan = copy.deepcopy(budget_name) if isinstance(budget_name, Budget) else budget(budget_name)
    models = [ModelEntry(c, lab) for c, lab in zip(choices, labels(choices))]
    params = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=plan.max_tokens, seed=seed)
    gaps: list[dict] = []
    stats = {"model_calls": 0, "bench_requests": 0, "bench_reused": 0, "eval_runs": 0}
    data = Path(data_dir).expanduser() if data_dir else None

    # build every suite once (a missing data file is a gap of that suite, for every model)
    built: dict[str, list[tuple[SuitePlan, Any]]] = {}
    suite_gaps: dict[str, list[dict]] = {}
    for d in plan.dimensions:
        built[d.key], suite_gaps[d.key] = [], []
        for sp in d.suites:
            opts = dict(sp.options)
            if sp.data:
                if data is None or not (data / sp.data).exists():
                    where = f"{data / sp.data}" if data else "no --data-dir"
                    suite_gaps[d.key].append(_gap(gaps, "capabilities", None, f"{d.key}/{sp.suite}",
                                                  f"{sp.public or sp.suite}: its data is missing ({where}); "
                                                  f"pass --data-dir with {sp.data}"))
                    continue
                opts["data"] = str(data / sp.data)
            try:
                if ":" in sp.suite:  # a suite class from outside the registry, "module:Class"
                    from assay.evals.suites import build_ref

                    suite = build_ref(sp.suite, opts)
                    sp.suite = suite.name
                else:
                    from assay.flows.eval import build_suites

                    suite = build_suites([sp.suite], {sp.suite: opts})[0]
                built[d.key].append((sp, suite))
                sp.options = opts
            except Exception as e:
                suite_gaps[d.key].append(_gap(gaps, "capabilities", None, f"{d.key}/{sp.suite}",
                                              f"suite {sp.suite} could not be built: {_why(e)}"))
    per_model = sum(_sample_count(s, sp.limit, seed) for d in plan.dimensions for sp, s in built[d.key])
    bench_units = plan.bench_units
    prog.start(len(models) * (per_model + bench_units))

    for i, m in enumerate(models):
        say(f"[{i + 1}/{len(models)}] {m.label}")
        _evals(m, plan, built, params, out_dir, seed, cache, command, prog, say, gaps, stats)
        _bench(m, plan, out_dir, seed, prog, say, gaps, stats, bench_units)

    review = assemble(models, plan, gaps, out_dir=out_dir, alpha=alpha, seed=seed, claims=claims,
                      params=params.model_dump(), suite_gaps=suite_gaps)
    if judge:
        prog.step("judge")
        review["judge"] = _judge(models, plan, judge, gaps, say)
    review["command"] = command or []
    review["wall_s"] = round(time.monotonic() - t0, 1)
    review["model_calls"] = stats["model_calls"]
    review["bench_requests"] = stats["bench_requests"]
    review["bench_reused"] = stats["bench_reused"]
    review["gaps"] = gaps
    prog.stop()
    return review


def _evals(m: ModelEntry, plan: Budget, built: dict, params, out_dir, seed: int, cache: bool, command, prog,
           say, gaps: list, stats: dict) -> None:
    """Each dimension is its own eval run (so one dimension's failure leaves the others whole), on one engine per
    kind (tool-ready for tool use), started once for all the dimensions that need it."""
    from assay import engines
    from assay.evals.runner import run_eval

    for tools in (False, True):
        dims = [d for d in plan.dimensions if d.tools == tools and built[d.key]]
        if not dims:
            continue
        eng = m.choice
        try:
            replicas = 1
            if eng.starts:
                replicas = engines.auto_replicas(eng.model, engine=eng.engine, threads=eng.threads,
                                                 concurrency=plan.concurrency, extra_args=list(eng.extra_args) or None)
            say(f"  starting {m.label}" + (" (tool-ready)" if tools else "")
                + (f", {replicas} replicas" if replicas > 1 else "") if eng.starts else f"  connecting {m.label}")
            ctx = eng.provide(tools=tools, replicas=replicas)
            eps = ctx.__enter__()
        except KeyboardInterrupt:
            raise
        except Exception as e:
            for d in dims:
                _gap(gaps, "capabilities", m.label, d.key, f"the engine did not start: {_why(e)}")
                prog.advance(sum(_sample_count(s, sp.limit, seed) for sp, s in built[d.key]))
            continue
        try:
            from assay.answers import AnswerCache

            answers = AnswerCache.default() if cache else None
            try:
                for d in dims:
                    prog.step(f"{m.label} · {d.title}")
                    for sp, suite in built[d.key]:
                        planned = _sample_count(suite, sp.limit, seed)
                        obs = _Counter(prog, planned)
                        try:
                            res = asyncio.run(run_eval([suite], eps, out_dir=out_dir, params=params, seed=seed,
                                                       limit=sp.limit, concurrency=plan.concurrency, command=command,
                                                       suite_options={sp.suite: sp.options}, observer=obs,
                                                       cache=answers))
                            m.runs.setdefault(d.key, []).append(str(res.run_dir))
                            stats["eval_runs"] += 1
                            say(f"  {d.key}/{sp.suite}: {res.run_dir} ({res.manifest.status}"
                                + (f", {obs.calls} new answers" if obs.calls else ", nothing asked") + ")")
                            if res.manifest.status != "finished":
                                _gap(gaps, "capabilities", m.label, f"{d.key}/{sp.suite}",
                                     f"the run stopped before it finished ({res.run_dir}); re-run to resume")
                        except KeyboardInterrupt:
                            raise
                        except Exception as e:
                            _gap(gaps, "capabilities", m.label, f"{d.key}/{sp.suite}", f"the eval failed: {_why(e)}")
                            say(f"  {d.key}/{sp.suite}: failed — {_why(e)}")
                            if _debug():
                                traceback.print_exc()
                        finally:
                            stats["model_calls"] += obs.calls
                            obs.rest()
            finally:
                if answers is not None:
                    answers.close()
        finally:
            ctx.__exit__(None, None, None)


def _debug() -> bool:
    import os

    return bool(os.environ.get("ASSAY_DEBUG"))


# ---- speed: the bench at the documents' three workloads ------------------------------------------------------------------
def bench_fingerprint(ep, choice, plan: Budget, seed: int, machine: dict, workloads: str = "seed",
                      concurrency: list[int] | None = None) -> dict:
    """What makes two bench runs the same measurement: the exact model served, engine and version, served context,
    engine flags, the workload and load, and the machine."""
    from assay.engines.identity import fingerprint_part

    return {"model": ep.model, "model_identity": fingerprint_part(ep.identity), "engine": ep.engine,
            "engine_version": ep.engine_version, "context": ep.context, "threads": choice.threads,
            "extra_args": list(choice.extra_args), "endpoints": list(choice.endpoints), "workload": workloads,
            "concurrency": concurrency or plan.bench_concurrency, "requests": plan.bench_requests,
            "warmup": plan.bench_warmup,
            "seed": seed, "cpu": machine.get("cpu"), "gpus": [g.get("name") for g in machine.get("gpus") or []]}


def find_bench(out_dir, fp_hash: str) -> Path | None:
    from assay.store import list_runs

    for p, man in list_runs(out_dir, kind="bench"):
        if man.get("fingerprint_hash") == fp_hash and man.status == "finished":
            return p
    return None


def _bench(m: ModelEntry, plan: Budget, out_dir, seed: int, prog, say, gaps: list, stats: dict, units: int) -> None:
    from assay.bench.resources import machine_info
    from assay.bench.run import BenchOptions, run_bench
    from assay.bench.workloads import context_for, parse_workloads
    from assay.common import stable_hash

    prog.step(f"{m.label} · speed (seed workloads)")
    eng = m.choice
    try:
        ctx = eng.ctx if eng.ctx is not None or not eng.starts else context_for(parse_workloads("seed"), eng.model)
        if eng.starts:
            say(f"  starting {m.label} for the bench (ctx {ctx or 'default'}, one server)")
        with eng.provide(ctx=ctx) as eps:
            machine = machine_info()
            for workloads, levels in plan.benches:
                units_here = len(parse_workloads(workloads)) * len(levels) * (plan.bench_requests + plan.bench_warmup)
                fp = bench_fingerprint(eps[0], eng, plan, seed, machine, workloads, levels)
                h = stable_hash(fp)
                found = find_bench(out_dir, h)
                if found is not None:
                    m.bench.append(str(found))
                    stats["bench_reused"] += 1
                    say(f"  speed: reusing {found} (same fingerprint)")
                    prog.advance(units_here)
                    continue
                opts = BenchOptions(workloads=workloads, concurrency=levels, requests=plan.bench_requests,
                                    warmup=plan.bench_warmup, out=Path(out_dir), seed=seed)

                def log(msg: str) -> None:
                    if msg.startswith("running "):
                        prog.advance(plan.bench_requests + plan.bench_warmup)

                run = run_bench(eps, opts, log=log)
                _stamp_bench(run.run_dir, fp, h)
                m.bench.append(str(run.run_dir))
                stats["bench_requests"] += len(run.results)
                say(f"  speed: {run.run_dir}")
    except KeyboardInterrupt:
        raise
    except Exception as e:
        _gap(gaps, "speed", m.label, "bench", f"the bench did not run: {_why(e)}")
        say(f"  speed: failed — {_why(e)}")


def _stamp_bench(run_dir, fp: dict, h: str) -> None:
    """Record the review's bench fingerprint in the finished bench run's manifest (kept as extra keys), so the same
    measurement is found and reused instead of run again."""
    from assay import store

    run = store.open(run_dir)
    data = run.manifest.to_dict()
    data.update(fingerprint=fp, fingerprint_hash=h)
    run.store().write_manifest(store.BenchManifest(**data))


# ---- assembling the review from the stored runs --------------------------------------------------------------------------
def assemble(models: list[ModelEntry], plan: Budget, gaps: list, *, out_dir, alpha: float, seed: int,
             claims=None, params: dict | None = None, suite_gaps: dict | None = None) -> dict:
    """The review dict from the stored runs (read through ``assay.store.open``)."""
    from assay.bench.resources import machine_info
    from assay.store import iso_now

    machine = machine_info()
    loaded: dict[tuple[str, str], list] = {}
    for m in models:
        for dk, entry in m.runs.items():
            try:
                loaded[(m.label, dk)] = [_load(p) for p in entry]
            except Exception as e:
                _gap(gaps, "capabilities", m.label, dk, f"the run could not be read: {_why(e)}")
    review: dict = {
        "format_version": FORMAT_VERSION, "kind": "review", "created_at": iso_now(), "budget": plan.to_dict(),
        "alpha": alpha, "seed": seed, "sampling": {k: v for k, v in (params or {}).items() if v is not None},
        "machine": {k: machine.get(k) for k in ("cpu", "cores_logical", "cores_physical", "memory_total",
                                                "platform")} | {"gpus": [g.get("name") for g in machine["gpus"]]},
        "models": [identity(m, loaded, gaps) for m in models],
    }
    review["dimensions"] = capabilities(models, plan, loaded, gaps, suite_gaps or {})
    review["comparison"] = comparison(models, plan, loaded, gaps, alpha=alpha, seed=seed)
    review["claims"] = check_claims(models, loaded, claims, gaps)
    review["speed"] = speed(models, gaps)
    review["hardware"] = hardware(models, review["speed"], gaps)
    review["judge"] = {"given": False, "reason": "no --judge was given: naturalness, translation fluency and code "
                       "quality need an LLM judge (assay review ... --judge URL|embedded|PRESET); exact-match scorers "
                       "cannot rate them, so they are left out rather than guessed"}
    review["deploy"] = deploy(models, loaded)
    review["chart"] = quality_speed(models, review)
    return review


def _load(path: str):
    from assay.report.runs import load_eval_run

    return load_eval_run(path)


def _suite_entry(run, suite: str, sp: SuitePlan | None) -> dict:
    s = run.suites.get(suite) or {}
    out = {k: s.get(k) for k in ("metric", "binary", "value", "low", "high", "n", "errors", "truncated", "unparsed",
                                 "cached")}
    out.update(suite=suite, run_id=run.run_id, run_dir=str(run.path))
    if sp is not None:
        out["data"] = sp.public or ("shipped with assay" if not sp.data else sp.data)
    extra = {}
    for name, mt in (s.get("metrics") or {}).items():
        if (isinstance(mt, dict) and mt.get("category") is None and name != s.get("metric")
                and not name.startswith("turn")):  # per-turn metrics of a conversation stay in the run's report
            extra[name] = {k: mt.get(k) for k in ("value", "low", "high", "n")}
    out["metrics"] = extra
    return out


def capabilities(models: list[ModelEntry], plan: Budget, loaded: dict, gaps: list, suite_gaps: dict) -> list[dict]:
    out = []
    for d in plan.dimensions:
        row = {"key": d.key, "title": d.title, "documents": d.documents,
               "suites": [{"suite": sp.suite, "options": sp.options, "limit": sp.limit,
                           "data": sp.public or (sp.data or "shipped with assay")} for sp in d.suites],
               "suite_gaps": [g["reason"] for g in suite_gaps.get(d.key, [])], "cells": {}}
        if not d.suites:
            row["cells"] = {m.label: {"gap": "judge-rated: see section 6 (needs --judge)"} for m in models}
            out.append(row)
            continue
        by_suite = {sp.suite: sp for sp in d.suites}
        for m in models:
            runs = loaded.get((m.label, d.key))
            if not runs:
                why = [g["reason"] for g in gaps if g["model"] == m.label and g["section"] == "capabilities"
                       and g["what"].split("/")[0] == d.key]
                why = why or row["suite_gaps"] or ["not measured"]
                row["cells"][m.label] = {"gap": "; ".join(why)}
                continue
            entries = [_suite_entry(r, s, by_suite.get(s)) for r in runs for s in r.suites]
            row["cells"][m.label] = {"suites": entries}
        out.append(row)
    return out


# ---- section 1: identity and architecture ---------------------------------------------------------------------------------
def identity(m: ModelEntry, loaded: dict, gaps: list) -> dict:
    """What the model is: architecture from the GGUF metadata or the preset / HF config, and the exact weights
    digest and quantisation as the eval run recorded them (the model actually served)."""
    from assay.common import short_model

    eng = m.choice
    out: dict = {"label": m.label, "model": eng.model, "endpoints": list(eng.endpoints), "engine": eng.engine,
                 "runs": m.runs, "bench_runs": m.bench, "identity": {}}
    runs = [r for (lab, _), rs in loaded.items() if lab == m.label for r in rs]
    if runs:
        man = runs[0].manifest
        fp = man.fingerprint or {}
        out["served_model"] = fp.get("model")
        out["engine"] = fp.get("engine") or eng.engine
        out["engine_version"] = fp.get("engine_version")
        ident = (man.engine or {}).get("model_identity") or fp.get("model_identity") or {}
        out["identity"] = {k: v for k, v in ident.items() if k != "path"} if isinstance(ident, dict) else {}
    if not out["identity"] and eng.starts:  # nothing ran: the file's own identity, when it is a local GGUF
        try:
            from assay.engines.identity import gguf_identity
            from assay.models import resolve

            out["identity"] = {k: v for k, v in gguf_identity(resolve(eng.model).gguf_path()).items() if k != "path"}
        except Exception:
            pass
    why = "the server does not expose its architecture and no preset matches its model id"
    arch = None
    try:
        if eng.starts:
            arch = architecture(eng.model)
        elif out.get("served_model"):
            arch = architecture(short_model(out["served_model"]).lower())
    except Exception as e:
        why = _why(e)
    if arch is None:
        _gap(gaps, "identity", m.label, "architecture", why if not eng.starts else f"unknown for {eng.label}")
    out["architecture"] = arch
    return out


def architecture(model: str | None) -> dict | None:
    """type, parameters, layers, query / KV heads (GQA), head dim, native context — from the GGUF's metadata (the
    parameter count from its tensor shapes) or the preset / HF config.json."""
    from assay.models import PRESETS, resolve

    spec = PRESETS.get(model or "smollm2-135m")
    path = None
    if (model or "").lower().endswith(".gguf"):
        path = Path(model).expanduser()
    elif spec is not None and spec.gguf:
        try:
            path = spec.gguf_path()
        except Exception:
            path = None
    if path is not None:
        from assay.gguf_meta import arch_facts, read_metadata

        meta = read_metadata(path)
        a = arch_facts(meta)
        from assay.engines.identity import quantisation_name

        return {"type": f"decoder-only transformer ({a['architecture']})", "source": f"GGUF metadata of {path.name}",
                "name": a.get("name"), "parameters": _gguf_params(path), "layers": a["n_layers"],
                "query_heads": a["n_heads"], "kv_heads": a["n_kv_heads"], "head_dim": a["head_dim"],
                "hidden_size": a["hidden_size"], "context": a["context"],
                "quantisation": quantisation_name(a.get("file_type")), "file_bytes": path.stat().st_size,
                "gqa": _gqa(a["n_heads"], a["n_kv_heads"])}
    if spec is None:
        try:
            spec = resolve(model)
        except Exception:
            return None
        if spec.hf_id and Path(spec.hf_id).is_dir():
            from assay.bench.plan import load_model

            f = load_model(spec.hf_id)
            return {"type": "decoder-only transformer", "source": f.arch_source, "name": f.name,
                    "parameters": f.n_params, "layers": f.n_layers, "query_heads": None, "kv_heads": f.n_kv_heads,
                    "head_dim": f.head_dim, "hidden_size": None, "context": f.context, "quantisation": f.weight_dtype,
                    "gqa": None}
        return None
    return {"type": "decoder-only transformer", "source": f"preset {spec.name}", "name": spec.hf_id or spec.name,
            "parameters": spec.n_params, "layers": spec.n_layers, "query_heads": spec.n_heads,
            "kv_heads": spec.n_kv_heads, "head_dim": spec.head_dim, "hidden_size": spec.hidden_size,
            "context": spec.context, "quantisation": spec.weight_dtype, "gqa": _gqa(spec.n_heads, spec.n_kv_heads)}


def _gqa(q, kv) -> str | None:
    if not q or not kv:
        return None
    return f"{q} query / {kv} KV heads ({q // kv} queries per KV head)" if q != kv else f"{q} heads (no GQA)"


def _gguf_params(path: Path) -> int | None:
    try:
        import gguf
        import numpy as np

        r = gguf.GGUFReader(str(path))
        return int(sum(int(np.prod(t.shape)) for t in r.tensors))
    except Exception:
        return None


# ---- section 3: several models, every difference tested ---------------------------------------------------------------------
def comparison(models: list[ModelEntry], plan: Budget, loaded: dict, gaps: list, *, alpha: float,
               seed: int) -> dict:
    """Paired tests on shared samples for every pair of models on every suite, Holm-corrected over all of them."""
    from itertools import combinations

    from assay.report.compare import compare_runs, fingerprint_differences
    from assay.stats.paired import holm

    out: dict = {"correction": "holm", "alpha": alpha, "pairs": [], "warnings": []}
    if len(models) < 2:
        out["note"] = "one model: nothing to compare"
        return out
    cells = []
    for d in plan.dimensions:
        have = [(m, loaded[(m.label, d.key)]) for m in models if loaded.get((m.label, d.key))]
        if len(have) < 2:
            if d.suites:
                out["warnings"].append(f"{d.title}: fewer than two models measured, nothing compared")
            continue
        for sp in d.suites:  # one comparison per suite: the runs of that suite, one per model that has it
            group = [(m, r) for m, rs in have for r in rs if sp.suite in r.suites]
            if len(group) < 2:
                continue
            try:
                cmp = compare_runs([r for _, r in group], seed=seed, alpha=alpha, diff_limit=0)
            except Exception as e:
                _gap(gaps, "comparison", None, f"{d.key}/{sp.suite}", f"the paired comparison failed: {_why(e)}")
                continue
            names = [m.label for m, _ in group]
            for (ia, ra), (ib, rb) in combinations(list(enumerate(cmp.runs)), 2):
                # the model's identity differs by design; anything else (sampling, suite version, data) is named
                diffs = [(k, va, vb) for k, va, vb in fingerprint_differences(ra, rb, [sp.suite])
                         if not k.startswith(("model_identity", "engine"))]
                if diffs:
                    w = (f"{d.title} / {sp.suite}: {names[ia]} vs {names[ib]} differ in more than the model: "
                         + "; ".join(f"{k}: {va!r} vs {vb!r}" for k, va, vb in diffs[:4]))
                    if w not in out["warnings"]:
                        out["warnings"].append(w)
            for p in cmp.pairs:
                cells.append({"dimension": d.key, "suite": p.suite, "a": names[p.ia], "b": names[p.ib],
                              **{k2: v for k2, v in p.result.to_dict().items() if k2 != "notes"},
                              "notes": p.result.notes})
    ps = [c["p"] for c in cells]
    adj = holm([p if p == p else 1.0 for p in ps])  # nan (no shared samples) counts as p = 1
    for c, pa in zip(cells, adj):
        c["p_holm"] = pa
        c["real"] = bool(pa < alpha and c["n"] and c["diff"] == c["diff"] and c["diff"] != 0)
        c["verdict"] = (f"{c['a'] if c['diff'] > 0 else c['b']} better (real)" if c["real"]
                        else f"not real (Holm p = {_fmt_p(pa)})")
    out["pairs"] = cells
    out["family_size"] = len(cells)
    return out


def _fmt_p(p: float) -> str:
    from assay.stats import format_p

    return format_p(p)


def check_claims(models: list[ModelEntry], loaded: dict, claims, gaps: list) -> dict:
    """Published claims checked against each model's measured intervals: the file given, else
    ``report/claims/<model>.yaml`` for each model that has one."""
    from assay.report.claims import check_claim, load_claims

    folder = Path(__file__).resolve().parents[1] / "report" / "claims"
    out: dict = {"files": [], "checks": []}
    for m in models:
        path = Path(claims) if claims else None
        if path is None:
            names = {m.label.lower(), (m.choice.model or "smollm2-135m").lower()}
            for n in list(names):
                names.add(Path(n).stem)
            for n in names:
                if (folder / f"{n}.yaml").is_file():
                    path = folder / f"{n}.yaml"
                    break
        if path is None:
            continue
        try:
            meta, cl = load_claims(path)
        except Exception as e:
            _gap(gaps, "claims", m.label, str(path), _why(e))
            continue
        out["files"].append({"model": m.label, "file": str(path), "source": meta.get("source")})
        card = {"suites": {}}
        for (lab, _), rs in loaded.items():
            if lab == m.label:
                for r in rs:
                    card["suites"].update(r.suites)
        for c in cl:
            out["checks"].append({"model": m.label, **check_claim(c, card, m.label).to_dict()})
    if not out["files"]:
        out["note"] = ("no claims file for " + ", ".join(m.label for m in models)
                       + f" (claims files: {folder}/<model>.yaml, or --claims FILE)")
    return out


# ---- section 4: speed ----------------------------------------------------------------------------------------------------------


def speed(models: list[ModelEntry], gaps: list) -> dict:
    """Per model: TTFT, TPOT, end-to-end p50 / p95, throughput, memory per seed workload × concurrency, from the
    bench run (summary.json; p95 from the stored requests), and the machine it ran on (its manifest)."""
    from assay import store
    from assay.bench.metrics import percentile

    out = {}
    for m in models:
        if not m.bench:
            out[m.label] = {"gap": next((g["reason"] for g in gaps if g["model"] == m.label and g["section"] == "speed"),
                                        "no bench run")}
            continue
        rows, notes, runs, peak = [], [], [], {"peak_rss": None, "peak_gpu": None}
        for path in m.bench:
            run = store.open(path)
            runs.append(run)
            s = run.summary or {}
            reqs = list(run.records(raw=True))
            for g in s.get("groups", []):
                e2e = [r["e2e_s"] for r in reqs if r.get("ok") and r.get("workload") == g["workload"]
                       and r.get("concurrency") == g["concurrency"] and r.get("e2e_s") is not None]
                rows.append({"workload": g["workload"], "label": _workload_label(g["workload"]), "run_id": run.run_id,
                             "input_tokens": g.get("input_tokens_mean"), "output_tokens": g.get("output_tokens_mean"),
                             "input_target": g.get("input_tokens_target"),
                             "concurrency": g["concurrency"], "n": g.get("n"), "completed": g.get("completed"),
                             "errors": g.get("errors"),
                             "ttft_p50_s": (g.get("ttft_s") or {}).get("median"),
                             "tpot_p50_s": (g.get("tpot_s") or {}).get("median"),
                             "e2e_p50_s": percentile(e2e, 50) if e2e else None,
                             "e2e_p95_s": percentile(e2e, 95) if e2e else None,
                             "output_tok_s": g.get("output_throughput"), "request_per_s": g.get("request_throughput"),
                             "decode_tok_s": g.get("decode_tok_s"),
                             "peak_rss": (g.get("memory") or {}).get("peak_rss"),
                             "peak_gpu": (g.get("memory") or {}).get("peak_gpu")})
            mem = s.get("memory") or {}
            for k in ("peak_rss", "peak_gpu"):
                if mem.get(k) and (peak[k] is None or mem[k] > peak[k]):
                    peak[k] = mem[k]
            for k in ("rss_source", "gpu_source"):
                peak.setdefault(k, mem.get(k))
            notes += [n for n in s.get("notes") or [] if n not in notes]
        order = ["50→100", "8K→300", "120→200"]
        rows.sort(key=lambda r: (order.index(r["workload"]) if r["workload"] in order else 9, r["concurrency"] or 0))
        run = runs[0]
        mach = run.manifest.machine or {}
        ep = (run.manifest.endpoints or [{}])[0]
        out[m.label] = {"run_id": ", ".join(r.run_id for r in runs), "run_dirs": [str(r.dir) for r in runs],
                        "rows": rows, "memory": peak, "notes": notes,
                        "machine": {"cpu": mach.get("cpu"), "cores_logical": mach.get("cores_logical"),
                                    "memory_total": mach.get("memory_total"),
                                    "gpus": [x.get("name") for x in mach.get("gpus") or []]},
                        "engine": run.manifest.engine, "engine_version": run.manifest.engine_version,
                        "context": ep.get("context"), "local": ep.get("local"),
                        "fingerprint_hash": [r.manifest.get("fingerprint_hash") for r in runs]}
    return out


def _workload_label(name: str) -> str:
    """The seed workloads by the documents' names: "50→100" -> "daily Q&A (50 → 100)"."""
    inp, sep, out = str(name).partition("→")
    label = {"50": "daily Q&A", "8K": "long summary", "8192": "long summary", "120": "code"}.get(inp.strip())
    return f"{label} ({inp.strip()} → {out.strip()})" if sep and label else str(name)


# ---- section 5: hardware fit ----------------------------------------------------------------------------------------------------
TARGETS = (("GPU 12 GB", 12), ("GPU 16 GB", 16), ("GPU 24 GB", 24), ("GPU 80 GB", 80))
LONG_CONTEXT = 8192  # the documents' long workload


def hardware(models: list[ModelEntry], speed_: dict, gaps: list) -> dict:
    """``assay plan``'s arithmetic for the model's real architecture on 12 / 16 / 24 / 80 GB GPUs and a CPU server
    (this machine's RAM), and the plan checked against the engine memory the bench measured."""
    import psutil

    from assay.bench import plan as P
    from assay.bench.gpus import GiB

    out = {}
    ram = psutil.virtual_memory().total
    for m in models:
        model = m.choice.model
        try:
            if m.choice.endpoints:
                raise AssayError("the model behind a URL has no local weights or config for the planner (run "
                                 "assay plan --model CONFIG.json by hand)")
            facts = P.load_model(model or "smollm2-135m")
        except Exception as e:
            out[m.label] = {"gap": _why(e)}
            _gap(gaps, "hardware", m.label, "plan", _why(e))
            continue
        kv = "f16" if (facts.weight_dtype == "gguf") else "bf16"
        ctx = min(LONG_CONTEXT, facts.context) if facts.context else LONG_CONTEXT
        rows = []
        for name, gb in TARGETS:
            r = P.fit(facts, gb * GiB, kv_dtype=kv, context=ctx)
            rows.append(_fit_row(name, "gpu", r, facts))
        r = P.fit(facts, ram, kv_dtype=kv, context=ctx)
        rows.append(_fit_row(f"CPU server ({ram / GiB:.0f} GiB RAM, this machine)", "cpu", r, facts))
        entry = {"model": facts.name, "weights_bytes": facts.weight_bytes, "weight_source": facts.weight_source,
                 "kv_dtype": kv, "kv_bytes_per_token": facts.kv_bytes_per_token(kv), "arch_source": facts.arch_source,
                 "context": ctx, "window": facts.context, "utilization": P.DEFAULT_UTILIZATION,
                 "headroom": P.DEFAULT_HEADROOM, "rows": rows}
        sp = speed_.get(m.label) or {}
        peak = (sp.get("memory") or {}).get("peak_gpu") or (sp.get("memory") or {}).get("peak_rss")
        served = sp.get("context")
        if peak and served and facts.weight_bytes:
            planned = facts.weight_bytes + facts.kv_bytes_per_token(kv) * served
            entry["measured"] = {"peak_bytes": peak, "served_context": served, "planned_bytes": planned,
                                 "planned_with_headroom": planned + P.DEFAULT_HEADROOM,
                                 "overhead_bytes": peak - planned,
                                 "covered": bool(planned + P.DEFAULT_HEADROOM >= peak),
                                 "source": "GPU memory (NVML)" if (sp.get("memory") or {}).get("peak_gpu")
                                 else "engine process tree RSS (psutil)"}
        else:
            entry["measured"] = None
            entry["measured_note"] = ("no engine memory measured (remote engine or no bench run)" if not peak
                                      else "served context unknown")
        out[m.label] = entry
    return out


def _fit_row(name: str, kind: str, r: dict, facts) -> dict:
    return {"target": name, "kind": kind, "memory": r["memory"], "kv_memory": r["kv_memory"],
            "max_context": r.get("max_context", 0), "sequences": r.get("sequences", 0), "context": r.get("context"),
            "fits": bool(r.get("fits")), "verdict": r.get("short") or r.get("verdict")}


# ---- section 6: judges ----------------------------------------------------------------------------------------------------------
def _judge(models: list[ModelEntry], plan: Budget, spec: str, gaps: list, say) -> dict:
    from assay.judge import provide_judge
    from assay.judge.session import judge_runs

    out: dict = {"given": True, "judge": spec, "rubrics": {}, "pairwise": []}
    try:
        with provide_judge(spec) as jeps:
            out["judge_model"] = jeps[0].model
            for m in models:
                out["rubrics"][m.label] = {}
                for d in plan.dimensions:
                    if not d.judge_rubric or not m.runs.get(d.key):
                        continue
                    try:
                        say(f"  judge: {m.label} · {d.key} · {d.judge_rubric}")
                        res = judge_runs(Path(m.runs[d.key][0]), None, jeps, rubrics=[d.judge_rubric],
                                         limit=plan.judge_limit)
                        for name, v in res["rubrics"].items():
                            summ = v["summary"].get("all") or {}
                            out["rubrics"][m.label][d.key] = {
                                "rubric": name, "template": v["template"], "new_calls": v["new_calls"],
                                **{k: summ.get(k) for k in ("value", "low", "high", "n", "unparsed")}}
                        out.setdefault("warnings", []).extend(res.get("warnings") or [])
                    except Exception as e:
                        _gap(gaps, "judge", m.label, d.key, f"the judge pass failed: {_why(e)}")
            from itertools import combinations

            for a, b in combinations(models, 2):
                ra, rb = a.runs.get("instruction"), b.runs.get("instruction")
                if not (ra and rb):
                    continue
                try:
                    say(f"  judge: {a.label} vs {b.label} (pairwise, both orders)")
                    res = judge_runs(Path(ra[0]), Path(rb[0]), jeps, template="pairwise",
                                     limit=plan.judge_limit)
                    pw = res.get("pairwise") or {}
                    out["pairwise"].append({"a": a.label, "b": b.label, "new_calls": res.get("new_calls"),
                                            **{k: pw.get(k) for k in ("n", "wins", "ties", "losses", "unparsed",
                                                                      "diff", "low", "high", "p", "verdict",
                                                                      "position_consistency", "win_rate")}})
                except Exception as e:
                    _gap(gaps, "judge", f"{a.label} vs {b.label}", "pairwise", f"the pairwise pass failed: {_why(e)}")
    except KeyboardInterrupt:
        raise
    except Exception as e:
        _gap(gaps, "judge", None, "judge", f"the judge did not start: {_why(e)}")
        out["reason"] = f"the judge did not start: {_why(e)}"
    return out


# ---- section 7: deployment -------------------------------------------------------------------------------------------------------
def deploy(models: list[ModelEntry], loaded: dict) -> dict:
    """The exact serve command for what was measured: model, engine and the flags it was started with."""
    import shlex

    out = {}
    for m in models:
        c = m.choice
        runs = [r for (lab, _), rs in loaded.items() if lab == m.label for r in rs]
        man = runs[0].manifest if runs else None
        facts = dict((man.engine or {}) if man else {})
        if c.endpoints:
            out[m.label] = {"command": None, "endpoints": list(c.endpoints), "engine": facts.get("name") or c.engine,
                            "engine_version": facts.get("version"),
                            "note": "measured on a running server assay did not start: deploy it as it was started"}
            continue
        cmd = ["assay", "serve"]
        if c.model:
            cmd += ["--model", c.model]
        if c.engine:
            cmd += ["--engine", c.engine]
        if c.ctx:
            cmd += ["--ctx", str(c.ctx)]
        if c.threads:
            cmd += ["--threads", str(c.threads)]
        if c.llama_amx:
            cmd += ["--llama-amx", c.llama_amx]
        if c.extra_args:
            cmd += ["--", *c.extra_args]
        fp = man.fingerprint if man else {}
        out[m.label] = {"command": shlex.join(cmd), "engine": (fp or {}).get("engine") or c.engine,
                        "engine_version": (fp or {}).get("engine_version"),
                        "facts": {k: v for k, v in facts.items() if k not in ("model_identity",)},
                        "sampling": (fp or {}).get("sampling") or (fp or {}).get("params"),
                        "bench_context": None}
    return out


def quality_speed(models: list[ModelEntry], review: dict) -> list[dict]:
    """One point per model: mean headline score over the measured suites (%) against single-stream decode tok/s
    (the bench's daily Q&A workload at concurrency 1)."""
    pts = []
    for m in models:
        vals = []
        for d in review["dimensions"]:
            for e in (d["cells"].get(m.label) or {}).get("suites", []):
                if e.get("value") is not None:
                    vals.append(e["value"])
        rows = (review["speed"].get(m.label) or {}).get("rows") or []
        dec = [r["decode_tok_s"] for r in rows if r.get("concurrency") == 1 and r.get("decode_tok_s")]
        pts.append({"model": m.label, "score": sum(vals) / len(vals) if vals else None,
                    "decode_tok_s": dec[0] if dec else None, "suites": len(vals)})
    return pts
