"""vLLM (``vllm serve``), an optional extra: ``pip install -e '.[vllm]'``. Never imported unless chosen.

Single GPU:     assay serve --engine vllm --model qwen3-4b-instruct-2507 --max-model-len 32768
Tensor par.:    assay serve --engine vllm --model qwen3-4b-instruct-2507 --tensor-parallel-size 2
Multi-node:     start a Ray cluster (ray start --head / ray start --address=...), then on the head node
                assay serve --engine vllm --tensor-parallel-size 8 --pipeline-parallel-size 2 -- --distributed-executor-backend ray
Anything vLLM accepts can follow ``--`` and is passed through unchanged.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from pathlib import Path

from assay.engines import Endpoint, capabilities, check_port_free, free_port, log_dir
from assay.engines._process import ManagedProcess
from assay.errors import PrerequisiteError
from assay.models import ModelSpec

INSTALL_HINT = "vLLM is not installed: pip install -e '.[vllm]'  (needs a CUDA GPU)"

# option name -> vllm flag; value None means "not set" (vLLM's own default applies)
FLAGS = {
    "max_model_len": "--max-model-len",
    "tensor_parallel_size": "--tensor-parallel-size",
    "pipeline_parallel_size": "--pipeline-parallel-size",
    "data_parallel_size": "--data-parallel-size",
    "dtype": "--dtype",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "kv_cache_dtype": "--kv-cache-dtype",
    "served_model_name": "--served-model-name",
}


def vllm_executable() -> list[str]:
    """The ``vllm`` CLI as ``python -m`` (so the guard ties its process group to assay), else the console script."""
    if importlib.util.find_spec("vllm") is not None:
        return [sys.executable, "-m", "vllm.entrypoints.cli.main"]
    exe = shutil.which("vllm")
    if exe:
        return [exe]
    raise PrerequisiteError(INSTALL_HINT)


def build_command(model: str, *, host: str, port: int, options: dict, api_key: str | None = None,
                  extra_args: list[str] | None = None, executable: list[str] | None = None) -> list[str]:
    """The exact ``vllm serve`` command line (unit-tested)."""
    cmd = list(executable or ["vllm"]) + ["serve", model, "--host", host, "--port", str(port)]
    for key, flag in FLAGS.items():
        value = options.get(key)
        if value is not None:
            cmd += [flag, str(value)]
    chunked = options.get("enable_chunked_prefill")
    if chunked is True:
        cmd.append("--enable-chunked-prefill")
    elif chunked is False:
        cmd.append("--no-enable-chunked-prefill")
    if api_key:
        cmd += ["--api-key", api_key]
    return cmd + list(extra_args or [])


def engine_version() -> str | None:
    try:
        import importlib.metadata

        return importlib.metadata.version("vllm")
    except Exception:
        return None


def vllm_device() -> str:
    """"cpu" for a CPU build of vLLM (its version string says so, as vLLM's own platform check reads it), else "gpu"."""
    v = engine_version() or ""
    return "cpu" if "cpu" in v else "gpu"


class VLLMServer:
    def __init__(self, spec: ModelSpec, *, host: str = "127.0.0.1", port: int | None = None, api_key: str | None = None,
                 options: dict | None = None, extra_args: list[str] | None = None, log_path: str | Path | None = None,
                 max_model_len: int | None = None, startup_timeout_s: float = 1800.0):
        if not spec.hf_id:
            raise PrerequisiteError(f"model {spec.name!r} has no Hugging Face id for vLLM: pass --model ORG/NAME")
        self.spec = spec
        self.host, self.port, self.api_key = host, port, api_key
        self.options = dict(options or {})
        if max_model_len and not self.options.get("max_model_len"):
            self.options["max_model_len"] = max_model_len
        self.extra_args = extra_args
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout_s = startup_timeout_s
        self.process: ManagedProcess | None = None
        self.endpoint: Endpoint | None = None
        self.startup_s: float | None = None

    def command(self, executable: list[str] | None = None) -> list[str]:
        return build_command(self.spec.hf_id, host=self.host, port=self.port, options=self.options,
                             api_key=self.api_key, extra_args=self.extra_args, executable=executable)

    def start(self) -> "VLLMServer":
        exe = vllm_executable()  # one-line PrerequisiteError without the extra
        if self.port is None:
            self.port = free_port(self.host)
        else:
            check_port_free(self.host, self.port)
        if self.log_path is None:
            self.log_path = log_dir() / f"vllm-{self.port}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        t0 = time.monotonic()
        self.process = ManagedProcess(self.command(exe), self.log_path, name="vLLM")
        self.process.spawn()
        connect_host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        root = f"http://{connect_host}:{self.port}"
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        try:
            # vLLM answers /v1/models only once the model is loaded, so one wait covers /health too
            data = self.process.wait_ready(f"{root}/v1/models", self.startup_timeout_s, headers, name="vLLM")
        except BaseException:
            self.process.stop()
            raise
        self.startup_s = time.monotonic() - t0
        entry = (data.get("data") or [{}])[0]
        self.endpoint = Endpoint(base_url=f"{root}/v1", model=entry.get("id") or self.spec.hf_id, api_key=self.api_key,
                                 engine="vllm", engine_version=engine_version(),
                                 context=entry.get("max_model_len") or self.options.get("max_model_len"),
                                 pid=self.process.pid, log_path=str(self.log_path), fate=self.process.fate,
                                 caps=capabilities("vllm", device=vllm_device()))
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop(grace_s=30.0)

    def __enter__(self) -> "VLLMServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
