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
