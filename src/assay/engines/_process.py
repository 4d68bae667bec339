"""Shared process plumbing for engines we start: own process group, log file, health wait, clean stop."""

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


class ManagedProcess:
    """A child engine in its own session (process group), logging to a file, killed with all its children."""

    def __init__(self, cmd: list[str], log_path: Path, env: dict | None = None):
        self.cmd = cmd
        self.log_path = Path(log_path)
        self.env = env
        self.proc: subprocess.Popen | None = None

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=self.env)
        finally:
            log.close()

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
                    f"{name} exited during start-up (code {code}); log {self.log_path}: {log_tail(self.log_path)}"
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
