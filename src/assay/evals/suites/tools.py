"""tools — function calling, BFCL-style: simple, multiple, parallel and irrelevance, native and prompted.

Data: ``evals/data/tools_tasks.jsonl``, 105 tasks written for assay (MIT; ``benchmarks/make_tools_tasks.py`` writes
it; see SOURCES.md): 20 function schemas, a user request, and the expected calls in BFCL's ground-truth convention
(each argument → its acceptable values; ``""`` among them: may be left out). ``data=PATH`` loads a BFCL question file
(JSON lines: ``id``, ``question``, ``function``) with its answers from ``answers=PATH`` or, by default,
``possible_answer/<same name>`` beside it (none needed for irrelevance files).

Modes (``modes=native,prompted``, both by default; every task runs in each, like json's free vs constrained):
- **native**: the functions go in the OpenAI ``tools`` field and the server's tool-call parser must return
  ``tool_calls``; assay starts llama.cpp / vLLM tool-ready for this (``engines.tools``), and an endpoint started
  without tool calling is one line naming the fix.
- **prompted**: the schemas are in the system prompt and the call is a JSON list in the reply text, so a model or
  server without native tool calling is still measured.

Score (AST-style, ``match_calls``): function name; no unknown arguments; every required argument present; each value
of the schema's type (an int is a number, a bool is not), inside its enum, and among the acceptable values (numbers
within a relative 1e-3, strings compared case- and punctuation-insensitively, arrays of scalars as multisets, objects
key by key); parallel calls matched order-free. Irrelevance: correct when no call is made. Arguments that are not a
JSON object are "unparsed" (counted beside the score), not wrong. Category: ``MODE/CATEGORY``.

Example:
    assay eval --suite tools --limit 40
    assay eval --suite tools -o modes=prompted --endpoint http://127.0.0.1:8000
    assay eval --suite tools --data ../shared/benchmarks/BFCL_v3_simple.json
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path
from typing import Any

from assay.client import ToolCall
from assay.common import data_path, file_digest, read_jsonl, split_think
from assay.errors import AssayError, DataError
from assay.evals import jsonmatch
from assay.evals.base import (
    Metric,
    Record,
    Sample,
    Score,
    Suite,
    SuiteOptions,
    Turn,
    as_records,
)
from assay.evals.bfcl import prompt as bfcl_prompt
from assay.evals.bfcl.score import score_single
from assay.stats import proportion_summary

DATA = data_path("tools_tasks.jsonl")
MODES = ("native", "prompted")
CATEGORIES = ("simple", "multiple", "parallel", "irrelevance")
REL_TOL = 1e-3

PROMPTED_SYSTEM = (
    "You can call these functions (JSON Schema of their arguments):\n{functions}\n\n"
    "To call functions, reply with only a JSON list of calls, for example "
    '[{{"name": "function_name", "arguments": {{"arg": "value"}}}}]; several calls go in the one list. '
    "If none of the functions fits the request, answer in plain text without any JSON."
)


# ---- matching --------------------------------------------------------------------------------------------------------
def _norm(s: str) -> str:
    return re.sub(r"[\s,./\-_*^'\"!?;:()]", "", s).casefold()


def _type_ok(value: Any, schema: dict) -> str | None:
    """None when ``value`` fits ``schema``'s type and enum (recursively for arrays and objects), else why not."""
    t = schema.get("type")
    kinds = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict}
    if isinstance(t, str) and t in kinds:
        if isinstance(value, bool) and t != "boolean":
            return f"{value!r} is a boolean, not {t}"
        if not isinstance(value, kinds[t]):
            return f"{value!r} is {type(value).__name__}, not {t}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{value!r} is not one of {schema['enum']}"
    if t == "array" and isinstance(schema.get("items"), dict):
        for v in value:
            why = _type_ok(v, schema["items"])
            if why:
                return f"item {why}"
    if t == "object" and isinstance(value, dict):
        props = schema.get("properties") or {}
        for k, v in value.items():
            if k in props:
                why = _type_ok(v, props[k])
                if why:
                    return f"{k}: {why}"
    return None


def _str_equal(got: str, want: str) -> bool:
    return _norm(got) == _norm(want)


def _acceptable_dict(got: Any, want: dict, eq) -> bool:
    # a nested object: each expected key maps to its acceptable values (BFCL), "" meaning it may be left out
    if not isinstance(got, dict) or set(got) - set(want):
        return False
    return all((k in got and any(eq(got[k], a) for a in _acceptable(w) if a != "")) or
               (k not in got and "" in _acceptable(w)) for k, w in want.items())


def values_equal(got: Any, want: Any) -> bool:
    """``rules=assay`` equality (``assay.evals.jsonmatch``): numbers within a relative 1e-3, strings case-, space- and
    punctuation-insensitive, arrays of scalars as multisets, nested objects as "key → acceptable values"."""
    return jsonmatch.values_equal(got, want, rel_tol=REL_TOL, str_equal=_str_equal, dict_equal=_acceptable_dict)


def _acceptable(w: Any) -> list:
    return w if isinstance(w, list) else [w]


def _names_equal(got: str, want: str) -> bool:
    return got == want or got.replace(".", "_") == want.replace(".", "_")


def check_call(name: str, args: dict, expected: dict, functions: list[dict]) -> str | None:
    """None when one call matches one expected call, else the reason it does not."""
    if not _names_equal(name, expected["name"]):
        return f"called {name!r}, expected {expected['name']!r}"
    fn = next((f for f in functions if _names_equal(f["name"], name)), None)
    params = (fn or {}).get("parameters") or {}
    props = params.get("properties") or {}
    spec = expected.get("arguments") or {}
    unknown = sorted(set(args) - set(props) - set(spec))
    if unknown:
        return f"{name}: unknown argument(s) {', '.join(unknown)}"
    for req in params.get("required") or []:
        if req not in args:
            return f"{name}: required argument {req!r} missing"
    for k, v in args.items():
        why = _type_ok(v, props.get(k) or {})
        if why:
            return f"{name}.{k}: {why}"
    for k, acceptable in spec.items():
        acceptable = _acceptable(acceptable)
        if k not in args:
            if "" not in acceptable:
                return f"{name}: argument {k!r} missing"
            continue
        if not any(values_equal(args[k], a) for a in acceptable if a != ""):
            shown = [a for a in acceptable if a != ""]
            return f"{name}.{k}={json.dumps(args[k], ensure_ascii=False)[:80]}, expected " + (
                " or ".join(json.dumps(a, ensure_ascii=False)[:60] for a in shown[:3]) or "it left out")
    extra = sorted(set(args) - set(spec))
    if extra:
        return f"{name}: argument(s) {', '.join(extra)} not asked for"
    return None


def match_calls(calls: list[ToolCall], expected: list[dict], functions: list[dict]) -> Score:
    """AST-style match of the calls made against the expected ones (order-free); see the module docstring."""
    shown = "; ".join(f"{c.name}({c.arguments[:120]})" for c in calls) or "no call"
    extra = {"n_calls": len(calls), "names": [c.name for c in calls], "expected_calls": len(expected)}
    bad = [c for c in calls if not c.ok]
    if bad:
        return Score(0.0, extracted=shown[:300], reason=f"unparsed call to {bad[0].name}: {bad[0].error}",
                     parsed=False, extra=extra)
    if not expected:
        ok = not calls
        return Score(1.0 if ok else 0.0, extracted=shown[:300],
                     reason="no call, as none fits" if ok else "called a function although none fits", extra=extra)
    if len(calls) != len(expected):
        return Score(0.0, extracted=shown[:300], reason=f"{len(calls)} call(s), expected {len(expected)}",
                     extra=extra)
    first_reason = None
    for perm in itertools.permutations(range(len(calls))):  # order-free: any assignment that matches every call
        reasons = [check_call(calls[i].name, calls[i].args or {}, expected[j], functions)
                   for j, i in enumerate(perm)]
        if not any(reasons):
            return Score(1.0, extracted=shown[:300], reason="all calls match", extra=extra)
        first_reason = first_reason or next(r for r in reasons if r)
    return Score(0.0, extracted=shown[:300], reason=first_reason or "no match", extra=extra)


# ---- prompted mode: the call is JSON in the text ---------------------------------------------------------------------
def parse_prompted(text: str | None) -> tuple[list[ToolCall], str | None]:
    """(calls, None) from a JSON list of {"name", "arguments"} (or one such object; a ```json fence is fine) in the
    reply; ([], None) for plain text; ([], why) when the reply tries a call that is not valid JSON."""
    body, _, _ = split_think(text or "")
    dec = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", body):
        try:
            value, _ = dec.raw_decode(body, m.start())
        except ValueError:
            continue
        items = value if isinstance(value, list) else [value]
        if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
            items = value["tool_calls"]
        if items and all(isinstance(i, dict) and "name" in i for i in items):
            calls = []
            for i in items:
                args = i.get("arguments", i.get("parameters", {}))
                args = args if isinstance(args, (str, dict)) else json.dumps(args)
                calls.append(ToolCall.parse(str(i["name"]), args))
            return calls, None
        if value == []:
            return [], None
    if re.search(r"\{\s*\"name\"\s*:", body):
        return [], "a call was attempted but is not valid JSON"
    return [], None


# ---- data ------------------------------------------------------------------------------------------------------------
_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "int": "integer", "str": "string",
               "bool": "boolean", "list": "array"}


def bfcl_schema(s: Any) -> Any:
    """BFCL's Python-flavoured parameter types as JSON Schema (dict → object, float → number, tuple → array, any →
    no type)."""
    if isinstance(s, dict):
        out = {k: bfcl_schema(v) for k, v in s.items()}
        t = s.get("type")
        if t == "any":
            out.pop("type")
        elif isinstance(t, str):
            out["type"] = _BFCL_TYPES.get(t, t)
        return out
    if isinstance(s, list):
        return [bfcl_schema(x) for x in s]
    return s


def _read_json_lines(p: Path) -> list[dict]:
    text = p.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as e:
        raise DataError(f"{p}: not JSON lines ({e})") from None


def _bfcl_category(task_id: str, path: Path) -> str:
    key = f"{task_id} {path.stem}".lower()
    if "irrelevance" in key or "relevance" in key:
        return "irrelevance"
    if "parallel" in key:
        return "parallel"
    if "multiple" in key:
        return "multiple"
    return "simple"


def load_bfcl(path: str | Path, answers: str | Path | None = None) -> list[dict]:
    """A BFCL question file (and its possible answers) as tools tasks."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"BFCL file not found: {p} (pass --data PATH to a BFCL question file, e.g. "
                        "BFCL_v3_simple.json)")
    rows = _read_json_lines(p)
    ans_path = Path(answers).expanduser() if answers else p.parent / "possible_answer" / p.name
    truth: dict[str, list] = {}
    if ans_path.is_file():
        truth = {str(r["id"]): r.get("ground_truth") or [] for r in _read_json_lines(ans_path)}
    tasks = []
    for n, r in enumerate(rows, 1):
        try:
            tid, question, functions = str(r["id"]), r["question"], r["function"]
        except (KeyError, TypeError):
            raise DataError(f"{p}: row {n} is not a BFCL question (needs id, question, function)") from None
        while isinstance(question, list) and question and isinstance(question[0], list):
            question = question[0]  # [[{"role": "user", "content": ...}]]: the first (only) turn
        text = question[-1]["content"] if isinstance(question, list) and question else str(question)
        cat = _bfcl_category(tid, p)
        if cat != "irrelevance" and tid not in truth:
            raise DataError(f"{p}: no possible answer for {tid!r}: put the BFCL possible_answer file at {ans_path} "
                            "or pass --suite-opt answers=PATH")
        expected = [{"name": name, "arguments": args} for gt in truth.get(tid, []) for name, args in gt.items()]
        fns = [{**f, "parameters": bfcl_schema(f.get("parameters") or {})} for f in
               (functions if isinstance(functions, list) else [functions])]
        tasks.append({"id": tid, "category": cat, "question": text, "functions": fns, "expected": expected,
                      "docs": functions if isinstance(functions, list) else [functions],
                      "truth": truth.get(tid, []), "bfcl_category": _bfcl_id_category(tid, cat)})
    return tasks


def _bfcl_id_category(task_id: str, fallback: str) -> str:
    """BFCL's category from an item id (``simple_python_12`` → simple_python, ``live_multiple_3-1-0`` →
    live_multiple)."""
    head = task_id.rsplit("_", 1)[0] if "_" in task_id else ""
    return head or fallback


# ---- rules=bfcl on assay's own tasks: their JSON Schema read back into BFCL's Python type names -----------------------
_TO_BFCL = {"number": "float", "object": "dict", "integer": "integer", "string": "string", "boolean": "boolean",
            "array": "array"}


def _bfcl_prop(v: dict) -> dict:
    v = copy.deepcopy(v)
    t = v.get("type")
    v["type"] = _TO_BFCL.get(t, t) if isinstance(t, str) else "any"
    if isinstance(v.get("items"), dict):
        v["items"] = _bfcl_prop(v["items"])
    if isinstance(v.get("properties"), dict):
        v["properties"] = {k: _bfcl_prop(x) for k, x in v["properties"].items()}
    return v


def bfcl_doc(f: dict) -> dict:
    """An assay task's function (JSON Schema) as a BFCL function doc (``dict``, ``float``, ``required`` always set)."""
    params = f.get("parameters") or {}
    return {"name": f["name"], "description": f.get("description", ""),
            "parameters": {"type": "dict", "properties": {k: _bfcl_prop(v) for k, v in
                                                           (params.get("properties") or {}).items()},
                           "required": list(params.get("required") or [])}}


def with_bfcl_view(task: dict) -> dict:
    """A task with BFCL's view added when it lacks one: docs, ground truth ``[{name: {param: [acceptable]}}]`` and
    category."""
    if "docs" in task:
        return task
    return {**task, "docs": [bfcl_doc(f) for f in task["functions"]],
            "truth": [{e["name"]: e.get("arguments") or {}} for e in task["expected"]],
            "bfcl_category": task["category"]}


def _tool(f: dict) -> dict:
    # OpenAI function names allow [a-zA-Z0-9_-]: BFCL's dotted names go out with "_" (matching accepts either)
    return {"type": "function", "function": {"name": f["name"].replace(".", "_"),
                                             "description": f.get("description", ""),
                                             "parameters": f.get("parameters") or {"type": "object", "properties": {}}}}


RULES = ("bfcl", "assay")


class ToolsSuite(Suite):
    name = "tools"
    version = "2"  # 2: BFCL-exact scoring, BFCL's prompt and call syntax by default (rules=bfcl)
    binary = True
    metric = "accuracy"
    prompt_template = bfcl_prompt.SYSTEM_PROMPT

    class Options(SuiteOptions):
        modes: str = ",".join(MODES)
        data: str | None = None
        answers: str | None = None
        rules: str = "bfcl"

    def __init__(self, **options):
        super().__init__(**options)
        modes = [m.strip() for m in self.options.modes.split(",") if m.strip()]
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            raise AssayError(f"{self.name}: unknown mode {', '.join(bad) or '(none)'}: choose from {', '.join(MODES)}")
        if self.options.rules not in RULES:
            raise AssayError(f"{self.name}: unknown rules {self.options.rules!r}: choose from {', '.join(RULES)}")
        self.modes = modes
        self.rules = self.options.rules
        self.prompt_template = bfcl_prompt.SYSTEM_PROMPT if self.rules == "bfcl" else PROMPTED_SYSTEM
        self.requires = ("tools",) if "native" in modes else ()
        self.tasks, self._digest = self.load_tasks()

    def load_tasks(self) -> tuple[list[dict], str]:
        if self.options.data is None:
            tasks, digest = read_jsonl(DATA), file_digest(DATA)
        else:
            tasks, digest = load_bfcl(self.options.data, self.options.answers), file_digest(self.options.data)
        if self.rules == "bfcl":
            tasks = [with_bfcl_view(t) for t in tasks]
        return tasks, digest

    def data_hash(self) -> str:
        return f"{self._digest}:{','.join(self.modes)}:{self.rules}"

    async def prepare(self, client) -> None:
        if "native" in self.modes and all(ep.caps.tools == "none" for ep in client.endpoints):
            ep = client.endpoints[0]
            raise AssayError(
                f"{self.name}: {ep.base_url} ({ep.engine}) was started without tool calling, so native mode cannot "
                f"run: let assay start the engine (`assay eval --suite {self.name}` does it tool-ready), start it "
                "with `assay serve --tools`, or measure only the prompted mode with --suite-opt modes=prompted")

    def samples(self, seed: int, limit: int | None):
        # limit counts tasks, interleaved over the categories; each task runs in every mode
        by_cat: dict[str, list] = {}
        for t in self.tasks:
            by_cat.setdefault(t["category"], []).append(t)
        order = [t for group in itertools.zip_longest(*by_cat.values()) for t in group if t is not None]
        for t in order[:limit]:
            for mode in self.modes:
                yield self.make_sample(t, mode)

    def make_sample(self, t: dict, mode: str) -> Sample:
        inp = {"question": t["question"], "functions": t["functions"], "mode": mode, "task_id": t["id"]}
        if self.rules == "bfcl":
            inp.update(docs=t["docs"], bfcl_category=t["bfcl_category"])
            return Sample(id=f"{t['id']}/{mode}", category=f"{mode}/{t['category']}", target=t["truth"], input=inp)
        return Sample(id=f"{t['id']}/{mode}", category=f"{mode}/{t['category']}", target=t["expected"], input=inp)

    def messages(self, sample: Sample) -> list[dict]:
        q = sample.input["question"]
        user = list(q) if isinstance(q, list) else [{"role": "user", "content": q}]
        if sample.input["mode"] == "native":
            return user
        if self.rules == "bfcl":
            return bfcl_prompt.prompted_messages(user, sample.input["docs"])
        fns = json.dumps([_tool(f)["function"] for f in sample.input["functions"]], ensure_ascii=False)
        return [{"role": "system", "content": self.prompt_template.format(functions=fns)}, *user]

    def tools_param(self, sample: Sample) -> list[dict]:
        if self.rules == "bfcl":
            return bfcl_prompt.openai_tools(sample.input["docs"])
        return [_tool(f) for f in sample.input["functions"]]

    async def converse(self, sample: Sample, chat) -> None:
        if sample.input["mode"] == "native":
            await chat.ask({"tools": self.tools_param(sample)})
        else:
            await chat.ask()

    def score(self, completion: str, sample: Sample) -> Score:
        """A reply text alone: prompted-mode scoring (native calls live in the turns)."""
        if self.rules == "bfcl":
            return score_single(Turn(completion=completion), "prompted", sample.input["docs"], sample.target or [],
                                sample.input["bfcl_category"])
        calls, why = parse_prompted(completion)
        if why:
            return Score(0.0, extracted=(completion or "")[:200], reason=why, parsed=False)
        return match_calls(calls, sample.target or [], sample.input["functions"])

    def score_turns(self, turns: list[Turn], sample: Sample) -> Score:
        last = turns[-1] if turns else Turn()
        if self.rules == "bfcl":
            return score_single(last, sample.input["mode"], sample.input["docs"], sample.target or [],
                                sample.input["bfcl_category"])
        if sample.input["mode"] == "native":
            return match_calls(list(last.tool_calls), sample.target or [], sample.input["functions"])
        return self.score(last.completion or "", sample)

    def aggregate(self, records: list[Record]) -> list[Metric]:
        """Per mode: accuracy overall and per category, and the unparsed / no-call rates (errors left out; the
        scorecard counts them)."""
        records = as_records(records)
        out: list[Metric] = []
        for mode in self.modes:
            rows = [r for r in records if r.category.startswith(f"{mode}/") and r.value is not None]
            n = len(rows)
            out.append(Metric.of("accuracy", proportion_summary(int(sum(r.value for r in rows)), n), category=mode,
                                 kind="proportion", key=f"{mode}/accuracy", detail=False))
            for cat in CATEGORIES:
                sub = [r for r in rows if r.category == f"{mode}/{cat}"]
                if sub:
                    out.append(Metric.of("accuracy", proportion_summary(int(sum(r.value for r in sub)), len(sub)),
                                         category=f"{mode}/{cat}", kind="proportion", key=f"{mode}/{cat}/accuracy"))
            out += call_rate_metrics(rows, mode)
        return out


def call_rate_metrics(rows: list[Record], mode: str) -> list[Metric]:
    """Per mode: the share of unparsed replies, and of samples that needed a call where the model made none."""
    unparsed = sum(r.status == "unparsed" for r in rows)
    calls = [r for r in rows if r.target]
    no_call = sum(1 for r in calls if (r.score.extra or {}).get("n_calls") == 0)
    return [Metric.of("unparsed_rate", proportion_summary(unparsed, len(rows)), category=mode, kind="proportion",
                      key=f"{mode}/unparsed_rate", detail=False),
            Metric.of("no_call_rate", proportion_summary(no_call, len(calls)), category=mode, kind="proportion",
                      key=f"{mode}/no_call_rate")]
