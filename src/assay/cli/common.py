"""What every command shares: the engine options as one group (``engine_options``: --model / --endpoint / --engine /
--api-key / --ctx / --threads / --llama-amx and engine flags after ``--``, handed to the command as one
``EngineChoice``), the sampling knobs, the console, and the error edge (``one_line_errors``).

A command module (cli/eval.py, cli/bench.py, ...) parses, calls one domain function, renders; it imports from here
and from the domain packages, never from another command module. Heavy imports stay inside command bodies so
``assay --help`` is instant.
"""

from __future__ import annotations

import functools
import inspect
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


def console(**kw):
    """The console a command reports progress and tables on (stderr unless told; stdout keeps the JSON line)."""
    from rich.console import Console

    return Console(**{"stderr": True, **kw})


_ENGINE_PARAMS = (("model", ModelOpt), ("endpoint", EndpointOpt), ("engine", EngineOpt), ("api_key", ApiKeyOpt),
                  ("engine_ctx", CtxOpt), ("threads", ThreadsOpt), ("llama_amx", LlamaAmxOpt))


def engine_options(fn=None, *, endpoint: bool = True, model: bool = True):
    """Give a command the engine options as one group: ``fn`` declares a parameter ``eng`` (an ``EngineChoice``) and
    gets --model / --endpoint / --engine / --api-key / --ctx / --threads / --llama-amx, and the engine flags after
    ``--`` (use with ``context_settings=ENGINE_ARGS``), built into it. ``endpoint=False``: a command that always
    starts its own engine (serve) has no --endpoint; ``model=False``: a command that names its models as arguments
    (gate, review) has neither --model nor --endpoint, and applies the rest to every model."""
    if fn is None:
        return functools.partial(engine_options, endpoint=endpoint, model=model)
    import typer as _typer

    from assay.engines.choice import EngineChoice

    import typing

    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)  # the command module's string annotations, evaluated
    own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values() if p.name != "eng"]
    ctx_param = next((p.name for p in own if p.annotation is _typer.Context), None)
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=None)
             for name, ann in _ENGINE_PARAMS
             if (endpoint and model or name != "endpoint") and (model or name != "model")]
    if ctx_param is None:
        added.insert(0, inspect.Parameter("_engine_typer_ctx", inspect.Parameter.KEYWORD_ONLY,
                                          annotation=_typer.Context))
    names = {p.name for p in added}

    @functools.wraps(fn)
    def wrapper(**kwargs):
        got = {n: kwargs.pop(n) for n in list(kwargs) if n in names}
        typer_ctx = got.pop("_engine_typer_ctx", None) or kwargs.get(ctx_param)
        urls = tuple(got.get("endpoint") or ())
        eng = EngineChoice(model=got.get("model"), endpoints=urls, engine=got.get("engine"),
                           api_key=got.get("api_key"), ctx=got.get("engine_ctx"), threads=got.get("threads"),
                           llama_amx=got.get("llama_amx"), extra_args=tuple(engine_args(typer_ctx, urls) or ()))
        return fn(eng=eng, **kwargs)

    params = [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, annotation=p.annotation, default=p.default)
              for p in own]
    first = [p for p in params if p.annotation is _typer.Context]
    rest = [p for p in params if p not in first]
    wrapper.__signature__ = sig.replace(parameters=first + added + rest, return_annotation=inspect.Signature.empty)
    wrapper.__annotations__ = {p.name: p.annotation for p in first + added + rest}
    return wrapper


def command_line(ctx: "typer.Context") -> list[str]:
    """The command as given, rebuilt from the parsed options (sys.argv is not the command under a test runner).
    The API key is never stored."""
    out = ["assay", ctx.info_name or "eval"]
    for p in ctx.command.params:
        v = ctx.params.get(p.name)
        if v is None or v == p.default or p.name == "api_key" or not p.opts:
            continue
        flag = max(p.opts, key=len)
        if isinstance(v, bool):
            out.append(flag if v else (p.secondary_opts or [flag])[0])
            continue
        for item in (v if isinstance(v, (list, tuple)) else [v]):
            out += [flag, str(item)]
    return out
