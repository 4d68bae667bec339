"""Markdown versions of the report and the comparison (same tables as the HTML, charts left to the HTML)."""

from __future__ import annotations

from assay.report import views


def _cell(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _samples(records: list[dict]) -> str:
    if not records:
        return "_none_\n"
    rows = []
    for r in records:
        s = r.score
        ex = s.extracted if s else None
        rows.append([f"{r.suite} / `{r.sample_id}`", r.status, views.num(s.value if s else None, "{:.2f}"),
                     views.trunc(r.target, 60), f"**{views.trunc(ex, 60)}**" if ex else "—",
                     views.num(r.e2e_s, "{:.2f}"), views.trunc(r.error or (s.reason if s else "") or "", 80)])
    return table(["sample", "status", "score", "target", "extracted", "e2e s", "reason"], rows)


def report_md(run, *, top: int = 15) -> str:
    parts = [f"# assay report — {run.label}\n"]
    parts.append(table(["", ""], [[k, v] for k, v in views.run_header(run)]))
    parts.append("\n## Scorecard\n")
    parts.append(table(views.SCORECARD_HEADER, views.scorecard_rows(run.card)))
    judged = views.judge_rubric_rows(run.path)
    if judged:
        parts += ["\n## LLM judge (rubric scores; unparsed replies are left out, never scored)\n",
                  table(views.JUDGE_RUBRIC_HEADER, judged)]
    parts.append(f"\n## Failed samples (up to {top})\n")
    parts.append(_samples(views.sample_rows(run.records, "failed", top)))
    parts.append(f"\n## Slowest samples (up to {top})\n")
    parts.append(_samples(views.sample_rows(run.records, "slowest", top)))
    return "\n".join(parts)


def compare_md(cmp, *, diff_rows: int = 10) -> str:
    parts = ["# assay compare — " + " vs ".join(r.label for r in cmp.runs) + "\n"]
    for w in cmp.warnings:
        parts.append(f"> **warning:** {w}\n")
    h, rows = views.comparison_table(cmp)
    parts += ["## Comparison\n", table(h, rows)]
    parts += [f"\n## Paired tests (shared samples only, α = {cmp.alpha}, bootstrap seed {cmp.seed})\n",
              table(views.PAIR_HEADER, views.pair_rows(cmp)),
              "\nMDD = minimum detectable difference (points) at this n: a difference below it is noise.\n"]
    if getattr(cmp, "judge", None):
        parts += ["\n## LLM judge, pairwise (both orders; a verdict that flips with the order is a tie)\n",
                  table(views.JUDGE_PAIR_HEADER, views.judge_pair_rows(cmp))]
    if cmp.claims:
        parts += ["\n## Claims\n", table(views.CLAIM_HEADER, views.claim_rows(cmp.claims))]
    parts.append("\n## Where the models disagree\n")
    for p in cmp.pairs:
        if not p.disagreements:
            continue
        parts.append(f"\n### {p.suite}: A = {p.a} vs B = {p.b} ({p.n_disagree} of {p.result.n} differ)\n")
        parts.append(table(["sample", "target", "A score", "A extracted", "B score", "B extracted"],
                           [[f"`{d['sample_id']}`", views.trunc(d["target"], 50), views.num(d["a_score"]),
                             views.trunc(d["a_extracted"], 50) or "—", views.num(d["b_score"]),
                             views.trunc(d["b_extracted"], 50) or "—"] for d in p.disagreements[:diff_rows]]))
    return "\n".join(parts)
