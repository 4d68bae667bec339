"""Charts for reports as inline SVG strings (matplotlib, Agg backend): no files, no CDN, no JavaScript.

Each function returns an ``<svg …>`` string, or None when there is nothing honest to draw (e.g. a radar needs at
least three suites; a Pareto chart needs speed numbers). Text stays text (``svg.fonttype = none``) so the HTML is
small and searchable, and each chart gets its own hash salt so the ids of two inline SVGs never collide.

Example:
    from assay.report import charts
    svg = charts.scorecard_chart(run.card)       # '<svg ...>...</svg>'
"""

from __future__ import annotations

import io
import itertools
import math
import re

_counter = itertools.count()

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
STATUS_COLOURS = {"ok": "#2ca02c", "truncated": "#ff7f0e", "unparsed": "#9467bd", "error": "#d62728"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _svg(fig, name: str) -> str:
    import matplotlib

    plt = _plt()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"assay-{name}-{next(_counter)}"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    s = buf.getvalue()
    s = s[s.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG is inlined into HTML
    # Prefix every id (and its references) with the chart's name, so several charts in one page never share one.
    prefix = f"{name}{next(_counter)}-"
    s = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', s)
    s = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}{m.group(1)})", s)
    s = re.sub(r'((?:xlink:)?href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"', s)
    return s.replace("<svg ", f'<svg class="chart" data-chart="{name}" role="img" ', 1)


def _pct(v):
    return None if v is None else 100.0 * v


def scorecard_chart(card: dict) -> str | None:
    """Horizontal bars: each suite (bold) and its categories, with the 95 % interval as an error bar."""
    rows = []
    for suite, s in (card.get("suites") or {}).items():
        rows.append((suite, s, True))
        cats = s.get("categories") or {}
        if len(cats) > 1:
            rows.extend((f"  {c}", cs, False) for c, cs in cats.items())
    rows = [r for r in rows if r[1].get("value") is not None]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(rows) + 1.2))
    ys = list(range(len(rows)))[::-1]
    for y, (label, s, top) in zip(ys, rows):
        v = s["value"]
        scale = 100.0 if s.get("low") is not None and s["high"] <= 1.0 and v <= 1.0 else 1.0
        lo, hi = s.get("low"), s.get("high")
        err = None if lo is None else [[scale * (v - lo)], [scale * (hi - v)]]
        ax.barh(y, scale * v, color="#1f77b4" if top else "#9ecae1", xerr=err, capsize=3, ecolor="#333")
        ax.text(scale * (hi if hi is not None else v) + 1, y, f"{scale * v:.1f}  (n={s.get('n')})", va="center",
                fontsize=8)
    ax.set_yticks(ys, [r[0] for r in rows], fontsize=9)
    ax.set_xlim(0, 118)
    ax.set_xlabel("score (%) with 95 % interval")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "scorecard")


def timing_chart(records: list) -> str | None:
    """Completion tokens vs end-to-end seconds per sample, coloured by status (truncations stand out at the cap)."""
    pts = [(r.completion_tokens, r.e2e_s, r.status) for r in records
           if r.completion_tokens is not None and r.e2e_s is not None]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for status, colour in STATUS_COLOURS.items():
        sel = [(x, y) for x, y, s in pts if s == status]
        if sel:
            ax.scatter([x for x, _ in sel], [y for _, y in sel], s=14, color=colour, label=f"{status} ({len(sel)})",
                       alpha=0.8)
    ax.set_xlabel("completion tokens")
    ax.set_ylabel("end-to-end seconds")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "timing")


def compare_bars(runs: list, suites: list[str]) -> str | None:
    """Grouped bars: suites × runs, each with its own 95 % interval."""
    if not suites:
        return None
    plt = _plt()
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(suites) + 2), 3.8))
    for i, r in enumerate(runs):
        xs, vs, errs = [], [], [[], []]
        for j, s in enumerate(suites):
            e = r.suites.get(s)
            if not e or e.get("value") is None:
                continue
            xs.append(j + (i - (len(runs) - 1) / 2) * width)
            vs.append(100 * e["value"])
            lo, hi = e.get("low"), e.get("high")
            errs[0].append(0 if lo is None else 100 * (e["value"] - lo))
            errs[1].append(0 if hi is None else 100 * (hi - e["value"]))
        ax.bar(xs, vs, width=width * 0.95, yerr=errs, capsize=3, color=PALETTE[i % len(PALETTE)], label=r.label)
        for x, v in zip(xs, vs):  # the value on the axis too, so a 0 % bar is seen, not mistaken for a missing one
            ax.text(x, 1, f"{v:.0f}", ha="center", va="bottom", fontsize=7, color="white" if v > 8 else "#333")
    ax.set_xticks(range(len(suites)), suites)
    ax.set_ylabel("score (%) with 95 % interval")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "compare")


def forest_chart(pairs: list) -> str | None:
    """Paired differences A − B (points) with their bootstrap 95 % intervals; the shaded band is ± the minimum
    detectable difference — a point inside it is within what this n can tell apart from noise."""
    cells = [p for p in pairs if p.result.n > 0]
    if not cells:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(cells) + 1.2))
    ys = list(range(len(cells)))[::-1]
    for y, p in zip(ys, cells):
        r = p.result
        if r.mdd is not None:
            ax.fill_betweenx([y - 0.35, y + 0.35], -100 * r.mdd, 100 * r.mdd, color="#ddd", zorder=0)
        better = r.verdict.endswith("better")
        ax.errorbar(100 * r.diff, y, xerr=[[100 * (r.diff - r.low)], [100 * (r.high - r.diff)]], fmt="o",
                    color="#d62728" if better else "#555", capsize=3)
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_yticks(ys, [f"{p.suite}: {p.a} − {p.b}" for p in cells], fontsize=8)
    ax.set_xlabel("difference A − B (points), paired bootstrap 95 % interval; grey = ± min. detectable diff.")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "forest")


def radar_chart(runs: list, suites: list[str]) -> str | None:
    """Each run's score per suite on a polar axis. Needs three suites or more to be a shape."""
    if len(suites) < 3:
        return None
    plt = _plt()
    angles = [2 * math.pi * i / len(suites) for i in range(len(suites))]
    fig = plt.figure(figsize=(5.2, 5.2))
    ax = fig.add_subplot(projection="polar")
    for i, r in enumerate(runs):
        vals = [100 * (r.suites.get(s) or {}).get("value", 0.0) if (r.suites.get(s) or {}).get("value") is not None
                else 0.0 for s in suites]
        ax.plot(angles + angles[:1], vals + vals[:1], color=PALETTE[i % len(PALETTE)], label=r.label)
        ax.fill(angles + angles[:1], vals + vals[:1], color=PALETTE[i % len(PALETTE)], alpha=0.12)
    ax.set_xticks(angles, suites)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, frameon=False, loc="upper right", bbox_to_anchor=(1.3, 1.1))
    return _svg(fig, "radar")


def pareto_chart(points: list[tuple[str, float, float]]) -> str | None:
    """Accuracy (mean over suites, %) against decode throughput (tok/s); the line joins the Pareto-optimal runs
    (no other run is both faster and more accurate)."""
    pts = [(label, x, y) for label, x, y in points if x is not None and y is not None]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    front = pareto_front([(x, y) for _, x, y in pts])
    for i, (label, x, y) in enumerate(pts):
        ax.scatter([x], [100 * y], s=50, color=PALETTE[i % len(PALETTE)], zorder=3,
                   edgecolor="black" if (x, y) in front else "none")
        # alternate label offsets so runs with similar numbers do not print on top of each other
        ax.annotate(label, (x, 100 * y), textcoords="offset points", xytext=(6, 4 + 11 * (i % 3)), fontsize=8)
    fr = sorted(front)
    if len(fr) > 1:
        ax.plot([x for x, _ in fr], [100 * y for _, y in fr], ls="--", color="#888", zorder=1, label="Pareto front")
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel("decode tokens / s")
    ax.set_ylabel("mean score over suites (%)")
    ax.set_xlim(left=0)
    ax.set_ylim(0, 105)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "pareto")


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated by another (higher-or-equal in both x and y, strictly higher in one)."""
    return [p for p in points
            if not any(q[0] >= p[0] and q[1] >= p[1] and (q[0] > p[0] or q[1] > p[1]) for q in points)]
