"""assay eval's request options against the stub (where the bytes matter): --system-prompt, --chat-template-kwargs,
--extra-body reach the server and the fingerprint; reasoning sent apart (vLLM's reasoning parsers) is kept."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from assay.cli import app
from assay.client import Client, SamplingParams
from assay.common import stable_hash

V0 = Path(__file__).parent / "fixtures" / "runs_v0" / "20261202-121957-be70b240"


def test_request_options_reach_the_server_and_the_fingerprint(stub, tmp_path):
    st = stub(reply="The answer is \\boxed{4}.")
    args = ["eval", "-e", st.base_url, "--suite", "math", "--limit", "2", "--out", str(tmp_path), "-c", "1",
            "--system-prompt", "You are terse.", "--chat-template-kwargs", '{"enable_thinking": false}',
            "--extra-body", '{"top_k": 20}']
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    chats = [r for r in st.requests if r.get("messages")]
    assert chats and all(r["messages"][0] == {"role": "system", "content": "You are terse."} for r in chats)
    assert all(r["chat_template_kwargs"] == {"enable_thinking": False} and r["top_k"] == 20 for r in chats)
    run_dir = Path(json.loads(res.stdout.strip().splitlines()[-1])["run_dir"])
    fp = json.loads((run_dir / "manifest.json").read_text())["fingerprint"]
    assert fp["system_prompt"] == "You are terse." and fp["params"]["extra_body"] == {"top_k": 20}
    # another system prompt is another run, never mixed into this one
    res2 = CliRunner().invoke(app, args[:-6] + ["--system-prompt", "Be verbose."] + args[-4:])
    assert res2.exit_code == 0 and json.loads(res2.stdout.strip().splitlines()[-1])["run_dir"] != str(run_dir)


def test_bad_json_option_is_one_line():
    res = CliRunner().invoke(app, ["eval", "-e", "http://127.0.0.1:9/v1", "--extra-body", "{top_k: 20}"])
    assert res.exit_code != 0 and "--extra-body" in res.output and "is not JSON" in res.output
    assert "Traceback" not in res.output


def test_defaults_keep_the_fingerprint_of_runs_made_before_these_options():
    fp = json.loads((V0 / "manifest.json").read_text())["fingerprint"]
    assert SamplingParams(**fp["params"]).fingerprint() == fp["params"]
    assert stable_hash(fp) == json.loads((V0 / "manifest.json").read_text())["fingerprint_hash"]


def test_reasoning_sent_apart_is_kept(stub):
    import asyncio

    st = stub()

    async def go():
        async with Client(st.endpoint()) as c:
            return await c.chat([{"role": "user", "content": "[[reasoning:first 2 plus 2]] [[reply:4]]"}],
                                SamplingParams(max_tokens=8))

    done = asyncio.run(go())
    assert done.text == "4" and done.reasoning == "first 2 plus 2" and done.ttft_s <= done.chunk_times[-1]


def test_log_to_mlflow_local_file_store(stub, tmp_path, monkeypatch):
    import pytest

    mlflow = pytest.importorskip("mlflow", reason="mlflow-skinny is in the test extras")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    st = stub(reply="The answer is \\boxed{4}.")
    res = CliRunner().invoke(app, ["eval", "-e", st.base_url, "--suite", "math", "--limit", "3", "--out",
                                   str(tmp_path / "runs"), "--log-to", "mlflow"])
    assert res.exit_code == 0, res.output
    head = json.loads(res.stdout.strip().splitlines()[-1])
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["assay"], output_format="list")
    assert len(runs) == 1
    r = runs[0]
    assert r.data.tags["assay.run_id"] == head["run_id"]
    assert r.data.metrics["math.value"] == head["suites"]["math"]["value"] and r.data.metrics["math.n"] == 3
    assert r.data.params["model"] == st.model
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(r.info.run_id)}
    assert {"manifest.json", "summary.json"} <= arts
