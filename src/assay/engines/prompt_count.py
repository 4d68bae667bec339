"""Count a chat request's prompt tokens in this process, as the server renders and tokenizes it.

Used by ``assay.client`` when a server sends no ``usage`` (llama-cpp-python never does when streaming). For an
engine we serve from a GGUF (``Endpoint.caps.local_tokenizer`` set, ``Endpoint.extra["gguf"]`` the file), the prompt
is rendered with llama-cpp-python's own chat formatter chosen the way its ``Llama.__init__`` chooses it — the chat
format the server was started with (``--chat_format``), else the GGUF's ``tokenizer.chat_template`` (a known template
becomes its named format, any other goes through ``llama_chat_format.Jinja2ChatFormatter`` with the GGUF's BOS / EOS
text) — and tokenized with the GGUF's vocabulary exactly as the chat handler does (``add_bos`` unless the formatter
added the special tokens itself, ``special`` on). No request reaches the server (its routes wait behind every
queued generation).

Not reproducible here, so ``counter`` answers None and the prompt count stays unknown: a chat handler that is not a
plain formatter (``chatml-function-calling`` — the server-wide tool format — and the multimodal / functionary
handlers), a server started with an HF tokenizer or a config file, and an endpoint we did not start.

Example:
    count = counter(endpoint)            # None: not countable in this process
    if count is not None:
        n = count([{"role": "user", "content": "Hi"}])
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from assay.engines import Endpoint

# (messages, tools, tool_choice) -> prompt tokens, None when this request's render failed
PromptCounter = Callable[..., "int | None"]

# server settings that replace the GGUF's tokenizer or chat handler in ways not reproduced here
_OPAQUE_FLAGS = ("--hf_pretrained_model_name_or_path", "--hf_tokenizer_config_path", "--hf_model_repo_id",
                 "--clip_model_path", "--config_file")


def counter(ep: "Endpoint") -> PromptCounter | None:
    """A prompt counter for ``ep`` when its engine's tokenizer and chat template are reproducible in this process;
    None otherwise. Building it reads the GGUF's metadata (the vocabulary is already loaded) and compiles the
    template: do it once per endpoint."""
    gguf = (ep.extra or {}).get("gguf")
    if ep.caps is None or ep.caps.local_tokenizer is None or not gguf:
        return None
    settings = _server_settings(ep)
    if settings is None:
        return None
    chat_format, template_kwargs = settings
    try:
        return _build(gguf, chat_format, template_kwargs)
    except Exception:  # noqa: BLE001 - a changed private API or an odd template: the count stays unknown
        return None


def _server_settings(ep: "Endpoint") -> tuple[str | None, dict] | None:
    """The chat format and server-wide chat-template kwargs the server runs with, read from its command line (the
    flags assay passed, the user's after ``--`` included); the tool format recorded on the endpoint when the command
    line cannot be read. None: a setting that is not reproduced here."""
    args: list[str] | None = None
    if ep.pid is not None:
        try:
            import psutil

            args = psutil.Process(ep.pid).cmdline()
        except Exception:  # noqa: BLE001 - gone, or not ours to read
            args = None
    if not args:
        return ep.caps.tool_format, {}
    flags: dict[str, str] = {}
    for i, a in enumerate(args):
        if a.startswith("--"):
            name, eq, value = a.partition("=")
            flags[name] = value if eq else (args[i + 1] if i + 1 < len(args) else "")
    if any(f in flags for f in _OPAQUE_FLAGS):
        return None
    kwargs: dict = {}
    if flags.get("--chat_template_kwargs"):
        try:
            kwargs = json.loads(flags["--chat_template_kwargs"])
        except ValueError:
            return None
        if not isinstance(kwargs, dict):
            return None
    return flags.get("--chat_format") or ep.caps.tool_format, kwargs


def _build(gguf: str, chat_format: str | None, template_kwargs: dict) -> PromptCounter | None:
    from llama_cpp import llama_chat_format as lcf

    from assay.engines.llamacpp import _vocab

    vocab = _vocab(gguf)
    if vocab is None:
        return None
    metadata = vocab.metadata()
    # as llama_cpp.Llama.__init__: the GGUF's templates by name, the default one first choice when no format is set
    templates = {name[10:]: t for name, t in metadata.items() if name.startswith("tokenizer.chat_template.")}
    if "tokenizer.chat_template" in metadata:
        templates["chat_template.default"] = metadata["tokenizer.chat_template"]
    if chat_format is None:
        if "chat_template.default" in templates:
            chat_format = lcf.guess_chat_format_from_gguf_metadata(metadata) or "chat_template.default"
        else:
            chat_format = "llama-2"
    if chat_format in templates:
        eos_id, bos_id = vocab.token_eos(), vocab.token_bos()
        formatter = lcf.Jinja2ChatFormatter(
            template=templates[chat_format],
            eos_token=vocab.token_get_text(eos_id) if eos_id != -1 else "",
            bos_token=vocab.token_get_text(bos_id) if bos_id != -1 else "",
            stop_token_ids=[eos_id])
    else:
        formatter = _registered_formatter(lcf, chat_format)
        if formatter is None:
            return None

    def count(messages: list[dict], tools: list[dict] | None = None, tool_choice=None) -> int | None:
        try:
            result = formatter(messages=messages, tools=tools, tool_choice=tool_choice, **template_kwargs)
            toks = vocab.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
        except Exception:  # noqa: BLE001 - the server would have refused this render too; the count stays unknown
            return None
        return len(toks) or None

    return count


def _registered_formatter(lcf, name: str):
    """The ``ChatFormatter`` behind a format registered with ``llama_chat_format.register_chat_format`` (its handler
    is ``chat_formatter_to_chat_completion_handler(formatter)``); None for a handler that renders on its own."""
    try:
        handler = lcf.get_chat_completion_handler(name)
    except Exception:  # noqa: BLE001 - unknown name, or a handler class the server builds itself (llava ...)
        return None
    code, cells = getattr(handler, "__code__", None), getattr(handler, "__closure__", None) or ()
    if code is None or "chat_formatter" not in code.co_freevars:
        return None
    return cells[code.co_freevars.index("chat_formatter")].cell_contents
