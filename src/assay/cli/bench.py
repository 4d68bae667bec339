"""``assay bench`` (latency, throughput, memory, roofline) and ``assay plan`` (what fits on which hardware).

Example:
    assay bench --workload seed                       # embedded SmolLM2-135M, the seed report's three workloads
    assay bench -e http://gpu:8000 --workload fixed:1K:128 --concurrency 1,4,16 --slo ttft=500,tpot=50
    assay bench --self-test                           # the load generator's own ceiling against a stub server
    assay plan --model qwen3-4b-instruct-2507 --gpu rtx4090 --context 32768
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import ENGINE_ARGS, engine_options, one_line_errors


def _ints(text: str) -> list[int]:
    from assay.errors import AssayError

    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise AssayError(f"bad --concurrency {text!r}: use e.g. 1,2,4,8") from None
    if not vals or min(vals) < 1:
        raise AssayError(f"bad --concurrency {text!r}: positive integers, e.g. 1,2,4,8")
    return vals


def _rates(text: str | None) -> list[float] | None:
    from assay.errors import AssayError

    if not text:
        return None
    out = []
    for x in text.split(","):
        x = x.strip().lower()
        try:
            v = math.inf if x in ("inf", "infinity") else float(x)
        except ValueError:
            raise AssayError(f"bad --rate {text!r}: requests per second, e.g. 2 or 0.5,1,inf") from None
        if v <= 0:
            raise AssayError("--rate must be > 0 (or inf)")
        out.append(v)
    return out


def _ms(x: float | None) -> str:
    return "–" if x is None else (f"{x * 1000:.0f}" if x >= 1 else f"{x * 1000:.1f}")


def _num(x: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if x is None else fmt.format(x)


def print_bench(run, console) -> None:
    from rich.table import Table

    from assay.bench.resources import fmt_bytes

    s = run.summary
    t = Table(title=f"assay bench · {s['model']} on {s['engine']} · {run.run_id}", title_justify="left")
    for col in ("workload", "load", "n ok", "input", "output", "TTFT p50 ms", "TTFT p99", "latency p50 ms",
                "TPOT p50 ms", "ITL p99 ms", "tok/s (stream)", "out tok/s (all)", "req/s", "memory"):
        t.add_column(col, justify="left" if col in ("workload", "load") else "right")
    slo = False
    for g in s["groups"]:
        load = f"rate {g['rate']:g}/s" if g["rate"] else f"c={g['concurrency']}"
        mem = g["memory"]
        memtxt = fmt_bytes(mem["peak_rss"]) if mem["peak_rss"] else "n/a"
        if mem["peak_gpu"]:
            memtxt += f" / GPU {fmt_bytes(mem['peak_gpu'])}"
        t.add_row(g["workload"], load, f"{g['completed']}/{g['n']}", _num(g["input_tokens_mean"], "{:.0f}"),
                  _num(g["output_tokens_mean"], "{:.0f}"), _ms(g["ttft_s"]["median"]), _ms(g["ttft_s"]["p99"]),
                  _ms(g["e2e_s"]["median"]), _ms(g["tpot_s"]["median"]), _ms(g["itl_s"]["p99"]),
                  _num(g["decode_tok_s"]), _num(g["output_throughput"]), _num(g["request_throughput"], "{:.2f}"),
                  memtxt)
        slo = slo or "goodput_rps" in g
    console.print(t)
    if slo:
        for g in s["groups"]:
            if "goodput_rps" in g:
                console.print(f"goodput {g['workload']} ({'rate ' + format(g['rate'], 'g') if g['rate'] else 'c=' + str(g['concurrency'])}): "
                              f"{g['good_requests']}/{g['completed']} requests meet the SLOs, {g['goodput_rps']:.2f} req/s")
    roof = s.get("roofline")
    if roof:
        bw = roof.get("bandwidth_bytes_per_s")
        src = roof.get("bandwidth") or {}
        if bw:
            console.print(f"roofline: bandwidth {bw / 1e9:.1f} GB/s ({src.get('method', '')}"
                          f"{', cached ' + src.get('measured_at', '') if src.get('cached') else ''}); weights "
                          f"{fmt_bytes(roof.get('weight_bytes'))} ({roof.get('weight_source') or 'unknown'})")
        else:
            console.print("roofline: n/a (bandwidth not measured: the engine is not on this machine)")
        for r in roof.get("per_workload", []):
            if r.get("percent") is not None:
                console.print(f"  {r['workload']}: single-stream decode {r['achieved_tok_s']:.1f} tok/s = "
                              f"{r['percent']:.0f} % of the {r['bound_tok_s']:.0f} tok/s bound "
                              f"(weights + KV at ~{r['context_tokens']:.0f} tokens)")
            else:
                console.print(f"  {r['workload']}: {r.get('note', 'n/a')}")
    from assay import engines

    for line in engines.check_lines(s):  # the engine's own timings or metrics beside ours (its probes)
        console.print(line)
    for n in s.get("notes", []):
        console.print(f"note: {n}", style="dim")
    console.print(f"run folder: {run.run_dir}  (manifest.json, requests.jsonl, summary.json)", style="dim")
    console.print("definitions as vLLM bench serve: TTFT, TPOT=(E2E−TTFT)/(out−1), ITL = pooled chunk gaps, "
                  "tokens from server usage", style="dim")


def bench_json_line(run) -> dict:
    from assay import engines

    s = run.summary
    roof = s.get("roofline") or {}
    return {
        "kind": "bench", "run_id": run.run_id, "run_dir": str(run.run_dir), "model": s["model"], "engine": s["engine"],
        "groups": [{"workload": g["workload"], "concurrency": g["concurrency"], "rate": g["rate"],
                    "completed": g["completed"], "errors": g["errors"],
                    "input_tokens": g["input_tokens_mean"], "output_tokens": g["output_tokens_mean"],
                    "ttft_ms_p50": _r(g["ttft_s"]["median"]), "ttft_ms_p99": _r(g["ttft_s"]["p99"]),
                    "tpot_ms_p50": _r(g["tpot_s"]["median"]), "itl_ms_p99": _r(g["itl_s"]["p99"]),
                    "e2e_ms_p50": _r(g["e2e_s"]["median"]), "decode_tok_s": _f(g["decode_tok_s"]),
                    "output_throughput": _f(g["output_throughput"]), "request_throughput": _f(g["request_throughput"]),
                    "goodput_rps": _f(g.get("goodput_rps")), "peak_rss": g["memory"]["peak_rss"],
                    "peak_gpu": g["memory"]["peak_gpu"]} for g in s["groups"]],
        "bandwidth_gb_s": _f(roof["bandwidth_bytes_per_s"] / 1e9) if roof.get("bandwidth_bytes_per_s") else None,
        "roofline": [{"workload": r["workload"], "bound_tok_s": _f(r.get("bound_tok_s")),
                      "achieved_tok_s": _f(r.get("achieved_tok_s")), "percent": _f(r.get("percent"))}
                     for r in roof.get("per_workload", [])],
        # the engine's own figures beside ours, as its probes wrote them (summary.json) and as lines for a person
        "crosscheck": None if not s.get("crosscheck") or s["crosscheck"].get("error") else s["crosscheck"],
        "engine_check": engines.check_lines(s),
    }


def _r(x):
    return None if x is None else round(x * 1000, 2)


def _f(x):
    return None if x is None else round(x, 2)


def register(app: typer.Typer) -> None:
    @app.command(context_settings=ENGINE_ARGS)
    @one_line_errors
    @engine_options
    def bench(
        eng,
        workload: Annotated[str, typer.Option(help="seed | fixed:IN:OUT | suite:NAME[:OUT]; comma-separate several.")] = "seed",
        concurrency: Annotated[str, typer.Option(help="Closed-loop concurrency levels to sweep, e.g. 1,2,4,8.")] = "1",
        rate: Annotated[Optional[str], typer.Option(help="Open loop: Poisson arrivals at R req/s (comma list, inf = all at once).")] = None,
        requests: Annotated[Optional[int], typer.Option(help="Requests per workload × level (default 5, or --duration).")] = None,
        duration: Annotated[Optional[float], typer.Option(help="Seconds per workload × level instead of --requests.")] = None,
        warmup: Annotated[int, typer.Option(help="Warm-up requests per level, not counted.")] = 1,
        slo: Annotated[Optional[str], typer.Option(help="Goodput SLOs in ms, e.g. ttft=500,tpot=50 (keys ttft,tpot,itl,e2e).")] = None,
        goodput: Annotated[Optional[str], typer.Option(help="The same SLOs in vLLM's syntax: 'ttft:500 tpot:50 e2el:2000'.")] = None,
        fmt: Annotated[str, typer.Option("--format", help="text (tables + JSON line) | json (the JSON line) | csv (one row per group).")] = "text",
        out: Annotated[Path, typer.Option(help="Folder for runs/<run-id>/.")] = Path("runs"),
        seed: Annotated[int, typer.Option(help="Seed for prompts and arrival times.")] = 0,
        cross_check: Annotated[Optional[bool], typer.Option("--cross-check/--no-cross-check",
                                                             help="Compare with llama.cpp's log timings (default: when local llama.cpp).")] = None,
        self_test: Annotated[bool, typer.Option("--self-test", help="Measure the load generator's own ceiling against a stub server and exit.")] = False,
        self_test_requests: Annotated[int, typer.Option(help="Requests for --self-test.")] = 3000,
        timeout: Annotated[float, typer.Option(help="Seconds before one request counts as failed (timeout).")] = 600.0,
        json_only: Annotated[bool, typer.Option("--json", help="Print only the JSON line.")] = False,
        remeasure: Annotated[bool, typer.Option("--remeasure-bandwidth", help="Measure memory bandwidth again instead of using the cached figure.")] = False,
        find_max: Annotated[bool, typer.Option("--find-max", help="Search the request rate for the highest goodput meeting --slo (assay.bench.capacity).")] = False,
        attainment: Annotated[float, typer.Option(help="--find-max: share of requests that must meet every SLO.")] = 0.9,
        burstiness: Annotated[float, typer.Option(help="--find-max: gamma shape of arrival gaps, as vLLM (1 = Poisson).")] = 1.0,
        ramp_up_strategy: Annotated[str, typer.Option(help="--find-max: linear | exponential ramp-up of each level's warm-up requests (vLLM's names).")] = "linear",
        ramp_up_start_rps: Annotated[Optional[float], typer.Option(help="--find-max: rate the ramp-up starts at (default: a quarter of the level's).")] = None,
        score: Annotated[bool, typer.Option("--score", help="Quality under load: with --workload suite:NAME, answer --requests samples (default 20) alone, under load at --rate (or at the rate --find-max found), and alone again as a control; score them with the suite and pair them (assay.bench.quality).")] = False,
    ):
        """Benchmark latency, throughput, memory and roofline of a served model (vLLM bench serve's definitions)."""
        from rich.console import Console

        if fmt not in ("text", "json", "csv"):
            raise typer.BadParameter(f"--format {fmt!r}: choose text, json or csv")
        json_only = json_only or fmt != "text"
        console = Console(quiet=json_only, width=None if sys.stdout.isatty() else 160)
        if self_test:
            from assay.bench.selftest import self_test as run_self_test

            res = run_self_test(n=self_test_requests, concurrency=32)
            _print_self_test(res, console)
            print(json.dumps({"kind": "bench-self-test", **res}))
            return

        from assay.bench.metrics import parse_slo
        from assay.bench.run import BenchOptions, run_bench
        from assay.bench.workloads import context_for, parse_workloads

        if find_max or score:
            _under_load(eng, workload, slo, goodput, requests, warmup, seed, timeout, attainment, burstiness,
                        ramp_up_strategy, ramp_up_start_rps, rate, console, find=find_max, score=score)
            return
        specs = parse_workloads(workload)  # validate before starting an engine
        opts = BenchOptions(workloads=workload, concurrency=_ints(concurrency), rates=_rates(rate),
                            requests=requests, duration_s=duration, warmup=warmup, slo={**parse_slo(slo), **parse_slo(goodput)}, out=out,
                            seed=seed, cross_check=cross_check, refresh_bandwidth=remeasure,
                            timeout_s=timeout)
        ctx = eng.ctx if eng.ctx is not None or not eng.starts else context_for(specs, eng.model)
        if eng.starts:
            print(f"starting {eng.label} (ctx {ctx or 'default'}) ...", file=sys.stderr)
        with eng.provide(ctx=ctx) as eps:
            run = run_bench(eps, opts, log=lambda m: print(m, file=sys.stderr))
        print_bench(run, console)
        if fmt == "csv":
            from assay.bench.peer import groups_csv

            sys.stdout.write(groups_csv(run.summary["groups"]))
            return
        print(json.dumps(bench_json_line(run)))

    @app.command()
    @one_line_errors
    def plan(
        model: Annotated[Optional[str], typer.Option("--model", "-m", help="Preset, HF config.json (or its folder), or a .gguf file. Default qwen3-4b-instruct-2507.")] = None,
        gpu: Annotated[Optional[str], typer.Option(help="A GPU from the table (h100, rtx4090, l4, t4, m-16, ...).")] = None,
        gpu_mem: Annotated[Optional[str], typer.Option(help="Memory size instead of --gpu, e.g. 24GiB.")] = None,
        kv_dtype: Annotated[str, typer.Option(help="KV cache dtype: bf16, fp16, fp8, fp32, q8_0, q4_0.")] = "bf16",
        weight_dtype: Annotated[Optional[str], typer.Option(help="Weights dtype for a preset/config (bf16, fp8, int4, ...).")] = None,
        context: Annotated[Optional[int], typer.Option(help="Context per sequence (default: the model's window).")] = None,
        concurrency: Annotated[int, typer.Option(help="Sequences that must fit at --context.")] = 1,
        utilization: Annotated[float, typer.Option(help="Engine memory fraction (vLLM --gpu-memory-utilization).")] = 0.9,
        headroom: Annotated[Optional[str], typer.Option(help="Activations / CUDA graphs / context headroom (default 1.5GiB).")] = None,
        seeds: Annotated[bool, typer.Option("--seeds", help="Print the seeds' hardware-fit rows with our verdict.")] = False,
    ):
        """What fits on which hardware: weights, KV cache per token (GQA-aware), largest context, concurrent sequences."""
        from rich.console import Console

        from assay.bench import plan as P

        console = Console(width=None if sys.stdout.isatty() else 160)
        result = P.plan_report(model, gpu=gpu, gpu_mem=gpu_mem, kv_dtype=kv_dtype, weight_dtype=weight_dtype,
                               context=context, concurrency=concurrency, utilization=utilization, headroom=headroom,
                               seeds=seeds)
        facts, ctx, hr, per_tok = result["facts"], result["context"], result["headroom"], result["kv_bytes_per_token"]
        console.print(f"[bold]{facts.name}[/bold]: weights {P.gib(facts.weight_bytes)} ({facts.weight_source})")
        console.print(f"KV cache: {facts.n_layers} layers × {facts.n_kv_heads} KV heads × {facts.head_dim} head dim × 2 "
                      f"(K,V) × {P.kv_bytes(kv_dtype):g} B ({kv_dtype}) = {per_tok:,.0f} B/token "
                      f"({facts.arch_source}); {ctx:,} tokens = {P.gib(per_tok * ctx)}" if ctx else "")
        console.print(f"assumes {utilization:.0%} of memory for the engine and {P.gib(hr)} headroom "
                      "(activations, CUDA context/graphs; an estimate — vLLM profiles it at start-up)", style="dim")
        if "fit" in result:
            r = result["fit"]
            console.print(f"{r['gpu']}: usable {P.gib(r['usable'])} − weights − headroom = {P.gib(r['kv_memory'])} for "
                          f"KV → largest context {r['max_context']:,}; {r.get('sequences', 0)} sequence(s) of {ctx:,}")
            console.print(f"verdict: {r['verdict']}")
        else:
            _plan_table(console, result["gpus"], ctx)
        if "seed_rows" in result:
            _seed_table(console, result["seed_rows"])
        result = {k: v for k, v in result.items() if k not in ("facts", "gpus")}
        print(json.dumps(result, default=str))


def _under_load(eng, workload, slo, goodput, requests, warmup, seed, timeout, attainment, burstiness,
                ramp_up_strategy, ramp_up_start_rps, rate, console, *, find: bool, score: bool) -> None:
    """``assay bench --find-max`` (the capacity finder, assay.bench.capacity) and/or ``--score`` (quality under load
    at --rate or at the rate found, assay.bench.quality), on one workload and one engine."""
    from assay.bench.capacity import CapacityOptions, find_max
    from assay.bench.capacity import summary_lines as capacity_lines
    from assay.bench.metrics import parse_slo
    from assay.bench.quality import QualityOptions, quality_under_load
    from assay.bench.quality import summary_lines as quality_lines
    from assay.bench.run import _jsonable
    from assay.bench.workloads import context_for, parse_workloads
    from assay.errors import AssayError

    wl = "fixed:128:64" if workload == "seed" else workload  # the seed's three shapes are not one load
    specs = parse_workloads(wl)
    rates = _rates(rate) or []
    if score and (len(specs) != 1 or not specs[0].suite):
        raise AssayError(f"--score scores a suite's answers: use one --workload suite:NAME[:OUT], not {workload!r}")
    if score and not find and (len(rates) != 1 or math.isinf(rates[0])):
        raise AssayError("--score needs one finite --rate (requests/s) to load the server at, or --find-max to find it")
    opts = CapacityOptions(workload=wl, slo={**parse_slo(slo), **parse_slo(goodput)}, attainment=attainment,
                           burstiness=burstiness, ramp_up_strategy=ramp_up_strategy,
                           ramp_up_start_rps=ramp_up_start_rps, seed=seed, timeout_s=timeout,
                           start_rps=rates[0] if rates and not math.isinf(rates[0]) else None,
                           **({"requests": requests} if requests else {}), **({"warmup": warmup} if warmup > 1 else {}))
    if find and not opts.slo:
        raise AssayError("--find-max needs --slo, e.g. --slo ttft:500,tpot:50")
    ctx = eng.ctx if eng.ctx is not None or not eng.starts else context_for(specs, eng.model)
    if eng.starts:
        print(f"starting {eng.label} (ctx {ctx or 'default'}) ...", file=sys.stderr)

    def log(m):
        print(m, file=sys.stderr, flush=True)

    with eng.provide(ctx=ctx) as eps:
        res = None
        if find:
            res = find_max(eps, opts, log=log)
            for line in capacity_lines(res):
                console.print(line)
            print(json.dumps(_jsonable({"kind": "bench-capacity", **res})))
        if score:
            at = res["capacity_rps"] if res else rates[0]
            if at is None:
                raise AssayError("--score: --find-max found no rate that meets the SLOs, so there is no load to score at")
            q = quality_under_load(eps, QualityOptions(suite=specs[0].suite, rate=at, samples=requests or 20,
                                                       max_tokens=specs[0].output_tokens, burstiness=burstiness,
                                                       seed=seed, timeout_s=timeout), log=log)
            for line in quality_lines(q):
                console.print(line)
            print(json.dumps(_jsonable(q)))


def _plan_table(console, rows, ctx) -> None:
    from rich.table import Table

    from assay.bench.plan import gib

    t = Table(title=f"fit per GPU at {ctx:,} tokens per sequence", title_justify="left")
    for c in ("GPU", "memory", "KV space", "largest context", f"sequences @ {ctx:,}", "fits"):
        t.add_column(c, justify="left" if c == "GPU" else "right")
    for r in rows:
        t.add_row(r["gpu"], gib(r["memory"]), gib(r["kv_memory"]), f"{r['max_context']:,}",
                  str(r.get("sequences", 0)), "yes" if r.get("fits") else "no")
    console.print(t)


def _seed_table(console, rows) -> None:
    from rich.table import Table

    from assay.bench.plan import gib

    t = Table(title="seed hardware rows: our verdict", title_justify="left")
    for c in ("model", "weights", "KV", "context", "hardware", "KV needed", "largest ctx", "verdict"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["model"], f"{r['weights']} {gib(r['weight_bytes'])}", r["kv_dtype"], f"{r['context']:,}",
                  r["gpu"], gib(r["kv_needed"]), f"{r['max_context']:,}", r["short"])
    console.print(t)


def _print_self_test(res: dict, console) -> None:
    from rich.table import Table

    t = Table(title="load generator ceiling (stub server in its own process"
                    f"{', pinned to separate cores' if res['pinned'] else ''})", title_justify="left")
    for c in ("client path", "req/s (c=32)", "client CPU ms/req", "capacity req/s/core", "stub CPU ms/req",
              "e2e ms @ c=1", "usage ok"):
        t.add_column(c, justify="left" if c == "client path" else "right")
    for key in ("lean", "sdk"):
        if key in res:
            r = res[key]
            t.add_row(r["path"], f"{r['req_per_s']:.0f}", f"{r['client_cpu_ms_per_req']:.3f}",
                      f"{r['client_capacity_req_per_s']:.0f}" if r.get("client_capacity_req_per_s") else "–",
                      f"{r['stub_cpu_ms_per_req']:.3f}", f"{r['e2e_ms_c1_median']:.2f}", str(r["usage_tokens_ok"]))
    console.print(t)
    la = res.get("load_avg")
    console.print(f"target: ≥ 500 streamed req/s on one core and < 1 ms client CPU per request → "
                  f"{'met' if res['meets_target'] else 'NOT met'} by the lean path (judged on its CPU cost); "
                  f"wall-clock {res['lean']['req_per_s']:.0f} req/s on {res.get('cores')} core(s)"
                  + (f" at load average {la[0]:.1f}" if la else ""), style="dim")
