"""The real embedded model through the real llama.cpp server, and the engine's error paths."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from assay.client import Client, Completion, SamplingParams
from assay.engines import connect, free_port, start
from assay.engines.llamacpp import build_command
from assay.errors import AssayError, EndpointUnreachable, EngineStartError, ModelNotFound

pytestmark = pytest.mark.engine


def test_real_completion_through_the_client(embedded):
    async def go():
        async with Client(embedded) as c:
            return await c.chat([{"role": "user", "content": "What is the capital of France? One word."}],
                                SamplingParams(max_tokens=24, temperature=0.0))

    done = asyncio.run(go())
    assert done.text.strip(), "the model answered nothing"
    assert done.finish_reason in ("stop", "length")
    assert done.model == embedded.model == "smollm2-135m"
    # llama-cpp-python 0.3.x sends no usage chunk when streaming: the completion is counted with the server's own
    # tokenizer instead of chunk counts, and the prompt as the server renders it (tests/test_prompt_tokens.py)
    assert done.usage_source in ("server", "tokenizer")
    assert 1 <= done.completion_tokens <= 24
    if done.usage_source == "tokenizer":
        assert done.prompt_tokens_source == "local" and done.prompt_tokens > 0
    # timings: positive and ordered
    assert 0 < done.ttft_s <= done.chunk_times[-1] <= done.e2e_s
    assert all(b >= a for a, b in zip(done.chunk_times, done.chunk_times[1:]))


def test_ignore_eos_forces_length(embedded):
    async def go():
        async with Client(embedded) as c:
            return await c.chat([{"role": "user", "content": "Say hi."}],
                                SamplingParams(max_tokens=40, ignore_eos=True))

    done = asyncio.run(go())
    assert done.completion_tokens == 40 and done.finish_reason == "length"


def test_tokenize_uses_the_served_tokenizer(embedded):
    async def go():
        async with Client(embedded) as c:
            return await c.tokenize("hello world, hello world")

    toks = asyncio.run(go())
    assert toks and all(isinstance(t, int) for t in toks) and 4 <= len(toks) <= 8


TRICKY = ["hello world, hello world", "  Émile → 数学 \\boxed{\\frac{1}{2}}\n\n- item", "<|im_end|> tail", "a" * 300,
          "\t\r\n  ", "emoji 🙂🙂 and ZWJ 👩‍💻"]


def test_local_vocabulary_tokenizes_exactly_like_the_server(embedded):
    # the client counts with the GGUF's vocabulary in-process for an engine it started; it must agree with the
    # server's /extras/tokenize token for token, special tokens included
    import httpx

    async def go():
        async with Client(embedded) as c:
            return [await c.tokenize(t) for t in TRICKY]

    local = asyncio.run(go())
    served = [httpx.post(f"{embedded.root}/extras/tokenize", json={"input": t}, timeout=60).json()["tokens"]
              for t in TRICKY]
    assert local == served
    assert len(local[2]) == 2  # <|im_end|> is one special token, not its characters


def test_counting_a_reply_does_not_queue_behind_other_generations(embedded):
    # llama-cpp-python serialises every model call, /extras/tokenize included: a reply counted by the server waited
    # for every generation queued after it. A reply must come back before the generations queued behind it finish.
    async def one(c, prompt, **kw):
        comp = await c.chat([{"role": "user", "content": prompt}], SamplingParams(temperature=0.0, **kw))
        return comp, time.perf_counter()

    async def first(c, started: asyncio.Event):
        # A reply that ends by itself (a reply cut at max_tokens is counted without the tokenizer), ~50 tokens: still
        # generating when the other two arrive.
        async for item in c.stream([{"role": "user", "content": "Write two sentences about the sea."}],
                                   SamplingParams(temperature=0.0, max_tokens=300)):
            started.set()
            if isinstance(item, Completion):
                return item, time.perf_counter()

    async def go():
        async with Client(embedded) as c:
            started = asyncio.Event()
            head = asyncio.create_task(first(c, started))
            await started.wait()  # the server is generating it: the next two queue behind it
            queued = [asyncio.create_task(one(c, f"Write a long story, part {i}.", max_tokens=128, ignore_eos=True))
                      for i in range(2)]
            return await head, await asyncio.gather(*queued)

    (head, head_done), queued = asyncio.run(go())
    assert head.finish_reason == "stop" and head.usage_source == "tokenizer"  # the path under test: counted
    assert all(c.completion_tokens > 100 for c, _ in queued)
    assert head_done < min(done for _, done in queued)


def test_connect_to_running_server_reports_its_model(embedded):
    [ep] = connect([embedded.root])  # no /v1 suffix: normalised
    assert ep.base_url == embedded.base_url and ep.model == "smollm2-135m" and ep.engine == "llama.cpp"


def test_llamacpp_command_disables_interrupts_and_uses_all_cores(tmp_path):
    cmd = build_command(tmp_path / "m.gguf", host="127.0.0.1", port=1234, ctx=2048, threads=os.cpu_count(), alias="m")
    assert cmd[cmd.index("--interrupt_requests") + 1] == "False"
    assert cmd[cmd.index("--n_threads") + 1] == str(os.cpu_count())
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"


def test_start_and_stop_leave_no_process():
    server = start("smollm2-135m", ctx=512)
    pid = server.endpoint.pid
    family = [psutil.Process(pid)] + psutil.Process(pid).children(recursive=True)
    assert server.endpoint.base_url.startswith("http://127.0.0.1:")
    assert os.path.getsize(server.endpoint.log_path) > 0
    server.stop()
    _, alive = psutil.wait_procs(family, timeout=10)  # a busy machine may reap late; a leak never goes
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_port_in_use_names_the_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(AssayError, match=f"port {port} .*already in use.*--port"):
            start("smollm2-135m", port=port)


def test_gguf_not_found():
    with pytest.raises(ModelNotFound, match="GGUF not found"):
        start("/definitely/missing/model.gguf")


def test_engine_exit_during_startup_quotes_the_log(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"this is not a gguf file" * 100)
    with pytest.raises(EngineStartError) as e:
        start(str(bad))
    msg = str(e.value)
    assert "exited with code 1 during start-up" in msg and "log" in msg and "\n" not in msg


def test_endpoint_unreachable():
    with pytest.raises(EndpointUnreachable, match="unreachable"):
        connect([f"http://127.0.0.1:{free_port()}"])


def _wait_line(proc, needle, timeout=120):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return line, lines
    raise AssertionError(f"never saw {needle!r}: {lines}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_cli_stops_engine_and_children_on_signal(sig):
    port = free_port()
    env = {k: v for k, v in os.environ.items()}
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", "serve", "--port", str(port), "--ctx", "512"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        _wait_line(proc, "base URL")
        model_line, _ = _wait_line(proc, "model:")
        assert "smollm2-135m" in model_line
        family = psutil.Process(proc.pid).children(recursive=True)
        assert family, "the engine should be a child process"
        [ep] = connect([f"http://127.0.0.1:{port}"])
        assert ep.model == "smollm2-135m"
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
        gone, alive = psutil.wait_procs(family, timeout=10)
        assert not alive, f"orphans left: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_cli_unknown_preset_is_one_line():
    r = subprocess.run([sys.executable, "-m", "assay.cli", "serve", "--model", "nope-model"], capture_output=True,
                       text=True)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: unknown model") and "smollm2-135m" in r.stderr and "qwen3-4b-instruct-2507" in r.stderr


def test_sigterm_during_a_command_stops_the_engine_it_started(tmp_path):
    """Any command that starts an engine (here `assay eval`) must not orphan it, or its scoring workers, on SIGTERM."""
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", "eval", "--suite", "math", "--limit", "3",
                             "--out", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        engine = None
        while time.monotonic() < deadline and engine is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                if "llama_cpp.server" in " ".join(child.cmdline()):
                    engine = child
            time.sleep(0.5)
        assert engine is not None, "the engine never started"
        family = psutil.Process(proc.pid).children(recursive=True)
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        gone, alive = psutil.wait_procs(family, timeout=20)
        assert not alive, f"orphans left: {[p.cmdline() for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
