"""``assay chat``: start (or reuse) an engine and open the Chainlit chat app on it, until Ctrl-C.

Example:
    assay chat                                         # embedded SmolLM2-135M, http://127.0.0.1:8501
    assay chat --endpoint http://127.0.0.1:8000/v1     # a server that is already running
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import ENGINE_ARGS, engine_options, one_line_errors


def register(app: typer.Typer) -> None:
    @app.command(context_settings=ENGINE_ARGS)
    @one_line_errors
    @engine_options
    def chat(
        eng,
        host: Annotated[str, typer.Option(help="Address the chat page listens on. Keep 127.0.0.1 unless others "
                                               "must reach it (then set ASSAY_CHAT_PASSWORD).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port of the chat page.")] = 8501,
        db: Annotated[Optional[Path], typer.Option(
            "--db", envvar="ASSAY_CHAT_DB",
            help="SQLite history file. Default: <ASSAY_HOME or user data dir>/chat/history.sqlite.")] = None,
        password: Annotated[Optional[str], typer.Option(
            envvar="ASSAY_CHAT_PASSWORD",
            help="Require this password (login form, user ASSAY_CHAT_USER or 'local'). Default: no login, one "
                 "local user.")] = None,
        arena: Annotated[bool, typer.Option(
            "--arena", help="Blind arena: each prompt goes to two anonymous models side by side; vote, then see the "
                            "names. Needs two or more --endpoint. Votes: assay arena report.")] = False,
    ):
        """Chat with a model in the browser: streaming, stop, settings, history, export.

        Starts the embedded model (or --model) unless --endpoint points at running server(s); several endpoints
        serving different models appear as a model picker.
        """
        from assay import engines
        from assay.chat.history import default_db_path
        from assay.chat.launch import ChatApp
        from assay.common import check_port_free

        check_port_free(host, port, reuse_addr=True)  # fail before spending a minute starting an engine
        if arena and len(engines.split_urls(list(eng.endpoints))) < 2:
            from assay.errors import AssayError

            raise AssayError("--arena needs two or more models to compare: pass --endpoint URL at least twice "
                             "(servers of different models, or of one model in two builds)")
        if host not in ("127.0.0.1", "localhost", "::1") and not password:
            typer.echo(f"warning: listening on {host} with no password: anyone who can reach port {port} can use "
                       "the model and read the history. Set ASSAY_CHAT_PASSWORD.", err=True)
        if eng.starts:
            typer.echo(f"starting {eng.label} ...", err=True)
        stop = threading.Event()
        with eng.provide() as eps:
            chat_app = ChatApp(eps, host=host, port=port, db=db or default_db_path(), password=password,
                               extra_env={"ASSAY_CHAT_ARENA": "1"} if arena else None)
            typer.echo("starting the chat app ...", err=True)
            try:
                chat_app.start()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: stop.set())
                for ep in eps:
                    typer.echo(f"model:    {ep.model} at {ep.base_url}")
                typer.echo(f"history:  {chat_app.db}")
                typer.echo(f"log:      {chat_app.log_path}")
                typer.echo(f"chat:     {chat_app.url}")
                typer.echo("Ctrl-C to stop.", err=True)
                while not stop.is_set():
                    if not chat_app.alive():
                        typer.echo(f"error: the chat app exited; see {chat_app.log_path}", err=True)
                        raise typer.Exit(1)
                    stop.wait(0.5)
            finally:
                chat_app.stop()
                typer.echo("stopped.", err=True)
