"""The model review (``assay review``) as one self-contained HTML page, a Markdown twin and one JSON file, in the
source documents' order: 1 identity and architecture, 2 capabilities by dimension, 3 models side by side (every
difference tested, Holm-corrected; quality × speed; claims), 4 speed at the documents' three workloads, 5 hardware
fit, 6 judge-rated qualities, 7 how to deploy what was measured. A part that could not be measured is printed as a
named gap with its reason.

The page and its twin are rendered from one list of blocks (``sections``), so both say the same thing. Nothing here
calls a model: the review dict comes from ``assay.flows.review``.

Example:
    from assay.report.review import write_review
    paths = write_review(review, "reviews/smollm2")     # review.html, review.md, review.json
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from assay.report import views

SECTIONS = (("identity", "1. Identity and architecture"), ("capabilities", "2. Capabilities by dimension"),
            ("comparison", "3. Models side by side"), ("speed", "4. Speed"), ("hardware", "5. Hardware fit"),
            ("judge", "6. Judge-rated qualities"), ("deploy", "7. How to deploy what was measured"))


# ---- blocks: ("p", text) | ("note", text) | ("gap", text) | ("table", header, rows, cls) | ("svg", svg, caption)
#              | ("code", text) | ("h3", text)
def _gb(b) -> str:
    return views.mem(b)


def _ms(s) -> str:
    return "—" if s is None else f"{s * 1000:.0f}" if s >= 1 else f"{s * 1000:.1f}"


def _score(e: dict | None) -> str:
    if not e or e.get("value") is None:
        return "—"
    return views.score_cell(e)


def _int(x) -> str:
    return "—" if x is None else f"{int(x):,}"


def identity_blocks(review: dict) -> list:
    out: list = []
    rows = []
    keys = [("type", "type"), ("parameters", "parameters"), ("layers", "layers"), ("attention", "gqa"),
            ("head dim", "head_dim"), ("hidden size", "hidden_size"), ("native context", "context"),
            ("quantisation", "quantisation"), ("source", "source")]
    models = review["models"]
    for name, k in keys:
        row = [name]
        for m in models:
            a = m.get("architecture") or {}
            v = a.get(k)
            row.append(_int(v) if isinstance(v, int) and k not in ("layers", "head_dim") else "—" if v is None else str(v))
        rows.append(row)
    for name, k in (("weights sha256", "weights_sha256"), ("quantisation (served)", "quantisation"),
                    ("chat template sha256", "chat_template_sha256"), ("tokenizer sha256", "tokenizer_sha256"),
                    ("server facts sha256", "remote_sha256")):
        if any((m.get("identity") or {}).get(k) for m in models):
            rows.append([name] + [str((m.get("identity") or {}).get(k) or "—") for m in models])
    rows.append(["served as"] + [str(m.get("served_model") or m.get("model") or "—") for m in models])
    rows.append(["engine"] + [" ".join(x for x in (m.get("engine"), m.get("engine_version")) if x) or "—"
                              for m in models])
    out.append(("table", ["", *[m["label"] for m in models]], rows, "identity"))
    for m in models:
        if not m.get("architecture"):
            out.append(("gap", f"{m['label']}: architecture unknown — "
                        + _reason(review, "identity", m["label"], "architecture")))
    return out


def _reason(review: dict, section: str, model: str | None, what: str | None = None) -> str:
    for g in review.get("gaps", []):
        if g["section"] == section and g["model"] == model and (what is None or g["what"] == what):
            return g["reason"]
    return "not measured"


def capability_blocks(review: dict) -> list:
    models = [m["label"] for m in review["models"]]
    b = review["budget"]
    out: list = [("note", f"budget {b['name']}: greedy (temperature 0), max {b['max_tokens']} new tokens, seed "
                          f"{review.get('seed', 0)}, the same sampling for every model. Each cell: score % [95 % "
                          "interval] n — Wilson for pass/fail scores, bootstrap for continuous ones; errors are left "
                          "out of n and counted.")]
    rows = []
    for d in review["dimensions"]:
        row = [d["title"]]
        for lab in models:
            cell = d["cells"].get(lab) or {}
            if "gap" in cell:
                row.append(f"gap: {cell['gap']}")
                continue
            parts = []
            for e in cell.get("suites", []):
                fail = [f"{e[k]} {k}" for k in ("errors", "truncated", "unparsed") if e.get(k)]
                parts.append(f"{e['suite']} {e.get('metric') or ''}: {_score(e)}"
                             + (f" ({', '.join(fail)})" if fail else ""))
            row.append("; ".join(parts) or "—")
        names = []
        for s in d["suites"]:
            names.append(f"{s['suite']} ({s['data']}" + (f", {s['limit']} samples" if s.get("limit") else "") + ")")
        row.append(", ".join(names) or "LLM judge (section 6)")
        rows.append(row)
    out.append(("table", ["dimension", *models, "suites and data"], rows, "capabilities"))
    for d in review["dimensions"]:
        for g in d.get("suite_gaps") or []:
            out.append(("gap", f"{d['title']}: {g}"))
        for lab in models:
            cell = d["cells"].get(lab) or {}
            if "gap" in cell and d["suites"]:
                out.append(("gap", f"{d['title']} · {lab}: {cell['gap']}"))
    extra = []
    for d in review["dimensions"]:
        for lab in models:
            for e in (d["cells"].get(lab) or {}).get("suites", []):
                for name, mt in (e.get("metrics") or {}).items():
                    extra.append([d["title"], lab, e["suite"], name, _score(mt)])
    if extra:
        out.append(("h3", "Further metrics of the same answers"))
        out.append(("table", ["dimension", "model", "suite", "metric", "value [95 % CI] n"], extra, "metrics"))
    return out


def comparison_blocks(review: dict) -> list:
    cmp = review.get("comparison") or {}
    models = [m["label"] for m in review["models"]]
    out: list = []
    if len(models) < 2:
        out.append(("gap", "one model reviewed: nothing to compare side by side (give several models: "
                           "assay review MODEL_A MODEL_B)"))
    else:
        out.append(("note", f"Paired on the shared samples of each suite: A − B in points with a paired bootstrap "
                            f"95 % interval; p from exact McNemar (pass/fail) or a paired sign-flip test "
                            f"(continuous); Holm-corrected over all {cmp.get('family_size', 0)} comparisons of this "
                            f"review. \"real\" = Holm-adjusted p < {cmp.get('alpha', 0.05)}; anything else is not "
                            "distinguishable from noise at this n (MDD: the smallest difference this n could show)."))
        rows = []
        for p in cmp.get("pairs", []):
            d, lo, hi = p.get("diff"), p.get("low"), p.get("high")
            rows.append([p["dimension"], p["suite"], f"{p['a']} vs {p['b']}", str(p.get("n")),
                         "—" if d is None or d != d else f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]",
                         f"{p.get('wins')}/{p.get('ties')}/{p.get('losses')}",
                         views.pct(p.get("mdd")) if p.get("mdd") is not None else "—",
                         views.format_p(p["p"]) if p.get("p") == p.get("p") else "—",
                         views.format_p(p["p_holm"]), p["verdict"]])
        if rows:
            out.append(("table", ["dimension", "suite", "A vs B", "n", "A − B points [95 % CI]", "win/tie/loss",
                                  "MDD", "p", "p (Holm)", "difference"], rows, "pairs"))
        else:
            out.append(("gap", "no suite was measured on two models: no paired test"))
        for w in cmp.get("warnings", []):
            out.append(("note", f"⚠ {w}"))
    out.append(("h3", "Quality × speed"))
    pts = [(c["model"], c.get("decode_tok_s"), None if c.get("score") is None else 100 * c["score"])
           for c in review.get("chart", [])]
    svg = None
    if any(x is not None and y is not None for _, x, y in pts):
        try:
            from assay.report.charts import pareto_chart

            svg = pareto_chart(pts)
        except Exception:
            svg = None
    rows = [[lab, "—" if y is None else f"{y:.1f}", "—" if x is None else f"{x:.1f}"] for lab, x, y in pts]
    out.append(("table", ["model", "mean headline score % (all measured suites)", "decode tok/s (daily Q&A, c=1)"],
                rows, "quality-speed"))
    if svg:
        out.append(("svg", svg, "Mean headline score against single-stream decode speed; dashed = Pareto front."))
    else:
        out.append(("gap", "quality × speed chart: no model has both a score and a measured decode speed"))
    out.append(("h3", "Published claims"))
    cl = review.get("claims") or {}
    if cl.get("checks"):
        for f in cl.get("files", []):
            out.append(("note", f"{f['model']}: {f['file']} ({f.get('source') or 'no source given'})"))
        rows = []
        for c in cl["checks"]:
            claim = c["claim"]
            meas = "—" if c.get("measured") is None else (
                f"{100 * c['measured']:.1f} [{100 * c['low']:.1f}, {100 * c['high']:.1f}] n={c.get('measured_n')}")
            rows.append([c["model"], claim["text"], claim.get("suite") or "—", meas, c["verdict"], c.get("reason")])
        out.append(("table", ["model", "claim", "suite", "measured % [95 % CI]", "verdict", "why"], rows, "claims"))
    else:
        out.append(("gap", "claims: " + (cl.get("note") or "no claims file")))
    return out


def _per_model(out: list, section: dict | None):
    """Each model's entry of a review section, after its heading; a model whose entry is a gap gets the gap line and
    is not yielded."""
    for lab, entry in (section or {}).items():
        out.append(("h3", lab))
        if "gap" in entry:
            out.append(("gap", f"{lab}: {entry['gap']}"))
        else:
            yield lab, entry


def speed_blocks(review: dict) -> list:
    out: list = []
    for lab, s in _per_model(out, review.get("speed")):
        mach = s.get("machine") or {}
        where = (f"measured on {mach.get('cpu') or 'an unknown CPU'}, {mach.get('cores_logical')} logical cores, "
                 f"{_gb(mach.get('memory_total'))} RAM"
                 + (f", GPU {', '.join(mach['gpus'])}" if mach.get("gpus") else ", no GPU")
                 + f"; {s.get('engine')} {s.get('engine_version') or ''}, context {s.get('context') or '—'}"
                 + ("" if s.get("local", True) else " (remote engine: the machine is the client's)")
                 + f"; bench run {s.get('run_id')}")
        out.append(("note", where))
        rows = []
        for r in s["rows"]:
            mem = _gb(r.get("peak_gpu") or r.get("peak_rss")) if (r.get("peak_gpu") or r.get("peak_rss")) else "n/a"
            rows.append([r["label"], f"c={r['concurrency']}", f"{r.get('completed')}/{r.get('n')}",
                         "—" if r.get("input_tokens") is None else f"{r['input_tokens']:.0f}",
                         "—" if r.get("output_tokens") is None else f"{r['output_tokens']:.0f}",
                         _ms(r.get("ttft_p50_s")), _ms(r.get("tpot_p50_s")), _ms(r.get("e2e_p50_s")),
                         _ms(r.get("e2e_p95_s")), views.num(r.get("output_tok_s"), "{:.1f}"),
                         views.num(r.get("request_per_s"), "{:.2f}"), mem])
        out.append(("table", ["workload", "load", "ok", "input tok", "output tok", "TTFT p50 ms", "TPOT p50 ms",
                              "e2e p50 ms", "e2e p95 ms", "output tok/s", "req/s", "engine memory"], rows, "speed"))
        mem = s.get("memory") or {}
        out.append(("note", f"engine memory, whole run: {_gb(mem.get('peak_gpu') or mem.get('peak_rss'))} "
                            f"({mem.get('gpu_source') if mem.get('peak_gpu') else mem.get('rss_source') or 'n/a'}). "
                            "TTFT, TPOT as vLLM bench serve defines them; p95 over the few requests of a small budget "
                            "is close to the maximum."))
        for n in s.get("notes") or []:
            out.append(("note", f"note: {n}"))
    return out


def hardware_blocks(review: dict) -> list:
    out: list = []
    for lab, h in _per_model(out, review.get("hardware")):
        out.append(("note", f"{h['model']}: weights {_gb(h['weights_bytes'])} ({h['weight_source']}); KV cache "
                            f"{h['kv_bytes_per_token']:,.0f} B/token ({h['kv_dtype']}, {h['arch_source']}); "
                            f"{h['utilization']:.0%} of memory for the engine, {_gb(h['headroom'])} headroom "
                            "(assay plan's defaults)."))
        rows = [[r["target"], _gb(r["memory"]), _gb(r["kv_memory"]), _int(r["max_context"]),
                 f"{r['sequences']:,}", "yes" if r["fits"] else "no"] for r in h["rows"]]
        out.append(("table", ["hardware", "memory", "KV space", "largest context", f"sequences @ {h['context']:,}",
                              "fits"], rows, "hardware"))
        meas = h.get("measured")
        if meas:
            out.append(("p", f"Checked against the bench: the engine used {_gb(meas['peak_bytes'])} at a served "
                             f"context of {meas['served_context']:,} ({meas['source']}); the plan's weights + KV "
                             f"cache for that context are {_gb(meas['planned_bytes'])}, "
                             f"{_gb(meas['planned_with_headroom'])} with its headroom — the plan "
                             + ("covers the measured memory." if meas["covered"] else
                                f"falls short by {_gb(meas['peak_bytes'] - meas['planned_with_headroom'])}: raise "
                                "--headroom when planning this engine.")))
        else:
            out.append(("gap", f"{lab}: plan not checked against measured memory — {h.get('measured_note')}"))
    return out


def judge_blocks(review: dict) -> list:
    j = review.get("judge") or {}
    if not j.get("given"):
        return [("gap", f"judge-rated naturalness, translation fluency and code quality are absent: {j.get('reason')}")]
    out: list = [("note", f"judge: {j.get('judge')} ({j.get('judge_model') or '?'}); rubric ratings 1–5, mean with a "
                          "bootstrap 95 % interval; unparsed replies counted, never scored.")]
    if j.get("reason"):
        out.append(("gap", j["reason"]))
    rows = []
    for lab, rubs in (j.get("rubrics") or {}).items():
        for dim, r in rubs.items():
            val = "—" if r.get("value") is None else (
                f"{r['value']:.2f} [{r['low']:.2f}, {r['high']:.2f}] n={r.get('n')}" if r.get("low") is not None
                else f"{r['value']:.2f} n={r.get('n')}")
            rows.append([lab, dim, r["rubric"], val, str(r.get("unparsed") or 0)])
    if rows:
        out.append(("table", ["model", "answers of", "rubric", "rating [95 % CI] n", "unparsed"], rows, "judge"))
    pw = j.get("pairwise") or []
    if pw:
        rows = []
        for p in pw:
            pc = p.get("position_consistency") or {}
            rows.append([f"{p['a']} vs {p['b']}", f"{p.get('wins')}/{p.get('ties')}/{p.get('losses')}",
                         str(p.get("verdict")), _score(pc) if pc else "—"])
        out.append(("table", ["pair (instruction answers, both orders)", "win/tie/loss", "verdict",
                              "position consistency % [95 % CI]"], rows, "pairwise"))
    for w in j.get("warnings") or []:
        out.append(("note", f"⚠ {w}"))
    for g in review.get("gaps", []):
        if g["section"] == "judge":
            out.append(("gap", f"{g['model'] or ''} {g['what']}: {g['reason']}".strip()))
    return out


def deploy_blocks(review: dict) -> list:
    out: list = []
    for lab, d in (review.get("deploy") or {}).items():
        out.append(("h3", lab))
        if d.get("command"):
            out.append(("code", d["command"]))
            facts = d.get("facts") or {}
            shown = {k: v for k, v in facts.items() if not isinstance(v, (dict, list))}
            out.append(("note", f"engine {d.get('engine')} {d.get('engine_version') or ''}; "
                        + ", ".join(f"{k} {v}" for k, v in shown.items())
                        + "; requests as the eval sent them: "
                        + (", ".join(f"{k} {v}" for k, v in (d.get("sampling") or {}).items()) or "—")))
        else:
            out.append(("table", ["endpoint", "engine", "version"],
                        [[u, str(d.get("engine") or "—"), str(d.get("engine_version") or "—")]
                         for u in d.get("endpoints") or []], "deploy"))
            out.append(("note", f"{d.get('note')}."))
    out.append(("note", "assay serve prints the OpenAI-compatible base URL; the same engine options apply to assay "
                        "chat (assay chat --endpoint URL). Practices from the documents: chunk → summarise → "
                        "aggregate for long documents (assay doc summarize), JSON output through response_format "
                        "(the json suite's constrained mode)."))
    return out


def sections(review: dict) -> list[tuple[str, str, list]]:
    fns = {"identity": identity_blocks, "capabilities": capability_blocks, "comparison": comparison_blocks,
           "speed": speed_blocks, "hardware": hardware_blocks, "judge": judge_blocks, "deploy": deploy_blocks}
    out = []
    for key, title in SECTIONS:
        try:
            blocks = fns[key](review)
        except Exception as e:  # a renderer bug is a gap in that section, not a lost review
            blocks = [("gap", f"this section could not be rendered: {type(e).__name__}: {e}")]
        out.append((key, title, blocks))
    return out


def _title(review: dict) -> str:
    return "assay review — " + ", ".join(m["label"] for m in review["models"])


def _header_lines(review: dict) -> list[str]:
    m = review.get("machine") or {}
    return [f"budget {review['budget']['name']} · {review.get('created_at', '')} · "
            f"{m.get('cpu') or '?'} ({m.get('cores_logical')} cores, {_gb(m.get('memory_total'))}"
            + (f", GPU {', '.join(m['gpus'])}" if m.get("gpus") else ", no GPU") + ")",
            f"wall {review.get('wall_s', 0):.0f} s · {review.get('model_calls', 0)} model calls this time, "
            f"{review.get('bench_requests', 0)} bench requests, {review.get('bench_reused', 0)} bench run(s) reused · "
            f"{len(review.get('gaps', []))} gap(s)",
            "command: " + " ".join(review.get("command") or ["(library call)"])]


# ---- HTML -------------------------------------------------------------------------------------------------------------
REVIEW_CSS = """
.gap{background:#f3f3f3;border-left:4px solid #9e9e9e;padding:6px 12px;margin:6px 0;color:#444}
.gap::before{content:"gap · ";font-weight:600}
table.capabilities td{max-width:420px}
section{margin-bottom:24px}
"""


def _html_block(b) -> str:
    from assay.report.html import _table

    kind = b[0]
    if kind == "p":
        return f"<p>{escape(b[1])}</p>"
    if kind == "note":
        return f'<p class="note">{escape(b[1])}</p>'
    if kind == "gap":
        return f'<div class="gap">{escape(b[1])}</div>'
    if kind == "h3":
        return f"<h3>{escape(b[1])}</h3>"
    if kind == "code":
        return f"<pre><code>{escape(b[1])}</code></pre>"
    if kind == "svg":
        return f"<figure>{b[1]}<figcaption>{escape(b[2])}</figcaption></figure>"
    if kind == "table":
        return _table(b[1], b[2], cls=b[3])
    raise ValueError(kind)


def review_html(review: dict) -> str:
    from assay.report.html import CSS, _page

    body = ["<p class=\"note\">" + "<br>".join(escape(x) for x in _header_lines(review)) + "</p>"]
    body.append("<nav><ol>" + "".join(f'<li><a href="#{k}">{escape(t.split(". ", 1)[1])}</a></li>'
                                      for k, t in SECTIONS) + "</ol></nav>")
    for key, title, blocks in sections(review):
        body.append(f'<section id="{key}" data-section="{key}"><h2>{escape(title)}</h2>'
                    + "".join(_html_block(b) for b in blocks) + "</section>")
    page = _page(_title(review), "".join(body))
    return page.replace(f"<style>{CSS}</style>", f"<style>{CSS}{REVIEW_CSS}</style>", 1)


# ---- Markdown ---------------------------------------------------------------------------------------------------------
def _md_cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _md_block(b) -> str:
    kind = b[0]
    if kind == "p":
        return b[1] + "\n"
    if kind == "note":
        return f"*{b[1]}*\n"
    if kind == "gap":
        return f"> **gap** · {b[1]}\n"
    if kind == "h3":
        return f"### {b[1]}\n"
    if kind == "code":
        return f"```bash\n{b[1]}\n```\n"
    if kind == "svg":
        return f"*(chart in review.html: {b[2]})*\n"
    if kind == "table":
        head, rows = b[1], b[2]
        lines = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    raise ValueError(kind)


def review_md(review: dict) -> str:
    out = [f"# {_title(review)}\n", *(f"{x}  " for x in _header_lines(review)), ""]
    for key, title, blocks in sections(review):
        out.append(f"## {title}\n")
        out += [_md_block(b) for b in blocks]
    return "\n".join(out)


def write_review(review: dict, out_dir: str | Path) -> dict[str, Path]:
    from assay.report import _write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "review.html", "md": out / "review.md", "json": out / "review.json"}
    _write(paths["json"], json.dumps(review, indent=2, default=str, ensure_ascii=False) + "\n")
    _write(paths["md"], review_md(review))
    _write(paths["html"], review_html(review))
    return paths
