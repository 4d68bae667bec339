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

from assay.cli.common import ApiKeyOpt, one_line_errors

JudgeOpt = Annotated[Optional[str], typer.Option(
    "--judge", "-j", help="The judge: an OpenAI-compatible URL, 'embedded' (SmolLM2-135M, a smoke run: a weak "
                          "judge), or a model preset to start.")]


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _ci(s: dict, fmt: str = "{:.2f}") -> str:
    if s.get("value") is None:
        return "—"
    lo, hi = s.get("low"), s.get("high")
    band = f" [{fmt.format(lo)}, {fmt.format(hi)}]" if lo is not None and hi is not None else ""
    return f"{fmt.format(s['value'])}{band}"


def _pct(s: dict) -> str:
    if s.get("value") is None:
        return f"— (n = {s.get('n', 0)})"
    return f"{s['value']:.0%} [{s['low']:.0%}, {s['high']:.0%}] (k = {s.get('k')}, n = {s['n']})"


def render_rubric(con, name: str, summ: dict) -> None:
    from rich.table import Table

    t = Table(title=f"judge rubric: {name} (mean 1–5 [95 % bootstrap CI])")
    for h in ("suite", "mean", "n", "distribution 1…5", "unparsed", "errors"):
        t.add_column(h)
    for suite, s in summ.items():
        dist = " ".join(f"{k}:{v}" for k, v in s["distribution"].items())
        t.add_row(suite, _ci(s), str(s["n"]), dist, str(s["unparsed"]), str(s["errors"]))
    con.print(t)


def render_pairwise(con, s: dict) -> None:
    from rich.table import Table

    a, b = s["names"]
    t = Table(title=f"pairwise judge: {a} vs {b} (both orders; a flip is a tie)")
    for h in ("what", "value"):
        t.add_column(h)
    t.add_row("n (both orders parsed)", str(s["n"]))
    t.add_row(f"win / tie / loss ({a})", f"{s['wins']} / {s['ties']} / {s['losses']}")
    t.add_row("(wins − losses) / n", _ci(s, "{:+.2f}") if s["n"] else "—")
    t.add_row(f"win rate of {a} (ties ½)", _ci(s["win_rate"]))
    t.add_row("verdict", f"{s['verdict']} ({s['test']}, p = {s['p']:.3g})" if s["n"] and s["p"] is not None
              else s["verdict"])
    t.add_row("position consistency", _pct(s["position_consistency"]))
    t.add_row("first answer chosen", _pct(s["first_position_rate"]) + "  (50 % = no position bias)")
    k = s["self_kappa"]
    t.add_row("self-agreement κ (AB vs BA)", "—" if k["value"] is None else
              f"{k['value']:.2f} [{k['low']:.2f}, {k['high']:.2f}] (n = {k['n']})")
    t.add_row(f"length {a} − {b} (chars)", _ci(s["length_diff_chars"], "{:+.0f}"))
    t.add_row("longer answer won", _pct(s["longer_won"]))
    t.add_row("left out", f"{s['unparsed']} unparsed, {s['errors']} failed")
    con.print(t)


def _progress(con, total: int | None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(TextColumn("[bold]judging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=con, transient=True)
    task = prog.add_task("judge", total=total)
    return prog, lambda rec: prog.update(task, advance=1)


def run_judge(run_a: Path, run_b: Path | None, eps: list, *, rubrics: list[str] | None, template: str,
              suites: list[str] | None, limit: int | None, concurrency: int, max_tokens: int, con) -> dict:
    """The judge step that ``assay judge`` and ``assay eval --judge`` share. Returns the JSON result."""
    import asyncio

    from assay.client import Client, SamplingParams
    from assay.judge import rubrics_for, same_model
    from assay.judge.run import judge_pairwise, judge_rubric
    from assay.judge.summary import pairwise_summary, rubric_summary
    from assay.judge.templates import load_template
    from assay.report.runs import load_eval_run

    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=0)
    ra = load_eval_run(run_a)
    warnings = []
    judged_models = [ra.model] + ([load_eval_run(run_b).model] if run_b else [])
    out: dict = {"run_a": ra.run_id, "judge_model": eps[0].model, "warnings": warnings}

    async def go():
        async with Client(eps) as client:
            for m in dict.fromkeys(judged_models):
                if same_model(client.model, m):
                    warnings.append(f"the judge ({client.model}) is the same model as one being judged ({m}): "
                                    "judges favour their own answers; treat these numbers as a smoke test")
            if run_b is None:
                names = rubrics or rubrics_for(suites or list(ra.suites))
                out["rubrics"] = {}
                for name in names:
                    t = load_template(name)
                    prog, tick = _progress(con, None)
                    with prog:
                        res = await judge_rubric(run_a, t, client, params=params, suites=suites, limit=limit,
                                                 concurrency=concurrency, observer=tick)
                    summ = rubric_summary(res.records, t.scale or (1, 5))
                    render_rubric(con, t.ref, summ)
                    out["rubrics"][t.name] = {"pass_id": res.pass_id, "template": t.ref, "new_calls": res.new,
                                              "resumed": res.kept, "summary": summ}
            else:
                rb = load_eval_run(run_b)
                t = load_template(template)
                prog, tick = _progress(con, None)
                with prog:
                    res = await judge_pairwise(run_a, run_b, t, client, params=params, suites=suites, limit=limit,
                                               concurrency=concurrency, observer=tick)
                names = (ra.label or ra.run_id, rb.label or rb.run_id)
                if names[0] == names[1]:
                    names = (f"A ({ra.run_id})", f"B ({rb.run_id})")
                summ = pairwise_summary(res.records, names)
                render_pairwise(con, summ)
                out.update(run_b=rb.run_id, pass_id=res.pass_id, template=t.ref, new_calls=res.new,
                           resumed=res.kept, pairwise={k: v for k, v in summ.items() if k != "samples"})

    asyncio.run(go())
    for w in warnings:
        con.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
    return out


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
        from assay.report.runs import resolve

        con = _console()
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
            out = run_judge(a, b, eps, rubrics=rubrics, template=template, suites=suites, limit=limit,
                            concurrency=concurrency, max_tokens=max_tokens, con=con)
        print(f"judgements: {a / 'judgements.jsonl'}")
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
        import asyncio

        from assay.chat.history import default_db_path
        from assay.chat.votes import list_votes
        from assay.client import Client, SamplingParams
        from assay.errors import AssayError
        from assay.judge import provide_judge, same_model
        from assay.judge.run import judge_votes
        from assay.judge.summary import people_agreement
        from assay.judge.templates import load_template

        if not judge_spec:
            raise AssayError("which judge? pass --judge URL, --judge embedded or --judge PRESET")
        path = db or default_db_path()
        votes = list_votes(path)
        if not votes:
            raise AssayError(f"no arena votes in {path}: vote in `assay chat --arena` first")
        con = _console()
        with provide_judge(judge_spec, api_key=api_key) as eps:
            async def go():
                async with Client(eps) as c:
                    return await judge_votes(votes, out or path.parent / "arena-judge", load_template("pairwise"), c,
                                             params=SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=0),
                                             concurrency=concurrency)

            res = asyncio.run(go())
        agree = people_agreement(votes, res.records)
        k = agree["kappa"]
        con.print(f"judge {eps[0].model} vs people on {agree['n']} of {agree['votes']} votes: κ = "
                  + ("—" if k["value"] is None else f"{k['value']:.2f} [{k['low']:.2f}, {k['high']:.2f}]")
                  + f", raw agreement {_pct(agree['agreement'])}")
        models = {v["model_a"] for v in votes} | {v["model_b"] for v in votes}
        warn = [f"the judge ({eps[0].model}) is one of the arena's models: it may favour its own answers"
                for m in models if same_model(eps[0].model, m)][:1]
        for w in warn:
            con.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
        print(json.dumps({**agree, "judge_model": eps[0].model, "pass_id": res.pass_id, "warnings": warn},
                         default=str))

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
        from rich.table import Table

        from assay.chat.history import default_db_path
        from assay.chat.votes import arena_report as build, export_votes

        path = db or default_db_path()
        rep = build(path, seed=seed, n_boot=n_boot, prior=prior)
        con = _console()
        t = Table(title=f"arena ratings ({rep['votes']} votes; Bradley–Terry, Elo scale, 95 % bootstrap CI)")
        for h in ("rank", "model", "rating", "95 % CI", "games"):
            t.add_column(h)
        bt = rep["bt"]
        for i, m in enumerate(bt["ranking"], 1):
            r, lo, hi = bt["ratings"].get(m), bt["low"].get(m), bt["high"].get(m)
            t.add_row(str(i), m, "—" if r is None else f"{r:.0f}",
                      "—" if lo is None or hi is None else f"[{lo:.0f}, {hi:.0f}]", str(bt["games"][m]))
        con.print(t)
        models = sorted(rep["win_matrix"])
        if models:
            w = Table(title="win rate of row over column (ties ½), n")
            w.add_column("")
            for m in models:
                w.add_column(m)
            for a in models:
                w.add_row(a, *["—" if a == b or b not in rep["win_matrix"][a] else
                               f"{rep['win_matrix'][a][b]['rate']:.0%} (n = {rep['win_matrix'][a][b]['n']})"
                               for b in models])
            con.print(w)
        con.print("votes: " + ", ".join(f"{k} {v}" for k, v in rep["vote_counts"].items()))
        if rep["thumbs"]:
            th = Table(title="thumbs on ordinary replies (share up, Wilson 95 % CI)")
            for h in ("model", "up", "down", "share up"):
                th.add_column(h)
            for m, s in rep["thumbs"].items():
                th.add_row(m, str(s["up"]), str(s["down"]), _pct(s["share_up"]))
            con.print(th)
        if export:
            n = export_votes(path, export)
            con.print(f"exported {n} votes to {export}")
            rep["exported"] = str(export)
        print(json.dumps(rep, default=str))
