"""An engine is one file plus one registry entry: a fake engine, added through ``engines.register`` alone (no other
file knows it), is started, served, evaluated, benchmarked and cross-checked end to end, and its facts travel into
the run manifests as the opaque mapping it describes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from assay import engines
from assay.engines import Capabilities, Endpoint, Engine, Probe
from assay.engines._process import Launcher
from assay.errors import AssayError

# the stub OpenAI server (assay.stub) in its own process, on the port the launcher picked
STUB = ("import asyncio, sys\nfrom assay.stub import StubServer\n"
        "asyncio.run(StubServer(reply='one two three four', model='fake-model', port=int(sys.argv[1]))"
        ".serve_forever_async())")


class FakeServer(Launcher):
    name, log_prefix = "fake server", "fake"

    def __init__(self, spec, setting: str, **kw):
        super().__init__(**kw)
        self.spec, self.setting, self.endpoint = spec, setting, None

    def start(self) -> "FakeServer":
        data = self.launch(lambda: [sys.executable, "-c", STUB, str(self.port)], "/v1/models")
        self.endpoint = Endpoint(base_url=self.base_url, model=data["data"][0]["id"], engine=FakeEngine.name,
                                 engine_version="0.1", pid=self.process.pid, log_path=str(self.log_path),
                                 extra={"fake_setting": self.setting, "ignored": "not a fact"},
                                 fate=self.process.fate)
        return self


class CountProbe(Probe):
    """Counts what the bench timed: its mapping is the group's (or the request's) cross-check."""

    def __init__(self, key: str | None):
        self.key = key

    async def before(self):
        return None

    async def after(self, results):
        out = {"requests": len(results), "ok": sum(1 for r in results if r.ok)}
        return {self.key: out} if self.key else out


class FakeEngine(Engine):
    name, aliases, sniff_order = "fake", ("fake-engine",), 0

    def capabilities(self, *, gguf=None, device="unknown", tool_format=None):
        return Capabilities(timing_log=True, device="cpu")

    def start(self, spec, *, host="127.0.0.1", port=None, api_key=None, log_path=None, fake_setting="on",
              **options):
        return FakeServer(spec, fake_setting, host=host, port=port, api_key=api_key, log_path=log_path).start()

    def sniff(self, root, headers):
        r = httpx.get(f"{root}/v1/models", timeout=3.0)
        return {"version": "0.1"} if r.status_code == 200 and "fake-model" in r.text else None

    def facts(self, ep):
        return {"fake_setting": (ep.extra or {}).get("fake_setting")}

    def fact_lines(self, facts):
        return [f"fake setting: {facts['fake_setting']}"]

    def group_probe(self, endpoints):
        return CountProbe("fake_metrics")

    def request_probe(self, ep):
        return CountProbe(None)

    def check_lines(self, summary):
        cc = summary.get("crosscheck")
        return [f"fake cross-check: {cc['requests']} request"] if cc else []


@pytest.fixture
def fake():
    engine = engines.register(FakeEngine())
    yield engine
    engines.unregister(engine.name)


def test_the_builtin_engines_are_registered_and_an_unknown_one_is_one_line():
    names = [e.name for e in engines.registered()]
    assert {"llama.cpp", "vllm", "remote"} <= set(names)
    assert engines.engine_name("LlamaCPP") == "llama.cpp" and engines.engine_name("vllm") == "vllm"
    with pytest.raises(AssayError, match="unknown engine 'nope': use llama.cpp, vllm or llama-server"):
        engines.engine_name("nope")
    with pytest.raises(AssayError, match="unknown engine 'remote'"):
        engines.engine_name("remote")  # reached through a URL only
    assert engines.capabilities("nope") == Capabilities()  # a server assay knows nothing about


def test_a_fake_engine_through_the_registry_alone(fake, tmp_path):
    from assay.bench.run import BenchOptions, run_bench
    from assay.client import SamplingParams
    from assay.evals.runner import run

    assert engines.engine_name("Fake_Engine") == "fake"
    with engines.provide(engine="fake-engine", ctx=512) as eps:
        (ep,) = eps
        assert ep.engine == "fake" and ep.model == "fake-model" and ep.caps.timing_log
        assert ep.facts == {"fake_setting": "on"} and engines.fact_lines(ep) == ["fake setting: on"]
        # a URL of a running server is recognised through the registry too
        (remote,) = engines.connect(ep.base_url)
        assert (remote.engine, remote.engine_version) == ("fake", "0.1")

        res = run(["math"], eps, out_dir=tmp_path / "eval", params=SamplingParams(max_tokens=8), limit=2)
        assert res.manifest.status == "finished"
        assert res.manifest.engine["name"] == "fake" and res.manifest.engine["fake_setting"] == "on"

        b = run_bench(eps, BenchOptions(workloads="fixed:8:4", requests=2, warmup=0, roofline=False,
                                        out=tmp_path / "bench"))
        (g,) = b.summary["groups"]
        assert g["fake_metrics"] == {"requests": 2, "ok": 2}  # the engine's mapping, merged as it named it
        assert b.summary["crosscheck"] == {"workload": g["workload"], "requests": 1, "ok": 1}
        assert engines.check_lines(b.summary) == ["fake cross-check: 1 request"]
        stored = json.loads((b.run_dir / "manifest.json").read_text())
        assert stored["engine"] == "fake" and stored["endpoints"][0]["extra"] == {"fake_setting": "on"}
    assert ep.fate() is not None  # stopped on exit


def test_engine_fake_on_the_command_line(fake, tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    res = CliRunner().invoke(app, ["eval", "--engine", "fake", "--suite", "math", "--limit", "2", "--max-tokens",
                                   "8", "--out", str(tmp_path / "e")], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    (run_dir,) = [d for d in (tmp_path / "e").iterdir() if d.is_dir()]
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["engine"]["name"] == "fake" and m["engine"]["fake_setting"] == "on"

    res = CliRunner().invoke(app, ["bench", "--engine", "fake", "--workload", "fixed:8:4", "--requests", "2",
                                   "--no-cross-check", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    line = json.loads(res.stdout.strip().splitlines()[-1])
    assert line["engine"] == "fake" and line["groups"][0]["completed"] == 2
    summary = json.loads((Path(line["run_dir"]) / "summary.json").read_text())
    # --no-cross-check: no request probe; the group probe's mapping is there as the engine named it
    assert summary["groups"][0]["fake_metrics"]["ok"] == 2 and summary["crosscheck"] is None
    assert line["crosscheck"] is None and line["engine_check"] == []

    res = CliRunner().invoke(app, ["bench", "--engine", "fake", "--workload", "fixed:8:4", "--requests", "2",
                                   "--out", str(tmp_path / "b2")], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    line = json.loads(res.stdout.strip().splitlines()[-1])
    assert line["engine_check"] == ["fake cross-check: 1 request"]  # the engine's own lines, printed and in JSON
    assert "fake cross-check: 1 request" in res.output
