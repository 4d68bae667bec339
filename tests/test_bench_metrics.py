"""Bench metric definitions, the lean SSE client against the stub, the Poisson scheduler on a fake clock, goodput."""

from __future__ import annotations

import asyncio
import math
import random
import time

import pytest

from assay.bench.loadgen import closed_loop, open_loop, poisson_offsets
from assay.bench.metrics import aggregate, meets_slo, parse_slo, percentile, summarize
from assay.bench.sse import RequestResult, SSEPool
from assay.bench.workloads import fit_text, parse_workloads, prepare, request_body
from assay.errors import AssayError


def _body(text: str, max_tokens: int = 64) -> dict:
    return {"model": "stub-model", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
            "stream": True, "stream_options": {"include_usage": True}}


# ---- the lean client against a stub with controlled timing -----------------------------------------------------

def test_ttft_and_itl_follow_the_stub_delays(stub):
    s = stub(reply="a b c d e f", first_delay_s=0.2, gap_s=0.02)

    async def go():
        pool = SSEPool(s.base_url)
        try:
            return await pool.chat(_body("hi"))
        finally:
            await pool.aclose()

    r = asyncio.run(go())
    assert r.ok, r.error
    assert r.ttft_s >= 0.2
    assert len(r.chunk_times) == 6
    assert len(r.itl_s) == 5
    assert all(g >= 0.015 for g in r.itl_s)  # lower bounds only: a slow machine can stretch, never shrink, gaps
    assert r.e2e_s >= r.ttft_s + 5 * 0.015
    assert r.chunk_times == sorted(r.chunk_times)
    # TPOT = (E2E - TTFT) / (out - 1), with out from the usage chunk
    assert r.output_tokens == 6
    assert r.tpot_s == pytest.approx((r.e2e_s - r.ttft_s) / 5)
    assert r.finish_reason == "stop"


def test_tokens_come_from_usage_not_chunk_counts(stub):
    # The stub sends one chunk per word; make usage disagree by asking the server to count words in a reply whose
    # pieces are glued: "x" * 3 words -> 3 chunks, usage 3; then check a server without usage gives None.
    s = stub(reply="one two three")

    async def go(body):
        pool = SSEPool(s.base_url)
        try:
            return await pool.chat(body)
        finally:
            await pool.aclose()

    r = asyncio.run(go(_body("count these four words")))
    assert r.output_tokens == 3 and r.input_tokens == 4
    no_usage = _body("hi")
    no_usage.pop("stream_options")
    r2 = asyncio.run(go(no_usage))
    assert r2.ok and r2.output_tokens is None and len(r2.chunk_times) == 3
    assert r2.tpot_s is None  # no usage -> no TPOT, never a chunk-count guess
    agg = aggregate([r2], 1.0)
    assert agg["usage_missing"] == 1 and agg["output_tokens_total"] == 0


def test_http_errors_are_data_not_exceptions(stub):
    s = stub()

    async def go():
        pool = SSEPool(s.base_url)
        try:
            return [await pool.chat(_body("[[status:429]] hi")), await pool.chat(_body("fine"))]
        finally:
            await pool.aclose()

    bad, good = asyncio.run(go())
    assert not bad.ok and bad.status == 429 and "429" in bad.error
    assert good.ok  # the kept-alive connection still works after an error response


def test_keepalive_reuses_connections(stub):
    s = stub(reply="x y")

    async def go():
        pool = SSEPool(s.base_url)
        try:
            for _ in range(20):
                r = await pool.chat(_body("hi"))
                assert r.ok
        finally:
            await pool.aclose()

    asyncio.run(go())
    assert s.connections == 1


def test_unreachable_endpoint_is_an_error_result():
    async def go():
        pool = SSEPool("http://127.0.0.1:9/v1", timeout_s=5)
        return await pool.chat(_body("hi"))

    r = asyncio.run(go())
    assert not r.ok and "connect" in r.error


# ---- aggregates -----------------------------------------------------------------------------------------------

def _res(ttft, e2e, out, gaps=None, ok=True, inp=10):
    r = RequestResult(ok=ok, input_tokens=inp, output_tokens=out, e2e_s=e2e)
    t = [ttft]
    for g in gaps or []:
        t.append(t[-1] + g)
    r.chunk_times = t
    return r


def test_percentile_matches_numpy_linear():
    import numpy as np

    rng = random.Random(1)
    xs = [rng.random() for _ in range(37)]
    for q in (0, 50, 90, 99, 100):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert percentile([], 50) is None
    assert summarize([None, 2.0])["n"] == 1


def test_aggregate_throughput_and_tpot():
    rs = [_res(0.1, 1.1, 11, [0.1] * 10), _res(0.3, 2.3, 21, [0.1] * 20), _res(0.2, 0.5, 0, ok=False)]
    agg = aggregate(rs, duration_s=4.0)
    assert agg["completed"] == 2 and agg["errors"] == 1
    assert agg["output_tokens_total"] == 32 and agg["input_tokens_total"] == 20
    assert agg["request_throughput"] == pytest.approx(0.5)
    assert agg["output_throughput"] == pytest.approx(8.0)
    assert agg["total_token_throughput"] == pytest.approx(13.0)
    assert agg["tpot_s"]["mean"] == pytest.approx(0.1)  # (1.1-0.1)/10 and (2.3-0.3)/20
    assert agg["itl_s"]["n"] == 30  # pooled over requests
    assert agg["ttft_s"]["median"] == pytest.approx(0.2)
    assert agg["decode_tok_s"] == pytest.approx(10.0)


def test_goodput_counts_requests_meeting_every_slo():
    slo = parse_slo("ttft=150,tpot=120")
    assert slo == {"ttft": 0.15, "tpot": 0.12}
    fast = _res(0.1, 1.1, 11)  # tpot 0.1
    slow_first = _res(0.2, 1.2, 11)  # ttft breaks
    slow_decode = _res(0.1, 2.1, 11)  # tpot 0.2 breaks
    failed = _res(0.05, 0.1, 2, ok=False)
    assert meets_slo(fast, slo) and not meets_slo(slow_first, slo) and not meets_slo(slow_decode, slo)
    assert not meets_slo(failed, slo)
    agg = aggregate([fast, slow_first, slow_decode, failed], 2.0, slo)
    assert agg["good_requests"] == 1 and agg["goodput_rps"] == pytest.approx(0.5)
    assert meets_slo(_res(0.1, 0.5, 3, [0.05, 0.3]), {"itl": 0.2}) is False


@pytest.mark.parametrize("bad", ["ttft", "speed=3", "ttft=abc", "ttft=-1"])
def test_bad_slo_is_a_clear_error(bad):
    with pytest.raises(AssayError, match="--slo"):
        parse_slo(bad)


# ---- load generation -------------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t

    async def sleep(self, d):
        await asyncio.sleep(0)  # let already-launched requests start (as a real sleep would), then advance
        self.t += d


def test_poisson_offsets_rate_and_determinism():
    a = poisson_offsets(5.0, 4000, seed=3)
    assert a == poisson_offsets(5.0, 4000, seed=3) and a != poisson_offsets(5.0, 4000, seed=4)
    assert a[0] == 0.0 and a == sorted(a)
    assert 4000 / a[-1] == pytest.approx(5.0, rel=0.08)
    assert poisson_offsets(math.inf, 3) == [0.0, 0.0, 0.0]


def test_open_loop_times_from_intended_send_even_when_server_is_slow():
    clock = FakeClock()
    offsets = [0.0, 0.5, 1.0, 1.5]
    seen = []

    async def send(i, t_intended):
        # request 1 blocks the generator for 0.3 s (as if the loop were busy): request 2 goes out late
        seen.append((i, t_intended, clock()))
        if i == 1:
            clock.t += 0.3
        await asyncio.sleep(0)
        return RequestResult(ok=True, e2e_s=None)

    results, dur = asyncio.run(open_loop(send, offsets, clock=clock, sleep=clock.sleep))
    assert len(results) == 4
    t0 = 100.0
    # intended times come from the schedule, not from when earlier requests finished or the generator got round to it
    assert [t for _, t, _ in seen] == [t0 + o for o in offsets]
    lag = {i: actual - intended for i, intended, actual in seen}
    assert lag[0] == 0 and lag[1] == 0 and lag[3] == pytest.approx(0.0)
    assert lag[2] == pytest.approx(0.3)  # lateness is measured against the schedule, and the schedule is not shifted


def test_open_loop_does_not_wait_for_slow_responses():
    clock = FakeClock()
    started = []
    release = None

    async def main():
        nonlocal release
        release = asyncio.Event()

        async def send(i, t_intended):
            started.append(clock())
            await release.wait()  # the server never answers until everything is sent
            return i

        async def releaser():
            while len(started) < 3:
                await asyncio.sleep(0)
            release.set()

        r = asyncio.ensure_future(releaser())
        res, _ = await open_loop(send, [0.0, 1.0, 2.0], clock=clock, sleep=clock.sleep)
        await r
        return res

    assert asyncio.run(main()) == [0, 1, 2]
    assert started == [100.0, 101.0, 102.0]  # all three sent on schedule while none had completed


def test_open_loop_late_generator_lateness_counts_in_latency(stub):
    """With a real clock, a request's t_start is the intended time, so generator lateness is inside its TTFT."""
    s = stub(reply="a b", first_delay_s=0.05)

    async def go():
        pool = SSEPool(s.base_url)

        async def send(i, t_intended):
            if i == 1:
                time.sleep(0.2)  # block the loop: the generator is late for request 1
            return await pool.chat(_body("hi"), t_intended)

        try:
            return await open_loop(send, [0.0, 0.01])
        finally:
            await pool.aclose()

    (a, b), _ = asyncio.run(go())
    assert b.send_lag_s >= 0.15 and b.ttft_s >= 0.2 and a.ttft_s >= 0.05


def test_closed_loop_keeps_concurrency_and_counts():
    active = [0]
    peak = [0]

    async def send(i, t):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.01)
        active[0] -= 1
        return i

    res, _ = asyncio.run(closed_loop(send, 10, 3))
    assert res == list(range(10)) and peak[0] == 3


# ---- workloads ---------------------------------------------------------------------------------------------

def test_parse_workloads():
    seed = parse_workloads("seed")
    assert [(w.input_tokens, w.output_tokens) for w in seed] == [(50, 100), (8192, 300), (120, 200)]
    w = parse_workloads("fixed:2K:128,suite:gsm8k:64")
    assert (w[0].input_tokens, w[0].output_tokens) == (2048, 128)
    assert w[1].suite == "gsm8k" and w[1].output_tokens == 64 and not w[1].forced
    for bad in ("fixed:1", "fixed:a:b", "nope", "suite:"):
        with pytest.raises(AssayError):
            parse_workloads(bad)


def test_fit_text_hits_the_target_with_a_real_count():
    async def count(text):  # a tokenizer where some words are two tokens
        return sum(2 if len(w) > 6 else 1 for w in text.split())

    for target in (1, 7, 50, 333):
        text, c = asyncio.run(fit_text(count, target, random.Random(target)))
        assert c == asyncio.run(count(text))
        assert target - 1 <= c <= target


def test_prepare_caps_to_context_with_a_note():
    async def count(text):
        return len(text.split())

    spec = parse_workloads("fixed:8K:300")[0]
    p = asyncio.run(prepare(spec, n_prompts=3, context=4096, count=count, template_overhead=5))
    assert p.input_tokens == 4096 - 300 - 8
    assert any("capped from 8192" in n for n in p.notes)
    assert len({m[0]["content"] for m in p.messages}) == 3  # distinct prompts defeat prefix caching
    assert all(t <= p.input_tokens for t in p.prompt_tokens)
    body = request_body("m", p.messages[0], spec, force=True)
    assert body["max_tokens"] == 300 and body["ignore_eos"] is True and body["min_tokens"] == 300
    assert body["stream_options"] == {"include_usage": True}
    assert "ignore_eos" not in request_body("m", p.messages[0], spec, force=False)
    with pytest.raises(AssayError, match="do not fit"):
        asyncio.run(prepare(parse_workloads("fixed:10:500")[0], n_prompts=1, context=256, count=count,
                            template_overhead=0))


def test_fit_text_with_a_ratio_hint_needs_few_calls():
    calls = []

    async def count(text):
        calls.append(1)
        return len(text.split()) + 1  # a BOS-adding tokenizer: one word per token, plus one

    text, c = asyncio.run(fit_text(count, 500, random.Random(0), words_per_token=1.0))
    assert c == 500 and len(text.split()) == 499
    assert len(calls) <= 3


def test_every_request_gets_a_unique_prompt_across_passes():
    async def count(text):
        return len(text.split())

    p = asyncio.run(prepare(parse_workloads("fixed:20:4")[0], n_prompts=4, context=None, count=count,
                            template_overhead=0))
    assert p.n_bench == 3  # the 4th prompt is kept unseen for the cross-check
    contents = [p.message_for(g)[-1]["content"] for g in range(10)]
    assert len(set(contents)) == 10
    assert p.message_for(0) == p.messages[0] and contents[3].startswith("3. ")
    assert all(p.messages[-1][-1]["content"] != c for c in contents)


def test_bench_requests_carry_the_neutral_sampling_knobs_of_the_engine():
    """bench samples like eval: the knob fields assay sends the engine (llama.cpp: top_k 0, min_p 0,
    repeat_penalty 1.0 instead of its server's 40 / 0.05 / 1.1) go into every benchmark request."""
    from assay.bench.run import _knobs
    from assay.bench.workloads import WorkloadSpec, request_body
    from assay.engines import Endpoint

    knobs = _knobs(Endpoint("http://127.0.0.1:9/v1", "m", engine="llama.cpp"))
    assert knobs["repeat_penalty"] == 1.0 and knobs["top_k"] == 0 and knobs["min_p"] == 0.0
    spec = WorkloadSpec(name="fixed", input_tokens=8, output_tokens=4)
    body = request_body("m", [{"role": "user", "content": "x"}], spec, force=False, knobs=knobs)
    assert {k: body[k] for k in knobs} == knobs and body["temperature"] == 0.0 and body["stream"] is True
    assert "repetition_penalty" in _knobs(Endpoint("http://127.0.0.1:9/v1", "m", engine="vllm"))

