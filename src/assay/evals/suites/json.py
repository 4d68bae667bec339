"""json — structured output: extract fields from a short text into JSON that follows a given JSON Schema.

Data: ``evals/data/json_tasks.jsonl``, 57 tasks written for assay (MIT, see evals/data/SOURCES.md). Each task is a
source text, a JSON Schema (objects, nested objects, arrays, enums, integers vs numbers vs strings, booleans, null) and
the expected values of its required fields, all drawn from the text.

Every task runs twice:
- ``<id>/freeform``    — the prompt asks for JSON only; code fences are tolerated and counted (``extra["fenced"]``).
- ``<id>/constrained`` — the request also carries ``response_format`` = json_schema (strict), which llama.cpp's server
  and vLLM enforce with grammar-constrained decoding.

Score 1 when the answer parses, validates against the schema (``jsonschema``) and every expected value matches
(strings compared case- and whitespace-insensitively, numbers with a small tolerance, arrays of scalars as multisets).
``extra`` holds parse_ok / schema_ok / fields_ok; an answer with no JSON in it is ``parsed=False`` (unparsed column).
``aggregate`` reports parse rate, schema-valid rate and field accuracy per mode.

Example:
    assay eval --suite json --limit 20
    assay eval --suite json -o modes=constrained
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from assay.common import data_path, fenced_blocks, file_digest, read_jsonl, split_think
from assay.errors import AssayError
from assay.evals.base import (
    Metric,
    Record,
    Sample,
    Score,
    Suite,
    SuiteOptions,
    as_records,
)
from assay.evals.jsonmatch import values_equal
from assay.stats import proportion_summary

DATA = data_path("json_tasks.jsonl")
MODES = ("freeform", "constrained")

PROMPT_TEMPLATE = (
    "Extract the information from the text below as a JSON object that follows this JSON Schema. "
    "Take every value from the text. Answer with the JSON object only.\n\n"
    "JSON Schema:\n{schema}\n\nText:\n{text}"
)



def parse_json_answer(text: str | None) -> tuple[Any, dict]:
    """(value or None, info). Accepts bare JSON, JSON in ```json fences, and JSON followed or preceded by prose.

    info: {"fenced": bool, "prose": bool, "error": str | None}. Python-style single quotes are *not* JSON: no value.
    """
    info = {"fenced": False, "prose": False, "error": None}
    if not text or not text.strip():
        info["error"] = "empty completion"
        return None, info
    body, _, unclosed = split_think(text)
    if unclosed:
        info["error"] = "unclosed <think>: no answer after the reasoning"
        return None, info
    body = body.strip()
    fences = fenced_blocks(body)
    if fences:
        m = fences[0]
        info["fenced"] = True
        info["prose"] = bool(body[:m.start].strip() or body[m.end:].strip())
        body = m.body.strip()
    try:
        return json.loads(body), info
    except json.JSONDecodeError:
        pass
    # prose around the object: decode from the first '{' (or '[') and ignore what follows
    dec = json.JSONDecoder()
    for i, ch in enumerate(body):
        if ch in "{[":
            try:
                value, _end = dec.raw_decode(body, i)
            except json.JSONDecodeError as exc:
                info["error"] = f"invalid JSON: {exc.msg} at char {exc.pos}"
                return None, info
            info["prose"] = True
            return value, info
    info["error"] = "no JSON object in the answer"
    return None, info


def _norm_str(s: str) -> str:
    s = re.sub(r"\s+", " ", s.strip().casefold()).strip(" .,;:'\"")
    return s[4:] if s.startswith("the ") else s


def _str_equal(got: str, want: str) -> bool:
    a, b = _norm_str(want), _norm_str(got)
    return a == b or a.replace(" ", "") == b.replace(" ", "")


def values_match(expected: Any, got: Any) -> bool:
    """Expected value vs answer: dicts by expected keys, lists in order (scalars as multisets), loose strings/numbers
    (``assay.evals.jsonmatch`` with a relative tolerance of 1e-6)."""
    return values_equal(got, expected, rel_tol=1e-6, str_equal=_str_equal)


def score_json(completion: str | None, schema: dict, expected: dict) -> Score:
    import jsonschema

    value, info = parse_json_answer(completion)
    extra = {"parse_ok": False, "schema_ok": False, "fields_ok": False, "fenced": info["fenced"],
             "prose": info["prose"]}
    if info["error"] is not None:
        return Score(0.0, extracted=None, reason=info["error"], parsed=False, extra=extra)
    extra["parse_ok"] = True
    shown = json.dumps(value, ensure_ascii=False)[:300]
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    extra["schema_ok"] = not errors
    extra["fields_ok"] = values_match(expected, value)
    ok = extra["schema_ok"] and extra["fields_ok"]
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
        reason = f"schema: {where}: {errors[0].message[:160]}"
    elif not extra["fields_ok"]:
        wrong = [k for k, v in expected.items() if not (isinstance(value, dict) and values_match(v, value.get(k)))]
        reason = f"wrong values: {', '.join(wrong)}"
    else:
        reason = "valid and correct"
    return Score(1.0 if ok else 0.0, extracted=shown, reason=reason, extra=extra)


class JsonSuite(Suite):
    name = "json"
    version = "1"
    prompt_template = PROMPT_TEMPLATE
    metric = "accuracy"
    binary = True

    class Options(SuiteOptions):
        modes: str | list[str] = MODES  # "freeform,constrained" or a list

    def __init__(self, **options):
        super().__init__(**options)
        modes = self.options.modes
        modes = [m.strip() for m in modes.split(",")] if isinstance(modes, str) else list(modes)
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            raise AssayError(f"json: unknown mode {', '.join(bad) or '(none)'}: choose from {', '.join(MODES)}")
        self.modes = modes

    def tasks(self) -> list[dict]:
        return read_jsonl(DATA)

    def samples(self, seed: int, limit: int | None) -> Iterable[Sample]:
        # limit counts samples; both modes of a task come together so a limited run still compares the two modes
        out = []
        for task in self.tasks():
            for mode in self.modes:
                out.append(Sample(id=f"{task['id']}/{mode}", category=mode, target=task["expected"],
                                  input={"text": task["text"], "schema": task["schema"], "mode": mode,
                                         "task_id": task["id"]},
                                  meta={"topic": task["topic"]}))
        return out[:limit]

    def messages(self, sample: Sample) -> list[dict]:
        schema = json.dumps(sample.input["schema"], ensure_ascii=False)
        return [{"role": "user", "content": self.prompt_template.format(schema=schema, text=sample.input["text"])}]

    def request_params(self, sample: Sample) -> dict:
        if sample.input["mode"] != "constrained":
            return {}
        name = sample.input["task_id"].replace("-", "_")
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": name, "schema": sample.input["schema"], "strict": True}}}

    def score(self, completion: str, sample: Sample) -> Score:
        return score_json(completion, sample.input["schema"], sample.target)

    def data_hash(self) -> str:
        return f"{file_digest(DATA)}:{','.join(self.modes)}"

    def aggregate(self, records: list[Record]) -> list[Metric]:
        """Per mode: parse rate, schema-valid rate, field accuracy, fenced rate over answered samples (errors and
        truncations are left out here; the scorecard counts them)."""
        records = as_records(records)
        out: list[Metric] = []
        for mode in self.modes:
            rows = [r for r in records if r.category == mode and r.status in ("ok", "unparsed") and r.score]
            n = len(rows)
            extras = [r.score.extra or {} for r in rows]
            for key, metric in (("parse_ok", "parse_rate"), ("schema_ok", "schema_valid_rate"),
                                ("fields_ok", "field_accuracy"), ("fenced", "fenced_rate")):
                k = sum(1 for e in extras if e.get(key))
                out.append(Metric.of(metric, proportion_summary(k, n), category=mode, kind="proportion",
                                     key=f"{mode}/{metric}", detail=False))
        return out
