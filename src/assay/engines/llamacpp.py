"""llama.cpp through llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``).

Facts that shape this module (read in llama_cpp/server): it serves one request at a time behind a lock, and its
``interrupt_requests`` setting defaults to True, which cuts a streaming reply short when another request arrives — so
we always pass ``--interrupt_requests False``. It has no /health: we wait on /v1/models. Thread count defaults to
cores // 2 in llama-cpp-python; on a 2-core machine n_threads=2 decodes ~50 % faster, so we use all cores.

Example:
    assay serve                      # SmolLM2-135M on 127.0.0.1:8000
    assay serve --model ./my.gguf --port 8001 --ctx 4096
    assay serve --llama-amx off      # never use llama.cpp's AMX / repack buffer types
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys
from pathlib import Path

from assay.engines import KNOBS, Capabilities, Endpoint, Engine, Sampling, register
from assay.engines import amx
from assay.engines._process import Launcher
from assay.engines.tools import LLAMA_CPP_TOOL_FORMAT, LLAMA_CPP_TOOL_FORMATS
from assay.engines.amx import AmxDecision
from assay.engines.identity import gguf_identity
from assay.errors import PrerequisiteError
from assay.models import ModelSpec

DEFAULT_CTX = 8192

# llama-cpp-python's server fills these into every request that leaves them out (``llama_cpp/server/types.py``,
# 0.3.x: top_k 40, min_p 0.05, repeat_penalty 1.1; no presence / frequency penalty). A 1.1 repetition penalty changes
# greedy answers (it is applied before the argmax), so assay sends the neutral values unless told otherwise.
SAMPLING = Sampling(defaults={"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1, "presence_penalty": 0.0,
                              "frequency_penalty": 0.0},
                    wire={k: k for k in KNOBS})


def engine_version() -> str | None:
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None


def build_command(gguf: Path, *, host: str, port: int, ctx: int, threads: int, alias: str,
                  api_key: str | None = None, extra_args: list[str] | None = None,
                  python: str = sys.executable) -> list[str]:
    cmd = [
        python, "-m", "llama_cpp.server",
        "--model", str(gguf),
        "--model_alias", alias,
        "--host", host,
        "--port", str(port),
        "--n_ctx", str(ctx),
        "--n_threads", str(threads),
        "--n_threads_batch", str(threads),
        "--interrupt_requests", "False",
    ]
    if api_key:
        cmd += ["--api_key", api_key]
    return cmd + list(extra_args or [])


class LlamaCppServer(Launcher):
    name, log_prefix = "llama.cpp server", "llamacpp"

    def __init__(self, spec: ModelSpec, *, host: str = "127.0.0.1", port: int | None = None, ctx: int | None = None,
                 api_key: str | None = None, threads: int | None = None, extra_args: list[str] | None = None,
                 log_path: str | Path | None = None, startup_timeout_s: float = 120.0, llama_amx: str | None = None,
                 tools: bool = False):
        super().__init__(host=host, port=port, api_key=api_key, log_path=log_path, startup_timeout_s=startup_timeout_s)
        self.spec = spec
        self.ctx = ctx or min(spec.context or DEFAULT_CTX, DEFAULT_CTX)
        self.threads = threads or os.cpu_count() or 1
        self.extra_args = extra_args
        self.endpoint: Endpoint | None = None
        self.llama_amx = llama_amx  # auto | on | off; None: $ASSAY_LLAMA_AMX, else auto
        self.amx: AmxDecision | None = None
        # tools: the server-wide chat format that parses tool calls (engines/tools.py says what it does and lacks)
        self.tool_format = ENGINE.tool_format(spec) if tools else None

    def command(self) -> list[str]:
        return build_command(self.spec.gguf_path(), host=self.host, port=self.port, ctx=self.ctx,
                             threads=self.threads, alias=self.spec.name, api_key=self.api_key,
                             extra_args=list(self.extra_args or []) + (ENGINE.tool_flags(self.spec)
                                                                       if self.tool_format else []))

    def start(self) -> "LlamaCppServer":
        version = engine_version()
        if version is None:
            raise PrerequisiteError("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'")
        gguf = self.spec.gguf_path()  # raises a one-line ModelNotFound
        self.amx = amx.decide(self.llama_amx, gguf, threads=self.threads)
        if self.amx.cpu_amx or self.amx.source == "user":
            print(self.amx.line(), file=sys.stderr)
        guard_flags = [] if self.amx.extra_bufts else ["--llama-extra-bufts", "off"]
        hint = ("start it with --llama-amx off (or ASSAY_LLAMA_AMX=off): llama.cpp's AMX / repack path is the usual "
                "cause" if self.amx.extra_bufts else "report it with the log: it crashed with extra buffer types off")
        data = self.launch(self.command, "/v1/models", guard_flags=guard_flags, crash_hint=hint)
        model_id = (data.get("data") or [{}])[0].get("id") or self.spec.name
        self.endpoint = Endpoint(base_url=self.base_url, model=model_id, api_key=self.api_key, engine=ENGINE.name,
                                 engine_version=version, context=self.ctx, pid=self.process.pid,
                                 log_path=str(self.log_path),
                                 extra={"gguf": str(gguf), "threads": self.threads, "identity": gguf_identity(gguf),
                                        "weight_bytes": gguf.stat().st_size, "llama_amx": self.amx.to_dict(),
                                        **({"tool_format": self.tool_format} if self.tool_format else {})},
                                 fate=self.process.fate)
        return self


def local_tokenizer(gguf: str | None):
    """``text -> token ids`` with the GGUF's own vocabulary in this process (loaded vocabulary-only, ~0.1 s, no
    weights), identical to llama-cpp-python's /extras/tokenize (same library, same file, add_bos and special on);
    None when unusable. The server's endpoint waits behind every queued generation (llama-cpp-python serialises all
    model calls), which stalled eval workers after each reply."""
    model = _vocab(gguf)
    if model is None:
        return None
    return lambda text: model.tokenize(text.encode("utf-8"), add_bos=True, special=True)


@functools.lru_cache(maxsize=4)
def _vocab(gguf: str | None):
    if not gguf or not os.path.isfile(gguf):
        return None
    try:
        import llama_cpp
        from llama_cpp._internals import LlamaModel

        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        return LlamaModel(path_model=gguf, params=params, verbose=False)
    except Exception:  # noqa: BLE001 - a changed private API or a bad file: ask the server instead
        return None


# what a run records about this engine (Endpoint.extra keys; "llama_amx" is the name old runs carry)
FACT_KEYS = ("gguf", "threads", "weight_bytes", "llama_amx")


class LlamaCppEngine(Engine):
    """llama.cpp through llama-cpp-python's server: one request at a time, a GGUF we serve, timings in its log."""

    name, aliases, sniff_order = "llama.cpp", ("llamacpp", "llama"), 20

    def capabilities(self, *, gguf=None, device="unknown", tool_format=None) -> Capabilities:
        # seeded: llama-cpp-python seeds its sampler from the request's seed and serves one request at a time
        return Capabilities(json_schema="json_object", tokenize_routes=("/extras/tokenize", "/tokenize"), seeded=True,
                            local_tokenizer=local_tokenizer(gguf), batching=False, forces_output=True,
                            timing_log=True, device="cpu" if device == "unknown" else device,  # type: ignore[arg-type]
                            sampling=SAMPLING, **self.tool_caps(tool_format))

    def tool_format(self, spec) -> str | None:
        return LLAMA_CPP_TOOL_FORMAT

    def tool_flags(self, spec) -> list[str]:
        return ["--chat_format", LLAMA_CPP_TOOL_FORMAT]

    def tool_caps(self, fmt):
        if fmt in LLAMA_CPP_TOOL_FORMATS:
            return {"tools": "native", "tool_stream": False, "tool_format": fmt}
        return {"tools": "none", "tool_stream": True, "tool_format": None}

    def start(self, spec, *, host="127.0.0.1", port=None, ctx=None, api_key=None, threads=None, extra_args=None,
              log_path=None, tools=False, llama_amx=None, **options) -> LlamaCppServer:
        return LlamaCppServer(spec, host=host, port=port, ctx=ctx, api_key=api_key, threads=threads,
                              extra_args=extra_args, log_path=log_path, llama_amx=llama_amx, tools=tools).start()

    def auto_replicas(self, spec, *, threads, port, concurrency, extra_args) -> int:
        """2 (threads split) where that was measured to help — llama-cpp-python serves one request at a time, so with
        requests in flight two single-thread servers ran the main job 2.0× faster on a 2-vCPU AMD EPYC and 1.74×
        faster on a 2-vCPU AMX Xeon (its extra buffer types off), with identical scores (docs/engines.md) — else 1.
        Both CPU families gain, so the rule does not look at the family.

        One server when: the model has no GGUF, fewer than 2 usable cores, fewer than 2 requests in flight, a fixed
        ``--port`` or ``--threads`` or engine flags after ``--`` (the user is placing the server), or two copies of
        the weights (+1 GiB each) would not fit in the available memory. Never more than 2: more is unmeasured; ask
        for it with ``--replicas N``."""
        import psutil

        from assay import engines

        if spec.gguf is None:
            return 1
        if engines.usable_cores() < 2 or concurrency < 2 or port is not None or threads is not None or extra_args:
            return 1
        weights = spec.gguf_path().stat().st_size
        return 2 if 2 * (weights + 2**30) < psutil.virtual_memory().available else 1

    def sniff(self, root, headers):
        """llama-cpp-python answers /extras/tokenize (its version it does not say)."""
        import httpx

        try:
            r = httpx.post(f"{root}/extras/tokenize", json={"input": "x"}, timeout=3.0, headers=headers)
        except httpx.HTTPError:
            return None
        return {"version": None} if r.status_code == 200 else None

    def facts(self, ep) -> dict:
        return {k: v for k, v in (ep.extra or {}).items() if k in FACT_KEYS}

    def fact_lines(self, facts) -> list[str]:
        a = facts.get("llama_amx")
        return [f"llama.cpp extra buffer types (AMX / repack): {a['setting']} ({a['source']})"] if a else []

    def request_probe(self, ep):
        from assay.engines.llamacpp_perf import LogProbe

        return LogProbe(ep.log_path)

    def served_weights(self, ep) -> dict:
        """The GGUF file served: its size, and KV bytes per token from its metadata (llama.cpp's KV cache is f16
        by default: 2 bytes per element)."""
        from pathlib import Path

        extra = ep.extra or {}
        gguf, out = extra.get("gguf"), {}
        if extra.get("weight_bytes"):
            out["weight_bytes"] = int(extra["weight_bytes"])
            out["weight_source"] = f"GGUF file size ({Path(gguf).name if gguf else 'engine'})"
        if gguf:
            try:
                from assay.gguf_meta import arch_facts, read_metadata

                a = arch_facts(read_metadata(gguf))
                if a["n_layers"] and a["n_kv_heads"] and a["head_dim"]:
                    out["kv_bytes_per_token"] = a["n_layers"] * a["n_kv_heads"] * a["head_dim"] * 2 * 2
                    out["kv_source"] = (f"GGUF metadata: {a['n_layers']} layers × {a['n_kv_heads']} KV heads × "
                                        f"{a['head_dim']} head dim × 2 (K,V) × 2 B (f16)")
            except Exception as e:  # noqa: BLE001 - metadata is a nicety here; the roofline still has the weights
                out["kv_source"] = f"unreadable GGUF metadata ({type(e).__name__})"
        return out

    def check_lines(self, summary) -> list[str]:
        from assay.engines.llamacpp_perf import line

        cc = summary.get("crosscheck")
        return [line(cc)] if cc and not cc.get("error") else []


ENGINE = register(LlamaCppEngine())
