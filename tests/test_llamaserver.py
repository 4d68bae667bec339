"""The llama-server engine (llama.cpp's C++ server): its command line, build cache and one-line failures, how a running
one is recognised (``/props``) and what it then gets, its log / ``/metrics`` cross-check parsers — without the
binary — and, marked ``engine``, live: serve -> chat, tokenize, forced lengths, JSON schema, tools, bench with the
cross-check, a running server used through ``--endpoint``, and a clean stop.

The live tests need the binary: ``$ASSAY_LLAMA_SERVER`` or this machine's cached build (``assay
llama-server-build``; ``.ci/run`` builds it). Without one they skip and say so (a build is minutes, not a test's job).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from assay import engines
from assay.engines import llamaserver as ls
from assay.engines import llamaserver_build as lsb
from assay.engines import llamaserver_perf as perf
from assay.errors import PrerequisiteError


def _binary() -> Path | None:
    """Found at import, before the per-test ASSAY_HOME: the environment's binary or the user's cached build."""
    try:
        return lsb.find_binary()
    except PrerequisiteError:
        return None


BINARY = _binary()
LIVE_REASON = None if BINARY else ("no llama-server binary: run `assay llama-server-build` (or set "
                                   "ASSAY_LLAMA_SERVER); .ci/run builds it")


# ---- without the binary ---------------------------------------------------------------------------------------------
def test_registered_by_name_and_alias_with_its_capabilities():
    assert engines.engine_name("llama-server") == "llama-server" == engines.engine_name("LlamaServer")
    caps = engines.capabilities("llama-server", tool_format=ls.TOOL_FORMAT)
    assert caps.batching and caps.forces_output and caps.metrics and caps.timing_log
    assert caps.tokenize_routes == ("/tokenize",) and caps.tokenize_text_field == "content"
    assert caps.json_schema == "openai" and caps.tools == "native" and caps.tool_stream
    assert caps.sampling.defaults == {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0, "presence_penalty": 0.0,
                                      "frequency_penalty": 0.0}
    assert caps.sampling.wire["repeat_penalty"] == "repeat_penalty"
    assert engines.capabilities("llama-server").tools == "unknown"  # a running one: maybe without --jinja


def test_command_line_batching_amx_and_user_flags_win(tmp_path):
    cmd = ls.build_command("/bin/llama-server", tmp_path / "m.gguf", host="127.0.0.1", port=9, ctx=8192, threads=2,
                           parallel=8, alias="smollm2-135m", no_repack=True, api_key="k")
    s = " ".join(cmd)
    for part in ("-t 2", "-tb 2", "-np 8", "-c 65536", "--no-kv-unified", "--no-repack", "--jinja", "--metrics",
                 "-a smollm2-135m", "--api-key k", "--no-webui"):  # a KV cache per slot: 8 × 8192
        assert part in s, part
    shared = ls.build_command("/bin/llama-server", tmp_path / "m.gguf", host="h", port=9, ctx=8192, threads=2,
                              parallel=8, alias="a", kv_unified=True)
    assert "--kv-unified" in shared and shared[shared.index("-c") + 1] == "16384"  # max(ctx, 8 × 2048) shared
    old = ls.build_command("/bin/llama-server", tmp_path / "m.gguf", host="h", port=9, ctx=4096, threads=2,
                           parallel=4, alias="a", kv_unified=True, kv_flag=False)  # a build without the flag
    assert not any("kv-unified" in a for a in old) and old[old.index("-c") + 1] == str(4 * 4096)
    cmd = ls.build_command("/bin/llama-server", tmp_path / "m.gguf", host="h", port=9, ctx=4096, threads=2,
                           parallel=4, alias="a", extra_args=["-np", "2", "--threads", "1", "-c", "999", "-kvu"],
                           kv_flag=True)
    assert cmd.count("-np") == 1 and "-t" not in cmd and "--no-kv-unified" not in cmd and "--no-repack" not in cmd
    assert cmd[-7:] == ["-np", "2", "--threads", "1", "-c", "999", "-kvu"]
    assert ls._parallel(["-np", "2"], 8) == 2 and ls._parallel([], 8) == 8


def test_kv_cache_per_slot_unless_it_would_not_fit(tmp_path):
    """SmolLM2-135M: 30 layers × 3 KV heads × 64 × 2 (K, V) × 2 bytes = 23,040 bytes per token; 8 slots of 8,192
    tokens = 1.5 GB, a cache per slot where a quarter of the memory holds it, the shared pool where it does not."""
    from assay.models import resolve

    gguf = resolve("smollm2-135m").gguf_path()
    unified, slot = ls.kv_layout(gguf, 8192, 8, available_bytes=64 * 2**30)
    assert slot == 23040 * 8192 and not unified
    assert ls.kv_layout(gguf, 8192, 8, available_bytes=4 * 2**30)[0]  # 1.5 GB > 1 GiB: shared
    assert ls.kv_layout(tmp_path / "missing.gguf", 8192, 8)[0]  # unreadable: the shared pool, which always fits


def test_build_cache_is_per_version_and_cpu_flags(tmp_path, monkeypatch):
    a = lsb.cache_dir("0.3.36", {"avx2"}, home=tmp_path)
    assert a != lsb.cache_dir("0.3.36", {"avx2", "amx_tile"}, home=tmp_path)
    assert a != lsb.cache_dir("0.3.37", {"avx2"}, home=tmp_path)
    assert a.parent == tmp_path / "llama-server"
    monkeypatch.setenv(lsb.ENV, str(tmp_path / "nope"))
    with pytest.raises(PrerequisiteError, match="ASSAY_LLAMA_SERVER=.*not an executable"):
        lsb.find_binary()
    exe = tmp_path / "llama-server"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv(lsb.ENV, str(exe))
    assert lsb.find_binary() == exe


def test_a_failed_build_is_one_line_naming_the_missing_tool(monkeypatch, tmp_path):
    monkeypatch.delenv(lsb.ENV, raising=False)
    real = lsb.shutil.which
    monkeypatch.setattr(lsb.shutil, "which", lambda name: None if name == "cmake" else real(name))
    with pytest.raises(PrerequisiteError) as e:
        lsb.build(home=tmp_path)
    msg = str(e.value)
    assert "cmake not found" in msg and "\n" not in msg and "apt-get install cmake" in msg


def test_the_cli_build_command_fails_in_one_line(monkeypatch):
    from typer.testing import CliRunner

    from assay.cli import app

    monkeypatch.delenv(lsb.ENV, raising=False)
    monkeypatch.setattr(lsb, "missing_tools", lambda: ["cmake", "make"])
    r = CliRunner().invoke(app, ["llama-server-build"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1].startswith("error: cannot build llama-server: cmake, make not found")


def test_a_running_llama_server_is_recognised_by_its_props(stub):
    st = stub()
    st.props = {"default_generation_settings": {"n_ctx": 4096, "params": {"top_k": 40}}, "build_info": "b1-abc",
                "total_slots": 4, "model_path": "/m.gguf"}
    [ep] = engines.connect(st.base_url)
    assert (ep.engine, ep.engine_version) == ("llama-server", "b1-abc")
    assert ep.caps.forces_output and ep.caps.tokenize_text_field == "content" and ep.caps.batching


def test_a_bare_props_is_not_a_llama_server(stub):
    st = stub()
    st.props = {"model_path": "/m.gguf", "total_slots": 1}  # what another server may say
    [ep] = engines.connect(st.base_url)
    assert ep.engine != "llama-server"


def test_prompts_are_sized_through_its_tokenize_route(stub):
    """The client sends the text as ``content``, which llama-server's /tokenize reads (not ``prompt``)."""
    import asyncio

    from assay.client import Client

    st = stub()
    st.props = {"default_generation_settings": {"n_ctx": 4096}, "build_info": "b1"}
    [ep] = engines.connect(st.base_url)

    async def go():
        c = Client([ep])
        try:
            return await c.tokenize("one two three")
        finally:
            await c.aclose()

    assert asyncio.run(go()) == [0, 1, 2]


LOG = """\
srv  update_slots: all slots are idle
slot print_timing: id  0 | task 12 | 
prompt eval time =      41.27 ms /    57 tokens (    0.72 ms per token,  1381.10 tokens per second)
       eval time =     712.40 ms /    99 tokens (    7.20 ms per token,   138.97 tokens per second)
      total time =     753.67 ms /   156 tokens
slot print_timing: id  1 | task 13 | prompt eval time =       5.00 ms /     4 tokens (    1.25 ms per token)
slot print_timing: id  1 | task 13 |        eval time =      20.00 ms /    10 tokens (    2.00 ms per token)
"""


def test_timing_blocks_from_the_log():
    blocks = perf.timing_blocks(LOG)
    assert blocks == [{"prompt_ms": 41.27, "prompt_tokens": 57, "eval_ms": 712.4, "eval_tokens": 99},
                      {"prompt_ms": 5.0, "prompt_tokens": 4, "eval_ms": 20.0, "eval_tokens": 10}]


def test_metrics_diff_and_the_check_line():
    from assay.bench.sse import RequestResult

    before = perf.parse("llamacpp:prompt_tokens_total 10\nllamacpp:tokens_predicted_total 100\n"
                        "llamacpp:tokens_predicted_seconds_total 1.0\nllamacpp:prompt_seconds_total 0.1\n"
                        "llamacpp:n_decode_total 100\nllamacpp:n_busy_slots_per_decode 1\n"
                        "llamacpp:prompt_tokens_cached_total 0\n# HELP x\n")
    after = perf.parse("llamacpp:prompt_tokens_total 50\nllamacpp:tokens_predicted_total 164\n"
                       "llamacpp:tokens_predicted_seconds_total 1.64\nllamacpp:prompt_seconds_total 0.3\n"
                       "llamacpp:n_decode_total 132\nllamacpp:n_busy_slots_per_decode 1.5\n"
                       "llamacpp:prompt_tokens_cached_total 8\n")
    d = perf.diff(before, after)
    assert d["tokens_predicted_total"] == 64 and d["n_decode_total"] == 32
    assert d["busy_slots_per_decode"] == pytest.approx((1.5 * 132 - 100) / 32)
    rs = [RequestResult(ok=True, input_tokens=24, output_tokens=32, chunk_times=[0.1 + 0.01 * i for i in range(32)],
                        e2e_s=0.1 + 0.01 * 31) for _ in range(2)]
    cc = perf.compare_group(d, rs)
    assert cc["engine"]["output_tokens"] == cc["ours"]["output_tokens"] == 64
    assert cc["engine"]["prompt_tokens"] == 48 == cc["ours"]["prompt_tokens"]
    assert cc["engine"]["tpot_mean_s"] == pytest.approx(0.01)
    line = perf.check_lines({"groups": [{"workload": "16→32", "concurrency": 2, "rate": None,
                                         perf.MetricsProbe.key: cc}]})[0]
    assert "llama-server /metrics" in line and "output tokens 64 vs 64" in line


# ---- live ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("ls_home")
    old = os.environ.get("ASSAY_HOME"), os.environ.get(lsb.ENV)
    os.environ["ASSAY_HOME"], os.environ[lsb.ENV] = str(home), str(BINARY)
    try:
        with engines.start(engine="llama-server", ctx=4096) as s:
            yield s
    finally:
        for k, v in zip(("ASSAY_HOME", lsb.ENV), old):
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def ep(server, monkeypatch):
    monkeypatch.setenv(lsb.ENV, str(BINARY))
    return server.endpoint


@pytest.mark.engine
@pytest.mark.skipif(BINARY is None, reason=LIVE_REASON or "")
def test_serve_chat_usage_and_facts(ep):
    assert ep.engine == "llama-server" and ep.model == "smollm2-135m" and ep.pid
    assert ep.engine_version and "llama-cpp-python" in ep.engine_version
    facts = ep.facts
    assert facts["parallel"] == ls.DEFAULT_PARALLEL and facts["llama_amx"]["setting"] in ("on", "off")
    assert any("slots" in line for line in engines.fact_lines(ep))
    # a KV cache per slot, each holding the served context (8 × 94 MB for SmolLM2-135M at 4096 fits easily)
    assert facts["kv_unified"] is False and any("a KV cache per slot" in line for line in engines.fact_lines(ep))
    assert ep.context == 4096  # each slot holds the whole served context (the fixture asks for 4096)
    r = httpx.post(f"{ep.base_url}/chat/completions", json={
        "model": ep.model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8,
        "temperature": 0.0, "ignore_eos": True}, timeout=120)
    body = r.json()
    assert r.status_code == 200 and body["usage"]["completion_tokens"] == 8  # ignore_eos forced the length
    assert body["timings"]["predicted_n"] == 8  # the per-request timings the cross-check reads


@pytest.mark.engine
@pytest.mark.skipif(BINARY is None, reason=LIVE_REASON or "")
def test_tokenize_json_schema_and_tools_through_the_client(ep):
    import asyncio

    from assay.client import Client, SamplingParams

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    tools = [{"type": "function", "function": {"name": "add", "description": "Add two numbers",
                                               "parameters": {"type": "object", "properties": {
                                                   "a": {"type": "number"}, "b": {"type": "number"}}}}}]

    async def go():
        c = Client([ep])
        try:
            toks = await c.tokenize("Hello world, hello world.")
            js = await c.chat([{"role": "user", "content": "Give me a number as JSON."}],
                              SamplingParams(max_tokens=32, response_format={
                                  "type": "json_schema", "json_schema": {"name": "n", "schema": schema}}))
            tl = await c.chat([{"role": "user", "content": "What is 2 + 3? Use the tool."}],
                              SamplingParams(max_tokens=64, tools=tools))
            return toks, js, tl
        finally:
            await c.aclose()

    toks, js, tl = asyncio.run(go())
    assert toks and 3 <= len(toks) <= 12
    assert isinstance(json.loads(js.text)["n"], int)  # the schema became a grammar
    assert tl.finish_reason in ("stop", "tool_calls", "length")  # a tools request is accepted (--jinja)


@pytest.mark.engine
@pytest.mark.skipif(BINARY is None, reason=LIVE_REASON or "")
def test_bench_sizes_prompts_forces_lengths_and_cross_checks(ep, tmp_path):
    from assay.bench.run import BenchOptions, run_bench

    run = run_bench([ep], BenchOptions(workloads="fixed:64:16", concurrency=[1, 4], requests=4, out=tmp_path,
                                       roofline=False))
    g1, g4 = run.summary["groups"]
    assert g1["errors"] == g4["errors"] == 0
    assert abs(g1["input_tokens_mean"] - 64) <= 3  # sized with its /tokenize (not a 500-token guess)
    assert g1["output_tokens_mean"] == 16  # forced with ignore_eos
    for g in (g1, g4):
        cc = g[perf.MetricsProbe.key]
        assert cc["engine"]["output_tokens"] == cc["ours"]["output_tokens"]
        assert cc["ours"]["tpot_mean_s"] == pytest.approx(cc["engine"]["tpot_mean_s"], rel=0.5)
    assert g4[perf.MetricsProbe.key]["engine"]["busy_slots_per_decode"] > 1.2  # it batched
    cc = run.summary["crosscheck"]
    assert cc and not cc.get("error") and cc["output_tokens_match"]
    assert cc["ttft_minus_prompt_eval_ms"] >= 0
    lines = engines.check_lines(run.summary)
    assert any("/metrics" in x for x in lines) and any("timings (log)" in x for x in lines)


@pytest.mark.engine
@pytest.mark.skipif(BINARY is None, reason=LIVE_REASON or "")
def test_a_running_server_through_endpoint_gets_its_capabilities(ep):
    [remote] = engines.connect(ep.base_url)
    assert remote.engine == "llama-server" and remote.engine_version
    assert remote.caps.forces_output and remote.caps.tokenize_text_field == "content"
    assert remote.caps.sampling.defaults["top_k"] == 40


@pytest.mark.engine
@pytest.mark.skipif(BINARY is None, reason=LIVE_REASON or "")
def test_amx_off_means_no_repack_and_the_stop_leaves_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv(lsb.ENV, str(BINARY))
    s = engines.start(engine="llama-server", ctx=2048, llama_amx="off", threads=1)
    try:
        cmd = psutil.Process(s.endpoint.pid).children(recursive=True)[0].cmdline()
        assert "--no-repack" in cmd and "--jinja" in cmd and "--metrics" in cmd
        assert s.endpoint.facts["llama_amx"]["setting"] == "off"
        r = httpx.post(f"{s.endpoint.base_url}/chat/completions", json={
            "model": s.endpoint.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}, timeout=60)
        assert r.status_code == 200
        family = [psutil.Process(s.endpoint.pid)] + psutil.Process(s.endpoint.pid).children(recursive=True)
    finally:
        s.stop()
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.engine
@pytest.mark.skipif(BINARY is None, reason=LIVE_REASON or "")
def test_assay_eval_with_engine_llama_server(tmp_path, monkeypatch):
    monkeypatch.setenv(lsb.ENV, str(BINARY))
    p = subprocess.run([sys.executable, "-m", "assay.cli", "eval", "--engine", "llama-server", "--suite", "json",
                        "--limit", "4", "--out", str(tmp_path), "-c", "4"], capture_output=True, text=True,
                       timeout=600, env={**os.environ})
    assert p.returncode == 0, p.stderr[-2000:]
    head = json.loads(p.stdout.strip().splitlines()[-1])
    assert head.get("engine", "llama-server") == "llama-server" or "llama-server" in p.stdout
