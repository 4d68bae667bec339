"""``assay llama-server-build``: build llama.cpp's ``llama-server`` once (``--engine llama-server`` also does it on first
use), from the llama.cpp that the installed llama-cpp-python vendors; cached per version and CPU flags.

Example:
    assay llama-server-build                 # ~6 min on 2 vCPUs, then: assay serve --engine llama-server
    assay llama-server-build --sdist ./llama_cpp_python-0.3.36.tar.gz    # offline, from a downloaded sdist
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import one_line_errors


def register(app: typer.Typer) -> None:
    @app.command("llama-server-build")
    @one_line_errors
    def llama_server_build(
        sdist: Annotated[Optional[Path], typer.Option(help="A llama_cpp_python-<version>.tar.gz to build from "
                                                           "instead of downloading it with pip.")] = None,
        jobs: Annotated[Optional[int], typer.Option(help="Parallel compile jobs (default: usable cores).")] = None,
        force: Annotated[bool, typer.Option("--force", help="Build again even when a cached build exists.")] = False,
    ):
        """Build llama-server for this CPU (cached in $ASSAY_HOME/llama-server/<version>-<cpu flags>/)."""
        from assay.engines.llamaserver_build import BuildError, build, build_info
        from assay.errors import AssayError

        try:
            path = build(sdist=sdist, jobs=jobs, force=force)
        except BuildError as e:
            raise AssayError(str(e)) from None
        typer.echo(json.dumps({"binary": str(path), **build_info(path)}))
