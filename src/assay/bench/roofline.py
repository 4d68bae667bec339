"""Roofline for single-stream decode: every new token reads all weights (and the KV cache so far) once, so
tok/s ≤ memory bandwidth ÷ bytes read per token. We measure this machine's bandwidth once (a large numpy copy,
counting read + write bytes, best of several, on as many threads as there are cores) and cache it in
``$ASSAY_HOME/machine.json``; on a GPU the device's bandwidth is measured with torch when available, else its
datasheet figure is used (and labelled so).

Example:
    bw = memory_bandwidth()                    # {"bytes_per_s": 2.7e10, "method": "numpy copy ...", ...}
    bound = decode_bound(bw["bytes_per_s"], weight_bytes=98e6, kv_bytes=0)   # ≈ 278 tok/s
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path


def _home() -> Path:
    from assay.engines import assay_home

    return assay_home()


def _cache_key() -> str:
    from assay.bench.resources import _cpu_name

    return f"{os.uname().nodename}|{_cpu_name()}|{os.cpu_count()}"


def measure_cpu_bandwidth(size_bytes: int = 256 << 20, repeats: int = 5, threads: int | None = None) -> dict:
    """Copy ``size_bytes`` between two arrays; bandwidth = 2 × size / best time (one read + one write per byte).

    Runs single-threaded and with ``threads`` threads (numpy releases the GIL while copying) and keeps the faster,
    because llama.cpp decodes on all cores.
    """
    import numpy as np

    threads = threads or os.cpu_count() or 1
    n = size_bytes // 8
    src = np.ones(n, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault pages in before timing

    def one_thread() -> float:
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            np.copyto(dst, src)
            best = min(best, time.perf_counter() - t)
        return 2 * src.nbytes / best

    def many_threads(k: int) -> float:
        parts = np.array_split(np.arange(n), k)
        bounds = [(int(p[0]), int(p[-1]) + 1) for p in parts if len(p)]
        best = float("inf")
        for _ in range(repeats):
            barrier = threading.Barrier(len(bounds) + 1)

            def work(a, b):
                barrier.wait()
                np.copyto(dst[a:b], src[a:b])

            ts = [threading.Thread(target=work, args=ab) for ab in bounds]
            for t in ts:
                t.start()
            t0 = time.perf_counter()
            barrier.wait()
            for t in ts:
                t.join()
            best = min(best, time.perf_counter() - t0)
        return 2 * src.nbytes / best

    single = one_thread()
    multi = many_threads(threads) if threads > 1 else single
    return {"bytes_per_s": max(single, multi), "single_thread_bytes_per_s": single,
            "multi_thread_bytes_per_s": multi, "threads": threads, "size_bytes": int(src.nbytes),
            "method": f"numpy copy of {src.nbytes >> 20} MiB, read+write bytes, best of {repeats}",
            "device": "cpu"}


def measure_gpu_bandwidth(size_bytes: int = 1 << 30, repeats: int = 10) -> dict | None:
    """Device-to-device copy with torch (read + write), when torch with CUDA is installed; else None."""
    try:
        import torch  # optional: present with vLLM
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    a = torch.empty(size_bytes // 2, dtype=torch.float16, device="cuda")
    b = torch.empty_like(a)
    b.copy_(a)
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        b.copy_(a)
        e.record()
        torch.cuda.synchronize()
        best = min(best, s.elapsed_time(e) / 1000.0)
    name = torch.cuda.get_device_name(0)
    del a, b
    torch.cuda.empty_cache()
    return {"bytes_per_s": 2 * size_bytes / best, "method": f"torch device copy of {size_bytes >> 20} MiB, read+write",
            "device": name}


def memory_bandwidth(device: str = "cpu", *, refresh: bool = False) -> dict:
    """This machine's measured bandwidth, cached in $ASSAY_HOME/machine.json (``refresh`` re-measures)."""
    path = _home() / "machine.json"
    key = f"{device}|{_cache_key()}"
    cache: dict = {}
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not refresh and key in cache.get("bandwidth", {}):
        return {**cache["bandwidth"][key], "cached": True}
    if device == "gpu":
        got = measure_gpu_bandwidth()
        if got is None:
            from assay.bench.gpus import match_name
            from assay.bench.resources import gpu_info

            gi = gpu_info()
            g = match_name(gi[0]["name"]) if gi else None
            if g is None:
                return {"bytes_per_s": None, "method": "no GPU bandwidth (torch absent, GPU not in table)",
                        "device": gi[0]["name"] if gi else "n/a"}
            got = {"bytes_per_s": g.bandwidth_gbs * 1e9, "method": f"datasheet figure for {g.name} (torch absent)",
                   "device": gi[0]["name"]}
    else:
        got = measure_cpu_bandwidth()
    got["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    cache.setdefault("bandwidth", {})[key] = got
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache, indent=2))
    except OSError:
        pass
    return {**got, "cached": False}


def decode_bound(bandwidth: float, weight_bytes: float, kv_bytes: float = 0.0) -> float:
    """Upper bound on single-stream decode tokens/s: bandwidth ÷ (weights + KV cache read per token)."""
    return bandwidth / (weight_bytes + kv_bytes)


def model_facts(endpoint) -> dict:
    """Weight bytes and KV bytes/token for the model actually served: the GGUF file (llama.cpp), the safetensors files
    vLLM loads (for a GGUF preset, its bf16 copy — about 2.7× the GGUF's bytes), else a preset's parameters × dtype.

    Keys: weight_bytes, weight_source, kv_bytes_per_token, kv_source (values None when unknown).
    """
    from assay.models import PRESETS

    from assay import engines

    out = {"weight_bytes": None, "weight_source": None, "kv_bytes_per_token": None, "kv_source": None}
    if getattr(endpoint, "engine", None):
        out.update(engines.served_weights(endpoint))
    spec = None
    model = getattr(endpoint, "model", None)
    for p in PRESETS.values():
        if model in (p.name, p.hf_id):
            spec = p
    if spec is not None:
        if out["weight_bytes"] is None and spec.n_params and spec.weight_dtype in DTYPE_BYTES:
            out["weight_bytes"] = int(spec.n_params * DTYPE_BYTES[spec.weight_dtype])
            out["weight_source"] = f"preset {spec.name}: {spec.n_params:,} params × {DTYPE_BYTES[spec.weight_dtype]} B ({spec.weight_dtype})"
        if out["kv_bytes_per_token"] is None and spec.kv_bytes_per_token():
            out["kv_bytes_per_token"] = spec.kv_bytes_per_token(2.0)
            out["kv_source"] = f"preset {spec.name} (2 B per element)"
    return out


DTYPE_BYTES = {"fp32": 4, "f32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "f16": 2, "float16": 2,
               "fp8": 1, "float8": 1, "int8": 1, "q8_0": 34 / 32, "q4_1": 20 / 32, "q4_0": 18 / 32, "int4": 0.5,
               "q4_k_m": 4.85 / 8, "q5_k_m": 5.69 / 8, "q6_k": 6.56 / 8}


def roofline(bandwidth: float | None, facts: dict, *, decode_tok_s: float | None, context_tokens: float = 0.0) -> dict:
    """Bound and achieved % for one single-stream measurement at a mean context of ``context_tokens``."""
    wb = facts.get("weight_bytes")
    kv = (facts.get("kv_bytes_per_token") or 0.0) * context_tokens
    if not bandwidth or not wb:
        return {"bound_tok_s": None, "achieved_tok_s": decode_tok_s, "percent": None,
                "note": "n/a: " + ("bandwidth unknown" if not bandwidth else "model weight bytes unknown")}
    bound = decode_bound(bandwidth, wb, kv)
    return {"bound_tok_s": bound, "achieved_tok_s": decode_tok_s,
            "percent": 100.0 * decode_tok_s / bound if decode_tok_s else None,
            "bytes_per_token": wb + kv, "weight_bytes": wb, "kv_bytes_read": kv, "context_tokens": context_tokens}
