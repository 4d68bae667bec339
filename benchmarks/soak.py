"""Soak: 10,000 streamed requests through assay's bench path against the stub server (loopback only, bounded).

Passes when there are 0 harness errors and memory is flat: the client's RSS after the last rounds is within a few
MiB of where it was after the first round (each round's results are written to its run folder and dropped).

    python benchmarks/soak.py [--requests 10000] [--rounds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-rss-growth-mib", type=float, default=16.0)
    a = ap.parse_args()
    from assay.bench.run import BenchOptions, run_bench
    from assay.bench.selftest import start_stub_process
    from assay.engines import connect

    stub, url = start_stub_process()
    me, stub_ps = psutil.Process(), psutil.Process(stub.pid)
    per = a.requests // a.rounds
    errors = done = 0
    rss: list[float] = []
    t0 = time.perf_counter()
    try:
        eps = connect([url])
        with tempfile.TemporaryDirectory() as out:
            for i in range(a.rounds):
                opts = BenchOptions(workloads="fixed:32:16", concurrency=[a.concurrency], requests=per, warmup=0,
                                    out=Path(out), roofline=False, cross_check=False, timeout_s=60.0)
                run = run_bench(eps, opts)
                bad = [r for r in run.results if not r.get("ok")]
                errors += len(bad)
                done += len(run.results)
                del run
                rss.append(me.memory_info().rss / 2**20)
                print(f"round {i + 1}/{a.rounds}: {done} requests, {errors} errors, client RSS {rss[-1]:.1f} MiB, "
                      f"stub RSS {stub_ps.memory_info().rss / 2**20:.1f} MiB", flush=True)
                if bad:
                    print("  first error:", bad[0].get("error"))
    finally:
        stub.kill()
        stub.wait()
    wall = time.perf_counter() - t0
    growth = max(rss[1:]) - rss[1] if len(rss) > 2 else 0.0  # after the first round: imports and pools are warm
    ok = errors == 0 and done == per * a.rounds and growth <= a.max_rss_growth_mib
    print(f"{done} requests in {wall:.0f} s ({done / wall:.0f} req/s), {errors} harness errors, client RSS "
          f"{rss[0]:.1f} -> {rss[-1]:.1f} MiB (growth after round 2: {growth:+.1f} MiB): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
