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
from typing import Callable, Iterator

from assay.errors import AssayError


@dataclass
class Endpoint:
    base_url: str  # ends with /v1
    model: str  # the id the server reports in /v1/models (what requests must name)
    api_key: str | None = None
    engine: str = "remote"  # "llama.cpp" | "vllm" | "remote"
    engine_version: str | None = None
    context: int | None = None  # served context window, when known
    pid: int | None = None  # engine process, when we started it (for memory sampling)
    log_path: str | None = None
    extra: dict = field(default_factory=dict)
    # for an engine we started: () -> None while it runs, else one line on how it died (signal, log tail)
    fate: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)

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
          llama_amx: str | None = None):
    """Start an engine for ``model`` and return a running handle (``.endpoint``, ``.stop()``; a context manager)."""
    from assay.models import resolve

    spec = resolve(model)
    engine = (engine or spec.default_engine).lower().replace(".", "").replace("-", "")
    if engine in ("llamacpp", "llama"):
        from assay.engines.llamacpp import LlamaCppServer

        return LlamaCppServer(spec, host=host, port=port, ctx=ctx, api_key=api_key, threads=threads,
                              extra_args=extra_args, log_path=log_path, llama_amx=llama_amx).start()
    if engine == "vllm":
        from assay.engines.vllm import VLLMServer

        return VLLMServer(spec, host=host, port=port, api_key=api_key, options=vllm_options or {},
                          extra_args=extra_args, log_path=log_path, max_model_len=ctx, threads=threads).start()
    raise AssayError(f"unknown engine {engine!r}: use llamacpp or vllm (or --endpoint URL for a running server)")


def connect(urls: list[str] | str, api_key: str | None = None, model: str | None = None) -> list[Endpoint]:
    from assay.engines.remote import connect as _connect

    return _connect(split_urls(urls), api_key=api_key or os.environ.get("ASSAY_API_KEY"), model=model)


@contextlib.contextmanager
def provide(model: str | None = None, endpoints: list[str] | str | None = None, *, engine: str | None = None,
            api_key: str | None = None, ctx: int | None = None, threads: int | None = None,
            host: str = "127.0.0.1", port: int | None = None, extra_args: list[str] | None = None,
            vllm_options: dict | None = None, llama_amx: str | None = None) -> Iterator[list[Endpoint]]:
    """Reuse running endpoints when given, else start an engine for ``model`` and stop it on exit."""
    urls = split_urls(endpoints)
    if urls:
        yield connect(urls, api_key=api_key, model=model if model and not model.endswith(".gguf") else None)
        return
    server = start(model, engine=engine, host=host, port=port, ctx=ctx, api_key=api_key, threads=threads,
                   extra_args=extra_args, vllm_options=vllm_options, llama_amx=llama_amx)
    try:
        yield [server.endpoint]
    finally:
        server.stop()
