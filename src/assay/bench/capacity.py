"""The capacity finder (``assay bench --find-max --slo ttft:500,tpot:50``): the highest request rate a server sustains
while at least ``attainment`` (default 90 %) of requests meet every SLO, and the goodput there.

How it searches:

1. **Levels of open-loop load.** Arrivals are gamma-distributed with vLLM's ``--burstiness`` (1.0 = Poisson; higher
   is more regular, lower burstier: shape = burstiness, mean gap = 1 / rate, as vLLM ``bench serve``). Each level
   starts with a **ramp-up** of ``warmup`` requests whose rate climbs from ``ramp_up_start_rps`` to the level's rate
   (vLLM's ``--ramp-up-strategy linear|exponential``), not counted, so a level is judged at its rate and not on an
   empty server. Requests are timed from their intended send time (no coordinated omission).
2. **Stop a level early** once it cannot pass: a request that failed, or is still running past the latest end that
   could meet the SLOs (``ttft + tpot × (max_tokens − 1)``, or ``e2e``; a running request past it must fail one),
   counts as a sure failure; when sure failures exceed what the attainment allows, or the error rate passes
   ``max_error_rate``, the level stops, its requests are cancelled, and it is recorded as *saturated* with what
   was seen (requests in flight rising, TTFT rising between the level's halves).
3. **Search:** double the rate from ``start_rps`` until a level fails, then bisect between the highest pass and the
   lowest failure until they are within ``tolerance`` (relative) of each other.
4. **The knee, repeated:** the highest passing rate and the lowest failing rate are run ``repeats`` more times
   each; the capacity is the highest rate at which most runs pass, and its interval the pass / fail bracket; the
   goodput at the knee is given as mean and range over its runs.
5. **Against the roofline:** with the requests in flight at the knee (Little's law: rate × mean latency = batch
   size B), decode can go no faster than B × bandwidth ÷ (weight bytes + B × KV bytes per token × context)
   tokens/s; ÷ output tokens per request = the bound in requests/s, and the capacity is given as a share of it.

Example:
    res = find_max(endpoints, CapacityOptions(workload="fixed:128:64", slo={"ttft": 0.5, "tpot": 0.05}))
    print(res["capacity_rps"], res["interval_rps"], res["goodput_rps"])
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from assay.errors import AssayError
from assay.stats.intervals import wilson


@dataclass
class CapacityOptions:
    workload: str = "fixed:128:64"
    slo: dict = field(default_factory=dict)  # seconds: ttft, tpot, itl, e2e (metrics.parse_slo)
    attainment: float = 0.9  # share of a level's requests that must meet every SLO
    requests: int = 40  # counted requests per level
    warmup: int = 8  # ramp-up requests per level (not counted)
    burstiness: float = 1.0  # vLLM's: gamma shape of the inter-arrival gaps (1 = Poisson)
    ramp_up_strategy: str = "linear"  # linear | exponential (vLLM's names)
    ramp_up_start_rps: float | None = None  # default: a quarter of the level's rate
    start_rps: float | None = None  # default: from one request's latency
    max_rps: float = 1000.0
    tolerance: float = 0.1  # stop bisecting when fail / pass ≤ 1 + tolerance
    max_levels: int = 14
    repeats: int = 2  # extra runs of the knee's pass and fail rates
    max_error_rate: float = 0.1
    seed: int = 0
    timeout_s: float = 300.0
    cooldown_s: float = 0.5  # between levels, so a stopped level's work drains
    settle_s: float = 120.0  # at most this long waiting, after a level, for the server to answer as fast as when idle
    roofline: bool = True


# ---- arrivals -----------------------------------------------------------------------------------------------------
def arrival_offsets(rate: float, n: int, *, burstiness: float = 1.0, seed: int = 0, ramp: int = 0,
                    ramp_start: float | None = None, strategy: str = "linear") -> list[float]:
    """Send times (s after the start) of ``n`` requests: gamma gaps with shape ``burstiness`` and mean 1/rate (vLLM
    ``bench serve``); the first ``ramp`` requests' rate climbs from ``ramp_start`` to ``rate`` (``strategy``: linear
    or exponential, vLLM's ``--ramp-up-strategy``)."""
    if rate <= 0 or burstiness <= 0:
        raise AssayError("rate and --burstiness must be > 0")
    if strategy not in ("linear", "exponential"):
        raise AssayError(f"--ramp-up-strategy {strategy!r}: linear or exponential")
    rng = random.Random(seed)
    start = min(rate, ramp_start if ramp_start else rate / 4)
    t, out = 0.0, []
    for i in range(n):
        out.append(t)
        if i < ramp and ramp > 1:
            p = i / (ramp - 1)
            r = start + (rate - start) * p if strategy == "linear" else start * (rate / start) ** p
        else:
            r = rate
        t += rng.gammavariate(burstiness, 1.0 / (r * burstiness))
    return out


# ---- one level ----------------------------------------------------------------------------------------------------
def sure_fail_after(slo: dict, max_tokens: int) -> float | None:
    """Seconds after its intended send past which a running request cannot meet the SLOs (None: no such bound)."""
    bounds = []
    if "e2e" in slo:
        bounds.append(slo["e2e"])
    if "ttft" in slo and "tpot" in slo:
        bounds.append(slo["ttft"] + slo["tpot"] * max(0, max_tokens - 1))
    return min(bounds) if bounds else None


async def run_level(send: Callable, rate: float, opts: CapacityOptions, max_tokens: int, level_seed: int,
                    clock: Callable[[], float] = time.perf_counter) -> dict:
    """One open-loop level: ``warmup`` ramp-up requests then ``requests`` counted ones at ``rate``; stops early when
    the level cannot pass. ``send(i, t_intended)`` returns a RequestResult-like object."""
    from assay.bench.metrics import aggregate, meets_slo

    n_total = opts.warmup + opts.requests
    offsets = arrival_offsets(rate, n_total, burstiness=opts.burstiness, seed=level_seed, ramp=opts.warmup,
                              ramp_start=opts.ramp_up_start_rps, strategy=opts.ramp_up_strategy)
    allowed_fail = math.floor((1 - opts.attainment) * opts.requests + 1e-9)
    deadline = sure_fail_after(opts.slo, max_tokens)
    t0 = clock()
    tasks: dict[int, asyncio.Task] = {}
    sent_at: dict[int, float] = {}
    done: dict[int, object] = {}
    stop: list[str] = []
    inflight_trace: list[int] = []

    def verdict_now() -> str | None:
        counted = [i for i in done if i >= opts.warmup]
        failed = sum(1 for i in counted if not meets_slo(done[i], opts.slo))
        errors = sum(1 for i in counted if not done[i].ok)
        now = clock()
        overdue = sum(1 for i, t in sent_at.items() if i >= opts.warmup and i not in done and deadline is not None
                      and now - t > deadline)
        if failed + overdue > allowed_fail:
            return (f"saturated: {failed} failed + {overdue} running past the SLO bound > {allowed_fail} allowed of "
                    f"{opts.requests}")
        if len(counted) >= 5 and errors / len(counted) > opts.max_error_rate:
            return f"error rate {errors}/{len(counted)} > {opts.max_error_rate:.0%}"
        return None

    async def one(i: int, t_int: float):
        r = await send(i, t_int)
        done[i] = r

    for i, off in enumerate(offsets):
        t_int = t0 + off
        while True:  # sleep to the send time, checking the level on the way
            wait = t_int - clock()
            if wait <= 0:
                break
            await asyncio.sleep(min(wait, 0.05))
            why = verdict_now()
            if why:
                stop.append(why)
                break
        if stop:
            break
        sent_at[i] = t_int
        tasks[i] = asyncio.ensure_future(one(i, t_int))
        inflight_trace.append(len(tasks) - len(done))
        why = verdict_now()
        if why:
            stop.append(why)
            break
    while not stop and len(done) < len(tasks):
        await asyncio.sleep(0.02)
        why = verdict_now()
        if why:
            stop.append(why)
    for t in tasks.values():
        if not t.done():
            t.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    dur = max(1e-9, clock() - t0 - (offsets[opts.warmup] if opts.warmup < len(offsets) else 0.0))
    counted = [done[i] for i in sorted(done) if i >= opts.warmup]
    agg = aggregate(counted, dur, opts.slo) if counted else {}
    good = agg.get("good_requests", 0)
    att_lo, att_hi = wilson(good, opts.requests)
    ttfts = [(sent_at[i], done[i].ttft_s) for i in sorted(done) if i >= opts.warmup and done[i].ttft_s is not None]
    half = len(ttfts) // 2
    ttft_rise = (_avg([x for _, x in ttfts[half:]]) - _avg([x for _, x in ttfts[:half]])) if half else None
    passed = not stop and good >= math.ceil(opts.attainment * opts.requests - 1e-9)
    return {"rate": rate, "passed": passed, "stopped_early": stop[0] if stop else None,
            "sent": len(tasks), "completed": len(counted), "good": good, "requests": opts.requests,
            "attainment": good / opts.requests, "attainment_ci": [att_lo, att_hi],
            "goodput_rps": good / dur if passed else agg.get("goodput_rps"),
            "output_throughput": agg.get("output_throughput"),
            "ttft_p50_s": (agg.get("ttft_s") or {}).get("median"), "ttft_p90_s": (agg.get("ttft_s") or {}).get("p90"),
            "tpot_p50_s": (agg.get("tpot_s") or {}).get("median"), "e2e_mean_s": (agg.get("e2e_s") or {}).get("mean"),
            "ttft_rise_s": ttft_rise, "inflight_max": max(inflight_trace, default=0),
            "inflight_rising": _rising(inflight_trace), "errors": agg.get("errors", 0)}


def _avg(xs):
    return sum(xs) / len(xs) if xs else 0.0


def _rising(trace: list[int]) -> bool:
    """Requests in flight grew from the level's first third to its last (a queue building up)."""
    k = len(trace) // 3
    return bool(k) and _avg(trace[-k:]) > 1.5 * max(1.0, _avg(trace[:k]))


# ---- the search ---------------------------------------------------------------------------------------------------
async def search(run: Callable, opts: CapacityOptions, start: float, log: Callable[[str], None]) -> dict:
    """Double, bisect, repeat the knee. ``run(rate, seed)`` is one level (``run_level``'s mapping)."""
    levels: list[dict] = []
    seed = [opts.seed]

    async def level(rate: float) -> dict:
        seed[0] += 1
        r = await run(rate, seed[0])
        levels.append(r)
        what = "pass" if r["passed"] else ("STOP " + r["stopped_early"] if r["stopped_early"] else "fail")
        log(f"  rate {rate:8.3f}/s: {r['good']}/{r['requests']} meet the SLOs ({r['attainment']:.0%}), "
            f"goodput {(r['goodput_rps'] or 0):.3f}/s — {what}")
        return r

    lo, hi, rate = None, None, start
    while len(levels) < opts.max_levels and rate <= opts.max_rps:
        if (await level(rate))["passed"]:
            lo, rate = rate, rate * 2
        else:
            hi = rate
            break
    hit_max = hi is None
    if lo is None and hi is not None:  # the first level failed: halve down
        rate = hi / 2
        while len(levels) < opts.max_levels and rate >= start / 1024:
            if (await level(rate))["passed"]:
                lo = rate
                break
            hi, rate = rate, rate / 2

    async def bisect(lo, hi, budget):
        while lo is not None and hi is not None and hi / lo > 1 + opts.tolerance and len(levels) < budget:
            mid = math.sqrt(lo * hi)
            if (await level(mid))["passed"]:
                lo = mid
            else:
                hi = mid
        return lo, hi

    def runs_at(rate):
        return [r for r in levels if rate is not None and r["rate"] == rate]

    lo, hi = await bisect(lo, hi, opts.max_levels)
    for round_ in range(2):  # the knee, repeated; a knee that mostly fails again moves down and is bisected again
        if lo is None:
            break
        log(f"repeating the knee ({lo:.3f}/s{f' and {hi:.3f}/s' if hi else ''}) {opts.repeats} more time(s)...")
        for _ in range(opts.repeats):
            await level(lo)
            if hi is not None:
                await level(hi)
        if hi is not None and sum(r["passed"] for r in runs_at(hi)) * 2 > len(runs_at(hi)):
            above = [r["rate"] for r in levels if not r["passed"] and r["rate"] > hi]
            lo, hi = hi, (min(above) if above else None)  # the "fail" rate mostly passes on repeat: knee is higher
            break
        if sum(r["passed"] for r in runs_at(lo)) * 2 > len(runs_at(lo)) or round_ == 1:
            break
        below = [r["rate"] for r in levels if r["passed"] and r["rate"] < lo]
        lo, hi = (max(below) if below else None), lo
        budget = len(levels) + opts.max_levels // 2
        rate = hi / 2
        while lo is None and len(levels) < budget and rate >= start / 1024:  # nothing passed below: halve down
            if (await level(rate))["passed"]:
                lo = rate
            else:
                hi, rate = rate, rate / 2
        if lo is None:
            break
        lo, hi = await bisect(lo, hi, budget)
    at_lo, at_hi = runs_at(lo), runs_at(hi)
    lo_pass = sum(r["passed"] for r in at_lo)
    hi_pass = sum(r["passed"] for r in at_hi)
    capacity = lo if lo is not None and lo_pass * 2 > len(at_lo) else None
    if capacity is None and lo is not None:
        capacity = max((r["rate"] for r in levels if r["passed"] and r["rate"] < lo), default=None)
    goodputs = [r["goodput_rps"] for r in levels if capacity is not None and r["rate"] == capacity
                and r["goodput_rps"] is not None]
    return {"capacity_rps": capacity, "interval_rps": [lo, hi], "knee_passes": f"{lo_pass}/{len(at_lo)}",
            "above_knee_passes": f"{hi_pass}/{len(at_hi)}" if at_hi else None,
            "goodput_rps": _avg(goodputs) if goodputs else None,
            "goodput_range_rps": [min(goodputs), max(goodputs)] if goodputs else None,
            "saturated_below": hi, "levels": levels,
            "hit_max_rps": hit_max and lo is not None}


def roofline_share(ep, capacity: float | None, knee: list[dict], output_tokens: int, input_tokens: float) -> dict:
    """The capacity as a share of the memory-bandwidth bound at the knee's batch size (Little's law)."""
    from assay.bench import roofline as rl

    if capacity is None or not knee:
        return {"note": "no capacity found"}
    if ep.pid is None and not ep.base_url.startswith(("http://127.", "http://localhost")):
        return {"note": "the engine is remote: this machine's bandwidth says nothing about it"}
    e2e = _avg([r["e2e_mean_s"] for r in knee if r.get("e2e_mean_s")])
    batch = max(1.0, capacity * e2e)
    facts = rl.model_facts(ep)
    bw = (rl.memory_bandwidth("gpu" if ep.caps.device == "gpu" else "cpu") or {}).get("bytes_per_s")
    w, kv = facts.get("weight_bytes"), facts.get("kv_bytes_per_token") or 0
    if not bw or not w:
        return {"note": "bandwidth or weight bytes unknown"}
    ctx = input_tokens + output_tokens / 2
    tok_s = batch * bw / (w + batch * kv * ctx)
    bound = tok_s / max(1, output_tokens)
    return {"batch_in_flight": batch, "bandwidth_bytes_per_s": bw, "weight_bytes": w, "kv_bytes_per_token": kv,
            "bound_tok_s": tok_s, "bound_rps": bound, "share": capacity / bound if bound else None,
            "note": "decode bound = B × bandwidth ÷ (weights + B × KV per token × context), B = rate × mean latency"}


async def _find(endpoints, opts: CapacityOptions, log) -> dict:
    from assay.bench.run import _Bench, _knobs, _Sender, _template_overhead, _tokenizer
    from assay.bench.workloads import parse_workloads, prepare, request_body
    from assay.client import Client

    if not opts.slo:
        raise AssayError("--find-max needs --slo, e.g. --slo ttft:500,tpot:50")
    specs = parse_workloads(opts.workload)
    if len(specs) != 1:
        raise AssayError(f"--find-max takes one workload, not {opts.workload!r}: e.g. --workload fixed:128:64")
    spec = specs[0]
    b = _Bench(endpoints, None, log)  # type: ignore[arg-type] - only the tokenizer fields are used
    ep = endpoints[0]
    tok = Client(endpoints)
    try:
        await _tokenizer(b, tok)
        overhead = await _template_overhead(ep, b.count)
        p = await prepare(spec, n_prompts=16, context=ep.context, count=b.count, template_overhead=overhead,
                          seed=opts.seed)
    finally:
        await tok.aclose()
    force = ep.caps.forces_output
    knobs = _knobs(ep)
    counter = [0]

    async def run(rate: float, seed: int) -> dict:
        sender = _Sender(endpoints, opts.timeout_s)

        async def send(i: int, t: float):
            counter[0] += 1
            body = request_body(ep.model, p.message_for(counter[0]), spec, force=force, knobs=knobs)
            r, _ = await sender.send(body, t)
            return r

        try:
            return await run_level(send, rate, opts, spec.output_tokens, seed)
        finally:
            await sender.aclose()
            for e in endpoints:
                fate = e.fate() if e.fate else None
                if fate:
                    from assay.errors import EngineDied

                    raise EngineDied(f"the engine died during --find-max at rate {rate:g}/s: {fate}")
            await asyncio.sleep(opts.cooldown_s)
            await settle()

    async def ping() -> float:
        """Seconds for a one-token request: how busy the server still is."""
        sender = _Sender(endpoints, opts.timeout_s)
        try:
            r, _ = await sender.send(request_body(ep.model, p.message_for(0), spec, force=False, knobs=knobs)
                                     | {"max_tokens": 1}, time.perf_counter())
        finally:
            await sender.aclose()
        return r.e2e_s if r.ok and r.e2e_s is not None else float("inf")

    idle_ping = await ping()

    async def settle() -> None:
        """A stopped level's cancelled requests may still be running in the engine (a server notices a closed stream
        only when it next writes to it); the next level must not start on that backlog, or every level after the
        first saturated one fails too. Wait until a one-token request is about as fast as on the idle server."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < opts.settle_s:
            if await ping() <= 2 * idle_ping + 0.05:
                return
            await asyncio.sleep(0.5)
        log(f"  (the server was still slower than idle {opts.settle_s:.0f} s after the level; going on)")

    start = opts.start_rps
    if start is None:  # one request alone: its latency sets the first rate at half of one stream's pace
        sender = _Sender(endpoints, opts.timeout_s)
        try:
            r, _ = await sender.send(request_body(ep.model, p.message_for(0), spec, force=force, knobs=knobs),
                                     time.perf_counter())
        finally:
            await sender.aclose()
        if not r.ok:
            raise AssayError(f"--find-max: a first request failed: {r.error}")
        start = 0.5 / max(r.e2e_s or 1.0, 1e-3)
        log(f"one request alone: {r.e2e_s:.3f} s; starting at {start:.3f} req/s")
    res = await search(run, opts, start, log)
    knee = [r for r in res["levels"] if r["rate"] == res["capacity_rps"]]
    res["roofline"] = (roofline_share(ep, res["capacity_rps"], knee, spec.output_tokens, p.input_tokens or 0)
                       if opts.roofline else None)
    res.update(workload=spec.name, input_tokens=p.input_tokens, output_tokens=spec.output_tokens,
               options={k: v for k, v in asdict(opts).items() if k != "slo"}, slo_s=opts.slo, model=ep.model,
               engine=ep.engine, forced=force and spec.forced)
    return res


def find_max(endpoints, opts: CapacityOptions, log: Callable[[str], None] | None = None) -> dict:
    """Search the request rate for the highest goodput meeting ``opts.slo`` (see the module docstring)."""
    return asyncio.run(_find(endpoints, opts, log or (lambda s: None)))


def summary_lines(res: dict) -> list[str]:
    slo = ", ".join(f"{k} ≤ {v * 1000:g} ms" for k, v in res["slo_s"].items())
    opts = res["options"]
    lo, hi = res["interval_rps"]
    inp = res.get("input_tokens")
    shape = (f"{inp} → {res['output_tokens']} tokens" if inp is not None
             else f"the suite's prompts → up to {res['output_tokens']} tokens")
    out = [f"capacity of {res['model']} on {res['engine']}, {res['workload']} ({shape}), {slo}, "
           f"≥ {opts['attainment']:.0%} of requests:"]
    if res["capacity_rps"] is None:
        out.append("  no rate met the SLOs (the lowest tried failed)")
        return out
    g = res.get("goodput_range_rps") or [None, None]
    out.append(f"  {res['capacity_rps']:.3f} req/s (knee between {lo:.3f} and "
               f"{'—' if hi is None else f'{hi:.3f}'} req/s; passes at the knee {res['knee_passes']}"
               + (f", above it {res['above_knee_passes']}" if res.get("above_knee_passes") else "") + ")")
    if res.get("goodput_rps") is not None:
        out.append(f"  goodput there {res['goodput_rps']:.3f} req/s (range {g[0]:.3f}–{g[1]:.3f} over "
                   f"{len([r for r in res['levels'] if r['rate'] == res['capacity_rps']])} runs)")
    if res.get("hit_max_rps"):
        out.append(f"  (every rate passed up to --max-rps {opts['max_rps']:g}: the capacity is at least this)")
    roof = res.get("roofline") or {}
    if roof.get("share") is not None:
        out.append(f"  = {roof['share']:.0%} of the roofline bound {roof['bound_rps']:.2f} req/s "
                   f"({roof['bound_tok_s']:.0f} tok/s at {roof['batch_in_flight']:.1f} requests in flight)")
    elif roof.get("note"):
        out.append(f"  roofline: {roof['note']}")
    stopped = [r for r in res["levels"] if r["stopped_early"]]
    if stopped:
        out.append(f"  {len(stopped)} level(s) stopped early as saturated (e.g. rate {stopped[0]['rate']:.3f}/s: "
                   f"{stopped[0]['stopped_early']})")
    return out
