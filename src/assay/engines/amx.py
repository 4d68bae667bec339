"""Is ggml's AMX path safe on this CPU? Decided once per machine, so llama.cpp never dies on its first request.

On Intel Xeons with AMX (Sapphire / Emerald / Granite Rapids) under a hypervisor, llama.cpp's AMX matmul faults on
the first forward pass (general protection fault at ``ldtilecfg`` in ``ggml_backend_amx_mul_mat``; upstream
llama.cpp #20824, PR #26954: the tile permission is requested on the main thread only). ggml has no environment
variable to turn AMX off, and a ``GGML_NATIVE`` build picks it on any CPU that reports it. What does avoid it is the
model parameter ``use_extra_bufts = False``: weights are not placed in the extra (AMX / repack) buffer types.

The decision (``decide``):

- ``on`` / ``off`` (``--llama-amx`` or ``ASSAY_LLAMA_AMX``): the user's choice, no probe.
- ``auto`` on a CPU without ``amx_tile`` in its flags: extra buffer types stay on (llama.cpp's default, which also
  holds the weight repacking that speeds up prefill); nothing is probed.
- ``auto`` on an AMX CPU: a probe — load the model with extra buffer types on and run a short multi-threaded forward
  pass in a throw-away subprocess. It survives: on. It dies (any signal or non-zero exit) or hangs: off. The result is
  cached per machine (CPU model, flags, kernel, llama-cpp-python version) in ``$ASSAY_HOME/machine.json``, like the
  memory-bandwidth figure, so the probe runs once.

The choice is said in one line and recorded in the endpoint (run manifest, bench output).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from assay.common import text_digest
from assay.errors import AssayError

MODES = ("auto", "on", "off")
ENV = "ASSAY_LLAMA_AMX"
PROBE_TIMEOUT_S = 180.0

# Runs in the throw-away subprocess: the same load and decode path the server takes, on all cores (the fault is in
# the worker threads), a few dozen tokens of prefill so the matmuls take the AMX kernels.
_PROBE = r"""
import sys
import llama_cpp
gguf, threads = sys.argv[1], int(sys.argv[2])
llm = llama_cpp.Llama(model_path=gguf, n_ctx=256, n_threads=threads, n_threads_batch=threads, verbose=False)
out = llm.create_completion("The quick brown fox jumps over the lazy dog. " * 4, max_tokens=4, temperature=0.0)
print("assay-probe-ok", len(out["choices"][0]["text"]) >= 0, flush=True)
"""


@dataclass(frozen=True)
class AmxDecision:
    extra_bufts: bool  # what llama.cpp is started with
    mode: str  # auto | on | off (what was asked)
    cpu_amx: bool  # the CPU reports amx_tile
    source: str  # "user" | "no AMX on this CPU" | "probe" | "cached probe"
    detail: str = ""  # the probe's outcome, in a few words

    @property
    def setting(self) -> str:
        return "on" if self.extra_bufts else "off"

    def line(self) -> str:
        """The one line shown to the user."""
        if self.source == "user":
            return f"llama.cpp extra buffer types (AMX / repack) {self.setting}: set by --llama-amx / {ENV}"
        if not self.cpu_amx:
            return "llama.cpp extra buffer types on (CPU reports no AMX)"
        if self.extra_bufts:
            return f"llama.cpp AMX path on: the {self.source} passed on this CPU ({self.detail})"
        return (f"llama.cpp AMX / extra buffer types off: the {self.source} crashed on this CPU ({self.detail}); "
                f"--llama-amx on overrides")

    def to_dict(self) -> dict:
        return {**asdict(self), "setting": self.setting}


def _cpuinfo_path() -> str:
    """``$ASSAY_CPUINFO`` (a cpuinfo-format file, to test or diagnose the decision with other flags), else /proc."""
    return os.environ.get("ASSAY_CPUINFO") or "/proc/cpuinfo"


def cpu_flags(cpuinfo: str | Path | None = None) -> set[str]:
    """The CPU's feature flags (first processor's ``flags`` line); empty where there is no /proc/cpuinfo."""
    cpuinfo = cpuinfo or _cpuinfo_path()
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_model(cpuinfo: str | Path | None = None) -> str:
    cpuinfo = cpuinfo or _cpuinfo_path()
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return "unknown"


def has_amx(flags: set[str]) -> bool:
    return "amx_tile" in flags


def normalize_mode(mode: str | None) -> str:
    """--llama-amx value, else $ASSAY_LLAMA_AMX, else auto; anything else is a one-line error."""
    raw = mode if mode is not None else os.environ.get(ENV) or "auto"
    m = raw.strip().lower()
    m = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}.get(m, m)
    if m not in MODES:
        src = "--llama-amx" if mode is not None else ENV
        raise AssayError(f"{src}={raw!r} is not one of auto, on, off: use --llama-amx auto (the default)")
    return m


def _engine_version() -> str:
    try:
        import importlib.metadata

        return importlib.metadata.version("llama-cpp-python")
    except Exception:  # noqa: BLE001
        return "unknown"


def cache_key(flags: set[str], model: str) -> str:
    digest = text_digest(" ".join(sorted(flags)), 12)
    return f"{model}|flags:{digest}|kernel:{os.uname().release}|llama-cpp-python:{_engine_version()}"


def machine_cache_path() -> Path:
    from assay.engines import assay_home

    return assay_home() / "machine.json"


def probe(gguf: Path, *, threads: int | None = None, timeout_s: float = PROBE_TIMEOUT_S,
          command: list[str] | None = None) -> tuple[bool, str]:
    """Run the probe forward pass in a throw-away subprocess: (survived, what happened)."""
    from assay.engines._process import describe_exit

    threads = threads or os.cpu_count() or 1
    cmd = command or [sys.executable, "-c", _PROBE, str(gguf), str(threads)]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, f"no answer within {timeout_s:.0f} s"
    dt = time.monotonic() - t0
    if r.returncode == 0 and "assay-probe-ok" in r.stdout:
        return True, f"forward pass ok in {dt:.1f} s"
    tail = " | ".join(ln.strip() for ln in (r.stderr or "").strip().splitlines()[-2:] if ln.strip())
    return False, describe_exit(r.returncode) + (f": {tail[:200]}" if tail else "")


def decide(mode: str | None, gguf: Path | None, *, flags: set[str] | None = None, model: str | None = None,
           cache_path: Path | None = None, refresh: bool = False, probe_command: list[str] | None = None,
           threads: int | None = None) -> AmxDecision:
    """Whether to start llama.cpp with extra buffer types; probes (once per machine) only on an AMX CPU in auto."""
    mode = normalize_mode(mode)
    flags = cpu_flags() if flags is None else flags
    amx = has_amx(flags)
    if mode != "auto":
        return AmxDecision(extra_bufts=mode == "on", mode=mode, cpu_amx=amx, source="user")
    if not amx:
        return AmxDecision(extra_bufts=True, mode=mode, cpu_amx=False, source="no AMX on this CPU")
    path = cache_path or machine_cache_path()
    key = cache_key(flags, model or cpu_model())
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    hit = (cache.get("llama_amx") or {}).get(key)
    if hit is not None and not refresh:
        return AmxDecision(extra_bufts=bool(hit["safe"]), mode=mode, cpu_amx=True, source="cached probe",
                           detail=f"{hit.get('detail', '')}, {hit.get('probed_at', '')}".strip(", "))
    if gguf is None:
        raise AssayError("the AMX probe needs a GGUF to load: pass --llama-amx on|off to skip it")
    safe, detail = probe(gguf, threads=threads, command=probe_command)
    cache.setdefault("llama_amx", {})[key] = {"safe": safe, "detail": detail,
                                              "probed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        from assay.common import write_json_atomic  # stdlib-only module: no eval machinery comes along

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, cache)
    except OSError:
        pass  # an unwritable cache only means the probe runs again next time
    return AmxDecision(extra_bufts=safe, mode=mode, cpu_amx=True, source="probe", detail=detail)
