"""Shared process plumbing for engines we start: own process group, log file, health wait, clean stop, and a
lifeline so an engine never outlives assay (see ``assay.engines._guard``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from assay.errors import EngineStartError


def log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


CRASH_SIGNALS = {-signal.SIGSEGV, -signal.SIGILL, -signal.SIGBUS, -signal.SIGABRT, -signal.SIGFPE}


def describe_exit(returncode: int | None) -> str:
    """'killed by SIGSEGV (signal 11)' / 'exited with code 1' / 'still running'."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name} (signal {-returncode})"
    return f"exited with code {returncode}"


def guarded(cmd: list[str], *, parent: int, lifeline_fd: int, guard_flags: list[str] | None = None) -> list[str]:
    """``[python, -m, MODULE, ...]`` run under ``assay.engines._guard`` (same interpreter, same module and argv)."""
    if len(cmd) < 3 or cmd[1] != "-m":
        raise ValueError(f"only 'python -m MODULE ...' commands can be guarded, not {cmd[:3]}")
    return [cmd[0], "-m", "assay.engines._guard", "--parent", str(parent), "--lifeline", str(lifeline_fd),
            *(guard_flags or []), "-m", *cmd[2:]]


class ManagedProcess:
    """A child engine in its own session (process group), logging to a file, killed with all its children.

    ``python -m MODULE`` commands run under the guard (``guard=True``): the engine's process group dies with assay,
    even when assay is SIGKILLed and nothing here runs. ``guard_flags`` are the guard's own options.
    """

    def __init__(self, cmd: list[str], log_path: Path, env: dict | None = None, *, name: str = "engine",
                 guard: bool = True, guard_flags: list[str] | None = None, crash_hint: str | None = None):
        self.cmd = cmd
        self.crash_hint = crash_hint  # the fix to name when the engine dies of a crash signal
        self.log_path = Path(log_path)
        self.env = env
        self.name = name
        self.guard = guard and len(cmd) >= 3 and cmd[1] == "-m"
        self.guard_flags = list(guard_flags or [])
        self.proc: subprocess.Popen | None = None
        self._lifeline: int | None = None  # write end; closed (by us or by our death) = "assay is gone"

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        cmd, pass_fds = self.cmd, ()
        if self.guard:
            r, self._lifeline = os.pipe()  # both ends close-on-exec; only r is handed to the engine
            cmd = guarded(self.cmd, parent=os.getpid(), lifeline_fd=r, guard_flags=self.guard_flags)
            pass_fds = (r,)
        try:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=self.env, pass_fds=pass_fds)
        finally:
            log.close()
            if pass_fds:
                os.close(pass_fds[0])

    def fate(self) -> str | None:
        """None while the engine runs; once it has died, one line: how, the tail of its log, and where the log is."""
        if self.proc is None or self.proc.poll() is None:
            return None
        rc = self.proc.returncode
        if rc in CRASH_SIGNALS and self.crash_hint:
            fix = self.crash_hint
        elif rc == -signal.SIGKILL:
            fix = "it was SIGKILLed from outside (out of memory? see dmesg); start it again"
        else:
            fix = "start it again"
        return (f"{self.name} (pid {self.proc.pid}) {describe_exit(rc)}; log {self.log_path}: "
                f"{log_tail(self.log_path, 3)}; fix: {fix}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, url: str, timeout_s: float, headers: dict | None = None, name: str = "engine") -> dict:
        """Poll ``url`` until it answers 200 with JSON; fail at once (quoting the log) if the process exits."""
        deadline = time.monotonic() + timeout_s
        last_err = ""
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                raise EngineStartError(
                    f"{name} {describe_exit(code)} during start-up; log {self.log_path}: {log_tail(self.log_path)}"
                )
            try:
                r = httpx.get(url, timeout=2.0, headers=headers or {})
                if r.status_code == 200:
                    return r.json()
                last_err = f"HTTP {r.status_code}"
            except (httpx.HTTPError, ValueError) as e:
                last_err = type(e).__name__
            time.sleep(0.2)
        self.stop()
        raise EngineStartError(
            f"{name} did not answer {url} within {timeout_s:.0f}s ({last_err}); log {self.log_path}: "
            f"{log_tail(self.log_path)}"
        )

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left (children included)."""
        if self.proc is None:
            return
        try:
            family = [psutil.Process(self.proc.pid)] + psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for p in family:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=5)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None


class Launcher:
    """The part every engine we start shares: pick or check the port, name the log, spawn the guarded process, wait
    until it answers ``ready_path``, stop it (and be a context manager). An engine subclass builds its command and
    its Endpoint; ``launch`` does the rest.

    Example (what llamacpp.LlamaCppServer.start does):
        data = self.launch(self.command, "/v1/models", guard_flags=flags, crash_hint=hint)
        self.endpoint = Endpoint(base_url=self.base_url, model=data["data"][0]["id"], ...)
    """

    name = "engine"  # in messages: "llama.cpp server", "vLLM"
    log_prefix = "engine"  # logs/<prefix>-<port>-<time>.log
    stop_grace_s = 10.0

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None, api_key: str | None = None,
                 log_path: str | Path | None = None, startup_timeout_s: float = 120.0, env: dict | None = None):
        self.host, self.port, self.api_key = host, port, api_key
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout_s = startup_timeout_s
        self.env = env
        self.process: ManagedProcess | None = None
        self.startup_s: float | None = None

    @property
    def root(self) -> str:
        """http://host:port, with a wildcard bind address replaced by loopback (where we connect)."""
        connect_host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{connect_host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def launch(self, command, ready_path: str, *, guard_flags: list[str] | None = None,
               crash_hint: str | None = None, health_path: str | None = None) -> dict:
        """Start ``command()`` (called once the port is known) and wait for ``ready_path`` to answer 200; its JSON
        body is returned (then ``health_path``, if given, must answer 200 too). A process that dies or never answers
        is stopped and raises a one-line error."""
        from assay.engines import check_port_free, free_port, log_dir

        if self.port is None:
            self.port = free_port(self.host)
        else:
            check_port_free(self.host, self.port)
        if self.log_path is None:
            self.log_path = log_dir() / f"{self.log_prefix}-{self.port}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        t0 = time.monotonic()
        self.process = ManagedProcess(command(), self.log_path, self.env, name=self.name, guard_flags=guard_flags,
                                      crash_hint=crash_hint)
        self.process.spawn()
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        try:
            data = self.process.wait_ready(f"{self.root}{ready_path}", self.startup_timeout_s, headers,
                                           name=self.name)
            if health_path and httpx.get(f"{self.root}{health_path}", timeout=5.0).status_code != 200:
                raise EngineStartError(f"{self.name} answered {ready_path} but not {health_path}; log {self.log_path}")
        except BaseException:
            self.process.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return data

    def stop(self) -> None:
        if self.process:
            self.process.stop(grace_s=self.stop_grace_s)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
