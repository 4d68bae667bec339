"""Resource sampling during a benchmark: the engine's peak resident memory (process tree, psutil) when we know its
pid, and GPU memory in use (NVML through ``nvidia-ml-py``, imported lazily; no GPU → "n/a", never an error).

Sampling runs in a daemon thread every ``interval_s``; ``window()`` starts a new per-group peak.

Example:
    with MemorySampler(pid=endpoint.pid) as mem:
        ...run...
        print(mem.peak_rss, mem.peak_gpu)
"""

from __future__ import annotations

import os
import platform
import threading


def _nvml():
    """The pynvml module, initialised, or None when there is no NVIDIA driver / GPU / package."""
    try:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() < 1:
            return None
        return pynvml
    except Exception:
        return None


def gpu_info() -> list[dict]:
    nv = _nvml()
    if nv is None:
        return []
    out = []
    for i in range(nv.nvmlDeviceGetCount()):
        h = nv.nvmlDeviceGetHandleByIndex(i)
        name = nv.nvmlDeviceGetName(h)
        name = name.decode() if isinstance(name, bytes) else name
        mem = nv.nvmlDeviceGetMemoryInfo(h)
        out.append({"index": i, "name": name, "memory_total": int(mem.total), "memory_used": int(mem.used)})
    return out


def tree_rss(pid: int) -> int | None:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.Error:
        return None
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


class MemorySampler:
    def __init__(self, pid: int | None = None, interval_s: float = 0.1):
        self.pid = pid
        self.interval_s = interval_s
        self.peak_rss: int | None = None
        self.peak_gpu: int | None = None  # bytes used on all GPUs together (whole device: includes other processes)
        self.win_rss: int | None = None
        self.win_gpu: int | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nv = None
        self._handles: list = []

    def _sample(self) -> None:
        if self.pid:
            rss = tree_rss(self.pid)
            if rss is not None:
                self.peak_rss = max(self.peak_rss or 0, rss)
                self.win_rss = max(self.win_rss or 0, rss)
        if self._handles:
            try:
                used = sum(int(self._nv.nvmlDeviceGetMemoryInfo(h).used) for h in self._handles)
                self.peak_gpu = max(self.peak_gpu or 0, used)
                self.win_gpu = max(self.win_gpu or 0, used)
            except Exception:
                pass
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> "MemorySampler":
        self._nv = _nvml()
        if self._nv is not None:
            self._handles = [self._nv.nvmlDeviceGetHandleByIndex(i) for i in range(self._nv.nvmlDeviceGetCount())]
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="assay-mem")
        self._thread.start()
        return self

    def window(self) -> tuple[int | None, int | None]:
        """Return the (rss, gpu) peaks since the last window() and start a new window."""
        self._sample()
        got = (self.win_rss, self.win_gpu)
        self.win_rss = self.win_gpu = None
        return got

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        self._sample()

    def __enter__(self) -> "MemorySampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def machine_info() -> dict:
    import psutil

    info = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "memory_total": psutil.virtual_memory().total,
        "gpus": gpu_info(),
    }
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}" if unit == "GiB" else f"{n / size:.0f} {unit}"
    return f"{int(n)} B"
