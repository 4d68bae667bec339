"""The load generator's own ceiling: how many streamed requests per second it sustains and how much time it adds per
request, against the stub streaming server running in a *separate process* (so each side gets its own core).

Two client paths are measured: the lean SSE path ``assay bench`` uses (``assay.bench.sse``) and the general
``assay.client.Client`` (openai SDK) used by evals — to show why bench does not share it.

Figures per path:
- ``req_per_s``: sustained completed requests per second at the given concurrency.
- ``client_cpu_ms_per_req``: this process's CPU time per request (the generator's own cost; the work it adds).
- ``client_capacity_req_per_s``: 1 / that CPU time — the rate one core of generator could drive if the server kept
  up (on a busy or small machine the stub, not the generator, sets ``req_per_s``: compare ``stub_cpu_ms_per_req``).
- ``e2e_ms_c1``: mean end-to-end time at concurrency 1 with a zero-delay stub (client + loopback + stub: an upper
  bound on what the generator adds to every measured latency).

Example:
    assay bench --self-test
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

STUB_REPLY = " ".join(f"tok{i}" for i in range(16))  # 16 streamed chunks per request


def _serve_main(pin_cpu: int | None) -> None:  # pragma: no cover - runs in the child process
    from assay.stub import StubServer

    if pin_cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {pin_cpu})
    s = StubServer(reply=STUB_REPLY, record=False)

    async def main():
        task = asyncio.ensure_future(s.serve_forever_async())
        while not s._ready.is_set():
            await asyncio.sleep(0.01)
        print(s.port, flush=True)
        await task

    asyncio.run(main())


def start_stub_process(pin_cpu: int | None = None) -> tuple[subprocess.Popen, str]:
    code = f"from assay.bench.selftest import _serve_main; _serve_main({pin_cpu!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        raise RuntimeError("stub server process did not start")
    return proc, f"http://127.0.0.1:{line}/v1"


def _body(max_tokens: int = 64) -> dict:
    return {"model": "stub-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens,
            "stream": True, "stream_options": {"include_usage": True}}


def _cpu_s(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


async def _measure_lean(base_url: str, n: int, concurrency: int, stub_pid: int) -> dict:
    from assay.bench.loadgen import closed_loop
    from assay.bench.sse import SSEPool

    pool = SSEPool(base_url)
    body = _body()

    async def send(i, t):
        return await pool.chat(body, t)

    await closed_loop(send, 50, concurrency)  # warm-up: connections, code paths
    c0, s0 = time.process_time(), _cpu_s(stub_pid)
    res, dur = await closed_loop(send, n, concurrency)
    cpu, stub_cpu = time.process_time() - c0, _cpu_s(stub_pid) - s0
    ok = [r for r in res if r.ok]
    one, _ = await closed_loop(send, 200, 1)
    await pool.aclose()
    e2e = sorted(r.e2e_s for r in one if r.ok)
    return {"path": "assay.bench.sse (lean)", "requests": n, "ok": len(ok), "concurrency": concurrency,
            "req_per_s": len(ok) / dur, "client_cpu_ms_per_req": 1000 * cpu / n,
            "client_capacity_req_per_s": n / cpu if cpu else None, "stub_cpu_ms_per_req": 1000 * stub_cpu / n,
            "e2e_ms_c1_mean": 1000 * sum(e2e) / len(e2e), "e2e_ms_c1_median": 1000 * e2e[len(e2e) // 2],
            "chunks_per_req": len(ok[0].chunk_times) if ok else 0,
            "usage_tokens_ok": all(r.output_tokens == 16 for r in ok)}


async def _measure_sdk(base_url: str, n: int, concurrency: int, stub_pid: int) -> dict:
    from assay.bench.loadgen import closed_loop
    from assay.client import Client, SamplingParams
    from assay.engines import Endpoint

    client = Client([Endpoint(base_url, "stub-model")], max_retries=0)
    msgs = [{"role": "user", "content": "hi"}]
    params = SamplingParams(max_tokens=64)

    async def send(i, t):
        return await client.chat(msgs, params)

    await closed_loop(send, 50, concurrency)
    c0, s0 = time.process_time(), _cpu_s(stub_pid)
    res, dur = await closed_loop(send, n, concurrency)
    cpu, stub_cpu = time.process_time() - c0, _cpu_s(stub_pid) - s0
    one, _ = await closed_loop(send, 200, 1)
    await client.aclose()
    e2e = sorted(r.e2e_s for r in one)
    return {"path": "assay.client.Client (openai SDK)", "requests": n, "ok": len(res), "concurrency": concurrency,
            "req_per_s": len(res) / dur, "client_cpu_ms_per_req": 1000 * cpu / n,
            "client_capacity_req_per_s": n / cpu if cpu else None, "stub_cpu_ms_per_req": 1000 * stub_cpu / n,
            "e2e_ms_c1_mean": 1000 * sum(e2e) / len(e2e), "e2e_ms_c1_median": 1000 * e2e[len(e2e) // 2],
            "chunks_per_req": len(res[0].chunk_times) if res else 0,
            "usage_tokens_ok": all(r.completion_tokens == 16 for r in res)}


def self_test(n: int = 2000, concurrency: int = 32, sdk: bool = True) -> dict:
    """Run both paths against a stub in its own process; pin client and stub to different cores when there are ≥ 2."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = len(cores) >= 2
    proc, url = start_stub_process(cores[1] if pin else None)
    old = os.sched_getaffinity(0) if pin else None
    try:
        if pin:
            os.sched_setaffinity(0, {cores[0]})
        out = {"stub": url, "pinned": pin, "stub_chunks_per_request": 16,
               "lean": asyncio.run(_measure_lean(url, n, concurrency, proc.pid))}
        if sdk:
            out["sdk"] = asyncio.run(_measure_sdk(url, max(200, n // 4), concurrency, proc.pid))
    finally:
        if pin:
            os.sched_setaffinity(0, old)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    lean = out["lean"]
    out["target"] = {"req_per_s": 500, "client_ms_per_req": 1.0}
    # Judged on the generator's own CPU cost: on a shared or small machine the wall-clock req/s is set by the stub
    # and by other processes (see load_avg), not by the generator.
    out["meets_target"] = (lean["client_capacity_req_per_s"] or 0) >= 500 and lean["client_cpu_ms_per_req"] < 1.0
    out["wall_meets_target"] = lean["req_per_s"] >= 500
    out["load_avg"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    out["cores"] = len(cores) or os.cpu_count()
    return out
