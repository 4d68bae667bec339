"""Rendering shared by several commands (rich tables and progress for judge results, generic tables). Command modules
import these; none imports another command module.
"""

from __future__ import annotations

import contextlib


def _ci(s: dict, fmt: str = "{:.2f}") -> str:
    if s.get("value") is None:
        return "—"
    lo, hi = s.get("low"), s.get("high")
    band = f" [{fmt.format(lo)}, {fmt.format(hi)}]" if lo is not None and hi is not None else ""
    return f"{fmt.format(s['value'])}{band}"


def pct(s: dict) -> str:
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
    t.add_row("position consistency", pct(s["position_consistency"]))
    t.add_row("first answer chosen", pct(s["first_position_rate"]) + "  (50 % = no position bias)")
    k = s["self_kappa"]
    t.add_row("self-agreement κ (AB vs BA)", "—" if k["value"] is None else
              f"{k['value']:.2f} [{k['low']:.2f}, {k['high']:.2f}] (n = {k['n']})")
    t.add_row(f"length {a} − {b} (chars)", _ci(s["length_diff_chars"], "{:+.0f}"))
    t.add_row("longer answer won", pct(s["longer_won"]))
    t.add_row("left out", f"{s['unparsed']} unparsed, {s['errors']} failed")
    con.print(t)


def _progress(con, total: int | None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(TextColumn("[bold]judging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=con, transient=True)
    task = prog.add_task("judge", total=total)
    return prog, lambda rec: prog.update(task, advance=1)


def judge_progress(con):
    """A progress factory for ``judge.session.judge_runs``: an indeterminate bar per pass on ``con``."""

    @contextlib.contextmanager
    def factory():
        prog, tick = _progress(con, None)
        with prog:
            yield tick

    return factory


def judge_show(con):
    """A ``show`` callback for ``judge.session.judge_runs`` that prints each summary as its table."""

    def show(kind: str, name: str, summ: dict) -> None:
        (render_rubric(con, name, summ) if kind == "rubric" else render_pairwise(con, summ))

    return show


def print_warnings(con, warnings) -> None:
    for w in warnings:
        con.print(f"[yellow]warning:[/yellow] {w}", highlight=False)


def rich_table(title: str, header: list[str], rows: list[list[str]], *, caption: str | None = None, style_for=None):
    from rich.table import Table

    t = Table(title=title, caption=caption, show_lines=False)
    for h in header:
        t.add_column(h, overflow="fold")
    for row in rows:
        t.add_row(*[str(c) for c in row], style=style_for(row) if style_for else None)
    return t


def render_arena(con, rep: dict) -> None:
    """The arena report's tables: Bradley-Terry ratings, the win matrix, vote counts, thumbs."""
    from rich.table import Table

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
            th.add_row(m, str(s["up"]), str(s["down"]), pct(s["share_up"]))
        con.print(th)
