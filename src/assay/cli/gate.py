"""``assay gate BASE CANDIDATE``: a paired non-inferiority decision with an exit code a CI job can act on.

Example:
    assay gate runs/A runs/B --margin 0.05                  # two stored eval runs: exit 0 / 1 / 2
    assay gate smollm2-135m ./smollm2-q2_k.gguf --suite json,ifeval --until-decided --summary gate.md
    assay gate http://127.0.0.1:8000 http://127.0.0.1:8001 --margin math=0.03 --margin 5%
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import ENGINE_ARGS, console, engine_options, one_line_errors


def _is_run(ref: str, runs_dir: Path) -> bool:
    from assay.errors import RunMismatch
    from assay.store import resolve_run

    try:
        resolve_run(ref, runs_dir)
        return True
    except RunMismatch:
        return False


def _model_choice(eng, ref: str):
    """One side of the gate as an EngineChoice: a URL is a running server, anything else a model to start."""
    return eng.replace(endpoints=(ref,), model=None) if ref.startswith(("http://", "https://")) else eng.replace(
        model=ref, endpoints=())


def register(app: typer.Typer) -> None:
    @app.command("gate", context_settings=ENGINE_ARGS)
    @one_line_errors
    @engine_options(model=False)
    def gate(
        eng,
        base: Annotated[str, typer.Argument(help="The base: an eval run (folder, run id under --runs-dir, 'latest'), "
                                                 "or a model (preset, .gguf, HF id) or server URL to evaluate.")],
        candidate: Annotated[str, typer.Argument(help="The candidate, the same kinds.")],
        margin: Annotated[Optional[list[str]], typer.Option(
            "--margin", help="How much worse the candidate may be: 0.05 (score units: 5 points of accuracy, the "
                             "default), 5% (of the base's score), or per suite: math=0.03. Repeatable.")] = None,
        suite: Annotated[Optional[list[str]], typer.Option(
            "--suite", "-s", help="Suites (comma-separated or repeated). Runs: the suites both have (default). "
                                  "Models: default json,ifeval,math.")] = None,
        limit: Annotated[int, typer.Option(help="Models: samples per suite (with --until-decided, the most).",
                                           min=1)] = 50,
        until_decided: Annotated[bool, typer.Option(
            "--until-decided", help="Models: evaluate in batches and stop as soon as an anytime-valid confidence "
                                    "sequence clears the margin either way (fewer samples when the answer is "
                                    "clear; the error rate stays at --alpha however often it looks).")] = False,
        batch: Annotated[int, typer.Option(help="With --until-decided: samples per suite added per batch.",
                                           min=1)] = 20,
        alpha: Annotated[float, typer.Option(help="Error rate of a verdict.", min=0.0001, max=0.5)] = 0.05,
        summary: Annotated[Optional[Path], typer.Option(
            "--summary", help="Also write the Markdown summary here (for a pull-request comment).")] = None,
        max_tokens: Annotated[int, typer.Option(help="Models: max new tokens per answer.", min=1)] = 384,
        seed: Annotated[int, typer.Option(help="Models: sample selection and sampling seed.")] = 0,
        out: Annotated[Path, typer.Option(help="Models: folder for the eval runs.")] = Path("runs"),
        runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run ids are looked up.")] = Path("runs"),
        system_prompt: Annotated[Optional[str], typer.Option(
            help="Models: a system message before every prompt, for both sides.")] = None,
        candidate_system_prompt: Annotated[Optional[str], typer.Option(
            help="Models: the candidate's system message instead (gate a new system prompt: the same model on "
                 "both sides).")] = None,
        no_cache: Annotated[bool, typer.Option("--no-cache", help="Models: ask every question again instead of "
                                                                 "reusing cached answers.")] = False,
    ):
        """Non-inferiority of CANDIDATE against BASE, paired by sample, per suite: exit 0 when the candidate is at
        most --margin worse (the interval of candidate − base lies above −margin), 1 when it is worse (the interval
        lies below), 2 when the data cannot tell (it says how many more samples would likely decide).

        The last stdout line is one JSON object; the Markdown summary goes to stdout before it (and --summary)."""
        from assay.errors import AssayError
        from assay.flows.gate import gate_models, gate_runs, parse_margins, to_markdown

        margins = parse_margins(margin)
        names = [p.strip() for s in (suite or []) for p in s.split(",") if p.strip()] or None
        con = console()
        runs = (_is_run(base, runs_dir), _is_run(candidate, runs_dir))
        if all(runs):
            if until_decided:
                raise AssayError("--until-decided samples models in batches: give two models or URLs, not runs")
            report = gate_runs(base, candidate, margins, alpha=alpha, suites=names, out_dir=runs_dir, seed=seed)
        elif any(runs):
            raise AssayError(f"{base if runs[0] else candidate} is a run and the other is not: give two runs, or "
                             "two models / URLs to evaluate")
        else:
            from assay.client import SamplingParams

            params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=seed)
            report = gate_models(_model_choice(eng, base), _model_choice(eng, candidate),
                                 names or ["json", "ifeval", "math"], margins, params=params, limit=limit,
                                 until_decided=until_decided, batch=batch, alpha=alpha, seed=seed, out_dir=out,
                                 cache=not no_cache, say=lambda m: con.print(m, highlight=False),
                                 system_prompts=(system_prompt, candidate_system_prompt or system_prompt))
        md = to_markdown(report)
        if summary:
            from assay.common import atomic_file

            with atomic_file(summary) as f:
                f.write(md)
        print(md)
        print(json.dumps(report.to_dict(), default=str))
        raise typer.Exit(report.exit_code)
