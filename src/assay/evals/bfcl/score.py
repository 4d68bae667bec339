"""One BFCL verdict as an assay ``Score``: single-turn (AST or relevance) and multi-turn, from stored turns only."""

from __future__ import annotations

import json
from typing import Any

from assay.common import split_think
from assay.evals.base import Score, Turn
from assay.evals.bfcl.checker import CheckerError, ast_check
from assay.evals.bfcl.decode import (
    DecodeError,
    calls_format_ok,
    decode_native,
    decode_prompted,
    execution_list_native,
    execution_list_prompted,
    is_empty,
    is_empty_execution,
)


def is_relevance(category: str) -> bool:
    return "irrelevance" in category or "relevance" in category


def model_result(turn: Turn, mode: str) -> Any:
    """What BFCL's handler hands its decoder for one reply: native, ``[{name: arguments}]`` when the reply has tool
    calls, else its text; prompted, the text (a ``<think>`` block removed, as BFCL's reasoning-model handlers do)."""
    if mode == "native":
        if turn.tool_calls:
            return [{c.name: c.arguments} for c in turn.tool_calls]
        return turn.completion or ""
    if turn.completion is None:
        return None
    return split_think(turn.completion)[0]


def decode(result: Any, mode: str) -> list[dict]:
    return decode_native(result) if mode == "native" else decode_prompted(result)


def verdict(result: Any, mode: str, docs: list[dict], truth: list[dict], category: str) -> dict:
    """BFCL's entry-level verdict ({valid, error_type, error}) for a single-turn item: relevance categories by whether
    the reply decodes to a call, the others by decoding and the AST checker (``underscore_to_dot`` for native)."""
    if is_relevance(category):
        try:
            contains = not is_empty(decode(result, mode))
        except DecodeError:
            contains = False
        ok = not contains if "irrelevance" in category else contains
        return {"valid": ok, "error_type": "" if ok else "relevance", "calls": contains}
    try:
        decoded = decode(result, mode)
    except DecodeError as e:
        return {"valid": False, "error_type": "ast_decoder:decoder_failed", "error": [str(e)], "decoded": None}
    if not calls_format_ok(decoded):
        return {"valid": False, "error_type": "ast_decoder:decoder_wrong_output_format", "error": [], "decoded": None}
    out = ast_check(docs, decoded, truth, category, underscore_to_dot=mode == "native")
    return {**out, "decoded": decoded}


def score_single(turn: Turn, mode: str, docs: list[dict], truth: list[dict], category: str) -> Score:
    result = model_result(turn, mode)
    shown = (json.dumps(result, ensure_ascii=False) if not isinstance(result, str) else result or "")[:300]
    n_calls = len(turn.tool_calls) if mode == "native" else None
    try:
        v = verdict(result, mode, docs, truth, category)
    except (CheckerError, Exception) as e:  # the reference raises on these too
        return Score(0.0, extracted=shown, reason=f"BFCL's checker cannot check this item: {type(e).__name__}: {e}",
                     extra={"n_calls": n_calls, "expected_calls": len(truth)})
    if is_relevance(category):
        n = n_calls if n_calls is not None else int(v["calls"])
        return Score(1.0 if v["valid"] else 0.0, extracted=shown, extra={"n_calls": n, "expected_calls": 0},
                     reason="no call, as none fits" if v["valid"] else "called a function although none fits")
    decoded = v.get("decoded")
    if n_calls is None:
        n_calls = len(decoded) if decoded is not None else 0
    extra = {"n_calls": n_calls, "expected_calls": len(truth), "error_type": v.get("error_type", "")}
    if v["valid"]:
        return Score(1.0, extracted=shown, reason="all calls match (BFCL's AST rules)", extra=extra)
    reason = "; ".join(str(e) for e in v.get("error") or [])[:300] or v.get("error_type", "")
    # a prompted reply BFCL's decoder cannot read is counted beside the score (it is still a 0, as in BFCL)
    parsed = not (mode == "prompted" and v.get("error_type") == "ast_decoder:decoder_failed")
    if mode == "native" and v.get("error_type") == "ast_decoder:decoder_failed" and not turn.tool_calls:
        reason, parsed = "no call", True
    elif mode == "native" and v.get("error_type") == "ast_decoder:decoder_failed":
        parsed = False
    return Score(0.0, extracted=shown, reason=f"{v.get('error_type', '')}: {reason}", parsed=parsed, extra=extra)


def step_calls(turn: Turn, mode: str) -> list[str]:
    """BFCL's ``decode_execute`` of one reply: the call texts to run ([] when it decodes to nothing or fails)."""
    result = model_result(turn, mode)
    try:
        calls = execution_list_native(result) if mode == "native" else execution_list_prompted(
            decode_prompted(result))
    except Exception:  # noqa: BLE001 - BFCL: "Failed to decode the model response. Proceed to next turn."
        return []
    return [] if is_empty_execution(calls) else calls


def model_turns(turns: list[Turn], mode: str) -> list[list[list[str]]]:
    """The executed steps per user turn (turns are labelled ``turnK``), failed or empty decodes left out."""
    out: dict[str, list] = {}
    for t in turns:
        steps = out.setdefault(t.label or "turn0", [])
        calls = step_calls(t, mode)
        if calls:
            steps.append(calls)
    return list(out.values())
