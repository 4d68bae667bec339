"""Shared fixtures. The real embedded model is started once per test session (it is the slow part).

- ``assay_home``   : ASSAY_HOME points at a temp dir for every test (no user data touched).
- ``embedded``     : a running llama.cpp server with SmolLM2-135M (session scope) -> assay.engines.Endpoint
- ``cpu_family``   : every test that uses ``embedded`` (or asks for ``cpu_family``) runs twice, once per CPU family
                     this project's machines come in: ``noamx`` (AMD EPYC) and ``amx`` (Intel Xeon with AMX, where
                     llama.cpp's AMX probe crashes). The family the machine is not is faked (``ASSAY_CPUINFO`` and the
                     probe's cached verdict), so a developer on one family sees what the other would.
- ``stub``         : a fresh StubServer per test (factory: stub(reply=..., gap_s=...))
- ``shared_benchmarks``: path of ../shared/benchmarks, or the test is skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def assay_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("assay_home")
    monkeypatch.setenv("ASSAY_HOME", str(home))
    return home


# ---- the two CPU families ---------------------------------------------------------------------------------------------
AMX_FLAGS = frozenset({"fpu", "sse4_2", "avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"})
PLAIN_FLAGS = frozenset({"fpu", "sse4_2", "avx2", "avx512f", "avx512_bf16"})
CRASH = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]


def host_family() -> str:
    """The family of the CPU this runs on (the real /proc/cpuinfo, whatever ASSAY_CPUINFO says)."""
    from assay.engines import amx

    return "amx" if amx.has_amx(amx.cpu_flags("/proc/cpuinfo")) else "noamx"


def families() -> list[str]:
    """``noamx`` and ``amx``; ``ASSAY_TEST_CPU_FAMILIES=noamx`` (comma list) narrows it for a quick local run."""
    asked = [f.strip() for f in os.environ.get("ASSAY_TEST_CPU_FAMILIES", "noamx,amx").split(",") if f.strip()]
    bad = [f for f in asked if f not in ("noamx", "amx")]
    if bad:
        raise pytest.UsageError(f"ASSAY_TEST_CPU_FAMILIES={bad[0]!r}: use noamx, amx or noamx,amx")
    return asked


class CpuFamily:
    """One CPU family as assay sees it: the real CPU when it is of that family, else faked for assay's decisions.

    Faked ``amx`` on an EPYC: ``ASSAY_CPUINFO`` names a cpuinfo with the AMX flags, and the machine cache in
    ``$ASSAY_HOME`` holds the verdict an AMX Xeon under a hypervisor gets (the probe crashed), so llama.cpp starts
    with its extra buffer types off — the same kernels, float order and messages as on that machine. Faking
    ``noamx`` on an AMX CPU is impossible (ggml reads the hardware: the AMX path would crash), so that case skips."""

    def __init__(self, name: str, cpuinfo: Path | None):
        self.name, self.cpuinfo = name, cpuinfo

    @property
    def faked(self) -> bool:
        return self.cpuinfo is not None

    @property
    def amx(self) -> bool:
        return self.name == "amx"

    def __repr__(self) -> str:
        return f"CpuFamily({self.name}{', faked' if self.faked else ''})"

    def seed(self, home: Path) -> None:
        """Write the crashed-probe verdict for the faked AMX CPU into ``home``'s machine cache."""
        if not (self.faked and self.amx):
            return
        from assay.engines import amx

        flags, model = amx.cpu_flags(self.cpuinfo), amx.cpu_model(self.cpuinfo)
        d = amx.decide("auto", Path("unused-by-a-probe-command.gguf"), flags=flags, model=model,
                       cache_path=Path(home) / "machine.json", probe_command=CRASH)
        assert not d.extra_bufts, d

    def env(self, base: dict | None = None, home: Path | None = None) -> dict:
        """``base`` (default os.environ) with this family applied, for a subprocess; seeds ``home`` if given."""
        env = dict(os.environ if base is None else base)
        if self.faked:
            env["ASSAY_CPUINFO"] = str(self.cpuinfo)
        if home is not None:
            env["ASSAY_HOME"] = str(home)
            self.seed(home)
        return env

    def apply(self, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
        """This process as a machine of this family: ``ASSAY_CPUINFO`` set and ``home`` seeded."""
        if self.faked:
            monkeypatch.setenv("ASSAY_CPUINFO", str(self.cpuinfo))
        self.seed(home)

    def start(self, home: Path, **kw):
        """``engines.start("smollm2-135m", **kw)`` as a machine of this family would start it (``home`` as
        ``$ASSAY_HOME`` while it starts); checks the AMX setting it got where the family decides it."""
        from assay.engines import start

        mp = pytest.MonkeyPatch()
        mp.setenv("ASSAY_HOME", str(home))
        self.apply(mp, home)
        try:
            server = start("smollm2-135m", **kw)
        finally:
            mp.undo()
        if self.faked or not self.amx:  # faked AMX: the probe crashed; no AMX: the repack path stays on
            want = "off" if self.amx else "on"
            assert server.endpoint.extra["llama_amx"]["setting"] == want, (self, server.endpoint.extra)
        return server


def pytest_collection_modifyitems(config, items):
    """A test that starts the real llama.cpp server (through the ``cpu_family`` fixture: ``embedded``, the tools
    suite's server, ...) is an ``engine`` test whether or not it says so, so ``-m "not engine"`` leaves it out."""
    for item in items:
        if "cpu_family" in getattr(item, "fixturenames", ()) and item.get_closest_marker("engine") is None:
            item.add_marker(pytest.mark.engine)


def pytest_generate_tests(metafunc):
    if "cpu_family" in metafunc.fixturenames:
        metafunc.parametrize("cpu_family", families(), indirect=True, scope="session", ids=lambda f: f"cpu-{f}")


@pytest.fixture(scope="session")
def cpu_family(request, tmp_path_factory) -> CpuFamily:
    name = getattr(request, "param", host_family())
    host = host_family()
    if name == host:
        return CpuFamily(name, None)
    if host == "amx":
        pytest.skip("a CPU without AMX cannot be faked on this AMX CPU (ggml takes the AMX path from the hardware); "
                    "the cpu-amx run is the real one here")
    path = tmp_path_factory.mktemp("cpuinfo") / "cpuinfo"
    flags = AMX_FLAGS if name == "amx" else PLAIN_FLAGS
    path.write_text(f"processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C (faked for tests)\n"
                    f"flags\t\t: {' '.join(sorted(flags))}\n\n")
    return CpuFamily(name, path)


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory, cpu_family):
    server = cpu_family.start(tmp_path_factory.mktemp("engine_home"), ctx=4096)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def embedded(embedded_server):
    return embedded_server.endpoint


@pytest.fixture
def stub():
    from assay.stub import StubServer

    servers = []

    def make(**kw) -> StubServer:
        s = StubServer(**kw).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    p = ROOT.parent / "shared" / "benchmarks"
    if not p.is_dir():
        pytest.skip("../shared/benchmarks is absent (a user's fresh clone): public benchmark files not available")
    return p


# ---- real headless Chromium (the Chainlit browser tests) ------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    """Debian's chromium through Playwright (``playwright install`` cannot download a browser here)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture
def local_only():
    """A Playwright route handler that lets only loopback requests through (no CDN, no telemetry)."""
    from urllib.parse import urlparse

    def route(r):
        host = urlparse(r.request.url).hostname or ""
        r.continue_() if host in ("127.0.0.1", "localhost", "::1") else r.abort()

    return route


# ---- reference packages installed from the registry (not copied into the project) -----------------------------------
LM_EVAL_SPEC = "lm-eval==0.4.13"


def _test_cache(spec: str) -> Path:
    root = Path(os.environ.get("ASSAY_TEST_CACHE", Path.home() / ".cache" / "assay-tests"))
    return root / spec.replace("==", "-").replace("-eval", "_eval")


def pip_target(spec: str, *more: str, no_deps: bool = True, probe: str) -> Path:
    """``pip install --target <cache>/<spec> spec more...`` once (cached under ``~/.cache/assay-tests``, or
    ``$ASSAY_TEST_CACHE``); ``probe`` is a file inside the target that proves the install. Skips the test with the
    command to run when the registry cannot be reached."""
    target = _test_cache(spec)
    if not (target / probe).is_file():
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", *(["--no-deps"] if no_deps else []),
               "--target", str(target), spec, *more]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"{spec} is not installed and could not be ({type(exc).__name__}): {' '.join(cmd[2:])}")
    return target


@pytest.fixture(scope="session")
def lm_eval_pkg() -> Path:
    """lm-eval's package from PyPI with ``--no-deps`` (its full dependency set — datasets, evaluate, scikit-learn —
    is far too heavy for the test extra; the modules the tests import need only what assay already has, plus
    immutabledict). Returned as the folder to put on sys.path."""
    return pip_target(LM_EVAL_SPEC, "immutabledict", probe="lm_eval/tasks/ifeval/instructions.py")


@pytest.fixture(scope="session")
def lm_eval_readers(lm_eval_pkg) -> Path:
    """lm-eval importable from its registry package, with pytablewriter (its ``make_table`` prints results tables)."""
    ptw = pip_target("pytablewriter==1.2.1", no_deps=False, probe="pytablewriter/__init__.py")
    for p in (lm_eval_pkg, ptw):
        if str(p) not in sys.path:
            sys.path.append(str(p))  # appended: assay's own environment wins for shared dependencies
    return lm_eval_pkg
