"""The ``assay`` command line. Each command lives in its own module and registers itself here.

Example:
    assay serve                   # embedded SmolLM2-135M on llama.cpp, 127.0.0.1:8000
    assay eval                    # quick default evaluation of the embedded model
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="assay",
    help="Serve, chat with, evaluate, benchmark and compare small open LLMs — with numbers you can trust.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.callback()
def _main() -> None:
    """Serve, chat with, evaluate, benchmark and compare small open LLMs — with numbers you can trust."""
    import signal

    # SIGTERM (kill, a CI timeout, systemd) must unwind like Ctrl-C so that `finally` blocks stop the engines we
    # started and flush what was recorded; Python's default would exit without running them and orphan the engine.
    def _term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)


# Each module defines register(app). Missing modules are skipped so partial installs still work.
for _name in ("serve", "eval", "bench", "chat", "report", "doc", "vllm", "judge", "gate", "review", "llamaserver"):
    try:
        _mod = importlib.import_module(f"assay.cli.{_name}")
    except ModuleNotFoundError as _e:
        if _e.name != f"assay.cli.{_name}":
            raise
        continue
    _mod.register(app)


def main() -> None:  # pragma: no cover
    app()

