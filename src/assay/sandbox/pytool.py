"""The prompted Python tool, shared by ``math --suite-opt tool=python`` and the chat's Python tool: which code a reply
asks to run, what the model is shown of a sandbox run, and the message that carries it back. The code itself only ever
runs in ``assay.sandbox.run_python``.

Example:
    >>> code_to_run("Let me check.\\n```python\\nprint(6 * 7)\\n```")
    'print(6 * 7)'
    >>> feedback_message("42")["content"]
    'Output of your code:\\n```output\\n42\\n```'
"""

from __future__ import annotations

from assay.common import fenced_blocks, find_boxed, split_think


OUTPUT_CHARS = 2000  # of stdout + stderr fed back; the rest is cut (a model does not need a megabyte of output)


def code_to_run(text: str | None) -> str | None:
    """The code a prompted reply asks to run: its ```python blocks joined in order (each run starts a fresh
    interpreter, so a block may use what an earlier block of the same reply defined), unless the reply already gives
    a \\boxed{} answer (then it is done)."""
    body, _, _ = split_think(text or "")
    if find_boxed(body):
        return None
    blocks = [f.body for f in fenced_blocks(body) if f.lang.lower() in ("python", "py", "python3")]
    blocks = [b.strip("\n") for b in blocks if b.strip()]
    return "\n".join(blocks) if blocks else None


def tool_output(result) -> str:
    """What the model is shown of a sandbox run: stdout, then stderr, cut to OUTPUT_CHARS; why it failed, if it did."""
    out = (result.stdout or "") + (("\n" if result.stdout else "") + result.stderr if result.stderr else "")
    if len(out) > OUTPUT_CHARS:
        out = out[:OUTPUT_CHARS] + f"\n... ({len(out) - OUTPUT_CHARS} more characters cut)"
    if not result.passed and result.status != "failed":
        out += f"\n[{result.status}: {result.detail}]"
    return out.strip() or "(no output: print() the values you need)"



def feedback_message(content: str) -> dict:
    """The user message that brings a prompted tool run's output back to the model."""
    return {"role": "user", "content": f"Output of your code:\n```output\n{content}\n```"}


def strip_code(text: str) -> str:
    """``text`` without its fenced code blocks (an unclosed last fence runs to the end and goes too)."""
    out, pos = [], 0
    for f in fenced_blocks(text):
        out.append(text[pos:f.start])
        pos = f.end
    out.append(text[pos:])
    return "".join(out)
