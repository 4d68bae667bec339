"""``assay review MODEL [MODEL ...]``: the whole model review in one resumable command — identity, capabilities by
dimension, models side by side (every difference tested), speed, hardware fit, judge ratings, deployment — written as
review.html (self-contained), review.md and review.json.

Example:
    assay review                                         # the embedded SmolLM2-135M, quick budget
    assay review smollm2-135m ./smollm2-q4_0.gguf --budget standard
    assay review -e http://gpu1:8000 -e http://gpu2:8000 --budget full --data-dir ../shared/benchmarks
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from assay.cli.common import ENGINE_ARGS, console as make_console, engine_options, one_line_errors


class RichProgress:
    """One bar for the whole review: what runs now (model · dimension), units done (samples + bench requests), eta."""

    def __init__(self, console):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(TextColumn("[bold]review[/bold] {task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 console=console, transient=False)
        self.task = None

    def start(self, total: int) -> None:
        self.task = self.progress.add_task("planning", total=max(1, total))
        self.progress.start()

    def step(self, label: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, description=label)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def stop(self) -> None:
        self.progress.stop()


def choices_for(eng, models: list[str]) -> list:
    """One EngineChoice per model: each MODEL argument (a URL means a running server), --model, then each
    --endpoint URL; none at all is the embedded default."""
    out = []
    for m in models:
        if m.startswith(("http://", "https://")):
            out.append(eng.replace(model=None, endpoints=(m,)))
        else:
            out.append(eng.replace(model=m, endpoints=()))
    if eng.model and not models:
        out.append(eng.replace(endpoints=()))
    for url in eng.endpoints:
        out.append(eng.replace(model=None, endpoints=(url,)))
    return out or [eng]


def default_out(review_labels: list[str], budget: str) -> str:
    import re

    slug = "-vs-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", x) for x in review_labels)[:80]
    return f"reviews/{slug}-{budget}"


def register(app: typer.Typer) -> None:
    @app.command("review", context_settings=ENGINE_ARGS)
    @one_line_errors
    @engine_options
    def review_cmd(
        ctx: typer.Context,
        eng,
        models: Annotated[Optional[list[str]], typer.Argument(
            help="Models to review: presets, .gguf paths, Hugging Face ids or http(s) URLs of running servers (one "
                 "per model). Default: the embedded SmolLM2-135M.", show_default=False)] = None,
        budget: Annotated[str, typer.Option(
            help="quick (a few samples per dimension: minutes on 2 CPU cores), standard (~30-40 per suite) or full "
                 "(the public benchmarks at their published sizes, from --data-dir).")] = "quick",
        out: Annotated[str, typer.Option(help="Folder holding the eval and bench run folders.")] = "runs",
        report_dir: Annotated[Optional[str], typer.Option(
            "--report-dir", help="Where review.html / review.md / review.json go (default "
                                 "reviews/<models>-<budget>).")] = None,
        data_dir: Annotated[Optional[str], typer.Option(
            "--data-dir", help="Folder of public benchmark files (ifeval_input_data.jsonl, mbpp.jsonl, aime2025.jsonl, "
                               "flores200_devtest/, bfcl_v4/): the full budget's public suites.")] = None,
        judge: Annotated[Optional[str], typer.Option(
            "--judge", help="Rate naturalness, translation fluency and code quality with an LLM judge: a URL, "
                            "'embedded' or a preset; several models are also judged pairwise in both orders.")] = None,
        claims: Annotated[Optional[str], typer.Option(
            "--claims", help="A claims YAML to check (default: src/assay/report/claims/<model>.yaml where one "
                             "exists).")] = None,
        seed: Annotated[int, typer.Option(help="Seed for sample selection, sampling and the bootstrap.")] = 0,
        no_cache: Annotated[bool, typer.Option(
            "--no-cache", help="Ask every question again instead of reusing answers from the answer cache.")] = False,
    ):
        """Review one or several models the way the source documents do — every number with n and a 95 % interval,
        every difference tested — in one resumable command: re-run it to resume or to re-render (no model call).

        The last stdout line is one JSON object (paths, gaps, model calls)."""
        from assay.cli.common import command_line as _command_line
        from assay.flows.review import labels, run_review
        from assay.report.review import write_review

        console = make_console()
        choices = choices_for(eng, list(models or []))
        dest = report_dir or default_out(labels(choices), budget)
        prog = RichProgress(console)
        review = run_review(choices, budget_name=budget, out_dir=out, data_dir=data_dir, judge=judge, claims=claims,
                            seed=seed, cache=not no_cache, command=_command_line(ctx), progress=prog,
                            say=lambda m: console.print(m, soft_wrap=True, highlight=False, markup=False))
        paths = write_review(review, dest)
        for g in review["gaps"]:
            console.print(f"gap · {g['section']} · {g['model'] or 'all models'} · {g['what']}: {g['reason']}",
                          soft_wrap=True, highlight=False, markup=False, style="dim")
        console.print(f"review: {paths['html']}  ({paths['md'].name}, {paths['json'].name})")
        print(json.dumps({"kind": "review", "html": str(paths["html"]), "md": str(paths["md"]),
                          "json": str(paths["json"]), "budget": budget, "wall_s": review["wall_s"],
                          "model_calls": review["model_calls"], "bench_requests": review["bench_requests"],
                          "bench_reused": review["bench_reused"], "gaps": len(review["gaps"])}))
        sys.stdout.flush()
