"""Self-contained HTML pages: inline CSS, charts as inline SVG, no script, no CDN, no external file of any kind —
the page opens the same offline, from an e-mail attachment or a CI artifact."""

from __future__ import annotations

import datetime as _dt
from html import escape

from assay.report import charts, views

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1200px;
color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin-top:20px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.suite td{font-weight:600;background:#fafafa}
.warn{background:#fff4e5;border-left:4px solid #ff9800;padding:8px 12px;margin:8px 0}
.note{color:#666;font-size:12px}
.better td:last-child{color:#b00020;font-weight:600}.tied td:last-child{color:#555}
.consistent td:nth-child(5){color:#1b5e20;font-weight:600}.inconsistent td:nth-child(5){color:#b00020;font-weight:600}
.nottestable td:nth-child(5){color:#777}
mark{background:#ffeb3b;padding:0 2px}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre{white-space:pre-wrap;word-break:break-word;background:#f8f8f8;padding:6px;margin:4px 0;max-height:320px;
overflow:auto}
.status-error{color:#d62728;font-weight:600}.status-truncated{color:#e65100;font-weight:600}
.status-unparsed{color:#6a1b9a;font-weight:600}.status-ok{color:#2e7d32}
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.charts figure{margin:0}.charts svg{max-width:100%;height:auto}
figcaption{font-size:12px;color:#555;max-width:640px}
.side{display:grid;grid-template-columns:1fr 1fr;gap:8px}
"""


def _page(title: str, body: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1><p class=\"note\">written by assay {stamp}</p>{body}</body></html>\n")


def _table(header: list[str], rows: list[list[str]], *, cls: str = "", row_cls=None, raw_cols=()) -> str:
    out = [f'<table class="{cls}"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in header)
           + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        rc = row_cls(i, row) if row_cls else ""
        cells = []
        for j, c in enumerate(row):
            txt = c if j in raw_cols else escape(str(c))
            num = ' class="num"' if _numeric(str(c)) else ""
            cells.append(f"<td{num}>{txt}</td>")
        out.append(f'<tr class="{rc}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _numeric(s: str) -> bool:
    s = s.strip()
    return bool(s) and (s[0].isdigit() or s[0] in "+-—[") and len(s) < 40


def _figure(svg: str | None, caption: str) -> str:
    if not svg:
        return ""
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def highlight(text: str | None, extracted: str | None, limit: int = 1500) -> str:
    """Escaped text with the last occurrence of the extracted answer wrapped in <mark> (what the scorer read)."""
    if text is None:
        return '<span class="note">(no completion)</span>'
    t = text
    if len(t) > limit:  # keep the end: that is where answers are
        t = "…" + t[-limit:]
    if extracted:
        i = t.rfind(extracted)
        if i >= 0:
            return escape(t[:i]) + "<mark>" + escape(extracted) + "</mark>" + escape(t[i + len(extracted):])
    return escape(t)


def _samples_table(records: list) -> str:
    if not records:
        return '<p class="note">none</p>'
    out = ['<table class="samples"><thead><tr><th>suite / sample</th><th>status</th><th>score</th><th>target</th>'
           "<th>extracted</th><th>e2e s / tokens</th><th>completion (the extracted answer highlighted)</th>"
           "</tr></thead><tbody>"]
    for r in records:
        s = r.score
        ex = s.extracted if s else None
        st = r.status
        detail = escape(r.error or (s.reason if s else "") or "")
        out.append(
            f"<tr><td>{escape(str(r.suite))}<br><code>{escape(str(r.sample_id))}</code>"
            f"<br><span class=\"note\">{escape(str(r.category or ''))}</span></td>"
            f'<td><span class="status-{escape(st)}">{escape(st)}</span><br><span class="note">{detail}</span></td>'
            f'<td class="num">{views.num(s.value if s else None, "{:.2f}")}</td>'
            f"<td><code>{escape(views.trunc(r.target, 120))}</code></td>"
            f"<td>{'<mark>' + escape(views.trunc(ex, 120)) + '</mark>' if ex else '<span class=note>—</span>'}</td>"
            f'<td class="num">{views.num(r.e2e_s, "{:.2f}")} / {r.completion_tokens or "—"}</td>'
            f"<td><pre>{highlight(r.completion, ex)}</pre></td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def report_html(run, *, top: int = 15) -> str:
    head = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in views.run_header(run))
    rows = views.scorecard_rows(run.card)
    body = [f"<table class=\"meta\">{head}</table>"] + [f'<div class="warn">{escape(n)}</div>' for n in run.notes] + [
            "<h2>Scorecard</h2>",
            '<p class="note">score over non-error samples with its 95 % interval (Wilson for proportions, bootstrap '
            "otherwise); errors are left out of n, truncated and unparsed answers are scored as the scorer said and "
            "counted beside.</p>",
            _table(views.SCORECARD_HEADER, rows, cls="scorecard", row_cls=lambda i, r: "suite" if r[0] else ""),
            '<h2>Charts</h2><div class="charts">',
            _figure(charts.scorecard_chart(run.card), "Score per suite and category with 95 % intervals."),
            _figure(charts.timing_chart(run.records),
                    "Completion tokens vs end-to-end time per sample, by status."),
            "</div>",
            f"<h2>Failed samples</h2><p class=\"note\">errors, truncated, unparsed, then wrong answers; up to {top}."
            "</p>", _samples_table(views.sample_rows(run.records, "failed", top)),
            f"<h2>Slowest samples</h2><p class=\"note\">by end-to-end seconds; up to {top}.</p>",
            _samples_table(views.sample_rows(run.records, "slowest", top))]
    return _page(f"assay report — {run.label}", "".join(body))


def _mark(extracted) -> str:
    if not extracted:
        return '<span class="note">nothing</span>'
    return f"<mark>{escape(views.trunc(extracted, 80))}</mark>"


def _verdict_cls(i, row) -> str:
    v = row[-1]
    return "better" if v.endswith("better") else "tied"


def compare_html(cmp, *, diff_rows: int = 20) -> str:
    body = ["<h2>Runs</h2>"]
    body.append(_table(["label", "run", "model", "engine", "sampling", "seed / limit"],
                       [[r.label] + [dict(views.run_header(r))[k] for k in ("run", "model", "engine", "sampling",
                                                                             "seed / limit")] for r in cmp.runs]))
    for w in cmp.warnings + [f"{r.label}: {n}" for r in cmp.runs for n in r.notes]:
        body.append(f'<div class="warn">⚠ {escape(w)}</div>')
    h, rows = views.comparison_table(cmp)
    body += ["<h2>Comparison</h2>",
             '<p class="note">score % [95 % interval] n=… per suite; speed from bench runs of the same model when '
             "present, else from the eval requests' own timings; tokens / correct = completion tokens spent ÷ "
             "correct answers.</p>", _table(h, rows, cls="comparison")]
    body += ["<h2>Paired tests</h2>",
             f'<p class="note">On the shared sample ids only. A − B with a paired bootstrap 95 % interval (seed '
             f"{cmp.seed}); p: exact McNemar (binary) or paired sign-flip permutation (continuous); verdict at α = "
             f"{cmp.alpha}. MDD = minimum detectable difference for that n (80 % power, and never below the 6 "
             "one-way discordant pairs exact McNemar needs): differences smaller than it are noise at this n.</p>",
             _table(views.PAIR_HEADER, views.pair_rows(cmp), cls="pairs", row_cls=_verdict_cls)]
    notes = [f"{p.suite} {p.a} vs {p.b}: {n}" for p in cmp.pairs for n in p.result.notes]
    if notes:
        body.append("<ul class=\"note\">" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    if cmp.claims:
        body += ["<h2>Claims</h2>",
                 _table(views.CLAIM_HEADER, views.claim_rows(cmp.claims), cls="claims",
                        row_cls=lambda i, r: r[4].replace(" ", ""))]
    speed_pts = []
    for r in cmp.runs:
        vals = [e["value"] for e in r.suites.values() if e.get("value") is not None]
        speed_pts.append((r.label, r.speed().get("decode_tok_s"), sum(vals) / len(vals) if vals else None))
    body += ['<h2>Charts</h2><div class="charts">',
             _figure(charts.compare_bars(cmp.runs, cmp.suites), "Score per suite and run, 95 % intervals."),
             _figure(charts.forest_chart(cmp.pairs),
                     "Paired differences with bootstrap 95 % intervals; grey band = ± minimum detectable difference."),
             _figure(charts.radar_chart(cmp.runs, cmp.suites), "Scores across suites."),
             _figure(charts.pareto_chart(speed_pts),
                     "Accuracy vs decode throughput; dashed = Pareto front (nothing both faster and better)."),
             "</div>"]
    if len(cmp.suites) < 3:
        body.append('<p class="note">radar chart left out: it needs at least three suites.</p>')
    if not any(x is not None for _, x, _ in speed_pts):
        body.append('<p class="note">accuracy-vs-throughput chart left out: no timings in the runs and no bench '
                    "run of these models (pass --bench RUN).</p>")
    body.append("<h2>Where the models disagree</h2>")
    any_rows = False
    for p in cmp.pairs:
        if not p.disagreements:
            continue
        any_rows = True
        body.append(f"<h3>{escape(p.suite)}: A = {escape(p.a)} vs B = {escape(p.b)} — {p.n_disagree} of "
                    f"{p.result.n} shared samples differ"
                    + (f" (first {min(diff_rows, len(p.disagreements))} shown)" if p.n_disagree > diff_rows else "")
                    + "</h3>")
        body.append('<table class="diff"><thead><tr><th>sample</th><th>prompt / target</th><th>A</th><th>B</th>'
                    "</tr></thead><tbody>")
        for d in p.disagreements[:diff_rows]:
            body.append(
                f"<tr><td><code>{escape(d['sample_id'])}</code><br><span class=note>{escape(str(d['category']))}"
                f"</span></td><td><pre>{escape(views.trunc(d['prompt'], 400))}</pre>target: "
                f"<code>{escape(views.trunc(d['target'], 120))}</code></td>"
                + "".join(f"<td>score {views.num(d[k + '_score'], '{:.2f}')} · "
                          f"<span class=\"status-{escape(str(d[k + '_status']))}\">{escape(str(d[k + '_status']))}"
                          f"</span> · extracted {_mark(d[k + '_extracted'])}"
                          f"<pre>{highlight(d[k + '_completion'], d[k + '_extracted'], 800)}</pre></td>"
                          for k in ("a", "b")) + "</tr>")
        body.append("</tbody></table>")
    if not any_rows:
        body.append('<p class="note">no shared sample is scored differently.</p>')
    title = "assay compare — " + " vs ".join(r.label for r in cmp.runs)
    return _page(title, "".join(body))
