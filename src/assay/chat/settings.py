"""The chat settings panel and how its values become a request. Pure functions; the widgets are built lazily.

Values come back from Chainlit's settings form as JSON (numbers may arrive as strings or null when a field is
cleared), so ``sampling_from`` validates and falls back to the defaults field by field rather than failing the message.
"""

from __future__ import annotations

from typing import Any

from assay.client import SamplingParams

DEFAULTS: dict[str, Any] = {
    "temperature": 0.7,
    "max_tokens": 512,
    "top_p": 1.0,
    "system_prompt": "",
    "python_tool": False,  # let the model run ```python blocks in the sandbox (shown as a collapsible step)
}

TEMPERATURE_MIN, TEMPERATURE_MAX, TEMPERATURE_STEP = 0.0, 1.5, 0.1


def widgets(values: dict[str, Any] | None = None) -> list:
    # values are expected normalized already (see normalize)
    """ChatSettings inputs, their initial values taken from ``values`` (a resumed thread's settings) or DEFAULTS."""
    from chainlit.input_widget import NumberInput, Slider, Switch, TextInput

    v = values if values else normalize(None)
    return [
        Slider(id="temperature", label="Temperature", initial=v["temperature"], min=TEMPERATURE_MIN,
               max=TEMPERATURE_MAX, step=TEMPERATURE_STEP,
               description="0 = always the most likely token; higher = more varied."),
        NumberInput(id="max_tokens", label="Max new tokens", initial=v["max_tokens"],
                    description="Upper bound on the reply length, in tokens."),
        Slider(id="top_p", label="Top-p", initial=v["top_p"], min=0.05, max=1.0, step=0.05,
               description="Sample only from the smallest token set whose probability reaches p."),
        TextInput(id="system_prompt", label="System prompt", initial=v["system_prompt"], multiline=True,
                  placeholder="e.g. You are a concise assistant. Put final answers in \\boxed{}."),
        Switch(id="python_tool", label="Python tool", initial=v["python_tool"],
               description="Run the ```python blocks of a reply in assay's sandbox and give the model their "
                           "output (up to 3 runs per message)."),
    ]


def _num(x: Any, cast, default, lo=None, hi=None):
    try:
        if x is None or (isinstance(x, str) and not x.strip()):
            return default
        val = cast(float(x)) if cast is int else cast(x)
    except (TypeError, ValueError):
        return default
    if lo is not None and val < lo:
        val = lo
    if hi is not None and val > hi:
        val = hi
    return val


def normalize(values: dict[str, Any] | None, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Settings with every key present and in range (unknown keys dropped; missing or bad ones from ``defaults``)."""
    values = values or {}
    d = {**DEFAULTS, **(defaults or {})}
    return {
        "temperature": round(_num(values.get("temperature"), float, d["temperature"],
                                  TEMPERATURE_MIN, TEMPERATURE_MAX), 3),
        "max_tokens": _num(values.get("max_tokens"), int, d["max_tokens"], 1, 1_000_000),
        "top_p": round(_num(values.get("top_p"), float, d["top_p"], 0.01, 1.0), 3),
        "system_prompt": str(values.get("system_prompt") if values.get("system_prompt") is not None
                             else d["system_prompt"] or ""),
        "python_tool": _flag(values.get("python_tool"), d["python_tool"]),
    }


def _flag(x: Any, default: bool) -> bool:
    if isinstance(x, bool):
        return x
    if isinstance(x, str) and x.strip().lower() in ("true", "1", "on", "yes", "false", "0", "off", "no"):
        return x.strip().lower() in ("true", "1", "on", "yes")
    return bool(default)


def sampling_from(values: dict[str, Any] | None) -> SamplingParams:
    v = normalize(values)
    return SamplingParams(temperature=v["temperature"], top_p=v["top_p"], max_tokens=v["max_tokens"])


def build_messages(system_prompt: str, turns: list[dict]) -> list[dict]:
    """OpenAI messages: the system prompt (when not blank) and the conversation's user/assistant turns."""
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    msgs += [{"role": t["role"], "content": t["content"]} for t in turns if t["role"] in ("user", "assistant")]
    return msgs
