"""BFCL multi-turn: run a model's calls against BFCL's own simulated APIs and check them the way BFCL does.

The APIs (a file system, a trading bot, travel booking, ...) are the plain-Python classes that ship in the
``bfcl-eval`` wheel (``bfcl_eval/eval_checker/multi_turn_eval/func_source_code/``); assay imports them from an
installed ``bfcl-eval`` (``pip install --no-deps bfcl-eval==2026.3.23``; their only import beyond the standard
library is ``mpmath``, which sympy already brings). The checker is written for assay after BFCL's
``multi_turn_checker`` (and compared with it by ``tests/test_bfcl_parity.py``): turn by turn, the model's calls so
far and the ground truth's are executed on two fresh sets of instances; for every turn whose ground truth has calls,
the model must have made at least one call, every public attribute of every instance must equal the ground truth's,
and the ground truth's execution results of that turn must all be among the model's results so far (as a multiset).

**How calls run.** BFCL renders each decoded call as Python text (``cd(folder='document')``) and ``eval``\\s it with
the instance's name put before every method name. assay renders the same text and evaluates it with a small
interpreter that knows literals, containers, arithmetic and calls to the instances' public methods — nothing else
runs. Differences, all on inputs no ground truth contains: a call to a Python builtin (``print(...)``, ``len(...)``)
is "name not defined" in assay where BFCL runs the builtin; BFCL's method-name rewrite also rewrites a method name
followed by ``(`` inside a string argument, assay passes the string unchanged.
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from assay.errors import AssayError
from assay.evals.bfcl.decode import _arith, is_empty_execution

BFCL_EVAL_SPEC = "bfcl-eval==2026.3.23"
_PREFIX = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"
CLASS_MODULES = {
    "GorillaFileSystem": "gorilla_file_system", "MathAPI": "math_api", "MessageAPI": "message_api",
    "TwitterAPI": "posting_api", "TicketAPI": "ticket_api", "TradingBot": "trading_bot",
    "TravelAPI": "travel_booking", "VehicleControlAPI": "vehicle_control",
}
FUNC_DOC_FILES = {
    "GorillaFileSystem": "gorilla_file_system.json", "MathAPI": "math_api.json", "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json", "TicketAPI": "ticket_api.json", "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json", "VehicleControlAPI": "vehicle_control.json",
}
STATELESS = ("MathAPI",)
BLOCKED = ("kill", "exit", "quit", "remove", "unlink", "popen", "Popen", "run")
MAX_STEPS = 20  # BFCL's MAXIMUM_STEP_LIMIT: a turn that goes past it ends the conversation


def _candidate_paths() -> list[Path]:
    env = os.environ.get("ASSAY_BFCL_EVAL")
    cache = Path(os.environ.get("ASSAY_TEST_CACHE", Path.home() / ".cache" / "assay-tests"))
    return [Path(p) for p in ([env] if env else [])] + [cache / "bfcl_eval-2026.3.23"]


def bfcl_eval_root(extra: str | None = None) -> Path | None:
    """The folder holding the importable ``bfcl_eval`` package (installed, ``extra``, ``$ASSAY_BFCL_EVAL`` or the
    test cache), or None."""
    for p in ([Path(extra).expanduser()] if extra else []) + _candidate_paths():
        if (p / "bfcl_eval" / "eval_checker").is_dir():
            return p
    spec = importlib.util.find_spec("bfcl_eval")
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]).parent
    return None


def api_module(cls: str, extra: str | None = None):
    """BFCL's module for one simulated API class, importing ``bfcl_eval`` from where it is installed."""
    try:
        return importlib.import_module(f"{_PREFIX}.{CLASS_MODULES[cls]}")
    except ImportError:
        pass
    root = bfcl_eval_root(extra)
    if root is None:
        raise AssayError(
            f"BFCL multi-turn needs the simulated APIs from the bfcl-eval package: pip install --no-deps "
            f"'{BFCL_EVAL_SPEC}' (or --target DIR and --suite-opt bfcl_eval=DIR); its full dependency set is not needed")
    if str(root) not in sys.path:
        sys.path.append(str(root))
    try:
        return importlib.import_module(f"{_PREFIX}.{CLASS_MODULES[cls]}")
    except ImportError as e:
        raise AssayError(f"BFCL's {cls} could not be imported from {root}: {e}") from None


class _NameError(Exception):
    pass


class Env:
    """One set of API instances for one conversation (the model's, or the ground truth's)."""

    def __init__(self, entry: dict, *, long_context: bool = False, bfcl_eval: str | None = None):
        self.instances: dict[str, Any] = {}
        self.methods: dict[str, Any] = {}
        for cls in entry["involved_classes"]:
            inst = getattr(api_module(cls, bfcl_eval), cls)()
            if cls not in STATELESS:
                inst._load_scenario(copy.deepcopy((entry.get("initial_config") or {}).get(cls, {})),
                                    long_context=long_context)
            self.instances[cls] = inst
            for name, m in inspect.getmembers(inst, predicate=inspect.ismethod):
                if not name.startswith("_"):
                    self.methods[name] = m

    # -- a tiny evaluator for the call text: literals, containers, arithmetic, the instances' public methods -----------
    def _eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                base = node.func
                while isinstance(base, (ast.Attribute, ast.Subscript, ast.Call)):
                    base = base.value if not isinstance(base, ast.Call) else base.func
                raise _NameError(f"name '{getattr(base, 'id', ast.unparse(base))}' is not defined")
            fn = self.methods.get(node.func.id)
            if fn is None:
                raise _NameError(f"name '{node.func.id}' is not defined")
            args = []
            for a in node.args:
                args.extend(self._eval(a.value)) if isinstance(a, ast.Starred) else args.append(self._eval(a))
            kwargs: dict = {}
            for kw in node.keywords:
                if kw.arg is None:
                    kwargs.update(self._eval(kw.value))
                else:
                    kwargs[kw.arg] = self._eval(kw.value)
            return fn(*args, **kwargs)
        if isinstance(node, ast.Name):
            if node.id in self.methods:
                return self.methods[node.id]
            raise _NameError(f"name '{node.id}' is not defined")
        if isinstance(node, ast.List):
            return [self._eval(e) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self._eval(e) for e in node.elts)
        if isinstance(node, ast.Set):
            return {self._eval(e) for e in node.elts}
        if isinstance(node, ast.Dict):
            out = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    out.update(self._eval(v))
                else:
                    out[self._eval(k)] = self._eval(v)
            return out
        return _arith(node)  # constants, unary and binary operators on them

    def run(self, call: str) -> str:
        """One call's result as BFCL records it (a str, a dict as JSON, anything else as ``str``; an exception as
        ``Error during execution: ...``)."""
        try:
            head = re.sub(r"\b([a-zA-Z_]\w*)\s*(?=\()",
                          lambda m: f"inst.{m.group(1)}" if m.group(1) in self.methods else m.group(1), call)
            if "(" in head:
                head = head.split("(")[0]
            if "." in head:
                head = head.split(".")[1]
            if head in BLOCKED:
                raise Exception(f"Function call {head} is not allowed.")
            result = self._eval(ast.parse(call, filename="<string>", mode="eval").body)
            if type(result) == str:
                return result
            if type(result) == dict:
                try:
                    return json.dumps(result)
                except Exception:
                    return str(result)
            return str(result)
        except Exception as e:
            return f"Error during execution: {e}"

    def run_all(self, calls: list[str]) -> list[str]:
        return [self.run(c) for c in calls]


def check_multi_turn(model_turns: list[list[list[str]]], ground_truth: list[list[str]], entry: dict,
                     bfcl_eval: str | None = None) -> dict:
    """BFCL's multi-turn verdict for the model's executed calls (per turn, per step, the call texts) against the
    ground truth's call texts per turn."""
    if len(model_turns) != len(ground_truth):
        return {"valid": False, "error_type": "multi_turn:force_terminated",
                "error_message": f"{len(model_turns)} turns answered, {len(ground_truth)} expected (the model went "
                                 f"past {MAX_STEPS} steps in a turn)"}
    long_context = "long_context" in entry["id"] or "composite" in entry["id"]
    model = Env(entry, long_context=long_context, bfcl_eval=bfcl_eval)
    truth = Env(entry, long_context=long_context, bfcl_eval=bfcl_eval)
    so_far: list[str] = []
    for t, gt_calls in enumerate(ground_truth):
        steps = model_turns[t]
        for step in steps:
            so_far.extend(model.run_all(step))
        gt_results = truth.run_all(gt_calls)
        if not gt_calls:
            continue
        if not steps or is_empty_execution(steps):
            return {"valid": False, "error_type": "multi_turn:empty_turn_model_response",
                    "error_message": f"Model response list is empty for turn {t}"}
        for cls, gi in truth.instances.items():
            mi = model.instances[cls]
            diff = [a for a in vars(gi) if not a.startswith("_") and getattr(mi, a) != getattr(gi, a)]
            if diff:
                return {"valid": False, "error_type": "multi_turn:instance_state_mismatch",
                        "error_message": f"turn {t}: {cls} differs from the ground truth in {', '.join(diff)}"}
        left = list(so_far)
        missing = []
        for r in gt_results:
            try:
                left.remove(r)
            except ValueError:
                missing.append(r)
        if missing:
            return {"valid": False, "error_type": "multi_turn:execution_response_mismatch",
                    "error_message": f"turn {t}: results of the ground truth missing from the model's: "
                                     f"{missing[0][:120]!r}"}
    return {"valid": True}
