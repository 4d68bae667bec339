"""BFCL's AST checker rules, written for assay (Python categories).

The rules are those of ``bfcl_eval/eval_checker/ast_eval/ast_checker.py`` in ``bfcl-eval==2026.3.23`` (Apache-2.0),
read and re-written here; ``tests/test_bfcl_parity.py`` compares every verdict with the installed reference. They are
kept exactly, including the ones that look odd, because a number on a BFCL category must mean what it means on the
leaderboard:

- a value's type is checked one level deep (an array's items, never a dict's values), with BFCL's Python names
  (``float`` accepts an int, which becomes a float; ``bool`` is never an ``integer``); a value whose type is that of the
  ground truth instead of the declared one is a "variable" and is compared as is;
- strings are compared after removing spaces and ``,./-_*^``, lower-cased, ``'`` read as ``"``;
- numbers and booleans must be among the acceptable values (Python ``==``: no tolerance; ``1 == 1.0 == True``);
- arrays are compared in order (the ground truth lists the orders it accepts), strings inside standardised;
- a dict is compared key by key against "key → acceptable values" one level deep; a list of dicts dict by dict;
- ``parallel`` categories match calls greedily in any order, ``multiple`` checks the one expected call, ``simple``
  wants exactly one call;
- function names: the expected name with ``.`` turned into ``_`` when the model's interface cannot carry dots
  (``underscore_to_dot``: native tool calling), exact otherwise; the function's doc is found by the expected name.

A structure the reference itself cannot check (a parameter without a type, an unknown type, an array without
``items``) raises ``CheckerError`` where the reference raises.
"""

from __future__ import annotations

import re
from typing import Any

PY_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list,
                             "tuple": list, "dict": dict, "any": str}
NESTED_TYPES = ("array", "tuple")


class CheckerError(Exception):
    """The function doc or answer has a shape BFCL's checker fails on (it raises there too)."""


def _ok() -> dict:
    return {"valid": True, "error": []}


def _bad(kind: str, msg: str) -> dict:
    return {"valid": False, "error": [msg], "error_type": kind}


def standardize(s: str) -> str:
    return re.sub(r"[ ,./\-_*^]", "", s).lower().replace("'", '"')


def _answer_type(acceptable: list) -> type | None:
    for a in acceptable:
        if a != "":
            return type(a)
    return None


def check_type(param: str, value: Any, acceptable: list, declared: type, inner: type | None) -> tuple[bool, bool]:
    """(valid, is_variable): BFCL's one-level type rule."""
    answer_type = _answer_type(acceptable)
    variable = answer_type is not None and answer_type != declared
    if type(value) == declared:
        if inner is None:
            return True, variable
        for a in acceptable:  # the value's items must fit the inner type for one acceptable answer (or a non-list)
            if type(a) == list and not all(check_type(param, v, a, inner, None)[0] for v in value):
                continue
            return True, variable
        return False, variable
    if answer_type is not None and type(value) == answer_type:
        return True, True
    return False, variable


def _std_list(items) -> list:
    out = []
    for j in range(len(items)):  # a string answer is iterated character by character, as the reference does
        x = items[j]
        out.append(standardize(x) if type(x) == str else x)
    return out


def check_list(value: list, acceptable: list) -> bool:
    return _std_list(list(value)) in [_std_list(a) for a in acceptable]


def check_dict(value: dict, acceptable: list) -> bool:
    for a in acceptable:
        if a == "":
            continue
        ok = True
        for k, v in value.items():
            if k not in a:
                ok = False
                break
            sv = standardize(v) if type(v) == str else v
            if sv not in _std_list(a[k]):
                ok = False
                break
        if ok:
            for k, vals in a.items():
                if k not in value and "" not in vals:
                    ok = False
                    break
        if ok:
            return True
    return False


def check_list_of_dicts(value: list, acceptable: list) -> bool:
    for a in acceptable:
        if len(value) != len(a):
            continue
        if all(check_dict(value[i], [a[i]]) for i in range(len(value))):
            return True
    return False


def expected_name(name: str, underscore_to_dot: bool) -> str:
    return name.replace(".", "_") if underscore_to_dot and "." in name else name


def check_call(doc: dict, call: dict, answer: dict, underscore_to_dot: bool) -> dict:
    """One decoded call ``{name: {param: value}}`` against one ground-truth call ``{name: {param: [acceptable]}}``
    and the function's doc (BFCL's field names and Python type names)."""
    if doc is None:
        raise CheckerError("no function doc has the expected name")
    acceptable = list(answer.values())[0]
    try:
        props, required = doc["parameters"]["properties"], doc["parameters"]["required"]
    except (KeyError, TypeError) as e:
        raise CheckerError(f"function doc without parameters.properties / required: {e}") from None
    name = expected_name(doc["name"], underscore_to_dot)
    if name not in call:
        return _bad("simple_function_checker:wrong_func_name", f"Function name {name!r} not found in model output.")
    args = call[name]
    for p in required:
        if p not in args:
            return _bad("simple_function_checker:missing_required", f"Missing required parameter: {p!r}.")
    for p, value in args.items():
        if p not in props or p not in acceptable:
            return _bad("simple_function_checker:unexpected_param", f"Unexpected parameter: {p!r}.")
        try:
            desc = props[p]["type"]
            declared = PY_TYPES[desc]
            inner = PY_TYPES[props[p]["items"]["type"]] if desc in NESTED_TYPES else None
        except (KeyError, TypeError) as e:
            raise CheckerError(f"parameter {p!r}: type BFCL cannot check ({e!r})") from None
        if desc == "tuple" and type(value) == tuple:
            value = list(value)
        if desc == "float" and type(value) == int:
            value = float(value)
        valid, variable = check_type(p, value, acceptable[p], declared, inner)
        if not valid:
            return _bad("type_error", f"Incorrect type for parameter {p!r}: expected {desc}, got "
                                      f"{type(value).__name__} ({value!r:.80}).")
        if not variable:
            if declared == dict:
                if not check_dict(value, acceptable[p]):
                    return _bad("value_error:dict", f"Invalid value for parameter {p!r}: {value!r:.80}.")
                continue
            if declared == list and inner == dict:
                if not check_list_of_dicts(value, acceptable[p]):
                    return _bad("value_error:list_dict", f"Invalid value for parameter {p!r}: {value!r:.80}.")
                continue
            if declared == str:
                if standardize(value) not in [standardize(a) for a in acceptable[p] if type(a) == str]:
                    return _bad("value_error:string", f"Invalid value for parameter {p!r}: {value!r:.80}. "
                                                      f"Expected one of {acceptable[p]!r:.120}.")
                continue
            if declared == list:
                if not check_list(value, acceptable[p]):
                    return _bad("value_error:list/tuple", f"Invalid value for parameter {p!r}: {value!r:.80}. "
                                                          f"Expected one of {acceptable[p]!r:.120}.")
                continue
        if value not in acceptable[p]:
            return _bad("value_error:others", f"Invalid value for parameter {p!r}: {value!r:.80}. "
                                              f"Expected one of {acceptable[p]!r:.120}.")
    for p in acceptable:
        if p not in args and "" not in acceptable[p]:
            return _bad("simple_function_checker:missing_optional",
                        f"Optional parameter {p!r} not provided and not marked as optional.")
    return _ok()


def find_doc(docs: list[dict] | dict, name: str) -> dict | None:
    if isinstance(docs, list):
        return next((d for d in docs if d["name"] == name), None)
    return docs


def ast_check(docs: list[dict], calls: list[dict], answers: list[dict], category: str,
              underscore_to_dot: bool) -> dict:
    """BFCL's ``ast_checker`` for a Python category: ``calls`` decoded (``[{name: {param: value}}]``), ``answers`` the
    ground truth (``[{name: {param: [acceptable]}}]``)."""
    if "parallel" in category:
        if len(calls) != len(answers):
            return _bad("parallel_function_checker_no_order:wrong_count", "Wrong number of functions.")
        matched: list[int] = []
        for i, ans in enumerate(answers):  # greedy: the first unmatched call that fits each expected call in turn
            doc = find_doc(docs, list(ans)[0])
            hit = None
            for j in range(len(calls)):
                if j not in matched and check_call(doc, calls[j], ans, underscore_to_dot)["valid"]:
                    hit = j
                    break
            if hit is None:
                return _bad("parallel_function_checker_no_order:cannot_find_match",
                            f"Could not find a matching function for expected call {i} ({list(ans)[0]}).")
            matched.append(hit)
        return _ok()
    if "multiple" in category:
        if len(calls) != len(answers):
            return _bad("multiple_function_checker:wrong_count", "Wrong number of functions.")
        return check_call(find_doc(docs, list(answers[0])[0]), calls[0], answers[0], underscore_to_dot)
    if len(calls) != 1:
        return _bad("simple_function_checker:wrong_count", "Wrong number of functions.")
    return check_call(docs[0], calls[0], answers[0], underscore_to_dot)
