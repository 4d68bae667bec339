"""``assay serve``: start a real engine behind an OpenAI-compatible API and keep it up until Ctrl-C / SIGTERM."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Optional

import typer

from assay.cli.common import engine_options, one_line_errors


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    @one_line_errors
    @engine_options(endpoint=False)
    def serve(
        eng,
        host: Annotated[str, typer.Option(help="Bind address. Keep 127.0.0.1 unless others must reach it.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
        max_model_len: Annotated[Optional[int], typer.Option(help="vLLM: context length.")] = None,
        tensor_parallel_size: Annotated[Optional[int], typer.Option(help="vLLM: GPUs per replica (TP).")] = None,
        pipeline_parallel_size: Annotated[Optional[int], typer.Option(help="vLLM: pipeline stages (PP).")] = None,
        data_parallel_size: Annotated[Optional[int], typer.Option(help="vLLM: data-parallel replicas (DP).")] = None,
        dtype: Annotated[Optional[str], typer.Option(help="vLLM: weight dtype (auto, bfloat16, float16).")] = None,
        gpu_memory_utilization: Annotated[Optional[float], typer.Option(help="vLLM: fraction of GPU memory.")] = None,
        enable_chunked_prefill: Annotated[Optional[bool], typer.Option(
            "--enable-chunked-prefill/--no-enable-chunked-prefill", help="vLLM: chunked prefill.")] = None,
        kv_cache_dtype: Annotated[Optional[str], typer.Option(help="vLLM: KV cache dtype (auto, fp8).")] = None,
        served_model_name: Annotated[Optional[str], typer.Option(help="vLLM: model name the API reports.")] = None,
        kv_cache_gib: Annotated[Optional[float], typer.Option(
            help="vLLM on CPU: KV cache GiB (VLLM_CPU_KVCACHE_SPACE; default 10 % of available RAM).")] = None,
        tools: Annotated[bool, typer.Option("--tools", help="Parse tool calls (OpenAI `tools`): llama.cpp "
                                            "--chat_format chatml-function-calling, vLLM --enable-auto-tool-choice "
                                            "--tool-call-parser (see assay.engines.tools).")] = False,
    ):
        """Start an engine (default: embedded SmolLM2-135M on llama.cpp) and serve it until Ctrl-C.

        Extra engine flags go after `--`, e.g. `assay serve --engine vllm -- --enforce-eager`.
        """
        from assay import engines

        vllm_options = dict(max_model_len=max_model_len, tensor_parallel_size=tensor_parallel_size,
                            pipeline_parallel_size=pipeline_parallel_size, data_parallel_size=data_parallel_size,
                            dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                            enable_chunked_prefill=enable_chunked_prefill, kv_cache_dtype=kv_cache_dtype,
                            served_model_name=served_model_name, cpu_kvcache_gib=kv_cache_gib)
        import time

        from assay.models import resolve

        spec = resolve(eng.model)  # an unknown preset fails here, in one line, before anything starts
        typer.echo(f"starting {spec.name} ...", err=True)
        stop = threading.Event()
        t0 = time.monotonic()
        try:
            with eng.provide(host=host, port=port, vllm_options=vllm_options, tools=tools) as eps:
                ep = eps[0]
                typer.echo(f"engine:   {ep.engine} {ep.engine_version or ''} (pid {ep.pid}, ready in "
                           f"{time.monotonic() - t0:.1f}s)")
                typer.echo(f"base URL: {ep.base_url}")
                typer.echo(f"model:    {ep.model}")
                typer.echo(f"log:      {ep.log_path}")
                if ep.caps.tool_format:
                    typer.echo(f"tools:    {ep.caps.tools} ({ep.caps.tool_format})")
                for line in engines.fact_lines(ep):
                    typer.echo(line)
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: stop.set())
                typer.echo("Ctrl-C to stop.", err=True)
                while not stop.is_set():
                    died = ep.fate() if ep.fate else None
                    if died:
                        typer.echo(f"error: engine exited unexpectedly ({died}); see {ep.log_path}", err=True)
                        raise typer.Exit(1)
                    stop.wait(0.5)
        finally:
            typer.echo("stopped.", err=True)
