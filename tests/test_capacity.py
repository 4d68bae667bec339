"""The capacity finder (``assay bench --find-max``) against the stub server with a known capacity.

The stub serves at most ``slots`` requests at once, each for ``first_delay_s`` (a 4-token reply, no gaps), so its
capacity is slots / first_delay_s requests per second; beyond it requests queue and their TTFT grows without bound.
With nearly regular arrivals (burstiness 50) the knee is sharp, so the finder's bracket must hold the true capacity.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from assay.bench.capacity import (CapacityOptions, arrival_offsets, find_max, run_level, search, summary_lines,
                                  sure_fail_after)
from assay.stub import StubServer

SLOTS, SERVICE_S = 4, 0.1
CAPACITY = SLOTS / SERVICE_S  # 40 req/s


def test_arrivals_are_gamma_with_the_mean_rate_and_ramp_up():
    xs = arrival_offsets(10.0, 2001, burstiness=1.0, seed=1)
    assert xs[0] == 0.0 and all(b > a for a, b in zip(xs, xs[1:]))
    assert xs[-1] / 2000 == pytest.approx(0.1, rel=0.08)  # mean gap 1 / rate
    regular = arrival_offsets(10.0, 2001, burstiness=100.0, seed=1)
    gaps = [b - a for a, b in zip(regular, regular[1:])]
    assert max(gaps) < 0.16 and min(gaps) > 0.05  # shape 100: CV 0.1, nearly clockwork
    ramp = arrival_offsets(10.0, 400, burstiness=100.0, seed=1, ramp=100, ramp_start=2.5)
    first, later = ramp[1] - ramp[0], ramp[301] - ramp[300]
    assert first == pytest.approx(0.4, rel=0.3) and later == pytest.approx(0.1, rel=0.3)
    expo = arrival_offsets(10.0, 400, burstiness=100.0, seed=1, ramp=100, ramp_start=2.5, strategy="exponential")
    assert expo[50] > ramp[50]  # exponential climbs later than linear from the same start


def test_the_sure_failure_bound():
    assert sure_fail_after({"ttft": 0.5, "tpot": 0.05}, 11) == pytest.approx(1.0)
    assert sure_fail_after({"ttft": 0.5, "tpot": 0.05, "e2e": 0.8}, 11) == pytest.approx(0.8)
    assert sure_fail_after({"ttft": 0.5}, 11) is None


def _stub():
    return StubServer(reply="one two three four five six", first_delay_s=SERVICE_S, slots=SLOTS, record=False)


def _opts(**kw):
    base = dict(workload="fixed:16:4", slo={"ttft": 0.15, "tpot": 0.05}, requests=40, warmup=8, burstiness=50.0,
                tolerance=0.08, repeats=1, cooldown_s=0.3, roofline=False, start_rps=5.0)
    return CapacityOptions(**{**base, **kw})


def test_find_max_finds_the_stubs_known_capacity():
    with _stub() as stub:
        res = find_max([stub.endpoint()], _opts())
    lo, hi = res["interval_rps"]
    assert lo is not None and hi is not None, res["levels"]
    # the true capacity lies in the bracket, give or take the stub's own overhead on a busy 2-core machine
    assert 0.8 * CAPACITY <= res["capacity_rps"] <= 1.1 * CAPACITY, (res["capacity_rps"], lo, hi)
    assert lo <= 1.1 * CAPACITY and hi >= 0.85 * CAPACITY
    assert hi / lo <= 1.25
    assert any(r["stopped_early"] for r in res["levels"]), "an overloaded level must stop early"
    assert res["goodput_rps"] and res["goodput_rps"] <= res["capacity_rps"] * 1.2
    assert "req/s" in "\n".join(summary_lines(res))


def test_a_stopped_levels_backlog_drains_before_the_next_level():
    """Start far above capacity: the first level stops early, but the stub still holds its queued requests (a server
    notices a closed stream late). The next, lower levels must not start on that backlog, or they fail too and the
    finder reports a capacity far below the true one (4.8 of the stub's 10 req/s without the settle step)."""
    with StubServer(reply="one two three four five six", first_delay_s=SERVICE_S, slots=1, record=False) as stub:
        res = find_max([stub.endpoint()], _opts(start_rps=80.0, requests=16, warmup=4, max_levels=10))
    assert not res["levels"][0]["passed"] and res["levels"][0]["stopped_early"]
    # without the settle step it found 4.8 req/s here (every level after a saturated one met the backlog)
    assert res["capacity_rps"] is not None and 0.75 * 10.0 <= res["capacity_rps"] <= 1.1 * 10.0, res["levels"]


def test_an_overloaded_level_stops_early_and_says_why():
    opts = _opts(requests=60)

    async def go():
        from assay.bench.run import _Sender
        from assay.bench.workloads import request_body

        with _stub() as stub:
            ep = stub.endpoint()
            sender = _Sender([ep], 30.0)

            async def send(i, t):
                body = request_body(ep.model, [{"role": "user", "content": f"q {i}"}],
                                    __import__("assay.bench.workloads", fromlist=["x"]).parse_workloads(
                                        "fixed:16:4")[0], force=True)
                r, _ = await sender.send(body, t)
                return r

            try:
                return await run_level(send, 3 * CAPACITY, opts, 4, level_seed=3)
            finally:
                await sender.aclose()

    r = asyncio.run(go())
    assert not r["passed"] and r["stopped_early"] and "saturated" in r["stopped_early"]
    assert r["sent"] < opts.warmup + opts.requests  # it did not run the level to the end
    assert r["inflight_rising"]


def test_the_search_on_a_synthetic_server():
    """Pure search logic: a 'server' that passes every rate ≤ 12.5."""

    async def run(rate, seed):
        ok = rate <= 12.5
        return {"rate": rate, "passed": ok, "stopped_early": None if ok else "saturated", "good": 40 if ok else 0,
                "requests": 40, "attainment": 1.0 if ok else 0.0, "goodput_rps": rate if ok else 0.0,
                "e2e_mean_s": 0.1}

    res = asyncio.run(search(run, CapacityOptions(tolerance=0.05, repeats=2, max_levels=30), 1.0, lambda s: None))
    lo, hi = res["interval_rps"]
    assert lo <= 12.5 < hi and hi / lo <= 1.05 and res["capacity_rps"] == lo
    assert res["knee_passes"] == "3/3"


def test_cli_find_max_against_the_stub():
    from typer.testing import CliRunner

    from assay.cli import app

    with _stub() as stub:
        r = CliRunner().invoke(app, ["bench", "--find-max", "-e", stub.base_url, "--workload", "fixed:16:4",
                                     "--slo", "ttft:150,tpot:50", "--burstiness", "50", "--rate", "10",
                                     "--requests", "30"])
    assert r.exit_code == 0, r.output
    line = json.loads(r.stdout.strip().splitlines()[-1])
    assert line["kind"] == "bench-capacity" and line["capacity_rps"] > 0.25 * CAPACITY
