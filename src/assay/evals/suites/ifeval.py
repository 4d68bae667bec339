"""ifeval — verifiable instruction following (IFEval-style), strict and loose, prompt- and instruction-level.

Data: by default, items composed here from assay's own writing tasks (``evals/data/ifeval_topics.json``, written for
assay) × 1–3 compatible instructions, seeded and deterministic. ``data=PATH`` loads the official IFEval JSONL
(google/IFEval, ``ifeval_input_data.jsonl``, CC BY 4.0; fields key, prompt, instruction_id_list, kwargs) and checks it
with the same checkers (``assay.evals.ifeval_checks``).

Score: value = prompt-level strict (1 when every instruction is followed); ``extra`` holds the per-instruction strict
and loose results; ``aggregate`` gives prompt/instruction × strict/loose accuracy with Wilson intervals.
Category: the group of the item's first instruction ("keywords", "length_constraints", ...).

Rules: ``rules="reference"`` (default) gives the reference implementation's verdicts, quirks included, so numbers
compare with published ones; ``rules="assay"`` keeps assay's stricter checkers (docs/suites-ifeval.md lists each
difference).

Example:
    assay eval --suite ifeval --limit 40
    assay eval --suite ifeval --data ../shared/benchmarks/ifeval_input_data.jsonl
    assay eval --suite ifeval --suite-opt rules=assay
"""

from __future__ import annotations

import functools
import json
import random
from fnmatch import fnmatch
from pathlib import Path
from typing import Literal

from assay.common import seeded_subset
from assay.errors import DataError
from assay.evals import ifeval_checks as ic
from assay.common import data_path, file_digest, iter_jsonl
from assay.evals.base import Metric, as_records, Record, Sample, Score, Suite, SuiteOptions, stable_hash
from assay.stats import proportion_summary

# Pairs that cannot (or should not) be asked together in one composed prompt. Patterns are fnmatch on ids.
_CONFLICTS: list[tuple[str, str]] = [
    ("change_case:*", "change_case:*"),
    ("length_constraints:*", "length_constraints:*"),
    ("combination:*", "combination:*"),
    ("detectable_format:constrained_response", "*"),
    *[("detectable_format:json_format", x) for x in (
        "detectable_format:*", "length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
        "detectable_content:postscript", "startend:*", "combination:*", "punctuation:no_comma", "change_case:*",
        "language:*")],
    *[("language:response_language", x) for x in ("change_case:*", "keywords:*", "startend:*", "combination:*")],
    # Repeating the prompt repeats its other instructions too: a forbidden word, commas, digits, words to count.
    *[("combination:repeat_prompt", x) for x in (
        "startend:quotation", "startend:start_checker", "change_case:*", "keywords:*", "punctuation:*",
        "length_constraints:*", "detectable_content:no_digits")],
    *[("combination:two_responses", x) for x in (
        "length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
        "detectable_format:multiple_sections", "detectable_format:number_bullet_lists", "detectable_format:numbered_list")],
    ("change_case:*", "detectable_format:multiple_sections"),
    ("length_constraints:number_paragraphs", "detectable_format:multiple_sections"),
    ("length_constraints:nth_paragraph_first_word", "detectable_format:multiple_sections"),
    ("startend:start_checker", "startend:quotation"),
    ("detectable_content:postscript", "startend:end_checker"),
    ("detectable_format:number_bullet_lists", "detectable_format:numbered_list"),
    ("detectable_content:no_digits", "detectable_format:multiple_sections"),
    ("detectable_content:no_digits", "detectable_format:numbered_list"),
]


@functools.lru_cache(maxsize=None)
def compatible(a: str, b: str) -> bool:
    """Whether instructions a and b may be asked together (never the same id twice)."""
    if a == b:
        return False
    return not any((fnmatch(a, p) and fnmatch(b, q)) or (fnmatch(b, p) and fnmatch(a, q)) for p, q in _CONFLICTS)


def _load_topics() -> list[dict]:
    text = data_path("ifeval_topics.json").read_text(encoding="utf-8")
    return json.loads(text)["topics"]


def compose_items(n: int = 270, gen_seed: int = 0) -> list[dict]:
    """n composed items in the official JSONL shape (plus "category"), deterministic in (n, gen_seed).

    The first instruction's group cycles over all groups so each category gets about n / 9 items; then 0–2 more
    instructions are drawn among those compatible with every instruction already chosen."""
    topics = _load_topics()
    ids = sorted(ic.REGISTRY)
    groups = sorted({ic.REGISTRY[i].group for i in ids})
    items: list[dict] = []
    seen: set[str] = set()
    i = 0
    while len(items) < n:
        rng = random.Random(f"ifeval:{gen_seed}:{i}")
        group = groups[len(items) % len(groups)]
        i += 1
        topic = rng.choice(topics)
        chosen = [rng.choice([x for x in ids if ic.REGISTRY[x].group == group])]
        for _ in range(rng.choice([0, 1, 2])):
            pool = [x for x in ids if all(compatible(x, c) for c in chosen)]
            if not pool:
                break
            chosen.append(rng.choice(pool))
        used: set[str] = set()
        kwargs = [ic.REGISTRY[x].sample(rng, topic, used) for x in chosen]
        # The repeat_prompt sentence goes last in the prompt (the text to repeat is everything before it), while the
        # instruction list keeps the drawn order so that the first instruction still names the category.
        order = sorted(range(len(chosen)), key=lambda j: chosen[j] == "combination:repeat_prompt")
        parts = [topic["task"]]
        for j in order:
            if chosen[j] == "combination:repeat_prompt":
                kwargs[j]["prompt_to_repeat"] = " ".join(parts)
            parts.append(ic.REGISTRY[chosen[j]].describe(**kwargs[j]))
        prompt = " ".join(parts)
        key = stable_hash({"prompt": prompt, "ids": chosen, "kwargs": kwargs})
        if key in seen:
            continue
        seen.add(key)
        items.append({"key": f"gen-{key[:12]}", "prompt": prompt, "instruction_id_list": chosen, "kwargs": kwargs,
                      "category": ic.REGISTRY[chosen[0]].group})
    return items


def load_jsonl(path: str | Path, *, skip_unsupported: bool = False, rules: str = ic.DEFAULT_RULES) -> list[dict]:
    """Read the official IFEval JSONL. Unknown instruction ids are an error naming them (or skipped, when asked)."""
    p = Path(path).expanduser()
    items, unsupported = [], {}
    for lineno, d in iter_jsonl(p, missing="IFEval data file not found: {path} (pass --data PATH to a file in the "
                                         "official ifeval_input_data.jsonl format)"):
        try:
            item = {"key": str(d["key"]), "prompt": d["prompt"], "instruction_id_list": list(d["instruction_id_list"]),
                    "kwargs": list(d.get("kwargs") or [{}] * len(d["instruction_id_list"]))}
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{p}:{lineno}: not an IFEval record ({exc}); expected key, prompt, "
                            "instruction_id_list, kwargs") from None
        if len(item["kwargs"]) != len(item["instruction_id_list"]) or not all(
                isinstance(k, dict) for k in item["kwargs"]):
            raise DataError(f"{p}:{lineno}: kwargs must be a list of objects, one per instruction id")
        bad = [x for x in item["instruction_id_list"] if x not in ic.REGISTRY]
        if bad:
            for x in bad:
                unsupported.setdefault(x, 0)
                unsupported[x] += 1
            continue
        try:
            item["kwargs"] = [ic.clean_kwargs(x, kw, rules)
                              for x, kw in zip(item["instruction_id_list"], item["kwargs"])]
        except ValueError as exc:
            raise DataError(f"{p}:{lineno}: {exc}") from None
        item["category"] = item["instruction_id_list"][0].split(":", 1)[0]
        items.append(item)
    if unsupported and not skip_unsupported:
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(unsupported.items()))
        raise DataError(f"{p}: unsupported instruction ids: {listed}; pass skip_unsupported=True to drop those items")
    return items


def _load_hub(rules: str = ic.DEFAULT_RULES) -> list[dict]:
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download("google/IFEval", "ifeval_input_data.jsonl", repo_type="dataset")
    except Exception as exc:  # no package, no network, offline mode: all mean "give me a file"
        raise DataError(f"cannot load IFEval from the Hugging Face hub ({type(exc).__name__}); download "
                        "ifeval_input_data.jsonl and pass --data PATH") from None
    return load_jsonl(path, rules=rules)


class IFEval(Suite):
    name = "ifeval"
    version = "1"
    binary = True
    metric = "prompt_strict"
    prompt_template = "{prompt}"  # the prompt is the whole user message; no system prompt

    class Options(SuiteOptions):
        data: str | Path | None = None  # None: n composed items (offline); PATH: official JSONL; "hub": google/IFEval
        n: int = 270
        gen_seed: int = 0
        skip_unsupported: bool = False
        # "reference" (the reference implementation's verdicts) or "assay" (assay's stricter checkers)
        rules: Literal["reference", "assay"] = ic.DEFAULT_RULES

    def __init__(self, **options):
        try:  # a wrong rules value built directly (not through the registry) still names the fix in one line
            ic.check_rules(options.get("rules", ic.DEFAULT_RULES))
        except ValueError as exc:
            raise DataError(str(exc)) from None
        super().__init__(**options)
        o = self.options
        rules = o.rules
        if o.data is None:
            self.items = compose_items(n=o.n, gen_seed=o.gen_seed)
            self.source, self._digest = "composed", stable_hash(self.items)
        elif str(o.data) == "hub":
            self.items = _load_hub(rules)
            self.source, self._digest = "google/IFEval", stable_hash(self.items)
        else:
            self.items = load_jsonl(o.data, skip_unsupported=o.skip_unsupported, rules=rules)
            self.source, self._digest = str(o.data), file_digest(o.data)
        self.rules = ic.check_rules(rules)
        # Version 1 scored with assay's rules; a run scored one way never resumes into the other.
        self.version = "2" if rules == "reference" else "1"

    def data_hash(self) -> str:
        return self._digest

    def samples(self, seed: int, limit: int | None):
        items = seeded_subset(self.items, seed, limit)
        for it in items:
            yield Sample(id=f"ifeval-{it['key']}",
                         input={"prompt": it["prompt"], "instruction_id_list": it["instruction_id_list"],
                                "kwargs": it["kwargs"]},
                         category=it["category"], meta={"source": self.source})

    def messages(self, sample: Sample) -> list[dict]:
        return [{"role": "user", "content": sample.input["prompt"]}]

    def score(self, completion: str, sample: Sample) -> Score:
        return score_response(completion or "", sample.input["instruction_id_list"], sample.input["kwargs"],
                              rules=self.rules)

    def aggregate(self, records: list[Record]) -> list[Metric]:
        return [Metric.of(k, v, kind="proportion") for k, v in aggregate(records).items()]


def score_response(response: str, instruction_ids: list[str], kwargs: list[dict],
                   rules: str = ic.DEFAULT_RULES) -> Score:
    strict = [ic.check(x, response, kw, rules) for x, kw in zip(instruction_ids, kwargs)]
    loose = [s or ic.check_loose(x, response, kw, rules) for s, x, kw in zip(strict, instruction_ids, kwargs)]
    failed = [x for x, ok in zip(instruction_ids, strict) if not ok]
    reason = "all followed" if not failed else "not followed: " + ", ".join(failed)
    if not response.strip():
        reason = "empty response: " + reason
    return Score(1.0 if all(strict) else 0.0, extracted=f"{sum(strict)}/{len(strict)} strict", reason=reason,
                 parsed=True, extra={"instruction_ids": list(instruction_ids), "strict": strict, "loose": loose,
                                     "prompt_loose": all(loose), "rules": rules})


def aggregate(records: list[Record]) -> dict:
    """Prompt- and instruction-level accuracy, strict and loose, from stored records (errors and records without a
    score are left out, as in the headline score)."""
    ps = pl = is_ = il = ni = n = 0
    for rec in as_records(records):
        if rec.value is None:
            continue
        extra = rec.score.extra
        strict, loose = extra.get("strict"), extra.get("loose")
        if strict is None or loose is None:
            continue
        n += 1
        ps += all(strict)
        pl += all(loose)
        is_ += sum(bool(x) for x in strict)
        il += sum(bool(x) for x in loose)
        ni += len(strict)
    return {"prompt_strict": proportion_summary(ps, n), "prompt_loose": proportion_summary(pl, n),
            "inst_strict": proportion_summary(is_, ni), "inst_loose": proportion_summary(il, ni)}


def instruction_breakdown(records: list[Record]) -> dict[str, dict]:
    """Instruction-level strict/loose accuracy per instruction id (for reports): {id: {"strict": .., "loose": ..}}."""
    counts: dict[str, list[int]] = {}
    for rec in as_records(records):
        if rec.value is None:
            continue
        extra = rec.score.extra
        for x, s, lo in zip(extra.get("instruction_ids", []), extra.get("strict", []), extra.get("loose", [])):
            c = counts.setdefault(x, [0, 0, 0])
            c[0] += bool(s)
            c[1] += bool(lo)
            c[2] += 1
    return {x: {"strict": proportion_summary(c[0], c[2]), "loose": proportion_summary(c[1], c[2])}
            for x, c in sorted(counts.items())}
