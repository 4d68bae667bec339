"""``assay eval``: run eval suites against a model, crash-safe and resumable, and print a scorecard.

Example:
    assay eval                                            # quick default set on the embedded SmolLM2-135M
    assay eval --suite math,json --limit 50 --concurrency 8
    assay eval --endpoint http://127.0.0.1:8000 --suite gsm8k --data ../shared/benchmarks/gsm8k_test.jsonl
    assay eval --rescore runs/20250101-120000-ab12cd34    # score stored answers again, no model call
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from assay.cli.common import (ENGINE_ARGS, MinPOpt, RepeatPenaltyOpt, TopKOpt, command_line, console as make_console,
                              engine_options, one_line_errors)
from assay.flows.eval import DEFAULT_LIMIT, DEFAULT_MAX_TOKENS, DEFAULT_SUITES


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


def register(app: typer.Typer) -> None:
    @app.command("eval", context_settings=ENGINE_ARGS)
    @one_line_errors
    @engine_options
    def eval_cmd(
        ctx: typer.Context,
        eng,
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
        no_cache: Annotated[bool, typer.Option(
            "--no-cache", help="Ask the model every question, even ones whose answer (same model, messages, sampling "
                               "and seed) is in the answer cache ($ASSAY_HOME/answers.sqlite).")] = False,
        recheck: Annotated[Optional[int], typer.Option(
            "--recheck", help="After the run has finished, ask K of its answers (chosen with --seed) again, at "
                              "concurrency 1 and at the run's: identical share and flipped verdicts, stored in "
                              "recheck.jsonl / recheck.json. See docs/eval.md.", show_default=False)] = None,
    ):
        """Evaluate a model on suites; resumable (re-run the same command), with a scorecard and 95 % intervals.

        The last stdout line is one JSON object with the headline numbers.
        """
        from assay.client import SamplingParams
        from assay.errors import AssayError
        from assay.evals import scorecard
        from assay.flows.eval import build_suites, default_suites, evaluate, rescore_run, suite_options

        console = make_console()
        if recheck is not None and rescore:
            raise AssayError("--recheck asks the model again and --rescore calls no model: use one or the other")
        if rescore:
            from assay.store import resolve_run

            run_dir = resolve_run(rescore, out)
            res = rescore_run(run_dir)
            card = res["summary"]
            scorecard.render(card, title=f"rescored {run_dir.name}", console=console, detail=detail,
                             footer=f"{res['changed']} records changed score or status")
            if "judge_changed" in res:
                console.print(f"judge replies re-parsed: {res['judge_changed']} changed")
            print(f"run: {run_dir}")
            print(json.dumps({**scorecard.headline(card["run_id"], run_dir, card), "rescored": True,
                              **{k: v for k, v in res.items() if k != "summary"}}))
            return

        names = [p.strip() for s in (suite or []) for p in s.split(",") if p.strip()]
        if not names:
            names = default_suites()
            if limit is None:
                limit = DEFAULT_LIMIT
        opts = suite_options(names, data, suite_opt)
        params = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, top_k=top_k,
                                min_p=min_p, repeat_penalty=repeat_penalty,
                                chat_template_kwargs=_json_object("--chat-template-kwargs", chat_template_kwargs),
                                extra_body=_json_object("--extra-body", extra_body))
        from assay.cli.render import judge_progress, judge_show

        outcome = evaluate(
            eng, build_suites(names, opts), params=params, out_dir=out, seed=seed, limit=limit,
            concurrency=concurrency, fresh=fresh, suite_opts=opts, system_prompt=system_prompt, replicas=replicas,
            probe_identity=probe_identity, command=command_line(ctx), observer=RichObserver(console), judge=judge,
            judge_rubrics=[r.strip() for r in judge_rubric.split(",")] if judge_rubric else None, recheck=recheck,
            log_to=log_to, cache=not no_cache, say=lambda m: console.print(m, soft_wrap=True, highlight=False),
            judge_progress=judge_progress(console), judge_show=judge_show(console))
        result = outcome.result
        if outcome.judged:
            from assay.cli.render import print_warnings

            print_warnings(console, outcome.judged["warnings"])
        scorecard.render(result.summary, title=f"scorecard {result.run_id}", footer=_footer(result.manifest),
                         console=console, detail=detail)
        if outcome.rechecked is not None:
            from assay.evals.recheck import render as render_recheck

            render_recheck(outcome.rechecked, console=console)
        if not outcome.finished:
            console.print("[yellow]run incomplete: re-run the same command to resume[/yellow]"
                          + (" (--recheck runs once it has finished)" if recheck is not None else ""))
        print(f"run: {result.run_dir}")
        if outcome.tracked:
            console.print(f"mlflow run: {outcome.tracked}")
        print(json.dumps(outcome.headline))
        if not outcome.finished:
            raise typer.Exit(1)
