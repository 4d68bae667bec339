"""Tables as plain rows of strings, shared by the terminal (rich), Markdown and HTML writers so all three say the
same thing. Each function returns (header, rows)."""

from __future__ import annotations

from typing import Any

from assay.evals.base import Record
from assay.stats import format_p


def pct(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{100 * v:.{digits}f}"


def ci(lo: float | None, hi: float | None, digits: int = 1) -> str:
    return "—" if lo is None or hi is None else f"[{100 * lo:.{digits}f}, {100 * hi:.{digits}f}]"


def num(v: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def mem(b: float | None) -> str:
    if b is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if b < 1024 or unit == "TiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024
    return "—"


def _scale(entry: dict) -> bool:
    """Whether a score is a proportion to show in % (0..1)."""
    v, hi = entry.get("value"), entry.get("high")
    return v is not None and 0 <= v <= 1 and (hi is None or hi <= 1)


def score_cell(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "—"
    if _scale(entry):
        return f"{pct(entry['value'])} {ci(entry.get('low'), entry.get('high'))} n={entry.get('n')}"
    lo, hi = entry.get("low"), entry.get("high")
    band = "" if lo is None else f" [{lo:.3g}, {hi:.3g}]"
    return f"{entry['value']:.3g}{band} n={entry.get('n')}"


SCORECARD_HEADER = ["suite", "category", "metric", "score %", "95 % CI", "n", "errors", "truncated", "unparsed"]


def scorecard_rows(card: dict) -> list[list[str]]:
    rows = []
    for suite, s in (card.get("suites") or {}).items():
        rows.append(_card_row(suite, "all", s.get("metric", ""), s))
        cats = s.get("categories") or {}
        if len(cats) > 1:
            rows.extend(_card_row("", c, "", cs) for c, cs in cats.items())
        for mname, m in (s.get("metrics") or {}).items():
            if isinstance(m, dict) and m.get("value") is not None:  # a metric with nothing to measure is noise
                rows.append(_card_row("", "", mname, {**m, "errors": "", "truncated": "", "unparsed": ""}))
    return rows


def _card_row(suite: str, cat: str, metric: str, s: dict) -> list[str]:
    if _scale(s):
        value, band = pct(s.get("value")), ci(s.get("low"), s.get("high"))
    else:
        value = num(s.get("value"), "{:.3g}")
        band = "—" if s.get("low") is None else f"[{s['low']:.3g}, {s['high']:.3g}]"
    return [suite, cat, metric, value, band, str(s.get("n", "")), str(s.get("errors", "")),
            str(s.get("truncated", "")), str(s.get("unparsed", ""))]


def sample_rows(records: list[Record], kind: str, limit: int = 15) -> list[Record]:
    """'failed': records not scored full marks (errors, truncated, unparsed, wrong), failures of the harness first;
    'slowest': by end-to-end seconds."""
    if kind == "slowest":
        recs = [r for r in records if r.e2e_s is not None]
        recs.sort(key=lambda r: -r.e2e_s)
        return recs[:limit]
    order = {"error": 0, "truncated": 1, "unparsed": 2, "ok": 3}

    def failed(r: Record) -> bool:
        return r.status != "ok" or (r.value is not None and r.value < 1.0)

    recs = [r for r in records if failed(r)]
    recs.sort(key=lambda r: (order.get(r.status, 4), r.value or 0))
    return recs[:limit]


def run_header(run) -> list[tuple[str, str]]:
    m, fp = run.manifest, run.fingerprint
    params = fp.get("params") or {}
    keep = ("temperature", "top_p", "max_tokens", "seed")
    shown = ", ".join(f"{k}={params[k]}" for k in keep if params.get(k) is not None)
    return [("run", run.run_id), ("model", run.model),
            ("engine", f"{fp.get('engine', '?')} {fp.get('engine_version') or ''}".strip()),
            ("sampling", shown or "—"), ("seed / limit", f"{_dash(fp.get('seed'))} / {'all' if fp.get('limit') is None else fp['limit']}"),
            ("status", m.status), ("created", m.created_at), ("wall", num(m.wall_s, "{:.1f} s")),
            ("fingerprint", m.fingerprint_hash or "—"),
            ("folder", str(run.path))]


def comparison_table(cmp) -> tuple[list[str], list[list[str]]]:
    """The seeds' shape: one row per model (run), one column per dimension (suites, then speed and cost)."""
    header = ["model"] + [f"{s} %" for s in cmp.suites] + ["TTFT s", "decode tok/s", "peak mem", "tokens / correct"]
    rows = []
    for r in cmp.runs:
        sp = r.speed()
        rows.append([r.label] + [score_cell(r.suites.get(s)) for s in cmp.suites]
                    + [num(sp.get("ttft_s"), "{:.3f}"), num(sp.get("decode_tok_s"), "{:.1f}"),
                       mem(sp.get("peak_mem_bytes")), _per_correct(sp)])
    return header, rows


PAIR_HEADER = ["suite", "A", "B", "n shared", "A %", "B %", "A − B [95 % CI]", "p", "win/tie/loss", "MDD",
               "verdict"]


def pair_rows(cmp) -> list[list[str]]:
    rows = []
    for p in cmp.pairs:
        r = p.result
        if r.n == 0:
            rows.append([p.suite, p.a, p.b, "0", "—", "—", "—", "—", "—", "—", r.verdict])
            continue
        diff = f"{100 * r.diff:+.1f} [{100 * r.low:+.1f}, {100 * r.high:+.1f}]"
        rows.append([p.suite, p.a, p.b, str(r.n), pct(r.mean_a), pct(r.mean_b), diff,
                     f"{format_p(r.p)} ({'McNemar' if r.binary else 'perm.'})", f"{r.wins}/{r.ties}/{r.losses}",
                     "—" if r.mdd is None else f"{100 * r.mdd:.1f}", r.verdict])
    return rows


CLAIM_HEADER = ["claim", "run", "measured % [95 % CI]", "claim's own CI", "verdict", "why"]


def claim_rows(checks) -> list[list[str]]:
    rows = []
    for c in checks:
        measured = "—" if c.measured is None else f"{pct(c.measured)} {ci(c.low, c.high)} n={c.measured_n}"
        own = ci(c.claim_low, c.claim_high) + (f" n={c.claim.n}" if c.claim.n else "")
        rows.append([c.claim.text, c.run or "—", measured, own if c.claim_low is not None else "—", c.verdict,
                     c.reason])
    return rows


def _per_correct(sp: dict) -> str:
    if sp.get("tokens_per_correct") is not None:
        return f"{sp['tokens_per_correct']:.0f}"
    if sp.get("completion_tokens") and not sp.get("correct"):
        return "∞ (0 correct)"
    return "—"


def _dash(v: Any) -> str:
    return "—" if v is None else str(v)


def trunc(s: Any, n: int = 300) -> str:
    if s is None:
        s = ""
    elif not isinstance(s, str):
        import json

        s = json.dumps(s, ensure_ascii=False, default=str)
    return s if len(s) <= n else s[: n - 1] + "…"


# ---- LLM judges (assay.judge) ----------------------------------------------------------------------------------------
JUDGE_PAIR_HEADER = ["A", "B", "judge", "n", "win / tie / loss (A)", "(W − L) / n [95 % CI]", "verdict",
                     "position consistency", "length A − B (chars)"]
JUDGE_RUBRIC_HEADER = ["rubric", "judge", "suite", "mean 1–5 [95 % CI]", "n", "distribution 1…5", "unparsed"]


def judge_pair_rows(cmp) -> list[list[str]]:
    rows = []
    for j in getattr(cmp, "judge", None) or []:
        s = j["pairwise"]
        pc = s["position_consistency"]
        ld = s["length_diff_chars"]
        rows.append([j["a"], j["b"], j["judge_model"], str(s["n"]), f"{s['wins']} / {s['ties']} / {s['losses']}",
                     f"{s['diff']:+.2f} [{s['low']:+.2f}, {s['high']:+.2f}]" if s["n"] else "—", s["verdict"],
                     f"{pc['value']:.0%} (n = {pc['n']})" if pc["value"] is not None else "—",
                     f"{ld['value']:+.0f}" if ld["value"] is not None else "—"])
    return rows


def judge_rubric_rows(run_dir) -> list[list[str]]:
    """Rubric judge passes stored in a run folder (judge.json + judgements.jsonl), one row per pass × suite."""

    from assay.judge.run import judgements, read_index
    from assay.judge.summary import rubric_summary

    rows = []
    for pid, p in read_index(run_dir)["passes"].items():
        if p.get("kind") != "rubric":
            continue
        for suite, s in rubric_summary(judgements(run_dir, pid)).items():
            rows.append([f"{p['template']}.v{p['template_version']}", p["judge_model"], suite,
                         f"{s['value']:.2f} [{s['low']:.2f}, {s['high']:.2f}]" if s["value"] is not None else "—",
                         str(s["n"]), " ".join(f"{k}:{v}" for k, v in s["distribution"].items()),
                         str(s["unparsed"])])
    return rows
