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

from assay.common import check_port_free  # noqa: F401 - engines.check_port_free, used by the launchers
from assay.errors import AssayError

# The engines that ship with assay: each module declares one ``Engine`` and registers it (``register``) when imported.
# Adding an engine is one file, engines/<name>.py, and one line here (or an entry point in the group
# ``assay.engines`` naming the module, for an engine in another package).
BUILTIN = ("assay.engines.llamacpp", "assay.engines.vllm", "assay.engines.llamaserver", "assay.engines.remote")


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
    tokenize_text_field: str = "prompt"  # the field /tokenize reads the text from (vLLM: prompt; llama-server: content)
    # tokenizer in this process, for an engine we serve from a GGUF (no queueing behind generations)
    local_tokenizer: Callable[[str], list[int]] | None = field(default=None, repr=False, compare=False)
    batching: bool = True  # False: one request at a time (concurrency measures queueing)
    forces_output: bool = False  # honours ignore_eos / min_tokens, so benchmarks can force the output length
    # a request's ``seed`` makes a sampled (temperature > 0) answer reproducible, so the answer cache may reuse it
    seeded: bool = False
    timing_log: bool = False  # writes per-request timings to its log (the bench cross-check reads them)
    metrics: bool = False  # Prometheus /metrics with per-request histograms
    device: Literal["cpu", "gpu", "unknown"] = "unknown"
    # OpenAI ``tools``: "native" (the server parses tool calls out of the model's output), "none" (it was started
    # without a tool-call format: the tools are ignored or refused), "unknown" (a remote server: try it)
    tools: Literal["native", "none", "unknown"] = "unknown"
    tool_stream: bool = True  # False: a request with tools must not stream (llama-cpp-python's "auto" tool choice)
    tool_format: str | None = None  # how the engine was told to parse calls (chat format, vLLM tool-call parser)
    sampling: Sampling = field(default=REMOTE_SAMPLING, compare=False)  # declared in each engine's file


class Probe:
    """What the benchmark reads from the engine itself around requests it times (the cross-check), opaque to bench/.

    ``before()`` runs right before the requests: None, or one line on why there is nothing to read (the requests are
    then not compared). ``after(results)`` runs right after them, with their ``RequestResult``s: a JSON-able mapping,
    or None. A group probe's mapping is merged into that group of the summary (the engine names its own key, e.g.
    ``{"vllm_metrics": {...}}``); a request probe's mapping is the summary's ``crosscheck``."""

    async def before(self) -> str | None:
        return None

    async def after(self, results: list) -> dict | None:
        return None


class Engine:
    """One engine, declared in its own file ``engines/<name>.py``, which ends with ``register(MyEngine())``.

    Everything assay knows about an engine is here: its name and the other spellings ``--engine`` takes, what it can
    do (``capabilities``), how it is started (``start``: a handle with ``.endpoint``, ``.stop()``, ``.startup_s``,
    ``.process``; ``engines._process.Launcher`` does the process part), how it is told to parse tool calls, how to
    recognise a running one by its URL (``sniff``), the facts a run records about it (``facts``, and ``fact_lines``
    to print them), and what the benchmark reads from it to cross-check its own timings (``group_probe``,
    ``request_probe``). The defaults describe an OpenAI-compatible server that assay cannot start and knows nothing
    about. Code outside engines/ reaches an engine only through this module's functions, never by its name."""

    name: str = ""
    aliases: tuple[str, ...] = ()  # other spellings --engine accepts, e.g. "llamacpp"
    startable: bool = True  # False: only reached through a URL (--endpoint)
    sniff_order: int = 100  # connect() asks the engines in this order whether a URL is theirs

    def capabilities(self, *, gguf: str | None = None, device: str = "unknown",
                     tool_format: str | None = None) -> Capabilities:
        """``gguf``: a file we serve ourselves; ``tool_format``: the tool-call format it was started with."""
        return Capabilities()

    def tool_format(self, spec) -> str | None:
        """The tool-call format this engine is started with for ``spec`` when asked to parse tool calls."""
        return None

    def tool_flags(self, spec) -> list[str]:
        """Command-line flags that make it parse tool calls for ``spec``."""
        return []

    def tool_caps(self, fmt: str | None) -> dict:
        """The tool fields of ``Capabilities`` when started with tool format ``fmt`` (None: without)."""
        return {}

    def start(self, spec, *, host: str = "127.0.0.1", port: int | None = None, ctx: int | None = None,
              api_key: str | None = None, threads: int | None = None, extra_args: list[str] | None = None,
              log_path: str | Path | None = None, tools: bool = False, **options):
        """Start a server for ``spec`` (``options``: engine-specific settings the CLI passes, e.g. ``llama_amx``;
        take the ones you know, ignore the rest) and return its running handle."""
        raise AssayError(f"assay cannot start {self.name}: give the URL of a running server with --endpoint URL")

    def auto_replicas(self, spec, *, threads: int | None, port: int | None, concurrency: int,
                      extra_args: list[str] | None) -> int:
        """How many servers ``assay eval`` starts when ``--replicas`` is not given."""
        return 1

    def sniff(self, root: str, headers: dict) -> dict | None:
        """When the server at ``root`` (no /v1) is this engine: ``{"version": str | None}``; else None."""
        return None

    def facts(self, ep: "Endpoint") -> dict:
        """What a run records about this engine beyond name and version (JSON-able; stored as given, read by no one
        but this engine's ``fact_lines``). Keep a key's name once it has been stored: old runs carry it."""
        return {}

    def fact_lines(self, facts: dict) -> list[str]:
        """``facts`` as lines for a person (``assay serve`` prints them)."""
        return []

    def group_probe(self, endpoints: list) -> Probe | None:
        """The cross-check around each timed group of a benchmark (None: none)."""
        return None

    def request_probe(self, ep: "Endpoint") -> Probe | None:
        """The cross-check around one unseen request after the benchmark's groups (None: none)."""
        return None

    def check_lines(self, summary: dict) -> list[str]:
        """What this engine's probes put in a bench ``summary`` (summary.json), as lines for a person."""
        return []

    def served_weights(self, ep: "Endpoint") -> dict:
        """What the files this engine loads say for the roofline: any of ``weight_bytes``, ``weight_source``,
        ``kv_bytes_per_token``, ``kv_source`` (absent: not known from the files; the preset's figures apply)."""
        return {}


_REGISTRY: dict[str, Engine] = {}
_loaded = False


def register(engine: Engine) -> Engine:
    """Make ``engine`` known by its name and aliases (a later registration of a name replaces the earlier)."""
    if not engine.name:
        raise ValueError("an engine needs a name")
    _REGISTRY[engine.name] = engine
    return engine


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def _load() -> None:
    """Import the built-in engines (each registers itself), then any entry points in the group ``assay.engines``."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib

    for mod in BUILTIN:
        importlib.import_module(mod)
    from importlib.metadata import entry_points

    for ep in entry_points(group="assay.engines"):
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin must not take the built-in engines down
            import warnings

            warnings.warn(f"engine plugin {ep.name!r} failed to load: {type(e).__name__}: {e}", stacklevel=2)


def registered() -> list[Engine]:
    """Every known engine: the built-in ones in ``BUILTIN``'s order (whichever was imported first), then the others in
    registration order."""
    _load()
    order = {m: i for i, m in enumerate(BUILTIN)}
    return sorted(_REGISTRY.values(), key=lambda e: order.get(type(e).__module__, len(BUILTIN)))


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def find(name: str | None) -> Engine | None:
    """The engine called ``name`` (or one of its aliases, any case, "-" / "_" ignored); None when unknown."""
    if not name:
        return None
    _load()
    k = _key(name)
    return next((e for e in _REGISTRY.values() if k == _key(e.name) or k in map(_key, e.aliases)), None)


def get(name: str) -> Engine:
    """The engine called ``name``; a one-line error naming the known ones when there is none."""
    e = find(name)
    if e is None:
        raise AssayError(f"unknown engine {name!r}: use {_startable_names()} (or --endpoint URL for a running server)")
    return e


def _startable_names() -> str:
    names = [e.name for e in registered() if e.startable]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def capabilities(engine: str, *, gguf: str | None = None, device: str = "unknown",
                 tool_format: str | None = None) -> Capabilities:
    """The capabilities of ``engine`` (a registered name; an unknown one: a server assay knows nothing about);
    ``gguf``: a file we serve ourselves; ``tool_format``: the tool-call chat format / parser it was started with."""
    e = find(engine)
    return e.capabilities(gguf=gguf, device=device, tool_format=tool_format) if e else Capabilities()


def engine_name(engine: str) -> str:
    """The canonical name of an --engine value ("llamacpp" -> "llama.cpp"): an engine assay can start."""
    e = find(engine)
    if e is None or not e.startable:
        raise AssayError(f"unknown engine {engine!r}: use {_startable_names()} (or --endpoint URL for a running "
                         "server)")
    return e.name


def sniff(root: str, headers: dict) -> tuple[str, str | None] | None:
    """(name, version) of the first engine that recognises the server at ``root``; None when none does."""
    for e in sorted(registered(), key=lambda e: e.sniff_order):
        found = e.sniff(root, headers)
        if found is not None:
            return e.name, found.get("version")
    return None


def facts(ep: "Endpoint") -> dict:
    """What a run records about ``ep``'s engine (``Engine.facts``): an opaque, JSON-able mapping."""
    return ep.facts


def fact_lines(ep: "Endpoint") -> list[str]:
    """``ep``'s engine facts as lines for a person."""
    e = find(ep.engine)
    return e.fact_lines(ep.facts) if e else []


def check_lines(summary: dict) -> list[str]:
    """The cross-check lines of a bench summary (summary.json), by the engine that wrote them (its ``engine``)."""
    e = find(summary.get("engine"))
    return e.check_lines(summary) if e else []


def served_weights(ep: "Endpoint") -> dict:
    """The served files' weight bytes and KV bytes per token, as ``ep``'s engine reads them (``Engine.served_weights``)."""
    e = find(ep.engine)
    return e.served_weights(ep) if e else {}


def group_probe(endpoints: list) -> Probe | None:
    """The engine's cross-check around a timed group of requests sent to ``endpoints`` (None: nothing to read)."""
    e = find(endpoints[0].engine) if endpoints else None
    return e.group_probe(endpoints) if e else None


def request_probe(ep: "Endpoint") -> Probe | None:
    """The engine's cross-check around one request sent to ``ep`` (None: nothing to read)."""
    e = find(ep.engine)
    return e.request_probe(ep) if e else None


@dataclass
class Endpoint:
    base_url: str  # ends with /v1
    model: str  # the id the server reports in /v1/models (what requests must name)
    api_key: str | None = None
    engine: str = "remote"  # a registered engine's name (see ``registered()``)
    engine_version: str | None = None
    context: int | None = None  # served context window, when known
    pid: int | None = None  # engine process, when we started it (for memory sampling)
    log_path: str | None = None
    extra: dict = field(default_factory=dict)
    # for an engine we started: () -> None while it runs, else one line on how it died (signal, log tail)
    fate: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)
    caps: Capabilities | None = None  # None: the defaults of ``engine`` (see capabilities())

    @property
    def facts(self) -> dict:
        """What a run records about the engine beyond its name and version (``Engine.facts``: e.g. llama.cpp's
        AMX setting): an opaque, JSON-able mapping that only engines/ reads."""
        e = find(self.engine)
        return e.facts(self) if e else {}

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
    ``tools``: start it so that it parses tool calls (OpenAI ``tools``), see ``engines.tools``. ``engine``: a
    registered engine's name or alias (default: the model's ``default_engine``); ``llama_amx`` and ``vllm_options``
    reach the engine that takes them (``Engine.start``'s ``options``)."""
    from assay.models import resolve

    spec = resolve(model)
    eng = get(engine_name(engine or spec.default_engine))
    return eng.start(spec, host=host, port=port, ctx=ctx, api_key=api_key, threads=threads, extra_args=extra_args,
                     log_path=log_path, tools=tools, vllm_options=vllm_options, llama_amx=llama_amx)


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
    """How many servers ``assay eval`` should start for ``model`` when ``--replicas`` is not given: the engine's rule
    (``Engine.auto_replicas``; llama.cpp: 2 with the threads split where that was measured to help, see
    ``engines.llamacpp``), else 1."""
    from assay.models import resolve

    spec = resolve(model)
    return get(engine_name(engine or spec.default_engine)).auto_replicas(
        spec, threads=threads, port=port, concurrency=concurrency, extra_args=extra_args)


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
