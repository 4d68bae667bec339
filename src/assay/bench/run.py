"""``assay bench`` orchestration: prepare workloads, run each load level, sample memory, compute the roofline,
cross-check against the engine's own figures (``engines.group_probe`` / ``request_probe``), and write
``runs/<run-id>/`` (manifest.json, requests.jsonl, summary.json).

Example:
    from assay.engines import provide
    with provide(model="smollm2-135m") as eps:
        run = run_bench(eps, BenchOptions(workloads="fixed:16:8", requests=2))
        print(run.run_dir, run.summary["groups"][0]["ttft_s"]["median"])
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from assay import engines
from assay.bench.loadgen import closed_loop, open_loop, poisson_offsets
from assay.bench.metrics import aggregate
from assay.bench.sse import RequestResult, SSEPool
from assay.bench.workloads import Prepared, parse_workloads, prepare, request_body
from assay.errors import AssayError, EngineDied
from assay.bench.peer import vllm_results
from assay.common import write_json_atomic
from assay.store import REQUESTS, BenchManifest, RunStore, iso_now, new_run_id, register_record

QUEUE_NOTE = ("the engine serves one request at a time (llama-cpp-python, behind a lock): concurrency > 1 measures "
              "queueing, not batching")


class RequestRecord(BaseModel):
    """One timed request of a benchmark, as stored in requests.jsonl."""

    model_config = ConfigDict(extra="allow")

    run_id: str = ""
    workload: str = ""
    concurrency: int | None = None
    rate: float | None = None
    index: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    requested_output_tokens: int | None = None
    ttft_s: float | None = None
    e2e_s: float | None = None
    tpot_s: float | None = None
    itl_s: list[float] = []
    ok: bool = True
    error: str | None = None
    status: int | None = None
    finish_reason: str | None = None
    tokens_source: str | None = None
    started_at: float | None = None
    send_lag_s: float | None = None
    endpoint: str | None = None


register_record("bench", RequestRecord)  # what assay.store reads a bench run's requests.jsonl as


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
    manifest: BenchManifest
    summary: dict
    results: list[RequestRecord]


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


@dataclass
class _Bench:
    """What the steps of one benchmark share: the endpoints, options, notes for the report, and the tokenizer."""

    endpoints: list
    opts: BenchOptions
    log: Callable[[str], None]
    notes: list[str] = field(default_factory=list)
    count: Callable | None = None  # text -> tokens with the served model's tokenizer; None: estimates
    bos: int = 0
    force: bool = False
    engine_metrics: dict | None = None  # the last level's cross-check, as the engine names it (engines.group_probe)

    @property
    def ep(self):
        return self.endpoints[0]


async def _run(endpoints, opts: BenchOptions, log) -> BenchRun:
    """Bandwidth → tokenizer → workloads → the timed levels → cross-check → the run folder."""
    from assay.bench.resources import MemorySampler, machine_info
    from assay.client import Client

    b = _Bench(endpoints, opts, log)
    ep = b.ep
    created_at = iso_now()
    machine = machine_info()
    machine["bandwidth"] = _bandwidth(b, machine)  # before any timed request: it loads the memory bus
    tok_client = Client(endpoints)  # the served model's tokenizer, outside every timed path
    await _tokenizer(b, tok_client)
    b.force = ep.caps.forces_output
    if not b.force:
        b.notes.append(f"engine {ep.engine!r}: output length not forced (ignore_eos/min_tokens may be rejected); "
                       "reported as measured")
    sender = _Sender(endpoints, opts.timeout_s)
    sampler = MemorySampler(pid=ep.pid).start()
    try:
        overhead = await _template_overhead(ep, b.count)
        b.bos = await b.count("") if b.count else 0  # a tokenizer that adds BOS counts it in every call
        levels, n_req = _levels(b)
        prepared = await _prepare_workloads(b, n_req, overhead)
        run_id = new_run_id(opts.out, secrets.token_hex(2), prefix="bench")
        groups, records = await _run_levels(b, run_id, prepared, levels, n_req, sender, sampler)
        crosscheck = None
        want_cc = opts.cross_check if opts.cross_check is not None else (ep.caps.timing_log and bool(ep.log_path))
        if want_cc:
            crosscheck = await _cross_check(sender, ep, prepared[0], b.force, b.count, b.bos)
            if crosscheck.get("error"):
                b.notes.append(f"cross-check: {crosscheck['error']}")
    finally:
        sampler.stop()
        await sender.aclose()
        await tok_client.aclose()
    summary = {"run_id": run_id, "kind": "bench", "model": ep.model, "engine": ep.engine, "groups": groups,
               "memory": {"peak_rss": sampler.peak_rss, "peak_gpu": sampler.peak_gpu,
                          "rss_source": "engine process tree (psutil)" if ep.pid else "n/a (engine not local)",
                          "gpu_source": "NVML, whole device" if machine["gpus"] else "n/a (no NVIDIA GPU)"},
               "roofline": _roofline(ep, machine["bandwidth"], groups) if opts.roofline else None,
               "crosscheck": crosscheck, "notes": _dedupe(b.notes),
               "definitions": "vLLM bench serve: TTFT; TPOT=(E2E-TTFT)/(out-1); ITL pooled gaps; usage token counts"}
    manifest = _manifest(b, run_id, created_at, machine, prepared, overhead, n_req, records)
    store = RunStore.create(opts.out, run_id, RequestRecord, REQUESTS)
    store.write_records(records)
    store.write_summary(_jsonable(summary))
    write_json_atomic(store.dir / "vllm_bench.json", _jsonable(vllm_results(records, groups, opts.slo)))
    store.write_manifest(manifest)  # last: a folder with a manifest is a finished bench run
    return BenchRun(run_id, store.dir, manifest, summary, records)


def _bandwidth(b: _Bench, machine: dict) -> dict | None:
    """This machine's memory bandwidth for the roofline (measured once per machine, cached), when it says anything
    about the engine: not for a remote one."""
    from assay.bench import roofline as rl

    if not b.opts.roofline:
        return None
    ep = b.ep
    if ep.pid is None and not ep.base_url.startswith(("http://127.", "http://localhost")):
        b.notes.append("roofline: the engine is remote, so this machine's bandwidth says nothing about it (n/a)")
        return None
    on_gpu = ep.caps.device == "gpu" and bool(machine["gpus"])
    b.log("measuring GPU bandwidth..." if on_gpu else "measuring memory bandwidth (once per machine, cached)...")
    return rl.memory_bandwidth("gpu" if on_gpu else "cpu", refresh=b.opts.refresh_bandwidth)


async def _tokenizer(b: _Bench, tok_client) -> None:
    if await tok_client.tokenize("hello") is None:
        b.notes.append("the server has no tokenizer endpoint: inputs sized by estimate; actual sizes are the "
                       "server's usage")
        return

    async def count(text: str) -> int:
        return await tok_client.count_tokens(text)

    b.count = count


def _levels(b: _Bench) -> tuple[list[tuple[int | None, float | None]], int | None]:
    """The load levels (closed-loop concurrency, or open-loop rates) and the requests per level."""
    opts = b.opts
    if opts.rates:
        levels = [(max(opts.concurrency) if opts.concurrency != [1] else None, r) for r in opts.rates]
    else:
        levels = [(c, None) for c in opts.concurrency]
    n_req = opts.requests if opts.requests is not None else (None if opts.duration_s else 5)
    if any((c or 1) > 1 or r for c, r in levels) and not b.ep.caps.batching:
        b.notes.append(QUEUE_NOTE)
    return levels, n_req


async def _prepare_workloads(b: _Bench, n_req: int | None, overhead: int) -> list[Prepared]:
    opts, out = b.opts, []
    for spec in parse_workloads(opts.workloads):
        n_prompts = max(2, min(opts.max_prompts, (n_req or opts.max_prompts) + opts.warmup))
        b.log(f"preparing {spec.name} ({n_prompts} prompt(s))...")
        # one extra, never-sent prompt for the cross-check (a prefix cache would hide its prompt evaluation)
        p = await prepare(spec, n_prompts=n_prompts + 1, context=b.ep.context, count=b.count,
                          template_overhead=overhead, seed=opts.seed)
        out.append(p)
        b.notes.extend(f"{spec.name}: {n}" for n in p.notes)
    return out


async def _run_levels(b: _Bench, run_id: str, prepared: list[Prepared], levels, n_req, sender: _Sender,
                      sampler) -> tuple[list[dict], list[RequestRecord]]:
    groups: list[dict] = []
    records: list[RequestRecord] = []
    for p in prepared:
        issued = 0  # requests of this workload so far, across levels: each gets its own prompt
        for conc, rate in levels:
            results, dur, where, first = await _one_level(b, p, conc, rate, n_req, issued, sender, sampler)
            issued = first + len(results)
            rss, gpu = sampler.window()
            if await _fill_tokens(results, p, first, b.count, b.bos):
                b.notes.append("the server streamed no usage (llama-cpp-python ignores stream_options): output "
                               "tokens = max_tokens for replies cut there (finish_reason length), else the reply "
                               "re-tokenized with the server's tokenizer; input tokens = prompt sizes measured with "
                               "it")
            forced = b.force and p.spec.forced
            groups.append({"workload": p.spec.name, "concurrency": conc, "rate": rate,
                           "input_tokens_target": p.input_tokens, "output_tokens_target": p.spec.output_tokens,
                           "forced": forced, **aggregate(results, dur, b.opts.slo),
                           "memory": {"peak_rss": rss, "peak_gpu": gpu},
                           **(b.engine_metrics or {})})
            short = [r for r in results if r.ok and forced and r.finish_reason != "length"
                     and r.output_tokens is not None and r.output_tokens < p.spec.output_tokens]
            if short:
                b.notes.append(f"{p.spec.name}: {len(short)} request(s) stopped before {p.spec.output_tokens} "
                               "output tokens although forced (the engine ignored ignore_eos/min_tokens)")
            records += [_record(run_id, p.spec.name, conc, rate, i, r, p.spec.output_tokens, where.get(i))
                        for i, r in enumerate(results)]
    return groups, records


def _knobs(ep) -> dict:
    """The sampling knobs ``assay eval`` sends this engine (neutral): a benchmark samples like an eval."""
    from assay.client import SamplingParams, knob_fields

    return knob_fields(SamplingParams(), ep)


async def _one_level(b: _Bench, p: Prepared, conc, rate, n_req, issued: int, sender: _Sender, sampler):
    """Warm up, then time one load level. Returns (results, seconds, endpoint per result, first prompt index)."""
    label = f"rate {rate:g}/s" if rate else f"concurrency {conc}"
    b.log(f"running {p.spec.name} at {label}...")

    def body_for(i: int) -> dict:
        return request_body(b.ep.model, p.message_for(i), p.spec, force=b.force, knobs=_knobs(b.ep))

    async def send_warm(i: int, t: float):
        r, _ = await sender.send(body_for(issued + i), t)
        return r

    if b.opts.warmup:
        await closed_loop(send_warm, b.opts.warmup, min(b.opts.warmup, conc or 1))
    first = issued + b.opts.warmup
    sampler.window()
    probe = engines.group_probe(b.endpoints)  # the engine's own figures for these requests (e.g. vLLM's /metrics)
    if probe is not None and await probe.before():
        probe = None  # nothing to read (the reason is the engine's)
    where: dict[int, str] = {}

    async def send(i: int, t: float):
        r, url = await sender.send(body_for(first + i), t)
        where[i] = url
        return r

    if rate:
        n = n_req or max(1, int(round(rate * (b.opts.duration_s or 10))))
        results, dur = await open_loop(send, poisson_offsets(rate, n, seed=b.opts.seed), max_concurrency=conc)
    else:
        results, dur = await closed_loop(send, n_req, conc or 1, duration_s=b.opts.duration_s)
    for e in b.endpoints:  # an engine we started that died: say how, not "N requests failed"
        fate = e.fate() if e.fate else None
        if fate:
            raise EngineDied(f"the engine died during the benchmark ({p.spec.name} at {label}): {fate}")
    b.engine_metrics = await probe.after(results) if probe is not None else None
    return results, dur, where, first


def _manifest(b: _Bench, run_id: str, created_at: str, machine: dict, prepared: list[Prepared], overhead: int,
              n_req: int | None, records: list[RequestRecord]) -> BenchManifest:
    ep, opts = b.ep, b.opts
    return BenchManifest(
        run_id=run_id, created_at=created_at, finished_at=iso_now(), status="finished", model=ep.model,
        engine=ep.engine, engine_version=ep.engine_version,
        endpoints=[{"base_url": e.base_url, "model": e.model, "engine": e.engine, "engine_version": e.engine_version,
                    "context": e.context, "local": e.pid is not None,
                    "extra": e.facts} for e in b.endpoints],  # the engine's facts, opaque (Engine.facts)
        workload={"spec": opts.workloads, "workloads": [p.to_dict() for p in prepared],
                  "template_overhead_tokens": overhead, "output_forced": b.force, "concurrency": opts.concurrency,
                  "rates": opts.rates, "requests": n_req, "duration_s": opts.duration_s, "warmup": opts.warmup,
                  "seed": opts.seed, "slo": opts.slo, "client": "assay.bench.sse (lean asyncio SSE)"},
        machine=_jsonable(machine), counts={"requests": len(records), "ok": sum(1 for r in records if r.ok)})


def _dedupe(xs: list[str]) -> list[str]:
    seen, out = set(), []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def _jsonable(o: Any) -> Any:
    """Paths as text and inf / nan as text (JSON has neither), everywhere in a nested structure."""
    if isinstance(o, dict):
        return {k: _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, float) and (math.isinf(o) or math.isnan(o)):
        return str(o)
    return o


def _record(run_id, workload, conc, rate, i, r: RequestResult, requested, endpoint) -> RequestRecord:
    return RequestRecord(run_id=run_id, workload=workload, concurrency=conc, rate=rate, index=i,
                         input_tokens=r.input_tokens, output_tokens=r.output_tokens, requested_output_tokens=requested,
                         ttft_s=r.ttft_s, e2e_s=r.e2e_s, tpot_s=r.tpot_s, itl_s=list(r.itl_s or []), ok=r.ok,
                         error=r.error, status=r.status, finish_reason=r.finish_reason, tokens_source=r.tokens_source,
                         started_at=r.started_at, send_lag_s=r.send_lag_s, endpoint=endpoint)


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
    """One unseen request, compared with what the engine itself measured for it (``engines.request_probe``)."""
    probe = engines.request_probe(ep)
    why = "the engine reports no per-request timings" if probe is None else await probe.before()
    if why:
        return {"error": why}
    body = request_body(ep.model, p.messages[-1], p.spec, force=force, knobs=_knobs(ep))
    r, _ = await sender.send(body, time.perf_counter())
    if not r.ok:
        return {"error": f"request failed: {r.error}"}
    if r.output_tokens is None and count is not None:
        r.output_tokens = p.spec.output_tokens if r.finish_reason == "length" else max(0, await count(r.text) - bos)
        r.input_tokens = p.prompt_tokens[-1]
    out = await probe.after([r])
    if not out:
        return {"error": "the engine reported nothing for the request"}
    return out if out.get("error") else {"workload": p.spec.name, **out}
