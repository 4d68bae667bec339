"""vLLM is optional: the exact command line is unit-tested; without it the user gets one line naming the install."""

from __future__ import annotations

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


def test_missing_vllm_names_the_install_command(monkeypatch):
    monkeypatch.setattr(vllm.shutil, "which", lambda _: None)
    monkeypatch.setattr(vllm.importlib.util, "find_spec", lambda _: None)
    with pytest.raises(PrerequisiteError, match=r"pip install -e '\.\[vllm\]'"):
        vllm.VLLMServer(resolve("qwen3-4b-instruct-2507")).start()


def test_vllm_is_not_imported_by_the_cli():
    import subprocess
    import sys

    code = "import sys, assay.cli; print('vllm' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
