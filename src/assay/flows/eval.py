"""``assay eval`` as one domain function: which suites with which options, the engines (started or connected), the
run, then the optional passes over what was stored (the judge, the recheck, a tracker), and the headline. The command
line (cli/eval.py) parses, calls ``evaluate`` or ``rescore_run``, and renders.

Example:
    from assay.engines.choice import EngineChoice
    out = evaluate(EngineChoice(), build_suites(["math"], {}), params=SamplingParams(max_tokens=384), limit=20)
    print(out.headline)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from assay.errors import AssayError

# The quick default set: these suites, where the registry has them, each with DEFAULT_LIMIT samples.
DEFAULT_SUITES = ("math", "ifeval", "json", "logic", "translate")
DEFAULT_LIMIT = 20
DEFAULT_MAX_TOKENS = 384


def _parse_value(v: str):
    import json

    try:
        return json.loads(v)
    except ValueError:
        return v


def suite_options(suites: list[str], data: str | None, opts: list[str] | None) -> dict[str, dict]:
    """--data PATH and --suite-opt [suite.]key=value -> {suite: its options} (--data is the `data` option)."""
    out: dict[str, dict] = {s: {} for s in suites}
    if data:
        if len(suites) != 1:
            raise AssayError("--data belongs to one suite: pass exactly one --suite with it")
        out[suites[0]]["data"] = data
    for raw in opts or []:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise AssayError(f"--suite-opt {raw!r}: expected key=value or suite.key=value")
        target, dot, name = key.partition(".")
        if dot and target in out:
            out[target][name] = _parse_value(value)
        elif dot:
            raise AssayError(f"--suite-opt {raw!r}: suite {target!r} is not in --suite {','.join(suites)}")
        else:
            for s in suites:
                out[s][key] = _parse_value(value)
    return {k: v for k, v in out.items() if v}


def build_suites(names: list[str], options: dict[str, dict]) -> list:
    from assay.evals.suites import get_suite

    out = []
    for n in names:
        try:
            out.append(get_suite(n, **options.get(n, {})))
        except TypeError as e:
            raise AssayError(f"suite {n!r} does not take those options ({e}): check --data / --suite-opt") from None
    return out


def default_suites() -> list[str]:
    from assay.evals.suites import available

    have = set(available())
    names = [s for s in DEFAULT_SUITES if s in have]
    if not names:
        raise AssayError(f"none of the default suites ({', '.join(DEFAULT_SUITES)}) is installed: pass --suite "
                         f"(available: {', '.join(sorted(have)) or 'none'})")
    return names


def rescore_run(run_dir: Path) -> dict:
    """Score a stored run again with the current scorers (and re-parse stored judge replies): no model call.
    Returns {"summary": scorecard, "changed": n, "judge_changed": n or absent}."""
    from assay.evals.runner import rescore
    from assay.judge.run import rescore_judgements
    from assay.store import JUDGEMENTS

    res = rescore(run_dir)
    out = {"summary": res["summary"], "changed": res["changed"]}
    if (Path(run_dir) / JUDGEMENTS).exists():  # stored judge replies are re-parsed too, no judge call
        out["judge_changed"] = rescore_judgements(run_dir)
    return out


@dataclass
class EvalOutcome:
    result: Any  # runner.EvalResult: run_dir, run_id, manifest, summary
    judged: dict | None = None
    rechecked: dict | None = None
    tracked: str | None = None  # the tracker's run, when logged
    headline: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.result.manifest.status == "finished"


def evaluate(eng, suites: list, *, params, out_dir: str | Path = "runs", seed: int = 0, limit: int | None = None,
             concurrency: int = 8, fresh: bool = False, suite_opts: dict | None = None,
             system_prompt: str | None = None, replicas: int | None = None, probe_identity: bool = False,
             command: list[str] | None = None, observer=None, judge: str | None = None,
             judge_rubrics: list[str] | None = None, recheck: int | None = None, log_to: str | None = None,
             cache: bool = True, say: Callable[[str], None] = lambda m: None, judge_progress=None,
             judge_show=None) -> EvalOutcome:
    """Run ``suites`` on the engines ``eng`` (an ``EngineChoice``) — resumable by fingerprint — then the passes that
    read the stored records: ``judge`` (a judge spec: rubric scores of the answers), ``recheck`` (K answers asked
    again at concurrency 1 and at the run's), ``log_to`` ("mlflow"). ``say``: one-line progress messages."""
    from assay import engines
    from assay.client import describe_sampling, effective_sampling
    from assay.engines.identity import describe
    from assay.evals import scorecard
    from assay.evals.base import as_suite, conversational
    from assay.evals.runner import run_eval

    if recheck is not None and recheck < 1:
        raise AssayError(f"--recheck {recheck}: give how many answered samples to ask again, 1 or more "
                         "(e.g. --recheck 20)")
    if log_to is not None and log_to not in ("mlflow",):
        raise AssayError(f"--log-to {log_to!r}: the tracker assay knows is mlflow")
    if recheck is not None and all(conversational(as_suite(s)) for s in suites):
        raise AssayError(f"--recheck: {', '.join(s.name for s in suites)} hold a conversation per sample (several "
                         "calls, each depending on the last reply): only single-call suites can be rechecked")
    if eng.starts:
        if replicas is None:
            replicas = engines.auto_replicas(eng.model, engine=eng.engine, threads=eng.threads,
                                             concurrency=concurrency, extra_args=list(eng.extra_args) or None)
        say(f"starting {eng.label}" + (f" ({replicas} replicas, threads split; --replicas 1 for one server)"
                                       if replicas > 1 else "") + " ...")
    # a suite that needs tool calling (tools in native mode) gets an engine started tool-ready
    tools = any("tools" in (getattr(s, "requires", ()) or ()) for s in suites)
    out = EvalOutcome(result=None)
    with eng.provide(tools=tools, replicas=replicas or 1, probe_identity=probe_identity) as eps:
        say(describe_sampling(effective_sampling(params, eps[0]), eps[0]))
        say(describe(eps[0].identity))
        from assay.answers import AnswerCache

        answers = AnswerCache.default() if cache else None
        try:
            out.result = asyncio.run(run_eval(suites, eps, out_dir=out_dir, params=params, seed=seed, limit=limit,
                                              concurrency=concurrency, command=command, fresh=fresh,
                                              suite_options=suite_opts or {}, observer=observer,
                                              system_prompt=system_prompt, cache=answers))
        finally:
            if observer is not None and hasattr(observer, "stop"):
                observer.stop()
            if answers is not None:
                answers.close()
        result = out.result
        if judge:  # a pass over the stored records, after the eval: the runner's pipeline is untouched
            from assay.judge import provide_judge
            from assay.judge.session import judge_runs

            kw = {k: v for k, v in (("progress", judge_progress), ("show", judge_show)) if v is not None}
            with provide_judge(judge, api_key=eng.api_key, reuse=eps) as jeps:
                out.judged = judge_runs(result.run_dir, None, jeps, concurrency=min(concurrency, 4),
                                        max_tokens=256, rubrics=judge_rubrics, **kw)
        if recheck is not None and out.finished:
            from assay.evals.recheck import recheck_async, run_concurrency

            say(f"recheck: asking up to {recheck} stored answers again, at c=1 and at "
                f"c={run_concurrency(result.manifest)} ...")
            out.rechecked = asyncio.run(recheck_async(result.run_dir, eps, k=recheck,
                                                      suites={s.name: s for s in suites}))
    if log_to == "mlflow":
        from assay.report.tracking import log_to_mlflow

        out.tracked = str(log_to_mlflow(result.run_dir, result.manifest, result.summary))
    head = scorecard.headline(result.run_id, result.run_dir, result.summary)
    head.update(status=result.manifest.status, samples_per_s=result.manifest.samples_per_s,
                harness_overhead=result.manifest.harness_overhead)
    if out.judged is not None:
        head["judge"] = {"model": out.judged["judge_model"], "warnings": out.judged["warnings"],
                         **{name: {k: v["summary"]["all"].get(k) for k in ("value", "low", "high", "n", "unparsed")}
                            for name, v in out.judged["rubrics"].items()}}
    if out.rechecked is not None:
        from assay.evals.recheck import headline as recheck_headline

        head["recheck"] = recheck_headline(out.rechecked)
    out.headline = head
    return out
