"""Real hardware, real faults: the AMX decision (CPU flags faked), engines that die mid-run, assay itself SIGKILLed.

Every process here is real: the llama.cpp server with the embedded model, ``assay eval`` as a subprocess, crashing
probes that die of a real SIGSEGV, and an engine-like process tree killed with a real ``kill -9`` of its parent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from assay.engines import amx
from assay.errors import AssayError

CRASH = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
AMX_FLAGS = {"fpu", "avx512f", "amx_bf16", "amx_tile", "amx_int8"}
PLAIN_FLAGS = {"fpu", "avx2", "avx512f"}


def gguf() -> Path:
    from assay.models import resolve

    return resolve("smollm2-135m").gguf_path()


def fake_cpuinfo(path: Path, flags: set[str], model: str = "Intel(R) Xeon(R) Platinum 8481C (faked)") -> Path:
    path.write_text(f"processor\t: 0\nmodel name\t: {model}\nflags\t\t: {' '.join(sorted(flags))}\n\n")
    return path


# ------------------------------------------------------------------------------------------------ the AMX decision

def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    p = fake_cpuinfo(tmp_path / "cpuinfo", AMX_FLAGS)
    assert amx.cpu_flags(p) == AMX_FLAGS and amx.has_amx(amx.cpu_flags(p))
    assert not amx.has_amx(amx.cpu_flags(fake_cpuinfo(tmp_path / "plain", PLAIN_FLAGS)))
    assert amx.cpu_model(p).endswith("(faked)")
    assert amx.cpu_flags(tmp_path / "missing") == set()


def test_no_amx_means_no_probe_and_extra_buffers_on(tmp_path):
    d = amx.decide("auto", gguf(), flags=PLAIN_FLAGS, cache_path=tmp_path / "m.json", probe_command=CRASH)
    assert d.extra_bufts and d.source == "no AMX on this CPU" and not d.cpu_amx
    assert not (tmp_path / "m.json").exists()  # nothing probed, nothing cached


def test_a_crashing_probe_turns_extra_buffers_off_and_is_cached(tmp_path):
    cache = tmp_path / "m.json"
    d = amx.decide("auto", gguf(), flags=AMX_FLAGS, model="xeon", cache_path=cache, probe_command=CRASH)
    assert not d.extra_bufts and d.source == "probe" and d.cpu_amx
    assert "SIGSEGV" in d.detail and "off" in d.line() and "--llama-amx on" in d.line()
    # decided once per machine: the next call reads the cache, even with a probe that would now pass
    again = amx.decide("auto", gguf(), flags=AMX_FLAGS, model="xeon", cache_path=cache,
                       probe_command=[sys.executable, "-c", "print('assay-probe-ok')"])
    assert not again.extra_bufts and again.source == "cached probe"
    # another CPU model (or kernel / llama-cpp-python version) is another key
    other = amx.decide("auto", gguf(), flags=AMX_FLAGS, model="another xeon", cache_path=cache,
                       probe_command=[sys.executable, "-c", "print('assay-probe-ok')"])
    assert other.extra_bufts and other.source == "probe"
    assert len(json.loads(cache.read_text())["llama_amx"]) == 2


def test_the_real_probe_passes_on_this_machine(tmp_path):
    """The probe is a real forward pass of the embedded model in a subprocess; on a CPU without AMX it passes, so
    faked AMX flags decide 'on'."""
    d = amx.decide("auto", gguf(), flags=AMX_FLAGS, model="probe-test", cache_path=tmp_path / "m.json")
    assert d.source == "probe"
    if amx.has_amx(amx.cpu_flags()):  # a real AMX CPU: the probe may rightly crash here; it must say which
        assert ("forward pass ok" in d.detail) == d.extra_bufts, d
    else:
        assert d.extra_bufts and "forward pass ok" in d.detail, d


def test_user_choice_wins_and_bad_values_are_one_line(monkeypatch, tmp_path):
    assert amx.decide("off", None, flags=PLAIN_FLAGS).extra_bufts is False
    assert amx.decide("on", None, flags=AMX_FLAGS, probe_command=CRASH).extra_bufts is True
    monkeypatch.setenv("ASSAY_LLAMA_AMX", "off")
    assert amx.decide(None, None, flags=AMX_FLAGS).source == "user"
    monkeypatch.setenv("ASSAY_LLAMA_AMX", "maybe")
    with pytest.raises(AssayError, match="ASSAY_LLAMA_AMX='maybe' is not one of auto, on, off"):
        amx.decide(None, None, flags=AMX_FLAGS)
    with pytest.raises(AssayError, match="--llama-amx"):
        amx.normalize_mode("sometimes")


@pytest.mark.engine
def test_server_on_a_faked_amx_cpu_whose_probe_crashed_starts_without_extra_buffers(tmp_path, monkeypatch):
    """End to end with the flags faked: the cached probe verdict says AMX crashes, so the real server starts with
    ``use_extra_bufts = False`` (the log shows llama.cpp never considers the CPU_REPACK buffer type), answers, and the
    endpoint carries the decision."""
    import asyncio

    from assay.client import Client, SamplingParams
    from assay.engines import start

    monkeypatch.setenv("ASSAY_CPUINFO", str(fake_cpuinfo(tmp_path / "cpuinfo", AMX_FLAGS)))
    d = amx.decide("auto", gguf(), probe_command=CRASH)  # caches "unsafe" for the faked CPU in $ASSAY_HOME
    assert not d.extra_bufts
    with start("smollm2-135m", ctx=1024) as server:
        ep = server.endpoint
        assert ep.extra["llama_amx"]["setting"] == "off" and ep.extra["llama_amx"]["source"] == "cached probe"

        async def go():
            async with Client(ep) as c:
                return await c.chat([{"role": "user", "content": "Say hi."}], SamplingParams(max_tokens=8))

        assert asyncio.run(go()).completion_tokens >= 1
        log = Path(ep.log_path).read_text()
    assert "extra buffer types off" in log and "CPU_REPACK" not in log
    # and with the choice 'on' the same server does place weights through the repack buffer type
    with start("smollm2-135m", ctx=1024, llama_amx="on") as server:
        log = Path(server.endpoint.log_path).read_text()
    assert ("CPU_REPACK" in log or "AMX" in log) and "extra buffer types off" not in log


# ------------------------------------------------------------------------------ faults with real processes

def _assay(*args: str) -> list[str]:
    return [sys.executable, "-m", "assay.cli", *args]


N = 40
EVAL = ("eval", "--suite", "ifeval", "--limit", str(N), "--max-tokens", "64", "--concurrency", "2", "--ctx", "2048")


def _records(out: Path) -> list[dict]:
    runs = [d for d in out.iterdir() if d.is_dir()]
    assert len(runs) == 1, runs
    p = runs[0] / "records.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def _n_records(out: Path) -> int:
    try:
        return len(_records(out))
    except (AssertionError, FileNotFoundError, ValueError):
        return 0


def _engine_of(proc: subprocess.Popen, timeout_s: float = 120) -> psutil.Process:
    """The llama.cpp server that ``assay eval`` started (its child running the guard)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            for c in psutil.Process(proc.pid).children(recursive=True):
                if "llama_cpp.server" in " ".join(c.cmdline()):
                    return c
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    raise AssertionError("assay eval started no llama.cpp server")


def _wait_for(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _eval_command(tmp_path: Path, family=None) -> tuple[Path, dict, list[str]]:
    """(runs folder, environment, the `assay eval` command line) for one test's run; ``family`` (conftest's
    CpuFamily) makes the subprocess see that CPU family."""
    out, home = tmp_path / "runs", tmp_path / "home"
    env = family.env(home=home) if family is not None else {**os.environ, "ASSAY_HOME": str(home)}
    return out, env, _assay(*EVAL, "--out", str(out))


@pytest.mark.engine
@pytest.mark.slow
def test_engine_crash_mid_eval_stops_the_run_in_one_line_and_the_same_command_resumes(tmp_path, cpu_family):
    """On both CPU families: where llama.cpp ran with its extra buffer types on (no AMX), the line names
    ``--llama-amx off`` as the likely fix; where they were already off (an AMX Xeon whose probe crashed), it cannot
    be the fix and the line says to report the crash instead. Both say how to resume."""
    out, env, cmd = _eval_command(tmp_path, cpu_family)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        engine = _engine_of(proc)
        _wait_for(lambda: _n_records(out) >= 2, 300, "two finished records")
        engine.send_signal(signal.SIGSEGV)  # what the AMX fault looks like from outside
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, (stdout, stderr)
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, stderr
    line = errors[0]
    assert "the engine died during a request: llama.cpp server" in line and "killed by SIGSEGV" in line
    assert "re-run the same command to resume" in line and ".log:" in line
    if cpu_family.amx and cpu_family.faked:  # extra buffer types were off: turning them off is not the fix
        assert "--llama-amx off" not in line and "crashed with extra buffer types off" in line
    elif not cpu_family.amx:  # on: the AMX / repack path is the usual cause, and the line names the switch
        assert "--llama-amx off" in line
    assert "unreachable" not in line  # not a generic connection error retried
    kept = _records(out)
    assert 2 <= len(kept) < N
    run_dir = next(d for d in out.iterdir() if d.is_dir())
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "interrupted" and "SIGSEGV" in m["ended_by"]
    assert m["engine"]["name"] == "llama.cpp"
    if cpu_family.faked or not cpu_family.amx:  # a real AMX CPU's probe decides for itself
        assert m["engine"]["llama_amx"]["setting"] == ("off" if cpu_family.amx else "on"), m["engine"]
    # the same command starts a fresh engine and finishes the run: every sample once, the kept ones untouched
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    recs = _records(out)
    ids = [r["sample_id"] for r in recs]
    assert len(ids) == len(set(ids)) == N
    by_id = {r["sample_id"]: r for r in recs}
    for r in kept:
        if r["status"] != "error":
            assert by_id[r["sample_id"]]["completion"] == r["completion"]
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "finished"


@pytest.mark.engine
@pytest.mark.slow
def test_kill_9_of_assay_eval_leaves_no_engine_and_loses_no_record(tmp_path):
    out, env, cmd = _eval_command(tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    engine = _engine_of(proc)
    port = next(c.laddr.port for c in _wait_listening(engine))
    _wait_for(lambda: _n_records(out) >= 3, 300, "three finished records")
    proc.kill()  # SIGKILL: no finally, no atexit in assay runs
    proc.wait(timeout=10)
    kept = _records(out)
    # the engine notices its parent is gone and takes its process group with it
    _wait_for(lambda: not engine.is_running() or engine.status() == psutil.STATUS_ZOMBIE, 15, "the engine to exit")

    def port_free() -> bool:  # nobody listens on it any more (TIME_WAIT remnants are not a listener)
        return not [c for c in psutil.net_connections(kind="tcp")
                    if c.status == psutil.CONN_LISTEN and c.laddr.port == port]

    _wait_for(port_free, 15, "the engine's port to be released")
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    recs = _records(out)
    ids = [r["sample_id"] for r in recs]
    assert len(ids) == len(set(ids)) == N  # 0 duplicated
    assert {r["sample_id"] for r in kept} <= set(ids)  # 0 lost
    print(f"kept {len(kept)} records at kill -9, resumed to {len(ids)} with 0 duplicates")


def _wait_listening(p: psutil.Process, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        conns = [c for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
        if conns:
            return conns
        time.sleep(0.2)
    raise AssertionError("the engine never listened")


ENGINE_LIKE = '''
"""Stands in for vLLM's process tree: an API process that spawns worker processes (spawn context, like EngineCore)
and serves nothing; it only has to be killed with its parent."""
import multiprocessing as mp, sys, time

def worker():
    time.sleep(600)

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=worker) for _ in range(2)]
    for p in procs:
        p.start()
    print("READY", " ".join(str(p.pid) for p in procs), flush=True)
    time.sleep(600)
'''

PARENT = '''
import sys, time
from pathlib import Path
from assay.engines._process import ManagedProcess
mp_ = ManagedProcess([sys.executable, "-m", "fake_engine"], Path(sys.argv[1]),
                     env={"PYTHONPATH": sys.argv[2] + ":" + sys.argv[3], "PATH": "/usr/bin:/bin"})
mp_.spawn()
print(mp_.pid, flush=True)
time.sleep(600)
'''


def test_kill_9_of_the_parent_takes_the_whole_engine_process_group(tmp_path):
    """The guard, not a finally block: the parent is SIGKILLed, and the engine and the workers it spawned go."""
    (tmp_path / "fake_engine.py").write_text(textwrap.dedent(ENGINE_LIKE))
    log = tmp_path / "engine.log"
    src = str(Path(__file__).resolve().parents[1] / "src")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(log), str(tmp_path), src],
                              stdout=subprocess.PIPE, text=True)
    try:
        engine_pid = int(parent.stdout.readline())
        _wait_for(lambda: "READY" in log.read_text() if log.exists() else False, 60, "the engine's workers")
        workers = [int(x) for x in log.read_text().split("READY", 1)[1].split()[:2]]
        family = [psutil.Process(engine_pid)] + [psutil.Process(w) for w in workers]
        assert all(p.is_running() for p in family)
        assert psutil.Process(engine_pid).cmdline()[2] == "assay.engines._guard"
    finally:
        parent.kill()
        parent.wait(timeout=10)
    gone, alive = psutil.wait_procs(family, timeout=15)
    assert not alive, f"survived their parent: {alive}"
    assert "parent" in log.read_text() and "gone" in log.read_text()
