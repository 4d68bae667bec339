"""``assay report`` and ``assay compare``: tables, paired significance, charts and a self-contained HTML page, built
only from stored run folders.

Example:
    assay report runs/20250101-120000-ab12cd34          # or a run id under ./runs, or "latest"
    assay compare runs/A runs/B                         # paired tests on shared samples, HTML + Markdown + JSON
    assay compare runs/A runs/B --bench runs/bench-A --against-claims claims.yaml
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import console, one_line_errors
from assay.cli.render import judge_progress, judge_show, rich_table

RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", help="Where run ids are looked up.")]


def register(app: typer.Typer) -> None:
    @app.command("report")
    @one_line_errors
    def report(
        run: Annotated[str, typer.Argument(help="Run folder, or run id under --runs-dir, or 'latest'.")],
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for report.html / report.md "
                                                                       "(default: the run folder).")] = None,
        runs_dir: RunsDirOpt = Path("runs"),
        top: Annotated[int, typer.Option("--top", help="How many failed / slowest samples to list.")] = 15,
        fmt: Annotated[str, typer.Option("--format", help="text (tables + files + JSON line) or csv (the scorecard "
                                                          "as CSV on stdout; files written as usual).")] = "text",
    ) -> None:
        """One run: scorecard (suite × category, n, 95 % interval, errors / truncated / unparsed), failed and
        slowest samples with the extracted answers highlighted, charts -> self-contained HTML + Markdown."""
        from assay.evals import scorecard
        from assay.report import write_report
        from assay.report.runs import load_eval_run

        if fmt not in ("text", "csv"):
            raise typer.BadParameter(f"--format {fmt!r}: choose text or csv")
        r = load_eval_run(run, runs_dir)
        paths = write_report(r, out, top=top)
        if fmt == "csv":
            from assay.bench.peer import scorecard_csv

            sys.stdout.write(scorecard_csv(r.card))
            return
        con = console(stderr=False)
        scorecard.render(r.card, title=f"{r.label} — {r.run_id}", console=con)
        con.print(f"html: {paths['html']}\nmarkdown: {paths['md']}")
        print(json.dumps({"run_id": r.run_id, "html": str(paths["html"]), "md": str(paths["md"]),
                          "suites": {s: {k: v.get(k) for k in ("value", "low", "high", "n", "errors", "truncated",
                                                                 "unparsed")} for s, v in r.suites.items()}}))

    @app.command("compare")
    @one_line_errors
    def compare(
        runs: Annotated[list[str], typer.Argument(help="Two or more eval runs (folders or run ids) or lm-eval samples "
                                                       "files (samples_<task>_*.jsonl, paired by doc_hash or the "
                                                       "document's text); one is "
                                                       "enough with --against-claims.")],
        bench: Annotated[Optional[list[str]], typer.Option(
            "--bench", help="Bench run(s) to join for TTFT / tok/s / memory (default: bench runs of the same model "
                            "found in --runs-dir).")] = None,
        against_claims: Annotated[Optional[Path], typer.Option(
            "--against-claims", help="YAML of published claims to check against the measured intervals.")] = None,
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for compare.html / .md / .json "
                                                                       "(default: reports/compare-<time>).")] = None,
        runs_dir: RunsDirOpt = Path("runs"),
        seed: Annotated[int, typer.Option("--seed", help="Seed of the paired bootstrap (same seed, same CI).")] = 0,
        alpha: Annotated[float, typer.Option("--alpha", help="Significance level of the verdicts.")] = 0.05,
        judge: Annotated[Optional[str], typer.Option(
            "--judge", help="Also ask an LLM judge which answer is better, for every pair of runs, in both orders "
                            "(URL, 'embedded' or a preset; see assay judge).")] = None,
        judge_limit: Annotated[Optional[int], typer.Option(
            "--judge-limit", help="At most N samples per suite for --judge.", min=1)] = None,
        lm_eval_filter: Annotated[Optional[str], typer.Option(
            "--lm-eval-filter", help="Which of an lm-eval samples file's filters to read (e.g. strict-match, "
                                     "flexible-extract; default: the file's first).")] = None,
    ) -> None:
        """Compare runs on their shared samples: model × suite table, paired bootstrap CI of each difference, exact
        McNemar p, win/tie/loss, minimum detectable difference and a verdict; warns when fingerprints differ in more
        than the model. Writes a self-contained HTML page, Markdown and JSON."""
        from assay.report import views, write_compare
        from assay.report.compare import build_comparison, comparison_json

        cmp = build_comparison(runs, runs_dir=runs_dir, bench=bench, against_claims=against_claims, seed=seed,
                               alpha=alpha, lm_eval_filter=lm_eval_filter)
        if judge:  # pairwise judge passes, stored in each pair's first run folder (resumable), joined to the output
            from assay.judge import provide_judge
            from assay.judge.session import judge_pairs

            jcon = console()
            with provide_judge(judge) as jeps:
                cmp.judge = judge_pairs(cmp.runs, jeps, limit=judge_limit, progress=judge_progress(jcon),
                                        show=judge_show(jcon))
            for j in cmp.judge:
                cmp.warnings.extend(j["warnings"])
        out_dir = out or Path("reports") / f"compare-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
        paths = write_compare(cmp, out_dir)

        con = console(stderr=False)
        h, rows = views.comparison_table(cmp)
        con.print(rich_table("comparison (score % [95 % CI] n)", h, rows))
        con.print(rich_table(f"paired tests on shared samples (α = {alpha}, bootstrap seed {seed})",
                              views.PAIR_HEADER, views.pair_rows(cmp),
                              caption="MDD = minimum detectable difference (points) for that n",
                              style_for=lambda row: "bold red" if row[-1].endswith("better") else None))
        if cmp.judge:
            con.print(rich_table("LLM judge, pairwise (both orders; flips are ties)", views.JUDGE_PAIR_HEADER,
                                  views.judge_pair_rows(cmp)))
        if cmp.claims:
            con.print(rich_table("claims", views.CLAIM_HEADER, views.claim_rows(cmp.claims),
                                  style_for=lambda row: {"consistent": "green", "inconsistent": "bold red"}.get(
                                      row[4])))
        for w in cmp.warnings:
            con.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
        con.print(f"html: {paths['html']}\nmarkdown: {paths['md']}\njson: {paths['json']}")
        print(json.dumps({"html": str(paths["html"]), **comparison_json(cmp)}, default=str))


    @app.command("export")
    @one_line_errors
    def export_cmd(
        run: Annotated[str, typer.Argument(help="Run folder, or run id under --runs-dir, or 'latest'.")],
        fmt: Annotated[str, typer.Option("--format", "-f", help="lm-eval (results JSON + samples JSONL) or inspect "
                                                               "(an Inspect eval log per suite, for inspect view).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")] = Path("exported"),
        runs_dir: RunsDirOpt = Path("runs"),
    ) -> None:
        """Write a run in a peer harness's format: lm-eval's results + samples files (compare them back with
        `assay compare RUN samples_*.jsonl`), or Inspect logs (`inspect view --log-dir OUT`)."""
        from assay.report.export import export
        from assay.report.runs import load_eval_run

        paths = export(load_eval_run(run, runs_dir), fmt, out)
        for p in paths:
            print(p)
