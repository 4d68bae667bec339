"""Shared fixtures. The real embedded model is started once per test session (it is the slow part).

- ``assay_home``   : ASSAY_HOME points at a temp dir for every test (no user data touched).
- ``embedded``     : a running llama.cpp server with SmolLM2-135M (session scope) -> assay.engines.Endpoint
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


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory):
    from assay.engines import start

    os.environ.setdefault("ASSAY_HOME", str(tmp_path_factory.mktemp("engine_home")))
    server = start("smollm2-135m", ctx=4096)
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
