"""Shared fixtures. The real embedded model is started once per test session (it is the slow part).

- ``assay_home``   : ASSAY_HOME points at a temp dir for every test (no user data touched).
- ``embedded``     : a running llama.cpp server with SmolLM2-135M (session scope) -> assay.engines.Endpoint
- ``stub``         : a fresh StubServer per test (factory: stub(reply=..., gap_s=...))
- ``shared_benchmarks``: path of ../shared/benchmarks, or the test is skipped with the reason.
"""

from __future__ import annotations

import os
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
