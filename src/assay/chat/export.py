"""Export a conversation as Markdown or JSON, and rebuild one from stored Chainlit steps.

A conversation is a plain dict (what the app keeps per session)::

    {"thread_id": str | None, "title": str | None, "model": str | None, "settings": {...},
     "turns": [{"role": "user" | "assistant", "content": str, "stats": {...}?, "id": str?}, ...]}

Assistant turns hold the model's raw answer (what is sent back to the model), not the displayed text with its stats
line; the app stores that raw answer and its stats in the step metadata under ``"assay"`` so a resumed thread
rebuilds exactly (``turns_from_steps``).
"""

from __future__ import annotations

import json
import time
from typing import Any

FORMAT = "assay.chat/1"


def turns_from_steps(steps: list[dict]) -> list[dict]:
    """User and assistant turns from a thread's steps (oldest first). Chainlit's own notices are skipped."""
    turns = []
    for s in steps:
        meta = s.get("metadata") or {}
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except json.JSONDecodeError:
                meta = {}
        if s.get("type") == "user_message":
            turns.append({"role": "user", "content": s.get("output") or "", "id": s.get("id")})
        elif s.get("type") == "assistant_message" and isinstance(meta.get("assay"), dict):
            a = meta["assay"]
            if a.get("kind") != "answer":
                continue
            turns.append({"role": "assistant", "content": a.get("answer", ""), "stats": a.get("stats") or {},
                          "id": s.get("id")})
        elif s.get("type") == "tool" and isinstance(meta.get("assay"), dict) and meta["assay"].get("kind") == "tool":
            # a Python tool run: its output went back to the model as a user message, so it is part of the history
            turns.append({"role": "user", "content": meta["assay"].get("feedback", ""), "tool": True,
                          "id": s.get("id")})
    return turns


def to_json(conv: dict[str, Any]) -> str:
    doc = {
        "format": FORMAT,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "thread_id": conv.get("thread_id"),
        "title": conv.get("title"),
        "model": conv.get("model"),
        "settings": conv.get("settings") or {},
        "messages": [],
    }
    sp = (conv.get("settings") or {}).get("system_prompt")
    if sp and sp.strip():
        doc["messages"].append({"role": "system", "content": sp})
    for t in conv.get("turns") or []:
        m = {"role": t["role"], "content": t["content"]}
        if t.get("stats"):
            m["stats"] = t["stats"]
        doc["messages"].append(m)
    return json.dumps(doc, indent=2, ensure_ascii=False)


def to_markdown(conv: dict[str, Any]) -> str:
    from assay.chat.render import stats_line

    title = conv.get("title") or "Conversation"
    s = conv.get("settings") or {}
    lines = [f"# {title}", ""]
    meta = []
    if conv.get("model"):
        meta.append(f"model `{conv['model']}`")
    for k in ("temperature", "top_p", "max_tokens"):
        if k in s:
            meta.append(f"{k} {s[k]}")
    meta.append("exported " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    lines += ["*" + " · ".join(meta) + "*", ""]
    if (s.get("system_prompt") or "").strip():
        lines += ["## System", "", s["system_prompt"].strip(), ""]
    for t in conv.get("turns") or []:
        head = "## Python tool" if t.get("tool") else "## User" if t["role"] == "user" else "## Assistant"
        lines += [head, "", t["content"].rstrip(), ""]
        if t.get("stats"):
            lines += [f"*{stats_line(t['stats'])}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def filename(conv: dict[str, Any], ext: str) -> str:
    tid = (conv.get("thread_id") or "chat")[:8]
    return f"assay-chat-{tid}.{ext}"
