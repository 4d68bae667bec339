"""--replicas: several real llama.cpp servers with the threads split, requests spread over them, one run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.engines import provide
from assay.errors import AssayError

pytestmark = pytest.mark.engine


def test_two_replicas_share_the_threads_and_the_work(tmp_path):
    from assay.client import SamplingParams
    from assay.evals.runner import run

    with provide(model="smollm2-135m", replicas=2, threads=2, ctx=2048) as eps:
        assert len(eps) == 2 and len({e.base_url for e in eps}) == 2 and len({e.pid for e in eps}) == 2
        assert [e.extra["threads"] for e in eps] == [1, 1]
        res = run(["math"], eps, out_dir=tmp_path, params=SamplingParams(max_tokens=16), limit=6, concurrency=4)
        used = {json.loads(x)["endpoint"] for x in (Path(res.run_dir) / "records.jsonl").read_text().splitlines()}
        assert used == {e.base_url for e in eps}  # both replicas answered
        assert res.manifest.status == "finished" and res.manifest.endpoints == [e.base_url for e in eps]
        pids = [e.pid for e in eps]
    import psutil

    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


def test_replicas_refuse_a_fixed_port():
    with pytest.raises(AssayError, match="each replica needs its own port"):
        with provide(model="smollm2-135m", replicas=2, port=8000):
            pass


class _Mem:
    def __init__(self, available: int):
        self.available = available


@pytest.mark.parametrize("cores, kw, mem_gib, expect", [
    (2, {"concurrency": 8}, 16, 2),                      # the measured case: 2 cores, requests in flight
    (16, {"concurrency": 8}, 16, 2),                     # never more than 2 unasked
    (1, {"concurrency": 8}, 16, 1),                      # one core: nothing to split
    (2, {"concurrency": 1}, 16, 1),                      # one request at a time: a second server idles
    (2, {"concurrency": 8, "port": 8001}, 16, 1),        # the user placed the server
    (2, {"concurrency": 8, "threads": 2}, 16, 1),
    (2, {"concurrency": 8, "extra_args": ["--n_batch", "64"]}, 16, 1),
    (2, {"concurrency": 8, "engine": "vllm"}, 16, 1),    # vLLM batches: one server
    (2, {"concurrency": 8}, 2, 1),                       # two copies of the weights + 1 GiB each do not fit
])
def test_auto_replicas_rule(monkeypatch, cores, kw, mem_gib, expect):
    import psutil

    from assay import engines

    monkeypatch.setattr(engines, "usable_cores", lambda: cores)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: _Mem(mem_gib * 2**30 - 2**29))
    assert engines.auto_replicas("smollm2-135m", **kw) == expect
    assert engines.auto_replicas("Qwen/Qwen3-4B-Instruct-2507", concurrency=8) == 1  # no GGUF: not llama.cpp


def test_eval_starts_two_replicas_by_default_on_two_cores_and_one_when_told(tmp_path):
    from typer.testing import CliRunner

    from assay import engines
    from assay.cli import app

    expect = engines.auto_replicas("smollm2-135m", concurrency=8)
    for extra, n in (([], expect), (["--replicas", "1"], 1)):
        out = tmp_path / f"r{n}{len(extra)}"
        res = CliRunner().invoke(app, ["eval", "--suite", "math", "--limit", "4", "--max-tokens", "8", "--out",
                                       str(out), *extra], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        (run,) = [d for d in out.iterdir() if d.is_dir()]
        manifest = json.loads((run / "manifest.json").read_text())
        assert len(manifest["endpoints"]) == n
        assert ("2 replicas" in res.output) == (n == 2)
    if engines.usable_cores() >= 2:
        assert expect == 2  # this machine kind (2 cores, 24 GiB) takes the measured default
