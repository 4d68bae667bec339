"""Model output → BFCL's decoded calls ``[{name: {param: value}}]``, as BFCL decodes it (written for assay).

- **prompted** (BFCL's default prompt asks for ``[func(a=1, b='x'), other(c=[1, 2])]``): BFCL's
  ``default_decode_ast_prompting`` — strip backticks, newlines and spaces at both ends, wrap in ``[...]`` when not
  already, strip ``'`` at both ends, parse as a Python expression; each element must be a call. Keyword arguments only
  (positional ones are dropped, as BFCL does); a dotted name is kept dotted (``math.factorial``). Values: literals,
  lists, dicts, tuples, a bare name as its string, ``-x`` of a constant as its negation (whatever the unary operator:
  BFCL's rule), a call without keywords as its source text, a call with keywords as a nested ``{name: {...}}``, a
  subscript as its source text, and arithmetic on constants evaluated.
  **One deliberate difference**: BFCL evaluates an arithmetic expression with Python's ``eval`` (so ``2 * len(x)``
  or any other code a model writes would run); assay evaluates only numbers, strings and containers with ``+ - * / //
  % **`` and the bitwise operators, and a name or call inside the arithmetic makes the decode fail (BFCL: the value
  ``eval`` returns, or a failed decode for an unknown name).
- **native** (OpenAI ``tool_calls``): ``[{name: json.loads(arguments)}]``; a reply with no tool call is its text,
  which decodes to nothing (no call).

``calls_format_ok`` and ``is_empty`` are BFCL's ``is_function_calling_format_output`` and ``is_empty_output``.
"""

from __future__ import annotations

import ast
import json
import operator
from typing import Any


class DecodeError(Exception):
    pass


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
           ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitOr: operator.or_,
           ast.BitXor: operator.xor, ast.BitAnd: operator.and_, ast.MatMult: operator.matmul}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_, ast.Invert: operator.invert}
_MAX_SIZE = 100_000


def _arith(node: ast.AST) -> Any:
    """Python's value of constant arithmetic (what ``eval`` gives for it), refusing anything else."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_arith(e) for e in node.elts]
        return list(items) if isinstance(node, ast.List) else tuple(items) if isinstance(node, ast.Tuple) else set(items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_arith(k): _arith(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_arith(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _arith(node.left), _arith(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 1000 and \
                isinstance(left, int) and abs(left) > 1:
            raise DecodeError("exponent too large to evaluate")
        if isinstance(node.op, (ast.Mult, ast.LShift)):
            n = right if isinstance(right, int) else left if isinstance(left, int) else 0
            if isinstance(node.op, ast.LShift) and isinstance(right, int) and right > _MAX_SIZE:
                raise DecodeError("shift too large to evaluate")
            if isinstance(left, (str, bytes, list, tuple)) or isinstance(right, (str, bytes, list, tuple)):
                if not isinstance(n, bool) and isinstance(n, int) and n * max(1, len(left if not isinstance(
                        left, int) else right)) > _MAX_SIZE:
                    raise DecodeError("sequence too large to evaluate")
        return _BINOPS[type(node.op)](left, right)
    raise DecodeError(f"assay does not evaluate {type(node).__name__} inside arithmetic")


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):
        operand = node.operand
        if not isinstance(operand, ast.Constant):
            raise DecodeError(f"unary operator on {type(operand).__name__}")
        return -operand.value  # BFCL negates the constant whatever the operator (a str or None raises)
    if isinstance(node, ast.List):
        return [_value(v) for v in node.elts]
    if isinstance(node, ast.Dict):
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.BinOp):
        try:
            return _arith(node)
        except DecodeError:
            raise
        except Exception as e:  # what eval would raise: ZeroDivisionError, TypeError, OverflowError
            raise DecodeError(f"{type(e).__name__}: {e}") from None
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return ast.unparse(node) if not node.keywords else _call(node)
    if isinstance(node, ast.Tuple):
        return tuple(_value(v) for v in node.elts)
    if isinstance(node, ast.Subscript):
        return ast.unparse(node.value) + "[" + ast.unparse(node.slice) + "]"
    raise DecodeError(f"unsupported value: {type(node).__name__}")


def _call(node: ast.Call) -> dict:
    parts, f = [], node.func
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return {".".join(reversed(parts)): {kw.arg: _value(kw.value) for kw in node.keywords}}


def decode_prompted(text: str | None) -> list[dict]:
    """BFCL's decoding of a prompted reply; raises DecodeError where BFCL's decoder fails."""
    if text is None:
        raise DecodeError("no text")
    s = text.strip("`\n ")
    if not s.startswith("["):
        s = "[" + s
    if not s.endswith("]"):
        s = s + "]"
    s = s.strip().strip("'")
    try:
        tree = ast.parse(s, mode="eval")
        body = tree.body
        if isinstance(body, ast.Call):
            return [_call(body)]
        elts = getattr(body, "elts", None)
        if elts is None:
            raise DecodeError(f"not a list of calls: {type(body).__name__}")
        out = []
        for e in elts:
            if not isinstance(e, ast.Call):
                raise DecodeError(f"an element is not a call: {type(e).__name__}")
            out.append(_call(e))
        return out
    except DecodeError:
        raise
    except Exception as e:  # SyntaxError, RecursionError, unhashable dict keys, -"str", ...
        raise DecodeError(f"{type(e).__name__}: {e}") from None


def decode_native(result: list[dict] | str | None) -> list[dict]:
    """BFCL's decoding for an OpenAI-style function-calling model: ``result`` is ``[{name: arguments_text}]`` when the
    reply has tool calls, else the reply's text."""
    if isinstance(result, str):
        if result:
            raise DecodeError("a text reply, no tool call")
        return []
    if result is None:
        raise DecodeError("no reply")
    out = []
    for item in result:
        name = list(item.keys())[0]
        try:
            out.append({name: json.loads(item[name])})
        except Exception as e:
            raise DecodeError(f"arguments of {name} are not JSON: {e}") from None
    return out


def calls_format_ok(decoded: Any) -> bool:
    if type(decoded) != list:
        return False
    return all(type(i) == dict and len(i) == 1 and type(list(i.values())[0]) == dict for i in decoded)


def is_empty(decoded: Any) -> bool:
    return not calls_format_ok(decoded) or len(decoded) == 0 or (len(decoded) == 1 and len(decoded[0]) == 0)


# ---- execution strings (multi-turn): how BFCL turns decoded calls into the code it runs -----------------------------
def _nested(value: Any) -> str:
    if isinstance(value, dict):
        if all(isinstance(v, dict) for v in value.values()):
            name = list(value.keys())[0]
            return f"{name}(" + ", ".join(f"{k}={_nested(v)}" for k, v in value[name].items()) + ")"
        return "{" + ", ".join(f"'{k}': {_nested(v)}" for k, v in value.items()) + "}"
    return repr(value)


def execution_list_prompted(decoded: list[dict]) -> list[str]:
    """BFCL's ``decoded_output_to_execution_list``."""
    return [f"{name}(" + ", ".join(f"{k}={_nested(v)}" for k, v in args.items()) + ")"
            for call in decoded for name, args in call.items()]


def execution_list_native(result: list[dict] | dict) -> list[str]:
    """BFCL's ``convert_to_function_call`` for ``[{name: arguments}]`` (arguments as JSON text or a dict)."""
    if isinstance(result, dict):
        result = [result]
    out = []
    for call in result:
        for name, value in call.items():
            if isinstance(value, str):
                value = json.loads(value)
            out.append(f"{name}(" + ",".join(f"{k}={v!r}" for k, v in value.items()) + ")")
    return out


def is_empty_execution(items: list) -> bool:
    return len(items) == 0 or (len(items) == 1 and len(items[0]) == 0)
