"""Bench results in the names other tools use: ``vllm bench serve``'s result JSON, and CSV of the groups.

``vllm_results(records, groups)`` gives, per group (workload × load level), a dict with exactly the keys
``vllm bench serve --save-result`` writes (vLLM 0.32 ``vllm/benchmarks/serve.py``): ``duration``, ``completed``,
``failed``, ``total_input_tokens``, ``total_output_tokens``, ``request_throughput``, ``request_goodput``,
``output_throughput``, ``total_token_throughput``, ``input_lens``, ``output_lens``, ``ttfts``, ``itls``,
``latencies``, ``errors``, ``max_concurrent_requests`` and ``mean_/median_/std_/p99_`` × ``ttft/tpot/itl/e2el`` in
milliseconds, computed from the stored requests with vLLM's definitions (TPOT per request = (latency − TTFT) ÷
(output − 1), ITL pooled over requests, numpy-style percentiles, population std). assay's own names stay in
``summary.json``; this file sits beside them as ``vllm_bench.json``.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Iterable

from assay.bench.metrics import meets_slo, percentile
from assay.common import tpot_s

VLLM_KEYS = ("duration", "completed", "failed", "total_input_tokens", "total_output_tokens", "request_throughput",
             "request_goodput", "output_throughput", "total_token_throughput", "input_lens", "output_lens", "ttfts",
             "itls", "latencies", "errors", "max_concurrent_requests")
METRICS = ("ttft", "tpot", "itl", "e2el")
PERCENTILES = (99,)


def _stats(values_s: list[float]) -> dict[str, float]:
    v = [x * 1000.0 for x in values_s] or [0.0]  # vLLM reports 0 for an empty list (np.mean(values or 0))
    mean = sum(v) / len(v)
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / len(v))
    return {"mean": mean, "median": percentile(v, 50), "std": std, **{f"p{p}": percentile(v, p) for p in PERCENTILES}}


def vllm_result(records: list, group: dict, slo: dict[str, float] | None = None) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    dur = group.get("duration_s") or 0.0
    in_tok = sum(r.input_tokens or 0 for r in ok)
    out_tok = sum(r.output_tokens or 0 for r in ok)
    tpots = [t for t in (tpot_s(r.e2e_s, r.ttft_s, r.output_tokens) for r in ok) if t is not None]
    itls = [g for r in ok for g in (r.itl_s or [])]
    out: dict[str, Any] = {
        "duration": dur, "completed": len(ok), "failed": len(records) - len(ok),
        "total_input_tokens": in_tok, "total_output_tokens": out_tok,
        "request_throughput": len(ok) / dur if dur else None,
        "request_goodput": (sum(1 for r in records if meets_slo(r, slo)) / dur) if slo and dur else None,
        "output_throughput": out_tok / dur if dur else None,
        "total_token_throughput": (in_tok + out_tok) / dur if dur else None,
        "input_lens": [r.input_tokens for r in records], "output_lens": [r.output_tokens for r in records],
        "ttfts": [r.ttft_s for r in records], "itls": [list(r.itl_s or []) for r in records],
        "latencies": [r.e2e_s for r in records], "errors": [r.error or "" for r in records],
        "max_concurrent_requests": group.get("concurrency"),
    }
    for name, values in (("ttft", [r.ttft_s for r in ok if r.ttft_s is not None]), ("tpot", tpots), ("itl", itls),
                         ("e2el", [r.e2e_s for r in ok if r.e2e_s is not None])):
        for stat, v in _stats(values).items():
            out[f"{stat}_{name}_ms"] = v
    out["assay"] = {"workload": group.get("workload"), "concurrency": group.get("concurrency"),
                    "rate": group.get("rate")}
    return out


def vllm_results(records: Iterable, groups: list[dict], slo: dict[str, float] | None = None) -> list[dict]:
    """One vLLM-named result per group, matching the stored requests to their group by workload and level."""
    recs = list(records)
    out = []
    for g in groups:
        mine = [r for r in recs if r.workload == g.get("workload") and r.concurrency == g.get("concurrency")
                and r.rate == g.get("rate")]
        out.append(vllm_result(mine, g, slo))
    return out


GROUP_COLUMNS = ("workload", "concurrency", "rate", "completed", "errors", "input_tokens_mean", "output_tokens_mean",
                 "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p99", "itl_ms_p99", "e2e_ms_p50", "e2e_ms_p99",
                 "decode_tok_s", "output_throughput", "request_throughput", "goodput_rps", "peak_rss")


def groups_csv(groups: list[dict]) -> str:
    """The bench groups as CSV (milliseconds for latencies), one row per workload × load level."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(GROUP_COLUMNS)
    for g in groups:
        def ms(key, stat):
            v = (g.get(key) or {}).get(stat)
            return None if v is None else round(v * 1000, 3)

        w.writerow([g.get("workload"), g.get("concurrency"), g.get("rate"), g.get("completed"), g.get("errors"),
                    g.get("input_tokens_mean"), g.get("output_tokens_mean"), ms("ttft_s", "median"),
                    ms("ttft_s", "p99"), ms("tpot_s", "median"), ms("tpot_s", "p99"), ms("itl_s", "p99"),
                    ms("e2e_s", "median"), ms("e2e_s", "p99"), g.get("decode_tok_s"), g.get("output_throughput"),
                    g.get("request_throughput"), g.get("goodput_rps"), (g.get("memory") or {}).get("peak_rss")])
    return buf.getvalue()


SCORECARD_COLUMNS = ("suite", "category", "metric", "value", "low", "high", "n", "errors", "truncated", "unparsed",
                     "total")


def scorecard_csv(card: dict) -> str:
    """A scorecard as CSV: one row per suite (category "all"), per category, and per corpus metric."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SCORECARD_COLUMNS)
    for suite, s in (card.get("suites") or {}).items():
        cols = ("value", "low", "high", "n", "errors", "truncated", "unparsed", "total")
        w.writerow([suite, "all", s.get("metric")] + [s.get(k) for k in cols])
        for c, cs in (s.get("categories") or {}).items():
            w.writerow([suite, c, s.get("metric")] + [cs.get(k) for k in cols])
        for key, m in (s.get("metrics") or {}).items():
            w.writerow([suite, m.get("category") or "all", m.get("name") or key]
                       + [m.get(k) for k in ("value", "low", "high", "n")] + [None] * 4)
    return buf.getvalue()
