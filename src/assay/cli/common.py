"""Options every command shares (--model / --endpoint / --engine / --api-key / --ctx / --threads / --llama-amx) and
the error edge.

Command modules (cli/eval.py, cli/bench.py, ...) import these aliases so that every command spells them the same way.
Heavy imports stay inside command bodies so ``assay --help`` is instant.
"""

from __future__ import annotations

import functools
import sys
from typing import Annotated, Optional

import typer

ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Preset (smollm2-135m, qwen3-4b-instruct-2507), a .gguf path, or a Hugging Face id. "
                                       "Default: the embedded SmolLM2-135M."),
]
EndpointOpt = Annotated[
    Optional[list[str]],
    typer.Option("--endpoint", "-e", help="Use running OpenAI-compatible server(s) instead of starting one: "
                                          "URL, repeatable or comma-separated (requests spread over them)."),
]
EngineOpt = Annotated[
    Optional[str], typer.Option("--engine", help="llama.cpp (CPU, GGUF; also spelt llamacpp) or vllm (GPU, or CPU "
                                                  "after `assay vllm-install`). Default: the model's own.")
]
ApiKeyOpt = Annotated[
    Optional[str], typer.Option("--api-key", envvar="ASSAY_API_KEY", help="API key for the endpoint / served engine.")
]
CtxOpt = Annotated[Optional[int], typer.Option("--ctx", help="Context window to serve (tokens).")]
ThreadsOpt = Annotated[
    Optional[int], typer.Option("--threads", help="llama.cpp CPU threads (default: all cores).")
]
LlamaAmxOpt = Annotated[
    Optional[str], typer.Option("--llama-amx", envvar="ASSAY_LLAMA_AMX", metavar="auto|on|off",
                                help="llama.cpp's AMX / extra buffer types. auto (default): on, except on a CPU with "
                                     "AMX where a one-time probe crashed (cached per machine).")
]

# Sampling knobs beyond temperature / top_p. Not given: assay sends the neutral value (off / none), not the engine's
# own default (llama-cpp-python would apply top_k 40, min_p 0.05, repeat_penalty 1.1); the manifest records them.
TopKOpt = Annotated[Optional[int], typer.Option(
    "--top-k", min=0, help="Top-k sampling (0 = off, the default sent to every engine).", show_default=False)]
MinPOpt = Annotated[Optional[float], typer.Option(
    "--min-p", min=0.0, max=1.0, help="Min-p sampling (default 0 = off).", show_default=False)]
RepeatPenaltyOpt = Annotated[Optional[float], typer.Option(
    "--repeat-penalty", min=0.0, help="Repetition penalty (default 1.0 = none; llama-cpp-python's own default, "
                                      "1.1, applies only if you ask for it).", show_default=False)]


def one_line_errors(fn):
    """Turn a domain exception into one line on stderr and exit code 1 (tests call the library and let it raise)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from assay.errors import AssayError

        try:
            return fn(*args, **kwargs)
        except AssayError as e:
            print(f"error: {e}", file=sys.stderr)
            raise typer.Exit(1)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130)

    return wrapper


# Every engine-starting command takes engine flags after `--` (`assay eval -- --enforce-eager`). Only extra *args*
# are allowed, not unknown options: a mistyped assay option stays an error instead of becoming an engine flag.
ENGINE_ARGS = {"allow_extra_args": True}


def engine_args(ctx, endpoint=None) -> list[str] | None:
    """What followed ``--`` on this command line (``ctx``: the command's typer.Context), for the engine assay
    starts; None when nothing did."""
    from assay.errors import AssayError

    args = list(getattr(ctx, "args", None) or [])
    if args and endpoint:
        raise AssayError(f"engine flags after -- ({' '.join(args)}) only reach an engine assay starts, not "
                         "--endpoint: drop them, or drop --endpoint")
    return args or None
