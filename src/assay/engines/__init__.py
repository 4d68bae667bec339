"""Engines: start / health-wait / stop a real engine, or connect to running ones. Nothing here scores or formats.

Everything downstream gets ``Endpoint`` objects and talks OpenAI-compatible HTTP through ``assay.client``.

Example:
    from assay.engines import provide
    with provide(model="smollm2-135m") as endpoints:   # starts llama.cpp on a free port, stops it on exit
        print(endpoints[0].base_url, endpoints[0].model)
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal

from assay.errors import AssayError

ENGINES = ("llama.cpp", "vllm", "remote")  # Endpoint.engine; the --engine flag also takes "llamacpp"


# Sampling knobs beyond temperature and top_p (which every request carries) that servers fill in when a request leaves
# them out. Named here generically; each engine's file says its defaults and the request field it reads.
KNOBS = ("top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty")
NEUTRAL = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0}


@dataclass(frozen=True)
class Sampling:
    """What a server applies to a request that leaves a knob out (``defaults``; absent: not known), the request
    field it reads for each knob (``wire``; absent: it cannot be sent), and the value assay sends for a knob the user
    did not set (``neutral``: top-k off, min-p 0, no penalties). Sending the neutral values makes a run's sampling
    known exactly on every engine, and the same on all of them."""

    defaults: dict = field(default_factory=dict, compare=False, hash=False)
    wire: dict = field(default_factory=dict, compare=False, hash=False)
    neutral: dict = field(default_factory=lambda: dict(NEUTRAL), compare=False, hash=False)


# A server of unknown kind: only OpenAI's own penalties can be sent (an unknown field may be refused); what it does
# about top-k, min-p or repetition is not known and is recorded as such.
REMOTE_SAMPLING = Sampling(wire={"presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty"})


@dataclass(frozen=True)
class Capabilities:
    """What a served engine can do, set here in engines/ so that the client, the benchmark and the evals never test an
    engine's name."""

    # how a JSON-schema response_format is sent: OpenAI's {"type": "json_schema", "json_schema": {"schema": S}}, or
    # llama-cpp-python 0.3's {"type": "json_object", "schema": S} (it answers 422 to the OpenAI form)
    json_schema: Literal["openai", "json_object"] = "openai"
    tokenize_routes: tuple[str, ...] = ("/extras/tokenize", "/tokenize")  # tried in this order
    # tokenizer in this process, for an engine we serve from a GGUF (no queueing behind generations)
    local_tokenizer: Callable[[str], list[int]] | None = field(default=None, repr=False, compare=False)
    batching: bool = True  # False: one request at a time (concurrency measures queueing)
    forces_output: bool = False  # honours ignore_eos / min_tokens, so benchmarks can force the output length
    timing_log: bool = False  # writes per-request timings to its log (the bench cross-check reads them)
    metrics: bool = False  # Prometheus /metrics with per-request histograms
    device: Literal["cpu", "gpu", "unknown"] = "unknown"
    # OpenAI ``tools``: "native" (the server parses tool calls out of the model's output), "none" (it was started
    # without a tool-call format: the tools are ignored or refused), "unknown" (a remote server: try it)
    tools: Literal["native", "none", "unknown"] = "unknown"
    tool_stream: bool = True  # False: a request with tools must not stream (llama-cpp-python's "auto" tool choice)
    tool_format: str | None = None  # how the engine was told to parse calls (chat format, vLLM tool-call parser)
    sampling: Sampling = field(default=REMOTE_SAMPLING, compare=False)  # declared in each engine's file


def capabilities(engine: str, *, gguf: str | None = None, device: str = "unknown",
                 tool_format: str | None = None) -> Capabilities:
    """The capabilities of ``engine`` ("llama.cpp" | "vllm" | "remote"); ``gguf``: a file we serve ourselves;
    ``tool_format``: the tool-call chat format / parser it was started with (see ``engines.tools``)."""
    from assay.engines.tools import tool_caps

    if engine == "llama.cpp":
        from assay.engines.llamacpp import SAMPLING, local_tokenizer

        return Capabilities(json_schema="json_object", tokenize_routes=("/extras/tokenize", "/tokenize"),
                            local_tokenizer=local_tokenizer(gguf), batching=False, forces_output=True,
                            timing_log=True, device="cpu" if device == "unknown" else device,  # type: ignore[arg-type]
                            sampling=SAMPLING, **tool_caps(engine, tool_format))
    if engine == "vllm":
        from assay.engines.vllm import SAMPLING as VLLM_SAMPLING

        return Capabilities(tokenize_routes=("/tokenize", "/extras/tokenize"), forces_output=True, metrics=True,
                            device=device, sampling=VLLM_SAMPLING,  # type: ignore[arg-type]
                            **tool_caps(engine, tool_format))
    return Capabilities()


def engine_name(engine: str) -> str:
    """The canonical name of an --engine value: "llamacpp" / "llama" / "llama.cpp" -> "llama.cpp"."""
    e = engine.lower().replace("-", "").replace("_", "")
    if e in ("llamacpp", "llama.cpp", "llama"):
        return "llama.cpp"
    if e == "vllm":
        return "vllm"
    raise AssayError(f"unknown engine {engine!r}: use llama.cpp or vllm (or --endpoint URL for a running server)")


@dataclass
class Endpoint:
    base_url: str  # ends with /v1
    model: str  # the id the server reports in /v1/models (what requests must name)
    api_key: str | None = None
    engine: str = "remote"  # one of ENGINES
    engine_version: str | None = None
    context: int | None = None  # served context window, when known
    pid: int | None = None  # engine process, when we started it (for memory sampling)
    log_path: str | None = None
    extra: dict = field(default_factory=dict)
    # for an engine we started: () -> None while it runs, else one line on how it died (signal, log tail)
    fate: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)
    caps: Capabilities | None = None  # None: the defaults of ``engine`` (see capabilities())

    @property
    def identity(self) -> dict | None:
        """What is known about the exact model served (``engines.identity``): digests of weights, template,
        tokenizer; for a remote URL its server facts and optional probe."""
        return (self.extra or {}).get("identity")

    def model_fingerprint(self) -> dict | None:
        """The identity's digests that decide whether two runs used the same model (no paths, no names)."""
        from assay.engines.identity import fingerprint_part

        return fingerprint_part(self.identity)

    def model_changed(self) -> str | None:
        """Look at the server again: None while it serves the model it served at the start, else what moved. Only a
        remote URL can change under us (an engine assay started serves the file it was given)."""
        from assay.engines.identity import changed

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        return changed(self.identity, self.base_url, self.model, headers)

    def __post_init__(self):
        if self.caps is None:
            self.caps = capabilities(self.engine, gguf=(self.extra or {}).get("gguf"),
                                     tool_format=(self.extra or {}).get("tool_format"))

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/").removesuffix("/v1")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            raise AssayError(f"port {port} on {host} is already in use: pick another with --port {port + 1}") from None


def assay_home() -> Path:
    """$ASSAY_HOME, else the platform's user data folder: logs, the machine facts cache (machine.json)."""
    from platformdirs import user_data_dir

    return Path(os.environ.get("ASSAY_HOME") or user_data_dir("assay"))


def log_dir() -> Path:
    d = assay_home() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def split_urls(urls: list[str] | str | None) -> list[str]:
    """--endpoint is repeatable and/or comma-separated."""
    if not urls:
        return []
    if isinstance(urls, str):
        urls = [urls]
    out = []
    for u in urls:
        out.extend(p.strip() for p in u.split(",") if p.strip())
    return out


def start(model: str | None = None, *, engine: str | None = None, host: str = "127.0.0.1", port: int | None = None,
          ctx: int | None = None, api_key: str | None = None, threads: int | None = None,
          extra_args: list[str] | None = None, vllm_options: dict | None = None, log_path: str | Path | None = None,
          llama_amx: str | None = None, tools: bool = False):
    """Start an engine for ``model`` and return a running handle (``.endpoint``, ``.stop()``; a context manager).
    ``tools``: start it so that it parses tool calls (OpenAI ``tools``), see ``engines.tools``."""
    from assay.engines.tools import tool_flags
    from assay.models import resolve

    spec = resolve(model)
    engine = engine_name(engine or spec.default_engine)
    if engine == "llama.cpp":
        from assay.engines.llamacpp import LlamaCppServer

        return LlamaCppServer(spec, host=host, port=port, ctx=ctx, api_key=api_key, threads=threads,
                              extra_args=extra_args, log_path=log_path, llama_amx=llama_amx, tools=tools).start()
    if engine == "vllm":
        from assay.engines.vllm import VLLMServer

        flags = tool_flags("vllm", spec) if tools else []
        server = VLLMServer(spec, host=host, port=port, api_key=api_key, options=vllm_options or {},
                            extra_args=list(extra_args or []) + flags, log_path=log_path, max_model_len=ctx,
                            threads=threads).start()
        if tools and server.endpoint is not None:
            import dataclasses

            from assay.engines.tools import tool_caps, tool_format

            fmt = tool_format("vllm", spec)
            server.endpoint.extra = {**(server.endpoint.extra or {}), "tool_format": fmt}
            server.endpoint.caps = dataclasses.replace(server.endpoint.caps, **tool_caps("vllm", fmt))
        return server
    raise AssayError(f"unknown engine {engine!r}")  # pragma: no cover - engine_name() refused it already


def connect(urls: list[str] | str, api_key: str | None = None, model: str | None = None,
            probe_identity: bool = False) -> list[Endpoint]:
    from assay.engines.remote import connect as _connect

    return _connect(split_urls(urls), api_key=api_key or os.environ.get("ASSAY_API_KEY"), model=model,
                    probe=probe_identity)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; a container's cpuset), not the host's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def auto_replicas(model: str | None, *, engine: str | None = None, threads: int | None = None,
                  port: int | None = None, concurrency: int = 1, extra_args: list[str] | None = None) -> int:
    """How many llama.cpp servers an eval should start when ``--replicas`` is not given: 2 (threads split) where that
    was measured to help — llama-cpp-python serves one request at a time, so with requests in flight two
    single-thread servers ran the main job 2.0× faster on a 2-vCPU AMD EPYC and 1.74× faster on a 2-vCPU AMX Xeon
    (its extra buffer types off), with identical scores (docs/engines.md) — else 1. Both CPU families gain, so the
    rule does not look at the family.

    One server when: the engine is not llama.cpp (vLLM batches), fewer than 2 usable cores, fewer than 2 requests in
    flight, a fixed ``--port`` or ``--threads`` or engine flags after ``--`` (the user is placing the server), or two
    copies of the weights (+1 GiB each) would not fit in the available memory. Never more than 2: more is unmeasured;
    ask for it with ``--replicas N``."""
    import psutil

    from assay.models import resolve

    spec = resolve(model)
    if engine_name(engine or spec.default_engine) != "llama.cpp" or spec.gguf is None:
        return 1
    if usable_cores() < 2 or concurrency < 2 or port is not None or threads is not None or extra_args:
        return 1
    weights = spec.gguf_path().stat().st_size
    return 2 if 2 * (weights + 2**30) < psutil.virtual_memory().available else 1


@contextlib.contextmanager
def provide(model: str | None = None, endpoints: list[str] | str | None = None, *, engine: str | None = None,
            api_key: str | None = None, ctx: int | None = None, threads: int | None = None,
            host: str = "127.0.0.1", port: int | None = None, extra_args: list[str] | None = None,
            vllm_options: dict | None = None, llama_amx: str | None = None,
            tools: bool = False, replicas: int = 1, probe_identity: bool = False) -> Iterator[list[Endpoint]]:
    """Reuse running endpoints when given, else start an engine for ``model`` and stop it on exit.

    ``replicas`` > 1 starts that many servers with the threads split between them (``threads`` or all usable cores,
    at least one each); the client spreads requests over them (least outstanding). For llama-cpp-python, which serves
    one request at a time, this is how a small model uses the cores: see docs/engines.md for the measured main job,
    and ``auto_replicas`` for the choice ``assay eval`` makes when not told."""
    urls = split_urls(endpoints)
    if urls:
        yield connect(urls, api_key=api_key, model=model if model and not model.endswith(".gguf") else None,
                      probe_identity=probe_identity)
        return
    if replicas < 1:
        raise AssayError(f"--replicas {replicas}: must be at least 1")
    if replicas > 1 and port is not None:
        raise AssayError("--replicas with --port: each replica needs its own port; leave --port out")
    each = max(1, (threads or usable_cores()) // replicas) if replicas > 1 else threads
    servers = []
    try:
        for _ in range(replicas):
            servers.append(start(model, engine=engine, host=host, port=port, ctx=ctx, api_key=api_key, threads=each,
                                 extra_args=extra_args, vllm_options=vllm_options, llama_amx=llama_amx,
                                 tools=tools))
        yield [s.endpoint for s in servers]
    finally:
        for s in servers:
            s.stop()
