"""``assay eval``: run eval suites against a model, crash-safe and resumable, and print a scorecard.

Example:
    assay eval                                            # quick default set on the embedded SmolLM2-135M
    assay eval --suite math,json --limit 50 --concurrency 8
    assay eval --endpoint http://127.0.0.1:8000 --suite gsm8k --data ../shared/benchmarks/gsm8k_test.jsonl
    assay eval --rescore runs/20250101-120000-ab12cd34    # score stored answers again, no model call
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from assay.cli.common import (ENGINE_ARGS, ApiKeyOpt, CtxOpt, EndpointOpt, EngineOpt, LlamaAmxOpt, MinPOpt, ModelOpt,
                              RepeatPenaltyOpt, ThreadsOpt, TopKOpt, engine_args, one_line_errors)

# The quick default set: these suites, where the registry has them, each with DEFAULT_LIMIT samples.
DEFAULT_SUITES = ("math", "ifeval", "json", "logic", "translate")
DEFAULT_LIMIT = 20
DEFAULT_MAX_TOKENS = 384


def _parse_value(v: str):
    try:
        return json.loads(v)
    except ValueError:
        return v


def _json_object(flag: str, text: str | None) -> dict | None:
    """A JSON object given on the command line, or one line naming the flag and the problem."""
    from assay.errors import AssayError

    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise AssayError(f"{flag} {text!r} is not JSON ({e}): pass an object, e.g. {flag} '{{\"key\": 1}}'") from None
    if not isinstance(value, dict):
        raise AssayError(f"{flag} must be a JSON object ({{...}}), not {type(value).__name__}")
    return value


def suite_options(suites: list[str], data: str | None, opts: list[str] | None) -> dict[str, dict]:
    """--data PATH and --suite-opt [suite.]key=value -> {suite: its options} (--data is the `data` option)."""
    from assay.errors import AssayError

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
    from assay.errors import AssayError
    from assay.evals.suites import get_suite

    out = []
    for n in names:
        try:
            out.append(get_suite(n, **options.get(n, {})))
        except TypeError as e:
            raise AssayError(f"suite {n!r} does not take those options ({e}): check --data / --suite-opt") from None
    return out


def default_suites() -> list[str]:
    from assay.errors import AssayError
    from assay.evals.suites import available

    have = set(available())
    names = [s for s in DEFAULT_SUITES if s in have]
    if not names:
        raise AssayError(f"none of the default suites ({', '.join(DEFAULT_SUITES)}) is installed: pass --suite "
                         f"(available: {', '.join(sorted(have)) or 'none'})")
    return names


class RichObserver:
    """Per-suite rich progress bars: done/total, running score, errors, ETA."""

    def __init__(self, console):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("score {task.fields[score]}"), TextColumn("err {task.fields[errors]}"),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                                 transient=False)
        self.tasks: dict[str, int] = {}
        self.sums: dict[str, list] = {}

    def begin(self, run_dir, totals, done, resumed, scores) -> None:
        self.progress.console.print(f"{'resuming' if resumed else 'new run'}: {run_dir}")
        for name, total in totals.items():
            s, n = scores.get(name, (0.0, 0))
            self.sums[name] = [s, n, done[name].get("error", 0)]
            self.tasks[name] = self.progress.add_task(name, total=total, completed=sum(done[name].values()),
                                                      score=self._fmt(name), errors=self.sums[name][2])
        self.progress.start()

    def _fmt(self, name: str) -> str:
        s, n, _ = self.sums[name]
        return f"{s / n:.3f}" if n else "  —  "

    def record(self, rec) -> None:
        acc = self.sums[rec.suite]
        if rec.status == "error":
            acc[2] += 1
        elif rec.value is not None:
            acc[0] += rec.value
            acc[1] += 1
        self.progress.update(self.tasks[rec.suite], advance=1, score=self._fmt(rec.suite), errors=acc[2])

    def stop(self) -> None:
        self.progress.stop()


def _footer(manifest) -> str:
    sess = (manifest.sessions or [{}])[-1]
    parts = [f"{sess.get('samples', 0)} samples in {sess.get('wall_s', 0):.1f} s"]
    if sess.get("samples_per_s") is not None:
        parts.append(f"{sess['samples_per_s']:.2f} samples/s")
    if sess.get("harness_overhead") is not None:
        parts.append(f"harness overhead {sess['harness_overhead']:.1%}")
    parts.append(f"concurrency {manifest.concurrency}")
    fp = manifest.fingerprint or {}
    parts.append(f"{fp.get('model')} on {fp.get('engine')}")
    return " · ".join(parts)


def _command_line(ctx: typer.Context) -> list[str]:
    """The command as given, rebuilt from the parsed options (sys.argv is not the command under a test runner).
    The API key is never stored."""
    out = ["assay", ctx.info_name or "eval"]
    for p in ctx.command.params:
        v = ctx.params.get(p.name)
        if v is None or v == p.default or p.name == "api_key" or not p.opts:
            continue
        flag = max(p.opts, key=len)
        if isinstance(v, bool):
            out.append(flag if v else (p.secondary_opts or [flag])[0])
            continue
        for item in (v if isinstance(v, (list, tuple)) else [v]):
            out += [flag, str(item)]
    return out


def register(app: typer.Typer) -> None:
    @app.command("eval", context_settings=ENGINE_ARGS)
    @one_line_errors
    def eval_cmd(
        ctx: typer.Context,
        model: ModelOpt = None,
        endpoint: EndpointOpt = None,
        engine: EngineOpt = None,
        api_key: ApiKeyOpt = None,
        context: CtxOpt = None,
        threads: ThreadsOpt = None, llama_amx: LlamaAmxOpt = None,
        suite: Annotated[Optional[list[str]], typer.Option(
            "--suite", "-s", help="Suites, comma-separated or repeated. Default: the quick set "
                                  f"({', '.join(DEFAULT_SUITES)} where installed), {DEFAULT_LIMIT} samples each.")] = None,
        limit: Annotated[Optional[int], typer.Option(help="At most N samples per suite.", min=1)] = None,
        seed: Annotated[int, typer.Option(help="Seed for sample selection / generated items and sampling.")] = 0,
        concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Requests in flight.", min=1)] = 8,
        temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.0,
        top_p: Annotated[float, typer.Option(help="Nucleus sampling.")] = 1.0,
        top_k: TopKOpt = None, min_p: MinPOpt = None, repeat_penalty: RepeatPenaltyOpt = None,
        max_tokens: Annotated[int, typer.Option(help="Max new tokens per answer.", min=1)] = DEFAULT_MAX_TOKENS,
        out: Annotated[str, typer.Option(help="Folder holding run folders.")] = "runs",
        rescore: Annotated[Optional[str], typer.Option(
            help="Re-score a stored run (folder path, run id under --out, or 'latest') with the current scorers; "
                 "no model call.")] = None,
        data: Annotated[Optional[str], typer.Option(
            help="Dataset file/folder for a suite that loads a standard benchmark (one --suite).")] = None,
        suite_opt: Annotated[Optional[list[str]], typer.Option(
            "--suite-opt", help="Suite option key=value (or suite.key=value), repeatable; a suite's Options.")] = None,
        fresh: Annotated[bool, typer.Option(help="Start a new run even if one with this fingerprint exists.")] = False,
        detail: Annotated[bool, typer.Option(help="Also print per-category corpus metrics (e.g. BLEU per "
                                                  "direction) in the scorecard.")] = False,
        system_prompt: Annotated[Optional[str], typer.Option(
            help="A system message before every prompt (a suite's own system message wins); part of the "
                 "fingerprint.")] = None,
        chat_template_kwargs: Annotated[Optional[str], typer.Option(
            help='JSON object for the server\'s chat template, e.g. \'{"enable_thinking": false}\' (vLLM); part of '
                 "the fingerprint.")] = None,
        extra_body: Annotated[Optional[str], typer.Option(
            help="JSON object added to every request body (e.g. '{\"top_k\": 20}'); part of the fingerprint.")] = None,
        replicas: Annotated[Optional[int], typer.Option(
            help="Start N engine replicas with the threads split between them; requests go to the least busy. "
                 "Default: 2 llama.cpp servers on 2+ cores with -c 2 or more and room for two copies of the weights "
                 "(llama-cpp-python serves one request at a time: 2 × 1 thread ran the main job 2.0× faster on 2 "
                 "cores, same scores; docs/engines.md), else 1. --replicas 1 for one server.",
            min=1, show_default=False)] = None,
        log_to: Annotated[Optional[str], typer.Option(
            "--log-to", help="Also log the finished run to a tracker: mlflow (MLFLOW_TRACKING_URI; default ./mlruns).")] = None,
        probe_identity: Annotated[bool, typer.Option(
            "--probe-identity", help="For --endpoint URLs: also fingerprint the model by its greedy answer to a fixed "
                                     "prompt (4 tokens, with top-5 alternatives), so weights swapped behind an "
                                     "unchanged name and server start a new run instead of resuming.")] = False,
        judge: Annotated[Optional[str], typer.Option(
            "--judge", help="After the run, rate the answers with an LLM judge: an OpenAI-compatible URL, 'self' (the "
                            "model being evaluated: a smoke test), 'embedded', or a preset. See assay judge.")] = None,
        judge_rubric: Annotated[Optional[str], typer.Option(
            "--judge-rubric", help="Rubric template(s) for --judge, comma-separated (default: per suite).")] = None,
        recheck: Annotated[Optional[int], typer.Option(
            "--recheck", help="After the run has finished, ask K of its answers (chosen with --seed) again, at "
                              "concurrency 1 and at the run's: identical share and flipped verdicts, stored in "
                              "recheck.jsonl / recheck.json. See docs/eval.md.", show_default=False)] = None,
    ):
        """Evaluate a model on suites; resumable (re-run the same command), with a scorecard and 95 % intervals.

        The last stdout line is one JSON object with the headline numbers.
        """
        from rich.console import Console

        from assay.errors import AssayError
        from assay.evals import scorecard

        console = Console(stderr=True)
        if recheck is not None and recheck < 1:
            raise AssayError(f"--recheck {recheck}: give how many answered samples to ask again, 1 or more "
                             "(e.g. --recheck 20)")
        if recheck is not None and rescore:
            raise AssayError("--recheck asks the model again and --rescore calls no model: use one or the other")
        if rescore:
            from assay.evals.runner import rescore as do_rescore
            from assay.store import resolve_run

            run_dir = resolve_run(rescore, out)
            res = do_rescore(run_dir)
            card = res["summary"]
            scorecard.render(card, title=f"rescored {run_dir.name}", console=console, detail=detail,
                             footer=f"{res['changed']} records changed score or status")
            extra = {}
            if (run_dir / "judgements.jsonl").exists():  # stored judge replies are re-parsed too, no judge call
                from assay.judge.run import rescore_judgements

                extra["judge_changed"] = rescore_judgements(run_dir)
                console.print(f"judge replies re-parsed: {extra['judge_changed']} changed")
            print(f"run: {run_dir}")
            print(json.dumps({**scorecard.headline(card["run_id"], run_dir, card), "rescored": True,
                              "changed": res["changed"], **extra}))
            return

        import asyncio

        from assay import engines
        from assay.client import SamplingParams
        from assay.evals.runner import run_eval

        names = [p.strip() for s in (suite or []) for p in s.split(",") if p.strip()]
        if not names:
            names = default_suites()
            if limit is None:
                limit = DEFAULT_LIMIT
        if log_to is not None and log_to not in ("mlflow",):
            raise typer.BadParameter(f"--log-to {log_to!r}: the tracker assay knows is mlflow")
        opts = suite_options(names, data, suite_opt)
        suites = build_suites(names, opts)
        if recheck is not None:
            from assay.evals.base import as_suite, conversational

            if all(conversational(as_suite(s)) for s in suites):
                raise AssayError(f"--recheck: {', '.join(names)} hold a conversation per sample (several calls, each "
                                 "depending on the last reply): only single-call suites can be rechecked")
        params = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, top_k=top_k,
                                min_p=min_p, repeat_penalty=repeat_penalty,
                                chat_template_kwargs=_json_object("--chat-template-kwargs", chat_template_kwargs),
                                extra_body=_json_object("--extra-body", extra_body))
        if not endpoint:
            if replicas is None:
                replicas = engines.auto_replicas(model, engine=engine, threads=threads, concurrency=concurrency,
                                                 extra_args=engine_args(ctx, endpoint))
            console.print(f"starting {model or 'smollm2-135m'}"
                          + (f" ({replicas} replicas, threads split; --replicas 1 for one server)" if replicas > 1
                             else "") + " ...")
        # a suite that needs tool calling (tools in native mode) gets an engine started tool-ready
        tools = any("tools" in (getattr(s, "requires", ()) or ()) for s in suites)
        with engines.provide(model=model, endpoints=endpoint, engine=engine, api_key=api_key, ctx=context,
                             threads=threads, llama_amx=llama_amx, extra_args=engine_args(ctx, endpoint),
                             tools=tools, replicas=replicas or 1, probe_identity=probe_identity) as eps:
            from assay.client import describe_sampling, effective_sampling

            from assay.engines.identity import describe

            console.print(describe_sampling(effective_sampling(params, eps[0]), eps[0]), soft_wrap=True, highlight=False)
            console.print(describe(eps[0].identity), soft_wrap=True, highlight=False)
            observer = RichObserver(console)
            try:
                result = asyncio.run(run_eval(suites, eps, out_dir=out, params=params, seed=seed, limit=limit,
                                              concurrency=concurrency, command=_command_line(ctx), fresh=fresh,
                                              suite_options=opts, observer=observer,
                                              system_prompt=system_prompt))
            finally:
                observer.stop()
            judged = None
            if judge:  # a pass over the stored records, after the eval: the runner's pipeline is untouched
                from assay.cli.judge import run_judge
                from assay.judge import provide_judge

                with provide_judge(judge, api_key=api_key, reuse=eps) as jeps:
                    judged = run_judge(result.run_dir, None, jeps, concurrency=min(concurrency, 4), max_tokens=256,
                                       rubrics=[r.strip() for r in judge_rubric.split(",")] if judge_rubric else None,
                                       template="pairwise", suites=None, limit=None, con=console)
            rechecked = None
            if recheck is not None and result.manifest.status == "finished":
                from assay.evals.recheck import recheck_async, run_concurrency

                console.print(f"recheck: asking up to {recheck} stored answers again, at c=1 and at "
                              f"c={run_concurrency(result.manifest)} ...")
                rechecked = asyncio.run(recheck_async(result.run_dir, eps, k=recheck,
                                                      suites={s.name: s for s in suites}))
        scorecard.render(result.summary, title=f"scorecard {result.run_id}", footer=_footer(result.manifest),
                         console=console, detail=detail)
        if rechecked is not None:
            from assay.evals.recheck import render as render_recheck

            render_recheck(rechecked, console=console)
        if result.manifest.status != "finished":
            console.print("[yellow]run incomplete: re-run the same command to resume[/yellow]"
                          + (" (--recheck runs once it has finished)" if recheck is not None else ""))
        print(f"run: {result.run_dir}")
        if log_to == "mlflow":
            from assay.report.tracking import log_to_mlflow

            console.print(f"mlflow run: {log_to_mlflow(result.run_dir, result.manifest, result.summary)}")
        head = scorecard.headline(result.run_id, result.run_dir, result.summary)
        head.update(status=result.manifest.status, samples_per_s=result.manifest.samples_per_s,
                    harness_overhead=result.manifest.harness_overhead)
        if judged is not None:
            head["judge"] = {"model": judged["judge_model"], "warnings": judged["warnings"],
                             **{name: {k: v["summary"]["all"].get(k) for k in ("value", "low", "high", "n", "unparsed")}
                                for name, v in judged["rubrics"].items()}}
        if rechecked is not None:
            from assay.evals.recheck import headline as recheck_headline

            head["recheck"] = recheck_headline(rechecked)
        print(json.dumps(head))
        if result.manifest.status != "finished":
            raise typer.Exit(1)
