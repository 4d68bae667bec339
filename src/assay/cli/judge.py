"""``assay judge``: LLM-as-judge over stored runs (rubric scores, or pairwise with position swapping), and
``assay arena report``: Bradley-Terry ratings from the chat arena's votes.

Example:
    assay judge runs/A --judge embedded                           # rubric(s) picked per suite, e.g. naturalness
    assay judge runs/A --judge http://127.0.0.1:8000/v1 --rubric helpfulness,naturalness
    assay judge runs/A runs/B --judge http://127.0.0.1:8000/v1    # pairwise, both orders, flips count as ties
    assay judge runs/A --rescore                                  # re-parse stored judge replies, no judge call
    assay arena report --export votes.jsonl                       # ratings with bootstrap intervals, win matrix
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import ApiKeyOpt, console, one_line_errors
from assay.cli.render import judge_progress, judge_show, pct, print_warnings, render_arena

JudgeOpt = Annotated[Optional[str], typer.Option(
    "--judge", "-j", help="The judge: an OpenAI-compatible URL, 'embedded' (SmolLM2-135M, a smoke run: a weak "
                          "judge), or a model preset to start.")]


def register(app: typer.Typer) -> None:
    @app.command("judge")
    @one_line_errors
    def judge(
        run_a: Annotated[str, typer.Argument(help="Eval run (folder, run id under --runs-dir, or 'latest').")],
        run_b: Annotated[Optional[str], typer.Argument(help="A second run: pairwise verdicts on shared samples.")] = None,
        judge_spec: JudgeOpt = None,
        api_key: ApiKeyOpt = None,
        rubric: Annotated[Optional[str], typer.Option(
            help="Rubric template(s), comma-separated: naturalness, helpfulness, fluency, adequacy, code_quality "
                 "(name.vN for a version, or a .txt path). Default: per suite.")] = None,
        template: Annotated[str, typer.Option(help="Pairwise template.")] = "pairwise",
        suite: Annotated[Optional[str], typer.Option("--suite", "-s", help="Only these suites (comma-separated).")] = None,
        limit: Annotated[Optional[int], typer.Option(help="At most N samples per suite.", min=1)] = None,
        concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Judge calls in flight.")] = 4,
        max_tokens: Annotated[int, typer.Option(help="Max tokens of a judge reply.", min=1)] = 256,
        rescore: Annotated[bool, typer.Option(help="Re-parse the stored judge replies; no judge call.")] = False,
        runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run ids are looked up.")] = Path("runs"),
    ):
        """Judge a run with an LLM: rubric scores (one run) or pairwise verdicts in both orders (two runs).

        Judge calls are stored in the run folder (judgements.jsonl): the same command resumes. The last stdout
        line is one JSON object."""
        from assay.errors import AssayError
        from assay.judge import provide_judge
        from assay.judge.session import judge_runs
        from assay.store import resolve_run as resolve

        con = console()
        a = resolve(run_a, runs_dir)
        b = resolve(run_b, runs_dir) if run_b else None
        if rescore:
            from assay.judge.run import rescore_judgements

            n = rescore_judgements(a)
            con.print(f"re-parsed the judge replies in {a}: {n} changed")
            print(json.dumps({"run": str(a), "rescored": True, "changed": n}))
            return
        if not judge_spec:
            raise AssayError("which judge? pass --judge URL (any OpenAI-compatible server), --judge embedded, or "
                             "--judge PRESET")
        suites = [s.strip() for s in suite.split(",")] if suite else None
        rubrics = [r.strip() for r in rubric.split(",")] if rubric else None
        if not judge_spec.startswith("http"):
            con.print(f"starting the judge {judge_spec} ...")
        with provide_judge(judge_spec, api_key=api_key) as eps:
            out = judge_runs(a, b, eps, rubrics=rubrics, template=template, suites=suites, limit=limit,
                             concurrency=concurrency, max_tokens=max_tokens, progress=judge_progress(con),
                             show=judge_show(con))
        print_warnings(con, out["warnings"])
        from assay.store import JUDGEMENTS

        print(f"judgements: {a / JUDGEMENTS}")
        print(json.dumps(out, default=str))

    arena = typer.Typer(help="The blind arena of `assay chat --arena`: ratings from people's votes.",
                        no_args_is_help=True)
    app.add_typer(arena, name="arena")

    @arena.command("agree")
    @one_line_errors
    def arena_agree(
        judge_spec: JudgeOpt = None,
        api_key: ApiKeyOpt = None,
        db: Annotated[Optional[Path], typer.Option("--db", envvar="ASSAY_CHAT_DB", help="Chat history file.")] = None,
        out: Annotated[Optional[Path], typer.Option(
            "--out", help="Folder for the judge's records (default: arena-judge/ beside the history file).")] = None,
        max_tokens: Annotated[int, typer.Option(help="Max tokens of a judge reply.", min=1)] = 256,
        concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 4,
    ):
        """Score a judge against people: it judges every arena vote's pair in both orders; Cohen's kappa (95 %
        bootstrap CI) between its verdicts and the votes. The last stdout line is one JSON object."""
        from assay.chat.history import default_db_path
        from assay.chat.votes import list_votes
        from assay.errors import AssayError
        from assay.judge import provide_judge
        from assay.judge.session import judge_votes_agreement

        if not judge_spec:
            raise AssayError("which judge? pass --judge URL, --judge embedded or --judge PRESET")
        path = db or default_db_path()
        votes = list_votes(path)
        if not votes:
            raise AssayError(f"no arena votes in {path}: vote in `assay chat --arena` first")
        con = console()
        with provide_judge(judge_spec, api_key=api_key) as eps:
            res = judge_votes_agreement(votes, eps, out or path.parent / "arena-judge", max_tokens=max_tokens,
                                        concurrency=concurrency)
        k = res["kappa"]
        con.print(f"judge {res['judge_model']} vs people on {res['n']} of {res['votes']} votes: κ = "
                  + ("—" if k["value"] is None else f"{k['value']:.2f} [{k['low']:.2f}, {k['high']:.2f}]")
                  + f", raw agreement {pct(res['agreement'])}")
        print_warnings(con, res["warnings"])
        print(json.dumps(res, default=str))

    @arena.command("report")
    @one_line_errors
    def arena_report(
        db: Annotated[Optional[Path], typer.Option("--db", envvar="ASSAY_CHAT_DB", help="Chat history file.")] = None,
        export: Annotated[Optional[Path], typer.Option(
            "--export", help="Write the votes as JSONL here (prompt, both answers, models, vote).")] = None,
        seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
        n_boot: Annotated[int, typer.Option(help="Bootstrap resamples.", min=0)] = 1000,
        prior: Annotated[float, typer.Option(help="Virtual tied games per pair of models (keeps a model without "
                                                  "wins finite).")] = 1.0,
    ):
        """Bradley-Terry ratings (Elo scale, 95 % bootstrap intervals) and a win-rate matrix from arena votes, plus
        thumbs up / down per model from ordinary chats. The last stdout line is one JSON object."""
        from assay.chat.history import default_db_path
        from assay.chat.votes import arena_report as build, export_votes

        path = db or default_db_path()
        rep = build(path, seed=seed, n_boot=n_boot, prior=prior)
        con = console()
        render_arena(con, rep)
        if export:
            n = export_votes(path, export)
            con.print(f"exported {n} votes to {export}")
            rep["exported"] = str(export)
        print(json.dumps(rep, default=str))
