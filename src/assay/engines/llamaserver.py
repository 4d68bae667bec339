"""llama.cpp's own C++ server, ``llama-server``: continuous batching over ``-np`` slots, built once from the llama.cpp
that the installed llama-cpp-python vendors (``engines.llamaserver_build``).

Facts that shape this module (read in that llama.cpp's ``tools/server`` and ``common/arg.cpp``, llama-cpp-python
0.3.36's vendor copy):

- It batches: ``-np N`` slots decode together (continuous batching is on by default). The KV cache is either one
  per slot (``-c`` = N × the context, ``--no-kv-unified``) or one pool the slots share (``--kv-unified``, ``-c`` =
  max(context, N × 2048)). Per slot is the default here: with the shared pool every decode step of every sequence
  attends over all the pool's used cells (the other sequences' masked out), which made the main job 39 % slower
  (191 against 137 s, AMD EPYC, 2 threads, docs/engines.md). The shared pool is used only when N separate caches
  would take more than a quarter of the memory available (``kv_layout``); ``--kv-unified`` / ``-c`` after ``--``
  decide it for the user.
- The AMX decision is llama-cpp-python's (``engines.amx``: same llama.cpp, same crash): off means ``--no-repack``,
  which keeps the weights out of the extra (AMX / repack) buffer types.
- ``--jinja`` renders the GGUF's own chat template and parses tool calls from it (OpenAI ``tools``, streamed);
  ``--metrics`` serves Prometheus ``/metrics`` (``llamacpp:*`` counters); ``/props`` says its build, defaults and
  model (how a running one is recognised: ``sniff``).
- Request fields: ``ignore_eos`` forces an output length; a JSON schema in OpenAI's ``response_format`` form is
  turned into a grammar; ``/tokenize`` reads the text from ``content`` (not ``prompt``).
- Sampling defaults (``common/common.h``): top_k 40, min_p 0.05, repeat_penalty 1.0 (off), no presence / frequency
  penalty, DRY and XTC off; a GGUF may override top_k / top_p / min_p in its ``general.sampling.*`` metadata.
  assay sends the neutral values anyway.
- Every finished request prints its timings to the log (``print_timings``: prompt eval ms / tokens, eval ms /
  tokens — the same figures as the response's ``timings``); the bench cross-check reads them there
  (``engines.llamaserver_perf``), and diffs ``/metrics`` around each timed group.

Example:
    assay llama-server-build                         # once (4-6 min on 2 idle vCPUs); else on first use
    assay serve --engine llama-server
    assay eval --engine llama-server -- -np 4        # flags after -- go to llama-server and win over ours
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

from assay.engines import KNOBS, Capabilities, Endpoint, Engine, Sampling, register
from assay.engines import amx
from assay.engines._process import Launcher
from assay.engines.amx import AmxDecision
from assay.engines.identity import gguf_identity
from assay.models import ModelSpec

DEFAULT_CTX = 8192
DEFAULT_PARALLEL = 8  # the main job's -c 8
TOOL_FORMAT = "jinja"  # what --jinja does: the GGUF's template, tool calls parsed from it

SAMPLING = Sampling(defaults={"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0, "presence_penalty": 0.0,
                              "frequency_penalty": 0.0},
                    wire={k: k for k in KNOBS})


@functools.lru_cache(maxsize=8)
def _help(binary: str, mtime: float) -> str:
    try:
        p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        return p.stdout + p.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


def supports(binary: str | Path, flag: str) -> bool:
    """Whether this build's ``--help`` lists ``flag``."""
    import re

    text = _help(str(binary), Path(binary).stat().st_mtime)
    return re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=]|$)", text, re.M) is not None


def _has(args: list[str], *flags: str) -> bool:
    return any(a in flags or any(a.startswith(f + "=") for f in flags) for a in args)


def kv_layout(gguf: Path, ctx: int, parallel: int, available_bytes: int | None = None) -> tuple[bool, int]:
    """(shared pool?, KV bytes of one slot's cache): one cache per slot unless ``parallel`` caches of ``ctx`` tokens
    (f16 K and V, the GGUF's layers × KV heads × head size) would take over a quarter of the available memory."""
    import psutil

    from assay.gguf_meta import arch_facts, read_metadata

    try:
        f = arch_facts(read_metadata(gguf))
        per_token = 2 * 2 * int(f["n_layers"]) * int(f["n_kv_heads"]) * int(f["head_dim"])
    except Exception:  # noqa: BLE001 - an unreadable or unusual GGUF: the shared pool, which always fits
        return True, 0
    avail = available_bytes if available_bytes is not None else psutil.virtual_memory().available
    slot = per_token * ctx
    return slot * parallel > avail / 4, slot


def build_command(binary: str | Path, gguf: Path, *, host: str, port: int, ctx: int, threads: int, parallel: int,
                  alias: str, api_key: str | None = None, extra_args: list[str] | None = None,
                  no_repack: bool = False, kv_unified: bool = False, kv_flag: bool = True) -> list[str]:
    """The llama-server command line (unit-tested). A flag the user gave after ``--`` replaces ours. ``kv_unified``:
    one shared KV pool instead of a cache per slot; ``kv_flag``: this build knows ``--kv-unified`` (older ones have a
    cache per slot only)."""
    extra = list(extra_args or [])
    cmd = [str(binary), "-m", str(gguf), "--host", host, "--port", str(port), "-a", alias]

    def add(flags: tuple[str, ...], *values: str) -> None:
        if not _has(extra, *flags):
            cmd.extend([flags[0], *values])

    add(("-t", "--threads"), str(threads))
    add(("-tb", "--threads-batch"), str(threads))
    add(("-np", "--parallel"), str(parallel))
    unified = kv_unified and kv_flag
    add(("-c", "--ctx-size"), str(max(ctx, parallel * 2048) if unified else ctx * parallel))
    if kv_flag:
        add(("--kv-unified", "-kvu", "--no-kv-unified", "-no-kvu") if unified else
            ("--no-kv-unified", "-no-kvu", "--kv-unified", "-kvu"))
    if no_repack:
        add(("--no-repack", "-nr", "--repack"))
    add(("--jinja", "--no-jinja"))
    add(("--metrics",))
    add(("--no-webui", "--no-ui", "--webui"))
    if api_key:
        add(("--api-key",), api_key)
    return cmd + extra


def _parallel(extra: list[str], default: int) -> int:
    for i, a in enumerate(extra):
        if a in ("-np", "--parallel") and i + 1 < len(extra):
            try:
                return max(1, int(extra[i + 1]))
            except ValueError:
                pass
    return default


class LlamaServer(Launcher):
    name, log_prefix = "llama-server", "llama-server"

    def __init__(self, spec: ModelSpec, *, host: str = "127.0.0.1", port: int | None = None, ctx: int | None = None,
                 api_key: str | None = None, threads: int | None = None, extra_args: list[str] | None = None,
                 log_path: str | Path | None = None, startup_timeout_s: float = 120.0, llama_amx: str | None = None,
                 parallel: int | None = None, binary: str | Path | None = None):
        super().__init__(host=host, port=port, api_key=api_key, log_path=log_path, startup_timeout_s=startup_timeout_s)
        from assay import engines

        self.spec = spec
        self.ctx = ctx or min(spec.context or DEFAULT_CTX, DEFAULT_CTX)
        self.threads = threads or engines.usable_cores()
        self.extra_args = list(extra_args or [])
        self.parallel = _parallel(self.extra_args, parallel or DEFAULT_PARALLEL)
        self.llama_amx = llama_amx
        self.amx: AmxDecision | None = None
        self.binary = Path(binary) if binary else None
        self.kv_unified: bool | None = None  # decided at start (kv_layout), unless a flag after -- says
        if _has(self.extra_args, "--kv-unified", "-kvu"):
            self.kv_unified = True
        elif _has(self.extra_args, "--no-kv-unified", "-no-kvu"):
            self.kv_unified = False
        self.endpoint: Endpoint | None = None

    def command(self) -> list[str]:
        if self.kv_unified is None:
            self.kv_unified = kv_layout(self.spec.gguf_path(), self.ctx, self.parallel)[0]
        cmd = build_command(self.binary, self.spec.gguf_path(), host=self.host, port=self.port, ctx=self.ctx,
                            threads=self.threads, parallel=self.parallel, alias=self.spec.name, api_key=self.api_key,
                            extra_args=self.extra_args, no_repack=not self.amx.extra_bufts,
                            kv_unified=self.kv_unified, kv_flag=supports(self.binary, "--kv-unified"))
        # under the guard (python -m ...): the server's process group dies with assay, kill -9 included
        return [sys.executable, "-m", "assay.engines.llamaserver_exec", *cmd]

    def start(self) -> "LlamaServer":
        from assay.engines.llamaserver_build import build_info, ensure

        gguf = self.spec.gguf_path()  # raises a one-line ModelNotFound
        if self.binary is None:
            self.binary = ensure(log=lambda m: print(m, file=sys.stderr, flush=True))  # builds on first use
        self.amx = amx.decide(self.llama_amx, gguf, threads=self.threads)
        if self.amx.cpu_amx or self.amx.source == "user":
            print(self.amx.line().replace("llama.cpp", "llama-server (llama.cpp)", 1), file=sys.stderr)
        hint = ("start it with --llama-amx off (or ASSAY_LLAMA_AMX=off): llama.cpp's AMX / repack path is the usual "
                "cause" if self.amx.extra_bufts else "report it with the log: it crashed with --no-repack")
        data = self.launch(self.command, "/v1/models", crash_hint=hint, health_path="/health")
        model_id = (data.get("data") or [{}])[0].get("id") or self.spec.name
        props = _props(self.root, {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}) or {}
        info = build_info(self.binary)
        self.endpoint = Endpoint(
            base_url=self.base_url, model=model_id, api_key=self.api_key, engine=ENGINE.name,
            engine_version=_version(props, info), context=min(self.ctx, _slot_ctx(props) or self.ctx),
            pid=self.process.pid, log_path=str(self.log_path),
            extra={"gguf": str(gguf), "threads": self.threads, "parallel": self.parallel,
                   "kv_unified": bool(self.kv_unified and supports(self.binary, "--kv-unified")),
                   "identity": gguf_identity(gguf), "weight_bytes": gguf.stat().st_size,
                   "llama_amx": self.amx.to_dict(), "binary": str(self.binary), "build": props.get("build_info"),
                   "llama_cpp_python": info.get("llama_cpp_python"), "build_s": info.get("total_s"),
                   "tool_format": TOOL_FORMAT},
            fate=self.process.fate,
            caps=ENGINE.capabilities(gguf=str(gguf), tool_format=TOOL_FORMAT, device="cpu"))
        return self


def _props(root: str, headers: dict | None = None) -> dict | None:
    import httpx

    try:
        r = httpx.get(f"{root}/props", timeout=3.0, headers=headers or {})
        data = r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    # llama-server's /props: its default generation settings and build (a bare {"model_path"} is some other server)
    return data if isinstance(data, dict) and "default_generation_settings" in data else None


def _slot_ctx(props: dict) -> int | None:
    n = (props.get("default_generation_settings") or {}).get("n_ctx")
    return n if isinstance(n, int) and n > 0 else None


def _version(props: dict, info: dict) -> str | None:
    build = props.get("build_info")
    vendor = info.get("llama_cpp_python")
    if build and vendor:
        return f"{build} (llama-cpp-python {vendor} vendor)"
    return build or (f"llama-cpp-python {vendor} vendor" if vendor else None)


# what a run records about this engine (Endpoint.extra keys)
FACT_KEYS = ("gguf", "threads", "parallel", "kv_unified", "weight_bytes", "llama_amx", "build", "llama_cpp_python",
             "build_s")


class LlamaServerEngine(Engine):
    """llama.cpp's C++ server: batches over slots, a GGUF we serve, timings in its log, /metrics, tools via --jinja."""

    name, aliases, sniff_order = "llama-server", ("llamaserver", "llama.cpp-server"), 15

    def capabilities(self, *, gguf=None, device="unknown", tool_format=None) -> Capabilities:
        return Capabilities(json_schema="openai", tokenize_routes=("/tokenize",), tokenize_text_field="content",
                            batching=True, forces_output=True, timing_log=True, metrics=True,
                            device="cpu" if device == "unknown" else device,  # type: ignore[arg-type]
                            sampling=SAMPLING, **self.tool_caps(tool_format))

    def tool_format(self, spec) -> str | None:
        return TOOL_FORMAT

    def tool_flags(self, spec) -> list[str]:
        return ["--jinja"]

    def tool_caps(self, fmt):
        # started by assay: always --jinja, so tool calls are parsed (and streamed); a running one: try it
        if fmt == TOOL_FORMAT:
            return {"tools": "native", "tool_stream": True, "tool_format": fmt}
        return {"tools": "unknown", "tool_stream": True, "tool_format": None}

    def start(self, spec, *, host="127.0.0.1", port=None, ctx=None, api_key=None, threads=None, extra_args=None,
              log_path=None, tools=False, llama_amx=None, **options) -> LlamaServer:
        return LlamaServer(spec, host=host, port=port, ctx=ctx, api_key=api_key, threads=threads,
                           extra_args=extra_args, log_path=log_path, llama_amx=llama_amx,
                           parallel=options.get("parallel")).start()

    def sniff(self, root, headers):
        """llama-server answers ``/props`` with its default generation settings and its build."""
        props = _props(root, headers)
        return {"version": props.get("build_info")} if props is not None else None

    def facts(self, ep) -> dict:
        return {k: v for k, v in (ep.extra or {}).items() if k in FACT_KEYS}

    def fact_lines(self, facts) -> list[str]:
        out = []
        if facts.get("build"):
            built = f", built in {facts['build_s']:.0f} s" if facts.get("build_s") else ""
            out.append(f"llama-server {facts['build']} from llama-cpp-python {facts.get('llama_cpp_python')}'s "
                       f"llama.cpp{built}; {facts.get('parallel')} slots, {facts.get('threads')} threads"
                       + ("" if "kv_unified" not in facts else
                          "; one KV pool shared by the slots" if facts["kv_unified"] else "; a KV cache per slot"))
        a = facts.get("llama_amx")
        if a:
            out.append(f"llama-server extra buffer types (AMX / repack): {a['setting']} ({a['source']})"
                       + ("" if a["setting"] == "on" else ": --no-repack"))
        return out

    def group_probe(self, endpoints):
        from assay.engines.llamaserver_perf import MetricsProbe

        return MetricsProbe(endpoints[0]) if len(endpoints) == 1 else None

    def request_probe(self, ep):
        from assay.engines.llamaserver_perf import LogProbe

        return LogProbe(ep.log_path)

    def check_lines(self, summary) -> list[str]:
        from assay.engines.llamaserver_perf import check_lines

        return check_lines(summary)

    def served_weights(self, ep) -> dict:
        from assay.engines.llamacpp import ENGINE as LLAMA_CPP  # the same GGUF file and f16 KV cache

        return LLAMA_CPP.served_weights(ep)


ENGINE = register(LlamaServerEngine())
