"""What a command line says about the model and the engine, as one value: ``EngineChoice``. Every command that starts
or connects engines (eval, bench, chat, doc, serve, review, gate) takes the same options through one group
(``assay.cli.common.engine_options``) and calls ``choice.provide(...)``: one way to get endpoints.

Example:
    choice = EngineChoice(model="smollm2-135m", threads=2)
    with choice.provide(replicas=2) as endpoints:
        ...
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Iterator


@dataclass(frozen=True)
class EngineChoice:
    model: str | None = None  # preset, .gguf path or HF id; None: the embedded default
    endpoints: tuple[str, ...] = ()  # running servers to use instead of starting one
    engine: str | None = None  # a registered engine's name; None: the model's own
    api_key: str | None = None
    ctx: int | None = None
    threads: int | None = None
    llama_amx: str | None = None
    extra_args: tuple[str, ...] = ()  # what followed `--` on the command line, for an engine assay starts

    @property
    def starts(self) -> bool:
        """True when assay starts the engine (no --endpoint)."""
        return not self.endpoints

    @property
    def label(self) -> str:
        """The model as a person named it (the embedded default when none was)."""
        return self.model or "smollm2-135m"

    def replace(self, **changes) -> "EngineChoice":
        return EngineChoice(**{**asdict(self), **changes})

    @contextlib.contextmanager
    def provide(self, **kw) -> Iterator[list]:
        """``engines.provide`` with these options (``kw``: what the command adds: replicas, tools, probe_identity,
        host, port, vllm_options, or a ``ctx`` the command sized itself)."""
        from assay import engines

        args = dict(model=self.model, endpoints=list(self.endpoints) or None, engine=self.engine,
                    api_key=self.api_key, ctx=self.ctx, threads=self.threads, llama_amx=self.llama_amx,
                    extra_args=list(self.extra_args) or None)
        with engines.provide(**{**args, **kw}) as eps:
            yield eps
