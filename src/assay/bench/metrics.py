"""Latency and throughput aggregates, with vLLM ``bench serve``'s definitions.

- TTFT: intended send → first content chunk.
- ITL: every gap between consecutive content chunks, pooled over all requests.
- TPOT: per request (E2E − TTFT) / (output tokens − 1); requests with < 2 output tokens have none.
- E2E: intended send → end of stream.
- Token counts come from the server's usage chunk, never from chunk counts.
- Throughputs divide by the group's wall duration (first intended send → last completion).
- Goodput: requests per second meeting *every* given SLO (e.g. ttft ≤ 500 ms and tpot ≤ 50 ms).

Example:
    agg = aggregate(results, duration_s=12.3, slo=parse_slo("ttft=500,tpot=50"))
    agg["ttft_s"]["p99"], agg["goodput_rps"]
"""

from __future__ import annotations

import math
import re
from typing import Iterable, Sequence

from assay.errors import AssayError

PERCENTILES = (50, 90, 99)
SLO_KEYS = ("ttft", "tpot", "itl", "e2e")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), so figures match vLLM's np.percentile."""
    if not values:
        return None
    v = sorted(values)
    if len(v) == 1:
        return float(v[0])
    pos = (len(v) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return float(v[lo] + (v[hi] - v[lo]) * (pos - lo))


def summarize(values: Iterable[float | None]) -> dict:
    v = [float(x) for x in values if x is not None]
    if not v:
        return {"n": 0, "mean": None, "median": None, "p90": None, "p99": None, "min": None, "max": None}
    return {"n": len(v), "mean": sum(v) / len(v), "median": percentile(v, 50), "p90": percentile(v, 90),
            "p99": percentile(v, 99), "min": min(v), "max": max(v)}


def parse_slo(text: str | None) -> dict[str, float]:
    """"ttft=500,tpot=50" (milliseconds) -> {"ttft": 0.5, "tpot": 0.05} in seconds. vLLM's ``--goodput`` syntax is
    accepted too: "ttft:500 tpot:50 e2el:2000" (space-separated, ``key:ms``, ``e2el`` for end-to-end)."""
    out: dict[str, float] = {}
    if not text:
        return out
    for part in re.split(r"[,\s]+", text):
        part = part.strip()
        if not part:
            continue
        key, sep, val = part.partition("=") if "=" in part else part.partition(":")
        key = key.strip().lower().removesuffix("_ms")
        key = "e2e" if key == "e2el" else key
        if not sep or key not in SLO_KEYS:
            raise AssayError(f"bad --slo item {part!r}: use e.g. --slo ttft=500,tpot=50 (milliseconds; keys {', '.join(SLO_KEYS)})")
        try:
            ms = float(val.strip().removesuffix("ms"))
        except ValueError:
            raise AssayError(f"bad --slo value {part!r}: a number of milliseconds, e.g. ttft=500") from None
        if ms <= 0:
            raise AssayError(f"bad --slo value {part!r}: must be > 0 ms")
        out[key] = ms / 1000.0
    return out


def meets_slo(r, slo: dict[str, float]) -> bool:
    """A request counts toward goodput when it succeeded and meets every SLO (vLLM: ITL SLO applies to every gap)."""
    if not r.ok:
        return False
    for key, limit in slo.items():
        if key == "ttft":
            v = r.ttft_s
        elif key == "e2e":
            v = r.e2e_s
        elif key == "tpot":
            v = r.tpot_s
            if v is None:  # a single-token answer has no TPOT: it cannot break the SLO
                continue
        else:  # itl
            gaps = r.itl_s
            if any(g > limit for g in gaps):
                return False
            continue
        if v is None or v > limit:
            return False
    return True


def aggregate(results: Sequence, duration_s: float, slo: dict[str, float] | None = None) -> dict:
    """Aggregates for one group (workload × load level). ``results`` are RequestResult-like objects."""
    ok = [r for r in results if r.ok]
    in_tok = sum(r.input_tokens or 0 for r in ok)
    out_tok = sum(r.output_tokens or 0 for r in ok)
    dur = max(duration_s, 1e-9)
    itl: list[float] = []
    for r in ok:
        itl.extend(r.itl_s)
    out = {
        "n": len(results),
        "completed": len(ok),
        "errors": len(results) - len(ok),
        "duration_s": duration_s,
        "input_tokens_total": in_tok,
        "output_tokens_total": out_tok,
        "input_tokens_mean": in_tok / len(ok) if ok else None,
        "output_tokens_mean": out_tok / len(ok) if ok else None,
        "usage_missing": sum(1 for r in ok if r.output_tokens is None),
        "request_throughput": len(ok) / dur,
        "output_throughput": out_tok / dur,
        "total_token_throughput": (in_tok + out_tok) / dur,
        "ttft_s": summarize(r.ttft_s for r in ok),
        "tpot_s": summarize(r.tpot_s for r in ok),
        "itl_s": summarize(itl),
        "e2e_s": summarize(r.e2e_s for r in ok),
        "send_lag_s": summarize(r.send_lag_s for r in results),
    }
    tpot_med = out["tpot_s"]["median"]
    out["decode_tok_s"] = 1.0 / tpot_med if tpot_med else None  # per stream, from the median TPOT
    if slo:
        good = sum(1 for r in ok if meets_slo(r, slo))
        out["slo"] = {k: v for k, v in slo.items()}
        out["good_requests"] = good
        out["goodput_rps"] = good / dur
    return out
