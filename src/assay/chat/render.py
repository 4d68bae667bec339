"""How a reply is shown: LaTeX delimiters the chat's KaTeX understands, and the stats line under each reply.

Pure string functions, tested without a browser.
"""

from __future__ import annotations

import re
from typing import Any

# Fenced code blocks and inline code are left alone: a "\[" inside code is code.
_CODE = re.compile(r"(```.*?(?:```|\Z)|`[^`\n]*`)", re.S)
_DISPLAY = re.compile(r"\\\[(.+?)\\\]", re.S)
_INLINE = re.compile(r"\\\((.+?)\\\)", re.S)


def latex_delimiters(text: str) -> str:
    r"""Rewrite ``\[..\]`` to ``$$..$$`` and ``\(..\)`` to ``$..$`` outside code (remark-math only knows dollars).

    Models trained on LaTeX write ``\[ \boxed{4} \]``; without this the chat would show the backslashes.
    """
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):  # even indexes are outside code
        p = _DISPLAY.sub(lambda m: f"$$\n{m.group(1).strip()}\n$$", parts[i])
        parts[i] = _INLINE.sub(lambda m: f"${m.group(1).strip()}$", p)
    return "".join(parts)


def stats_line(stats: dict[str, Any]) -> str:
    """'TTFT 0.21 s · 85.3 tok/s · 42 tokens out · 14 in' (parts that are unknown are left out)."""
    bits = []
    if stats.get("ttft_s") is not None:
        bits.append(f"TTFT {stats['ttft_s']:.2f} s")
    if stats.get("decode_tok_s"):
        bits.append(f"{stats['decode_tok_s']:.1f} tok/s")
    if stats.get("completion_tokens") is not None:
        bits.append(f"{stats['completion_tokens']} tokens out")
    if stats.get("prompt_tokens") is not None:
        bits.append(f"{stats['prompt_tokens']} in")
    if stats.get("finish_reason") == "length":
        bits.append("cut at max tokens")
    if stats.get("stopped"):
        bits.append("stopped (partial answer)")
    if stats.get("model"):
        bits.append(str(stats["model"]))
    return " · ".join(bits)


def display(answer: str, stats: dict[str, Any] | None) -> str:
    """The message content: the answer (LaTeX delimiters fixed) and, under it, the stats line in italics."""
    body = latex_delimiters(answer) if answer else "*(empty reply)*"
    if body.count("```") % 2:  # a reply stopped inside a code block: close it so the stats line is not code
        body += "\n```"
    line = stats_line(stats or {})
    return f"{body}\n\n*{line}*" if line else body
