"""Load generation: closed loop at a fixed concurrency, or open loop with Poisson arrivals.

Open loop is timed from each request's *intended* send time (``t0 + schedule[i]``), so a server that falls behind
cannot hide its queueing by slowing the generator down (no coordinated omission): if the generator itself is late, the
lateness is part of the latency and is reported separately as ``send_lag_s``.

``send(i, t_intended)`` is any coroutine returning a RequestResult-like object; the clock and sleep are injectable so
the scheduler is unit-tested with a fake clock.

Example:
    offsets = poisson_offsets(rate=4.0, n=100, seed=0)
    results, duration = await open_loop(send, offsets)
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Awaitable, Callable, Sequence

Send = Callable[[int, float], Awaitable[object]]


def poisson_offsets(rate: float, n: int, seed: int = 0) -> list[float]:
    """Intended send times (seconds after start) of ``n`` requests with exponential inter-arrival gaps.

    ``rate`` = inf sends everything at t = 0 (vLLM's --request-rate inf). The first request goes at t = 0.
    """
    if n <= 0:
        return []
    if math.isinf(rate):
        return [0.0] * n
    if rate <= 0:
        raise ValueError("rate must be > 0 (or inf)")
    rng = random.Random(seed)
    t, out = 0.0, [0.0]
    for _ in range(n - 1):
        t += rng.expovariate(rate)
        out.append(t)
    return out


async def open_loop(send: Send, offsets: Sequence[float], *, clock: Callable[[], float] = time.perf_counter,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                    max_concurrency: int | None = None) -> tuple[list, float]:
    """Launch request i at ``t0 + offsets[i]`` regardless of how earlier requests are doing.

    Returns (results in request order, duration from t0 to the last completion). With ``max_concurrency`` the
    request still *counts* from its intended time while it waits for a slot (that wait is queueing, and real).
    """
    t0 = clock()
    sem = asyncio.Semaphore(max_concurrency) if max_concurrency else None
    tasks: list[asyncio.Task] = []
    end = [t0]

    async def one(i: int, t_intended: float):
        if sem:
            async with sem:
                r = await send(i, t_intended)
        else:
            r = await send(i, t_intended)
        end[0] = max(end[0], clock())
        return r

    for i, off in enumerate(offsets):
        t_intended = t0 + off
        delay = t_intended - clock()
        if delay > 0:
            await sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, t_intended)))
    results = list(await asyncio.gather(*tasks))
    return results, end[0] - t0


async def closed_loop(send: Send, n: int | None, concurrency: int, *, duration_s: float | None = None,
                      clock: Callable[[], float] = time.perf_counter) -> tuple[list, float]:
    """``concurrency`` workers, each sending its next request as soon as its last one finished.

    Stops after ``n`` requests in total, or (``duration_s``) starts no new request after that many seconds.
    Each request is timed from the moment its worker sends it (the intended time in a closed loop).
    """
    if n is None and duration_s is None:
        raise ValueError("closed_loop needs n or duration_s")
    t0 = clock()
    counter = [0]
    results: dict[int, object] = {}

    async def worker():
        while True:
            i = counter[0]
            if n is not None and i >= n:
                return
            if duration_s is not None and clock() - t0 >= duration_s:
                return
            counter[0] += 1
            results[i] = await send(i, clock())

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    duration = clock() - t0
    return [results[i] for i in sorted(results)], duration
