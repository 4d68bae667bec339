"""``assay bench`` orchestration: prepare workloads, run each load level, sample memory, compute the roofline,
cross-check against llama.cpp's log, and write ``runs/<run-id>/`` (manifest.json, requests.jsonl, summary.json).

Example:
    from assay.engines import provide
    with provide(model="smollm2-135m") as eps:
        run = run_bench(eps, BenchOptions(workloads="fixed:16:8", requests=2))
        print(run.run_dir, run.summary["groups"][0]["ttft_s"]["median"])
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from assay.bench.loadgen import closed_loop, open_loop, poisson_offsets
from assay.bench.metrics import aggregate
from assay.bench import vllm_metrics
from assay.bench.sse import RequestResult, SSEPool
from assay.bench.workloads import Prepared, parse_workloads, prepare, request_body
from assay.errors import AssayError, EngineDied

FORCE_ENGINES = ("llama.cpp", "vllm")
QUEUE_NOTE = ("llama-cpp-python serves one request at a time behind a lock: concurrency > 1 measures queueing, "
              "not batching")


@dataclass
class BenchOptions:
    workloads: str = "seed"
    concurrency: list[int] = field(default_factory=lambda: [1])
    rates: list[float] | None = None  # open loop (Poisson) at each rate; None = closed loop
    requests: int | None = None  # per level; default 5 when no duration
    duration_s: float | None = None
    warmup: int = 1
    slo: dict = field(default_factory=dict)
    out: Path = Path("runs")
    seed: int = 0
    cross_check: bool | None = None  # None: when the engine is a local llama.cpp with a log
    roofline: bool = True
    refresh_bandwidth: bool = False
    max_prompts: int = 16  # distinct prompts per workload (cycled)
    timeout_s: float = 600.0


@dataclass
class BenchRun:
    run_id: str
    run_dir: Path
    manifest: dict
    summary: dict
    results: list[dict]


def new_run_id() -> str:
    return f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class _Sender:
    """Round-robin over endpoints with one lean SSE pool each."""

    def __init__(self, endpoints, timeout_s: float):
        self.endpoints = endpoints
        self.pools = [SSEPool(e.base_url, e.api_key, timeout_s=timeout_s) for e in endpoints]
        self.k = 0

    async def send(self, body: dict, t_start: float) -> tuple[RequestResult, str]:
        i = self.k % len(self.pools)
        self.k += 1
        return await self.pools[i].chat(body, t_start), self.endpoints[i].base_url

    async def aclose(self):
        for p in self.pools:
            await p.aclose()


def run_bench(endpoints, opts: BenchOptions, log: Callable[[str], None] | None = None) -> BenchRun:
    return asyncio.run(_run(endpoints, opts, log or (lambda s: None)))


async def _template_overhead(ep, count) -> int:
    """Chat-template cost in tokens: the server's prompt_tokens for a one-word message minus the tokenizer's count of
    that word. Asked without streaming, because llama-cpp-python's stream carries no usage (non-stream replies do)."""
    import httpx

    body = {"model": ep.model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 1,
            "temperature": 0.0}
    headers = {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}
    try:
        async with httpx.AsyncClient(timeout=600.0, headers=headers) as http:
            r = await http.post(f"{ep.base_url}/chat/completions", json=body)
    except httpx.HTTPError as e:
        raise AssayError(f"the endpoint {ep.base_url} failed a first test request: {type(e).__name__}: {e}") from None
    if r.status_code != 200:
        raise AssayError(f"the endpoint {ep.base_url} failed a first test request: HTTP {r.status_code}: {r.text[:200]}")
    prompt = ((r.json() or {}).get("usage") or {}).get("prompt_tokens")
    if prompt is None or count is None:
        return 0
    return max(0, prompt - await count("hello"))


async def _fill_tokens(results, p: Prepared, first_index: int, count, bos: int) -> int:
    """Servers that stream no usage (llama-cpp-python): a reply cut at max_tokens (finish_reason "length") has exactly
    max_tokens; any other is counted by re-tokenizing its text with the server's tokenizer, after the timed run.
    Input is the prompt's size as measured when it was built."""
    filled = 0
    for i, r in enumerate(results):
        if not r.ok or r.output_tokens is not None or count is None:
            continue
        if r.finish_reason == "length":
            # the server stopped exactly at max_tokens: exact, where re-tokenizing the text can merge a token or two
            r.output_tokens = p.spec.output_tokens
            r.tokens_source = "max_tokens"
        else:
            r.output_tokens = max(0, await count(r.text) - bos) if r.text else 0
            r.tokens_source = "tokenizer"
        if r.input_tokens is None:
            g = first_index + i
            sized = p.prompt_tokens[g % p.n_bench]
            if sized is not None and g >= p.n_bench and not p.spec.suite:
                sized += max(0, await count(f"{g}. ") - bos)  # the uniqueness prefix (approximate)
            r.input_tokens = sized
        filled += 1
    return filled


async def _run(endpoints, opts: BenchOptions, log) -> BenchRun:
    from assay.bench import roofline as rl
    from assay.bench.resources import MemorySampler, machine_info
    from assay.client import Client

    ep = endpoints[0]
    specs = parse_workloads(opts.workloads)
    run_id = new_run_id()
    run_dir = Path(opts.out) / run_id
    created_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    notes: list[str] = []
    local = ep.pid is not None
    machine = machine_info()

    # Bandwidth first: it loads the memory bus and must not overlap the timed requests (cached after once).
    bandwidth = None
    if opts.roofline:
        on_gpu = ep.engine == "vllm" and bool(machine["gpus"])
        if local or ep.engine == "llama.cpp" and ep.base_url.startswith(("http://127.", "http://localhost")):
            log("measuring memory bandwidth (once per machine, cached)..." if not on_gpu else "measuring GPU bandwidth...")
            bandwidth = rl.memory_bandwidth("gpu" if on_gpu else "cpu", refresh=opts.refresh_bandwidth)
        else:
            notes.append("roofline: the engine is remote, so this machine's bandwidth says nothing about it (n/a)")
    machine["bandwidth"] = bandwidth

    tok_client = Client(endpoints)  # the served model's tokenizer, outside every timed path
    toks = await tok_client.tokenize("hello")
    count = None
    if toks is not None:
        async def count(text: str) -> int:
            return await tok_client.count_tokens(text)
    else:
        notes.append("the server has no tokenizer endpoint: inputs sized by estimate; actual sizes are the server's usage")

    force = ep.engine in FORCE_ENGINES
    if not force:
        notes.append(f"engine {ep.engine!r}: output length not forced (ignore_eos/min_tokens may be rejected); "
                     "reported as measured")

    sender = _Sender(endpoints, opts.timeout_s)
    records: list[dict] = []
    groups: list[dict] = []
    sampler = MemorySampler(pid=ep.pid).start()
    try:
        overhead = await _template_overhead(ep, count)
        bos = await count("") if count else 0  # a tokenizer that adds BOS counts it in every call
        levels: list[tuple[int | None, float | None]]
        if opts.rates:
            levels = [(max(opts.concurrency) if opts.concurrency != [1] else None, r) for r in opts.rates]
        else:
            levels = [(c, None) for c in opts.concurrency]
        n_req = opts.requests if opts.requests is not None else (None if opts.duration_s else 5)
        if any((c or 1) > 1 or r for c, r in levels) and ep.engine == "llama.cpp":
            notes.append(QUEUE_NOTE)
        prepared: list[Prepared] = []
        for spec in specs:
            n_prompts = max(2, min(opts.max_prompts, (n_req or opts.max_prompts) + opts.warmup))
            log(f"preparing {spec.name} ({n_prompts} prompt(s))...")
            # one extra, never-sent prompt for the cross-check (a prefix cache would hide its prompt evaluation)
            p = await prepare(spec, n_prompts=n_prompts + 1, context=ep.context, count=count,
                              template_overhead=overhead, seed=opts.seed)
            prepared.append(p)
            notes.extend(f"{spec.name}: {n}" for n in p.notes)

        for p in prepared:
            issued = 0  # requests of this workload so far, across levels: each gets its own prompt
            for conc, rate in levels:
                label = f"rate {rate:g}/s" if rate else f"concurrency {conc}"
                log(f"running {p.spec.name} at {label}...")
                k = [issued]

                def body_for(i: int) -> dict:
                    return request_body(ep.model, p.message_for(i), p.spec, force=force)

                async def send_warm(i: int, t: float):
                    r, _ = await sender.send(body_for(k[0] + i), t)
                    return r

                if opts.warmup:
                    await closed_loop(send_warm, opts.warmup, min(opts.warmup, conc or 1))
                k[0] = issued + opts.warmup
                sampler.window()
                metrics0 = await vllm_metrics.before_group(endpoints)  # vLLM: its own figures for these requests
                where: dict[int, str] = {}

                async def send(i: int, t: float):
                    r, url = await sender.send(body_for(k[0] + i), t)
                    where[i] = url
                    return r

                if rate:
                    n = n_req or max(1, int(round(rate * (opts.duration_s or 10))))
                    offsets = poisson_offsets(rate, n, seed=opts.seed)
                    results, dur = await open_loop(send, offsets, max_concurrency=conc)
                else:
                    results, dur = await closed_loop(send, n_req, conc or 1, duration_s=opts.duration_s)
                issued = k[0] + len(results)
                for e in endpoints:  # an engine we started that died: say how, not "N requests failed"
                    fate = e.fate() if e.fate else None
                    if fate:
                        raise EngineDied(f"the engine died during the benchmark ({p.spec.name} at {label}): {fate}")
                rss, gpu = sampler.window()
                engine_metrics = await vllm_metrics.after_group(endpoints, metrics0, results)
                if await _fill_tokens(results, p, k[0], count, bos):
                    notes.append("the server streamed no usage (llama-cpp-python ignores stream_options): output "
                                 "tokens = max_tokens for replies cut there (finish_reason length), else the reply "
                                 "re-tokenized with the server's tokenizer; input tokens = prompt sizes measured with it")
                agg = aggregate(results, dur, opts.slo)
                g = {"workload": p.spec.name, "concurrency": conc, "rate": rate,
                     "input_tokens_target": p.input_tokens, "output_tokens_target": p.spec.output_tokens,
                     "forced": force and p.spec.forced, **agg,
                     "memory": {"peak_rss": rss, "peak_gpu": gpu}}
                if engine_metrics:
                    g["vllm_metrics"] = engine_metrics
                short = [r for r in results if r.ok and force and p.spec.forced and r.finish_reason != "length"
                         and r.output_tokens is not None and r.output_tokens < p.spec.output_tokens]
                if short:
                    notes.append(f"{p.spec.name}: {len(short)} request(s) stopped before {p.spec.output_tokens} "
                                 "output tokens although forced (the engine ignored ignore_eos/min_tokens)")
                groups.append(g)
                for i, r in enumerate(results):
                    records.append(_record(run_id, p.spec.name, conc, rate, i, r, p.spec.output_tokens, where.get(i)))

        crosscheck = None
        want_cc = opts.cross_check if opts.cross_check is not None else (ep.engine == "llama.cpp" and bool(ep.log_path))
        if want_cc:
            crosscheck = await _cross_check(sender, ep, prepared[0], force, count, bos)
            if crosscheck.get("error"):
                notes.append(f"cross-check: {crosscheck['error']}")
    finally:
        sampler.stop()
        await sender.aclose()
        await tok_client.aclose()

    roof = None
    if opts.roofline:
        roof = _roofline(ep, bandwidth, groups)
    summary = {"run_id": run_id, "kind": "bench", "model": ep.model, "engine": ep.engine,
               "groups": groups,
               "memory": {"peak_rss": sampler.peak_rss, "peak_gpu": sampler.peak_gpu,
                          "rss_source": "engine process tree (psutil)" if ep.pid else "n/a (engine not local)",
                          "gpu_source": "NVML, whole device" if machine["gpus"] else "n/a (no NVIDIA GPU)"},
               "roofline": roof, "crosscheck": crosscheck, "notes": _dedupe(notes),
               "definitions": "vLLM bench serve: TTFT; TPOT=(E2E-TTFT)/(out-1); ITL pooled gaps; usage token counts"}
    manifest = {"kind": "bench", "run_id": run_id, "created_at": created_at,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": ep.model, "engine": ep.engine,
                "engine_version": ep.engine_version,
                "endpoints": [{"base_url": e.base_url, "model": e.model, "engine": e.engine,
                               "engine_version": e.engine_version, "context": e.context, "local": e.pid is not None,
                               "extra": {k: v for k, v in (e.extra or {}).items()
                                         if k in ("gguf", "threads", "weight_bytes", "llama_amx")}}
                              for e in endpoints],
                "workload": {"spec": opts.workloads, "workloads": [p.to_dict() for p in prepared],
                             "template_overhead_tokens": overhead, "output_forced": force,
                             "concurrency": opts.concurrency, "rates": opts.rates, "requests": n_req,
                             "duration_s": opts.duration_s, "warmup": opts.warmup, "seed": opts.seed,
                             "slo": opts.slo, "client": "assay.bench.sse (lean asyncio SSE)"},
                "machine": machine, "counts": {"requests": len(records),
                                               "ok": sum(1 for r in records if r["ok"])}}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_json_default))
    with open(run_dir / "requests.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r, default=_json_default) + "\n")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    return BenchRun(run_id, run_dir, manifest, summary, records)


def _dedupe(xs: list[str]) -> list[str]:
    seen, out = set(), []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, float) and (math.isinf(o) or math.isnan(o)):
        return str(o)
    raise TypeError(type(o).__name__)


def _record(run_id, workload, conc, rate, i, r: RequestResult, requested, endpoint) -> dict:
    return {"run_id": run_id, "workload": workload, "concurrency": conc, "rate": rate, "index": i,
            "input_tokens": r.input_tokens, "output_tokens": r.output_tokens, "requested_output_tokens": requested,
            "ttft_s": r.ttft_s, "e2e_s": r.e2e_s, "tpot_s": r.tpot_s, "itl_s": r.itl_s, "ok": r.ok, "error": r.error,
            "status": r.status, "finish_reason": r.finish_reason, "tokens_source": r.tokens_source,
            "started_at": r.started_at,
            "send_lag_s": r.send_lag_s, "endpoint": endpoint}


def _roofline(ep, bandwidth: dict | None, groups: list[dict]) -> dict:
    from assay.bench import roofline as rl

    facts = rl.model_facts(ep)
    bw = (bandwidth or {}).get("bytes_per_s")
    per = []
    for g in groups:
        if (g["concurrency"] or 1) != 1 or g["rate"]:
            continue  # the bound is for one stream
        ctx = (g["input_tokens_mean"] or 0) + (g["output_tokens_mean"] or 0) / 2
        r = rl.roofline(bw, facts, decode_tok_s=g["decode_tok_s"], context_tokens=ctx)
        per.append({"workload": g["workload"], **r})
    return {"bandwidth_bytes_per_s": bw, "bandwidth": bandwidth, **facts, "per_workload": per,
            "note": "single-stream decode bound = bandwidth ÷ (weight bytes + KV bytes read at mean context)"}


async def _cross_check(sender: _Sender, ep, p: Prepared, force: bool, count, bos: int) -> dict:
    from assay.bench import crosscheck as cc

    if not ep.log_path or not Path(ep.log_path).is_file():
        return {"error": "no engine log to read (the engine was not started by assay)"}
    before = cc.read_blocks(ep.log_path)
    body = request_body(ep.model, p.messages[-1], p.spec, force=force)
    r, _ = await sender.send(body, time.perf_counter())
    if not r.ok:
        return {"error": f"request failed: {r.error}"}
    if r.output_tokens is None and count is not None:
        r.output_tokens = p.spec.output_tokens if r.finish_reason == "length" else max(0, await count(r.text) - bos)
        r.input_tokens = p.prompt_tokens[-1]
    after: list[dict] = []
    for _ in range(20):  # the server logs right after the stream ends; give it a moment
        await asyncio.sleep(0.1)
        after = cc.read_blocks(ep.log_path)
        if len(after) > len(before):
            break
    d = cc.request_delta(before, after)
    if d is None:
        return {"error": "no llama_perf_context_print lines in the engine log (is the server verbose?)"}
    return {"workload": p.spec.name, **cc.compare(r, d), "engine_counters_cumulative": d["cumulative"]}
