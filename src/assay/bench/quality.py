"""Quality under load (``assay bench --workload suite:NAME --rate R --score``; with ``--find-max``, at the rate it
found): the same samples answered twice, **alone** (one request at a time on an idle server) and **inside open-loop
load** at R requests/s, scored by the suite's own scorer and paired sample by sample. A batching effect on answers
(greedy answers depend on which other requests share a decode step on batching engines) or a degradation under load
(timeouts, truncation) shows as identical-answer counts and a paired score difference with its interval.

How the loaded pass runs: the scored samples arrive at gamma-distributed times with mean gap 1/R (``burstiness`` as
vLLM's ``--burstiness``), after ``warmup`` ramp-up requests, and background requests (other samples of the suite,
not scored) keep arriving at R until the last scored answer is back, so every scored request meets the steady load
and none the draining tail. Both passes send exactly the request ``assay eval`` sends for the sample (its messages
and ``request_params``, greedy, neutral sampling knobs), with ``max_tokens`` from the workload (``suite:NAME:OUT``).
Then the samples are answered alone once more (``control``): how far answers move with no load at all (a prompt cache
reused differently, nondeterministic kernels), so that an engine's own noise is not blamed on the load.

Example:
    res = quality_under_load(endpoints, QualityOptions(suite="gsm8k", rate=1.5, samples=40))
    print(res["identical"], res["paired"]["diff"], res["paired"]["low"], res["paired"]["high"])
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Callable

from assay.errors import AssayError


@dataclass
class QualityOptions:
    suite: str
    rate: float  # requests/s of the loaded pass
    samples: int = 20  # scored samples (each answered twice)
    max_tokens: int = 256
    burstiness: float = 1.0
    warmup: int = 4  # ramp-up requests before the scored ones (background samples, not scored)
    seed: int = 0
    timeout_s: float = 600.0
    control: bool = True  # answer the samples alone a second time, after the load: the engine's own repeatability


async def _answer(client, messages, params, timeout_s: float) -> dict:
    t0 = time.perf_counter()
    try:
        c = await asyncio.wait_for(client.chat(messages, params), timeout_s)
    except Exception as e:  # noqa: BLE001 - a failed request is this sample's error, counted, never a score of 0
        return {"ok": False, "error": f"{type(e).__name__}: {e}"[:300], "e2e_s": time.perf_counter() - t0}
    return {"ok": True, "text": c.text, "think_unclosed": c.think_unclosed, "finish_reason": c.finish_reason,
            "ttft_s": c.ttft_s, "e2e_s": c.e2e_s, "completion_tokens": c.completion_tokens}


async def _loaded_pass(client, scored: list, background: list, opts: QualityOptions, log) -> tuple[list, dict]:
    """Scored requests at rate R among ramp-up and background ones; returns the scored answers and load figures."""
    from assay.bench.capacity import arrival_offsets

    results: list = [None] * len(scored)
    inflight: list[int] = []
    running = [0]
    bg_sent = [0]

    async def send(req, slot: int | None):
        running[0] += 1
        try:
            r = await _answer(client, *req, opts.timeout_s)
        finally:
            running[0] -= 1
        if slot is not None:
            results[slot] = r

    tasks: list[asyncio.Task] = []
    n_head = opts.warmup + len(scored)
    offsets = arrival_offsets(opts.rate, n_head + 10_000, burstiness=opts.burstiness, seed=opts.seed,
                              ramp=opts.warmup, strategy="linear")
    t0 = time.perf_counter()
    i = 0
    while i < len(offsets):
        if i >= n_head and all(r is not None for r in results):
            break
        wait = t0 + offsets[i] - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
            if i >= n_head and all(r is not None for r in results):
                break
        if opts.warmup <= i < n_head:
            k = i - opts.warmup
            req, slot = scored[k], k
        else:
            req, slot = background[bg_sent[0] % len(background)], None
            bg_sent[0] += 1
        inflight.append(running[0])
        tasks.append(asyncio.ensure_future(send(req, slot)))
        i += 1
        if i == n_head:
            log(f"  all {len(scored)} scored requests sent at {opts.rate:g}/s; background load until they finish")
    # every request ends (_answer has its own timeout). The background ones still running are awaited, not
    # cancelled: a server keeps working on a cancelled stream until it next writes to it, so the control pass
    # that follows would otherwise not run alone.
    await asyncio.gather(*tasks, return_exceptions=True)
    k = len(inflight)
    counted = inflight[opts.warmup:n_head] or inflight
    return results, {"requests_sent": k, "background_requests": bg_sent[0], "seconds": time.perf_counter() - t0,
                     "in_flight_at_send_mean": sum(counted) / len(counted) if counted else 0.0,
                     "in_flight_at_send_max": max(counted, default=0)}


async def _quality(endpoints, opts: QualityOptions, log: Callable[[str], None]) -> dict:
    from assay.client import Client, SamplingParams
    from assay.evals.runner import conversational, request_for
    from assay.evals.scoring import Scorer, score_completion
    from assay.evals.suites import get_suite
    from assay.stats import paired as P
    from assay.stats.intervals import wilson

    if opts.rate <= 0:
        raise AssayError("--score needs one positive --rate (requests/s), or --find-max to find it")
    suite = get_suite(opts.suite)
    if conversational(suite):
        raise AssayError(f"suite {opts.suite!r} holds conversations (several calls per sample): quality under load "
                         "takes a single-call suite, e.g. --workload suite:gsm8k")
    pool = list(suite.samples(opts.seed, opts.samples + max(8, opts.samples)))
    if len(pool) < 2:
        raise AssayError(f"suite {opts.suite!r} gave {len(pool)} sample(s): quality under load needs at least 2")
    samples = pool[:opts.samples]
    base = SamplingParams(max_tokens=opts.max_tokens)
    reqs = [request_for(suite, s, base) for s in samples]
    background = [request_for(suite, s, base) for s in (pool[opts.samples:] or pool)]
    client = Client(endpoints)  # no answer cache: every answer comes from the server, both times
    scorer = Scorer({suite.name: suite})
    try:
        await scorer.start()

        async def alone(what: str) -> tuple[list, float]:
            log(f"{what}: {len(reqs)} samples of {suite.name}, one at a time ...")
            t0, out = time.perf_counter(), []
            for k, r in enumerate(reqs):
                out.append(await _answer(client, *r, opts.timeout_s))
                if (k + 1) % max(1, len(reqs) // 4) == 0:
                    log(f"  {k + 1}/{len(reqs)} answered alone")
            return out, time.perf_counter() - t0

        idle, idle_s = await alone("idle pass")
        log(f"loaded pass: the same samples at {opts.rate:g} req/s (burstiness {opts.burstiness:g}) ...")
        loaded, load = await _loaded_pass(client, reqs, background, opts, log)
        # the control: alone again, after the load. An engine whose answers alone are not repeatable (a prompt cache
        # reused differently, nondeterministic kernels) would otherwise have its noise blamed on the load.
        again = (await alone("idle pass again (the control)"))[0] if opts.control else None

        async def score(a, sample):
            if not a["ok"]:
                return None
            s = await score_completion(scorer, suite.name, a["text"], sample, think_unclosed=a["think_unclosed"])
            return s.value

        idle_scores = [await score(a, s) for a, s in zip(idle, samples)]
        loaded_scores = [await score(b, s) for b, s in zip(loaded, samples)]
    finally:
        scorer.close()
        await client.aclose()
    pairs = [(x, y) for x, y in zip(loaded_scores, idle_scores) if x is not None and y is not None]
    both = [k for k in range(len(samples)) if idle[k]["ok"] and loaded[k]["ok"]]
    same = sum(1 for k in both if idle[k]["text"] == loaded[k]["text"])
    values = [v for p in pairs for v in p]
    binary = all(v in (0.0, 1.0) for v in values)
    paired = P.compare_scores([x for x, _ in pairs], [y for _, y in pairs], binary=binary, seed=opts.seed,
                              names=("loaded", "idle")) if pairs else None
    lo, hi = wilson(same, len(both)) if both else (0.0, 1.0)
    control = None
    if again is not None:
        twice = [k for k in range(len(samples)) if idle[k]["ok"] and again[k]["ok"]]
        rep = sum(1 for k in twice if idle[k]["text"] == again[k]["text"])
        control = {"identical": rep, "of": len(twice), "ci": list(wilson(rep, len(twice))) if twice else [0.0, 1.0],
                   "errors": sum(not a["ok"] for a in again)}

    def side(ans, scores):
        ok = [a for a in ans if a["ok"]]
        ttft = sorted(a["ttft_s"] for a in ok if a.get("ttft_s") is not None)
        return {"errors": len(ans) - len(ok), "truncated": sum(a.get("finish_reason") == "length" for a in ok),
                "score_mean": (sum(v for v in scores if v is not None) / max(1, sum(v is not None for v in scores))),
                "ttft_p50_s": ttft[len(ttft) // 2] if ttft else None,
                "e2e_mean_s": sum(a["e2e_s"] for a in ok) / len(ok) if ok else None}

    def same_text(x, y) -> bool:
        return bool(x["ok"] and y["ok"] and x["text"] == y["text"])

    per_sample = [{"sample_id": s.id, "idle_score": a, "loaded_score": b, "identical": same_text(idle[k], loaded[k]),
                   "identical_alone_again": same_text(idle[k], again[k]) if again is not None else None,
                   "idle_error": idle[k].get("error"), "loaded_error": loaded[k].get("error")}
                  for k, (s, a, b) in enumerate(zip(samples, idle_scores, loaded_scores))]
    return {"kind": "bench-quality", "suite": suite.name, "model": endpoints[0].model, "engine": endpoints[0].engine,
            "options": asdict(opts), "n": len(samples), "paired_n": len(pairs), "binary": binary,
            "identical": same, "identical_of": len(both), "identical_ci": [lo, hi], "control": control,
            "idle": {**side(idle, idle_scores), "seconds": idle_s}, "loaded": {**side(loaded, loaded_scores), **load},
            "paired": paired.to_dict() if paired else None, "samples": per_sample}


def quality_under_load(endpoints, opts: QualityOptions, log: Callable[[str], None] | None = None) -> dict:
    """Answer the suite's samples alone and under load at ``opts.rate``; pair the scores (module docstring)."""
    return asyncio.run(_quality(endpoints, opts, log or (lambda s: None)))


def summary_lines(res: dict) -> list[str]:
    o, i, l, p = res["options"], res["idle"], res["loaded"], res["paired"]
    out = [f"quality under load: {res['suite']} on {res['model']} ({res['engine']}), {res['n']} samples, "
           f"alone vs at {o['rate']:g} req/s ({l['in_flight_at_send_mean']:.1f} requests in flight on average when "
           f"one was sent, at most {l['in_flight_at_send_max']}; {l['background_requests']} background requests)",
           f"  identical answers, alone vs under load: {res['identical']}/{res['identical_of']} "
           f"({res['identical_ci'][0]:.0%}–{res['identical_ci'][1]:.0%})"
           + (f"; alone vs alone again (the control): {c['identical']}/{c['of']} ({c['ci'][0]:.0%}–{c['ci'][1]:.0%})"
              if (c := res.get("control")) else ""),
           f"  score alone {i['score_mean']:.3f}, under load {l['score_mean']:.3f}; truncated {i['truncated']} / "
           f"{l['truncated']}, errors {i['errors']} / {l['errors']}; TTFT p50 "
           f"{_ms(i['ttft_p50_s'])} / {_ms(l['ttft_p50_s'])}"]
    if p:
        out.append(f"  paired difference (loaded − alone, n {p['n']}): {p['diff']:+.3f} [{p['low']:+.3f}, "
                   f"{p['high']:+.3f}], {p['test']} p = {p['p']:.3g}: {p['verdict']}")
    else:
        out.append("  no sample was answered in both passes: nothing to pair")
    return out


def _ms(x):
    return "—" if x is None else f"{x * 1000:.0f} ms"
