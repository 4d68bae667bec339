"""The vLLM engine's bench cross-check: a benchmark group against vLLM's own ``/metrics`` (Prometheus text) for the
same requests (``VLLMEngine.group_probe``; the benchmark calls it through ``engines.group_probe``).

We scrape ``/metrics`` right before a group's timed requests (after its warm-up) and right after, and diff the
counters and histogram sums/counts, so the engine's figures cover exactly the requests we timed (nothing else may use
the server meanwhile). Compared, as means over the group:

- TTFT: ours (request sent -> first streamed token, client side) vs ``vllm:time_to_first_token_seconds`` (the engine's
  arrival -> first token). Ours also holds HTTP, chat templating, tokenizing and SSE delivery, so it is a little higher.
- TPOT: ours ``(E2E - TTFT) / (out - 1)`` per request vs ``vllm:request_time_per_output_token_seconds`` (same
  definition, engine side).
- Tokens: the usage the server streamed to us vs ``vllm:prompt_tokens_total`` / ``vllm:generation_tokens_total``, and
  our completed requests vs ``vllm:request_success_total``. These should match exactly.

Example:
    before = await scrape(ep.root); ...timed requests...; after = await scrape(ep.root)
    print(line(compare(diff(before, after), results)))
"""

from __future__ import annotations

import math
import re


from assay.engines import Probe
from assay.engines._crosscheck import ours as measured
from assay.engines._crosscheck import pct

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")

COUNTERS = {"prompt_tokens": "vllm:prompt_tokens_total", "output_tokens": "vllm:generation_tokens_total",
            "requests": "vllm:request_success_total"}
HISTOGRAMS = {"ttft": "vllm:time_to_first_token_seconds", "tpot": "vllm:request_time_per_output_token_seconds",
              "itl": "vllm:inter_token_latency_seconds", "e2e": "vllm:e2e_request_latency_seconds"}


def parse(text: str) -> dict[str, float]:
    """Prometheus text -> {metric name: value summed over every label set} (only vllm:* samples)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        if not math.isnan(v):
            out[m.group(1)] = out.get(m.group(1), 0.0) + v
    return out


async def scrape(root: str, headers: dict | None = None) -> dict[str, float] | None:
    """The server's metrics this engine reads, or None when it has no /metrics."""
    from assay.engines._crosscheck import metrics_text

    text = await metrics_text(root, headers)
    return None if text is None else parse(text)


def diff(before: dict[str, float], after: dict[str, float]) -> dict:
    """What the engine counted between two scrapes: counter deltas and histogram means (seconds)."""
    d: dict = {k: after.get(name, 0.0) - before.get(name, 0.0) for k, name in COUNTERS.items()}
    for k, name in HISTOGRAMS.items():
        n = after.get(f"{name}_count", 0.0) - before.get(f"{name}_count", 0.0)
        s = after.get(f"{name}_sum", 0.0) - before.get(f"{name}_sum", 0.0)
        d[f"{k}_n"] = n
        d[f"{k}_mean_s"] = s / n if n > 0 else None
    return d


def compare(engine: dict, results) -> dict:
    """Ours (RequestResult list of one group) vs the engine's diff; differences in % of the engine's figure."""
    ours = measured(results)
    return {"ours": ours, "engine": engine,
            "diff_pct": {"ttft": pct(ours["ttft_mean_s"], engine["ttft_mean_s"]),
                         "tpot": pct(ours["tpot_mean_s"], engine["tpot_mean_s"]),
                         "prompt_tokens": pct(ours["prompt_tokens"], engine["prompt_tokens"]),
                         "output_tokens": pct(ours["output_tokens"], engine["output_tokens"]),
                         "requests": pct(ours["requests"], engine["requests"])}}


def line(label: str, cc: dict) -> str:
    """One printable line: ours vs vLLM's /metrics for a group."""
    o, e, d = cc["ours"], cc["engine"], cc["diff_pct"]

    def ms(x):
        return "–" if x is None else f"{x * 1000:.1f}"

    def pc(x):
        return "–" if x is None else f"{x:+.1f} %"

    return (f"cross-check vs vLLM /metrics, {label}: TTFT {ms(o['ttft_mean_s'])} vs {ms(e['ttft_mean_s'])} ms "
            f"({pc(d['ttft'])}); TPOT {ms(o['tpot_mean_s'])} vs {ms(e['tpot_mean_s'])} ms ({pc(d['tpot'])}); "
            f"prompt tokens {o['prompt_tokens']} vs {e['prompt_tokens']:.0f} ({pc(d['prompt_tokens'])}); "
            f"output tokens {o['output_tokens']} vs {e['output_tokens']:.0f} ({pc(d['output_tokens'])}); "
            f"requests {o['requests']} vs {e['requests']:.0f}")


def _headers(ep) -> dict:
    return {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}


class MetricsProbe(Probe):
    """Scrape before a group's timed requests, then again (briefly waiting until vLLM's stats include every finished
    request: the engine records a request's figures just after it ends) and compare. Its mapping is the group's
    ``vllm_metrics``."""

    key = "vllm_metrics"

    def __init__(self, ep, wait_s: float = 3.0):
        self.ep, self.wait_s = ep, wait_s
        self.before_scrape: dict | None = None

    async def before(self) -> str | None:
        self.before_scrape = await scrape(self.ep.root, _headers(self.ep))
        return None if self.before_scrape is not None else "the server has no /metrics"

    async def after(self, results: list) -> dict | None:
        import asyncio
        import time

        if self.before_scrape is None:
            return None
        n_ok = sum(1 for r in results if r.ok)
        deadline = time.monotonic() + self.wait_s
        while True:
            after = await scrape(self.ep.root, _headers(self.ep))
            if after is None:
                return {self.key: {"error": "the server stopped answering /metrics"}}
            d = diff(self.before_scrape, after)
            if d["requests"] >= n_ok and d["ttft_n"] >= n_ok or time.monotonic() > deadline:
                return {self.key: compare(d, results)}
            await asyncio.sleep(0.1)


def probe_for(endpoints) -> MetricsProbe | None:
    """The probe, when the group runs on one endpoint that serves Prometheus /metrics (several would need one each)."""
    if len(endpoints) != 1 or not endpoints[0].caps.metrics:
        return None
    return MetricsProbe(endpoints[0])
