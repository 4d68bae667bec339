"""JSON value equality shared by the json suite (expected fields) and the tools suite's ``rules=assay`` (expected
arguments): one copy, the differences as parameters.

- lists: same length; lists of scalars compare as multisets, other lists item by item in order;
- booleans by identity (``True`` is not ``1``); numbers (not booleans) with ``math.isclose(rel_tol, abs_tol=1e-9)``;
- strings by ``str_equal(got, want)``; anything else by ``==``;
- dicts: by ``dict_equal(got, want, eq)`` when given (``eq`` is this equality with the same parameters), else every
  key of ``want`` must be in ``got`` with an equal value (extra keys allowed).
"""

from __future__ import annotations

import math
from typing import Any, Callable

Eq = Callable[[Any, Any], bool]


def values_equal(got: Any, want: Any, *, rel_tol: float, str_equal: Callable[[str, str], bool],
                 dict_equal: Callable[[Any, dict, Eq], bool] | None = None) -> bool:
    def eq(g: Any, w: Any) -> bool:
        return values_equal(g, w, rel_tol=rel_tol, str_equal=str_equal, dict_equal=dict_equal)

    if isinstance(want, dict):
        if dict_equal is not None:
            return dict_equal(got, want, eq)
        return isinstance(got, dict) and all(k in got and eq(got[k], v) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return False
        if all(not isinstance(w, (dict, list)) for w in want):  # scalars: a multiset, each want consumes one got
            left = list(got)
            for w in want:
                hit = next((i for i, g in enumerate(left) if eq(g, w)), None)
                if hit is None:
                    return False
                left.pop(hit)
            return True
        return all(eq(g, w) for g, w in zip(got, want))
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)):
        return isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=rel_tol, abs_tol=1e-9)
    if isinstance(want, str):
        return isinstance(got, str) and str_equal(got, want)
    return got == want
