"""What an engine must be told to parse tool calls (OpenAI ``tools``): the facts and tables; each engine's file says
which it uses (``Engine.tool_flags`` / ``tool_format`` / ``tool_caps``), and the functions below ask the registry.

- llama.cpp (llama-cpp-python's server): the chat format is a server-wide flag, ``--chat_format
  chatml-function-calling`` (ChatML models: SmolLM2, Qwen). It renders the tool schemas into the system turn and
  grammar-constrains the reply to ``message:`` or ``functions.NAME:`` + JSON arguments; it cannot stream an "auto"
  tool choice (so the client sends those requests unstreamed), it ignores ``tools`` unless ``tool_choice`` is sent
  (the client sends "auto"), and its template has no branch for ``role: tool`` messages (a tool's result never
  reaches the model: multi-round tool use there goes through prompted mode).
- vLLM: ``--enable-auto-tool-choice --tool-call-parser P``, P chosen from the model family below.

Example:
    >>> from assay.models import ModelSpec
    >>> tool_flags("vllm", ModelSpec(name="q", hf_id="Qwen/Qwen3-4B-Instruct-2507"))
    ['--enable-auto-tool-choice', '--tool-call-parser', 'hermes']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from assay.models import ModelSpec

LLAMA_CPP_TOOL_FORMAT = "chatml-function-calling"
LLAMA_CPP_TOOL_FORMATS = ("chatml-function-calling", "functionary", "functionary-v1", "functionary-v2")

# vLLM's tool-call parsers by model family (first match on the lower-cased Hugging Face id or name)
VLLM_PARSERS = (("qwen", "hermes"), ("hermes", "hermes"), ("smollm", "hermes"), ("llama-3", "llama3_json"),
                ("llama3", "llama3_json"), ("mistral", "mistral"), ("granite", "granite"), ("internlm", "internlm"),
                ("phi-4", "phi4_mini_json"), ("deepseek-v3", "deepseek_v3"), ("gpt-oss", "openai"))


def vllm_parser(spec: "ModelSpec") -> str:
    key = (spec.hf_id or spec.name or "").lower()
    return next((p for k, p in VLLM_PARSERS if k in key), "hermes")


def tool_format(engine: str, spec: "ModelSpec") -> str | None:
    """The tool-call format ``engine`` is started with for ``spec`` (recorded on the endpoint): ``Engine.tool_format``."""
    from assay.engines import get

    return get(engine).tool_format(spec)


def tool_flags(engine: str, spec: "ModelSpec") -> list[str]:
    """Command-line flags that make ``engine`` parse tool calls for ``spec``: ``Engine.tool_flags``."""
    from assay.engines import find

    e = find(engine)
    return e.tool_flags(spec) if e else []


def tool_caps(engine: str, fmt: str | None) -> dict:
    """The tool fields of ``engines.Capabilities`` for an engine started with tool format ``fmt`` (None: without):
    ``Engine.tool_caps``."""
    from assay.engines import find

    e = find(engine)
    return e.tool_caps(fmt) if e else {}
