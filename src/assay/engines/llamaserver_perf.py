"""The llama-server engine's bench cross-check: our client-side timings against llama-server's own figures
(``LlamaServerEngine.request_probe`` / ``group_probe``; the benchmark reaches them through ``engines`` only).

Two sources, both llama-server's per-request ``timings`` (``prompt_n / prompt_ms``, ``predicted_n / predicted_ms``,
the object every final response carries):

- **Its log, per request** (an engine assay started). Each finished request prints them (``print_timings``)::

      slot print_timing: id  0 | task 12 | prompt eval time =      41.27 ms /    57 tokens (...)
      slot print_timing: id  0 | task 12 |        eval time =     712.40 ms /    99 tokens (...)

  One unseen request after the groups is compared with its block (``LogProbe``), like llama-cpp-python's.
- **``/metrics``, per group** (``--metrics``; also a running server recognised by ``/props``): the ``llamacpp:*``
  counters are summed over finished requests' timings (``prompt_tokens_total`` excluding cached,
  ``prompt_tokens_cached_total``, ``prompt_seconds_total``, ``tokens_predicted_total``,
  ``tokens_predicted_seconds_total``, ``n_decode_total``), scraped right before and after a group's timed requests
  and diffed (``MetricsProbe``). Token counts must match ours exactly; the engine's generation time per token is
  compared with our TPOT, its prompt time per request with our TTFT (ours also holds HTTP, templating, the wait
  for a free slot and SSE delivery); the mean number of busy slots per decode step says how much it batched.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from pathlib import Path

from assay.engines import Probe
from assay.engines._crosscheck import pct
from assay.engines._crosscheck import ours as measured

_P = re.compile(r"(?:task (\d+) \| )?\s*prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
_E = re.compile(r"(?:task (\d+) \| )?\s*(?<!prompt )eval time =\s*([\d.]+) ms /\s*(\d+) tokens")


def timing_blocks(text: str) -> list[dict]:
    """Every request's (prompt eval, eval) timings in the log, in order of completion."""
    out, pending = [], {}
    for line in text.splitlines():
        if "eval time" not in line:
            continue
        m = _P.search(line)
        if m:
            pending[m.group(1)] = {"prompt_ms": float(m.group(2)), "prompt_tokens": int(m.group(3))}
            continue
        m = _E.search(line)
        if m and m.group(1) in pending:
            block = pending.pop(m.group(1))
            block.update(eval_ms=float(m.group(2)), eval_tokens=int(m.group(3)))
            out.append(block)
    return out


def _read(path: str | None) -> list[dict]:
    try:
        return timing_blocks(Path(path).read_text(errors="replace")) if path else []
    except OSError:
        return []


def compare_request(result, engine: dict) -> dict:
    """Ours (a RequestResult) vs the engine's timings for it, in ms."""
    ttft = result.ttft_s * 1000 if result.ttft_s is not None else None
    tpot = result.tpot_s * 1000 if result.tpot_s is not None else None
    eng_tpot = engine["eval_ms"] / engine["eval_tokens"] if engine.get("eval_tokens") else None
    out = {"ours": {"ttft_ms": ttft, "tpot_ms": tpot, "output_tokens": result.output_tokens,
                    "input_tokens": result.input_tokens},
           "engine": {**engine, "ms_per_token": eng_tpot},
           "ttft_minus_prompt_eval_ms": ttft - engine["prompt_ms"] if ttft is not None else None,
           "tpot_minus_engine_ms": tpot - eng_tpot if tpot is not None and eng_tpot else None,
           "output_tokens_match": result.output_tokens == engine.get("eval_tokens")}
    return out


class LogProbe(Probe):
    """The timing blocks in the log before one unseen request, then the block that request added."""

    key = "llama_server_timings"

    def __init__(self, log_path: str | None, polls: int = 30, poll_s: float = 0.1):
        self.log_path, self.polls, self.poll_s = log_path, polls, poll_s
        self.n = 0

    async def before(self) -> str | None:
        if not self.log_path or not Path(self.log_path).is_file():
            return "no engine log to read (the server was not started by assay): see /metrics per group instead"
        self.n = len(_read(self.log_path))
        return None

    async def after(self, results: list) -> dict | None:
        blocks: list[dict] = []
        for _ in range(self.polls):
            await asyncio.sleep(self.poll_s)
            blocks = _read(self.log_path)
            if len(blocks) > self.n:
                break
        if len(blocks) <= self.n:
            return {"error": "no print_timings lines for the request in llama-server's log"}
        return {"source": self.key, **compare_request(results[-1], blocks[-1])}


# ---- /metrics -----------------------------------------------------------------------------------------------------
_LINE = re.compile(r"^llamacpp:([a-zA-Z0-9_]+)(?:\{[^}]*\})?\s+(\S+)")
COUNTERS = ("prompt_tokens_total", "prompt_tokens_cached_total", "prompt_seconds_total", "tokens_predicted_total",
            "tokens_predicted_seconds_total", "n_decode_total")


def parse(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            try:
                v = float(m.group(2))
            except ValueError:
                continue
            if not math.isnan(v):
                out[m.group(1)] = v
    return out


async def scrape(root: str, headers: dict | None = None) -> dict[str, float] | None:
    """The server's metrics this engine reads, or None when it has no /metrics."""
    from assay.engines._crosscheck import metrics_text

    text = await metrics_text(root, headers)
    return None if text is None else parse(text)


def diff(before: dict, after: dict) -> dict:
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in COUNTERS}
    # n_busy_slots_per_decode is a running mean since start: undo it into totals to get this group's mean batch
    busy = (after.get("n_busy_slots_per_decode", 0.0) * after.get("n_decode_total", 0.0)
            - before.get("n_busy_slots_per_decode", 0.0) * before.get("n_decode_total", 0.0))
    d["busy_slots_per_decode"] = busy / d["n_decode_total"] if d["n_decode_total"] > 0 else None
    return d


def compare_group(d: dict, results) -> dict:
    ours = measured(results)
    n = ours["requests"]
    engine = {"prompt_tokens": d["prompt_tokens_total"] + d["prompt_tokens_cached_total"],
              "prompt_tokens_evaluated": d["prompt_tokens_total"], "output_tokens": d["tokens_predicted_total"],
              "prompt_mean_s": d["prompt_seconds_total"] / n if n else None,
              "tpot_mean_s": (d["tokens_predicted_seconds_total"] / d["tokens_predicted_total"]
                              if d["tokens_predicted_total"] else None),
              "busy_slots_per_decode": d["busy_slots_per_decode"], "decode_steps": d["n_decode_total"]}
    return {"ours": ours, "engine": engine,
            "diff_pct": {"tpot": pct(ours["tpot_mean_s"], engine["tpot_mean_s"]),
                         "prompt_tokens": pct(ours["prompt_tokens"], engine["prompt_tokens"]),
                         "output_tokens": pct(ours["output_tokens"], engine["output_tokens"])}}


class MetricsProbe(Probe):
    """Scrape ``/metrics`` before a group's timed requests and after (waiting briefly until the finished requests are
    counted: a slot's figures are added when it is released, just after its last chunk). The group's key is
    ``llama_server_metrics``."""

    key = "llama_server_metrics"

    def __init__(self, ep, wait_s: float = 3.0):
        self.ep, self.wait_s = ep, wait_s
        self.headers = {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}
        self.before_scrape: dict | None = None

    async def before(self) -> str | None:
        self.before_scrape = await scrape(self.ep.root, self.headers)
        return None if self.before_scrape is not None else "llama-server has no /metrics (start it with --metrics)"

    async def after(self, results: list) -> dict | None:
        if self.before_scrape is None:
            return None
        want = sum(r.output_tokens or 0 for r in results if r.ok)
        deadline = time.monotonic() + self.wait_s
        while True:
            after = await scrape(self.ep.root, self.headers)
            if after is None:
                return {self.key: {"error": "llama-server stopped answering /metrics"}}
            d = diff(self.before_scrape, after)
            if d["tokens_predicted_total"] >= want or time.monotonic() > deadline:
                return {self.key: compare_group(d, results)}
            await asyncio.sleep(0.1)


def _ms(x, fmt="{:.1f}"):
    return "–" if x is None else fmt.format(x * 1000)


def _pc(x):
    return "–" if x is None else f"{x:+.1f} %"


def group_line(label: str, cc: dict) -> str:
    o, e, d = cc["ours"], cc["engine"], cc["diff_pct"]
    busy = e.get("busy_slots_per_decode")
    return (f"cross-check vs llama-server /metrics, {label}: TTFT {_ms(o['ttft_mean_s'])} ms vs prompt eval "
            f"{_ms(e['prompt_mean_s'])} ms per request; TPOT {_ms(o['tpot_mean_s'], '{:.2f}')} vs "
            f"{_ms(e['tpot_mean_s'], '{:.2f}')} ms ({_pc(d['tpot'])}); prompt tokens {o['prompt_tokens']} vs "
            f"{e['prompt_tokens']:.0f}; output tokens {o['output_tokens']} vs {e['output_tokens']:.0f}"
            + (f"; {busy:.2f} busy slots per decode step" if busy is not None else ""))


def request_line(cc: dict) -> str:
    o, e = cc["ours"], cc["engine"]

    def f(x, fmt="{:.1f}"):
        return "–" if x is None else fmt.format(x)

    return (f"cross-check vs llama-server's timings (log), one unseen {cc.get('workload', '')} request: "
            f"TTFT {f(o['ttft_ms'])} ms vs prompt eval {f(e['prompt_ms'])} ms over {e['prompt_tokens']} tokens "
            f"({f(cc['ttft_minus_prompt_eval_ms'], '{:+.1f}')} ms); TPOT {f(o['tpot_ms'], '{:.2f}')} ms vs eval "
            f"{f(e['ms_per_token'], '{:.2f}')} ms/token over {e['eval_tokens']} tokens "
            f"({f(cc['tpot_minus_engine_ms'], '{:+.2f}')} ms)")


def check_lines(summary: dict) -> list[str]:
    out = []
    for g in summary.get("groups", []):
        cc = g.get(MetricsProbe.key)
        if cc and not cc.get("error"):
            load = f"rate {g['rate']:g}/s" if g.get("rate") else f"c={g.get('concurrency')}"
            out.append(group_line(f"{g['workload']} {load}", cc))
    cc = summary.get("crosscheck")
    if cc and not cc.get("error") and cc.get("source") == LogProbe.key:
        out.append(request_line(cc))
    return out
