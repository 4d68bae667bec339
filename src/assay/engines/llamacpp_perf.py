"""The llama.cpp engine's bench cross-check: our client-side timings against llama.cpp's own, for the same request
(``LlamaCppEngine.request_probe``; the benchmark calls it through ``engines.request_probe`` and knows nothing of it).

llama-cpp-python (verbose, the server default) prints ``llama_perf_context_print`` after every completion:

    llama_perf_context_print: prompt eval time =      41.27 ms /    57 tokens (    0.72 ms per token, ...)
    llama_perf_context_print:        eval time =     712.40 ms /    99 runs   (    7.20 ms per token, ...)

Measured with llama-cpp-python 0.3.36: the counters restart for every completion (each block is that request's own
figures; "total time" restarts too). ``request_delta`` still handles a build whose counters accumulate.
Its prompt-eval figure covers only the tokens *not* served from its prefix cache ("Llama.generate: N prefix-match
hit, remaining M prompt tokens to eval"), so the cross-check sends a prompt the server has not seen.

Our TTFT also contains HTTP, chat templating, tokenizing, the first sampling step and SSE delivery; our TPOT also
contains sampling and detokenizing per token. The differences printed are therefore the serving overhead on top of
llama.cpp's compute.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from assay.engines import Probe

_P = re.compile(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
_E = re.compile(r"(?<!prompt )eval time =\s*([\d.]+) ms /\s*(\d+) runs")


def perf_blocks(text: str) -> list[dict]:
    """Every (prompt eval, eval) pair in order of appearance."""
    out, pending = [], None
    for line in text.splitlines():
        if "llama_perf_context_print" not in line:
            continue
        m = _P.search(line)
        if m:
            pending = {"prompt_ms": float(m.group(1)), "prompt_tokens": int(m.group(2))}
            continue
        m = _E.search(line)
        if m and pending is not None:
            pending.update(eval_ms=float(m.group(1)), eval_runs=int(m.group(2)))
            out.append(pending)
            pending = None
    return out


def request_delta(before: list[dict], after: list[dict], cumulative: bool = False) -> dict | None:
    """The last request's own figures: its block, or (``cumulative`` counters) its block minus the one before."""
    if len(after) <= len(before) or not after:
        return None
    new = after[-1]
    old = before[-1] if before else None
    if cumulative and old is not None:
        d = {k: new[k] - old[k] for k in new}
        d["cumulative"] = True
    else:
        d = dict(new)
        d["cumulative"] = False
    return d


def log_size(path: str | None) -> int:
    try:
        return Path(path).stat().st_size if path else 0
    except OSError:
        return 0


def read_blocks(path: str) -> list[dict]:
    try:
        return perf_blocks(Path(path).read_text(errors="replace"))
    except OSError:
        return []


def compare(result, engine: dict) -> dict:
    """Our figures vs the engine's, in milliseconds. ``result`` is a RequestResult."""
    ttft_ms = result.ttft_s * 1000 if result.ttft_s is not None else None
    tpot_ms = result.tpot_s * 1000 if result.tpot_s is not None else None
    eng_prompt = engine["prompt_ms"]
    eng_tpot = engine["eval_ms"] / engine["eval_runs"] if engine.get("eval_runs") else None
    out = {
        "ours": {"ttft_ms": ttft_ms, "tpot_ms": tpot_ms, "output_tokens": result.output_tokens,
                 "input_tokens": result.input_tokens},
        "engine": {"prompt_eval_ms": eng_prompt, "prompt_tokens_evaluated": engine["prompt_tokens"],
                   "eval_ms": engine["eval_ms"], "eval_runs": engine["eval_runs"], "ms_per_token": eng_tpot},
        "ttft_minus_prompt_eval_ms": (ttft_ms - eng_prompt) if ttft_ms is not None else None,
        "tpot_minus_engine_ms": (tpot_ms - eng_tpot) if tpot_ms is not None and eng_tpot else None,
    }
    if tpot_ms and eng_tpot:
        out["tpot_ratio"] = tpot_ms / eng_tpot
    return out


class LogProbe(Probe):
    """The perf blocks in the engine's log before one unseen request, then the block that request added."""

    def __init__(self, log_path: str | None, polls: int = 20, poll_s: float = 0.1):
        self.log_path, self.polls, self.poll_s = log_path, polls, poll_s
        self.blocks: list[dict] = []

    async def before(self) -> str | None:
        if not self.log_path or not Path(self.log_path).is_file():
            return "no engine log to read (the engine was not started by assay)"
        self.blocks = read_blocks(self.log_path)
        return None

    async def after(self, results: list) -> dict | None:
        after: list[dict] = []
        for _ in range(self.polls):  # the server logs right after the stream ends; give it a moment
            await asyncio.sleep(self.poll_s)
            after = read_blocks(self.log_path)
            if len(after) > len(self.blocks):
                break
        d = request_delta(self.blocks, after)
        if d is None:
            return {"error": "no llama_perf_context_print lines in the engine log (is the server verbose?)"}
        return {**compare(results[-1], d), "engine_counters_cumulative": d["cumulative"]}


def _num(x, fmt: str = "{:.1f}") -> str:
    return "–" if x is None else fmt.format(x)


def line(cc: dict) -> str:
    """One printable line: ours vs llama.cpp's log for the cross-check request."""
    o, e = cc["ours"], cc["engine"]
    return (f"cross-check vs llama.cpp's log, one unseen {cc['workload']} request: "
            f"TTFT {_num(o['ttft_ms'])} ms vs prompt eval {_num(e['prompt_eval_ms'])} ms over "
            f"{e['prompt_tokens_evaluated']} tokens ({_num(cc['ttft_minus_prompt_eval_ms'], '{:+.1f}')} ms); "
            f"TPOT {_num(o['tpot_ms'], '{:.2f}')} ms vs eval {_num(e['ms_per_token'], '{:.2f}')} ms/token "
            f"over {e['eval_runs']} runs ({_num(cc['tpot_minus_engine_ms'], '{:+.2f}')} ms)")
