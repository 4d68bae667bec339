"""mtif — multi-turn instruction following: three user turns, each adding, changing or cancelling verifiable
constraints; every turn scored with the IFEval checkers, and the "all turns followed" rate.

Data: by default, conversations composed here from assay's own writing tasks (``evals/data/ifeval_topics.json``) ×
the IFEval instructions (``assay.evals.ifeval_checks``), seeded and deterministic: turn 1 asks the task with 1–2
instructions; turns 2 and 3 ask for a rewrite and add an instruction, change an earlier one's parameters ("now at
least 5 sentences instead") or cancel one ("you no longer need to ..."). The constraints in force at a turn are the
ones given so far less those cancelled or changed, and they are always compatible with each other. The model's own
earlier replies stay in the history. ``data=PATH`` loads the public Multi-IF format (facebook/Multi-IF, JSONL or
JSON; fields ``turn_K_prompt``, ``turn_K_instruction_id_list``, ``turn_K_kwargs``, in force at turn K — Multi-IF
repeats the earlier constraints in each turn's list).

Score: each turn like ifeval (strict and loose, prompt- and instruction-level); a turn after a failed one is still
scored. The sample's value is 1 when every turn's prompt-level strict check passed (the seed's "all turns followed").
``aggregate``: per turn prompt/instruction × strict/loose, and all-turns strict/loose, each with its Wilson interval.
Category: "composed" (or the Multi-IF language).

Example:
    assay eval --suite mtif --limit 20
    assay eval --suite mtif --data ../shared/benchmarks/multi_if.jsonl -o skip_unsupported=true
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from assay.common import seeded_subset
from assay.common import file_digest
from assay.errors import DataError
from assay.evals import ifeval_checks as ic
from assay.evals.base import Metric, Record, Sample, Score, Suite, SuiteOptions, Turn, as_records, stable_hash
from assay.stats import proportion_summary
from assay.evals.suites.ifeval import _load_topics, compatible, score_response

N_TURNS = 3
# Instructions that do not make sense across turns: "repeat the request above" (which request?), and a fixed
# yes/no/maybe answer (it conflicts with every writing task).
_EXCLUDED = {"combination:repeat_prompt", "detectable_format:constrained_response"}
_REWRITES = [
    "Rewrite your previous answer.",
    "Please write a new version of your answer.",
    "Revise your answer.",
    "Now write it again, a little differently.",
]


def _ids() -> list[str]:
    return sorted(x for x in ic.REGISTRY if x not in _EXCLUDED)


def _describe(x: str, kw: dict) -> str:
    return ic.REGISTRY[x].describe(**kw)


def compose_conversations(n: int = 120, gen_seed: int = 0) -> list[dict]:
    """n three-turn conversations, deterministic in (n, gen_seed). Each turn: its prompt, the constraints in force
    (``instruction_id_list`` + ``kwargs``) and what changed (``changes``)."""
    topics = _load_topics()
    ids = _ids()
    out: list[dict] = []
    seen: set[str] = set()
    i = 0
    while len(out) < n:
        rng = random.Random(f"mtif:{gen_seed}:{i}")
        i += 1
        topic = rng.choice(topics)
        used_words: set = set()
        active: dict[str, dict] = {}  # id -> kwargs, in the order given
        ever: set[str] = set()

        def pick() -> str | None:
            pool = [x for x in ids if x not in ever and all(compatible(x, a) for a in active)]
            return rng.choice(pool) if pool else None

        turns = []
        for t in range(N_TURNS):
            parts: list[str] = [topic["task"]] if t == 0 else [rng.choice(_REWRITES)]
            changes: list[str] = []
            if t > 0 and active and rng.random() < 0.35:  # cancel one constraint
                x = rng.choice(sorted(active))
                parts.append(f"You no longer need to follow this earlier instruction: \"{_describe(x, active[x])}\"")
                changes.append(f"cancel {x}")
                del active[x]
            elif t > 0 and rng.random() < 0.5:  # change one constraint's parameters
                with_args = [x for x in sorted(active) if active[x]]
                if with_args:
                    x = rng.choice(with_args)
                    for _ in range(8):
                        new = ic.REGISTRY[x].sample(rng, topic, set(used_words))
                        if new != active[x]:
                            break
                    if new != active[x]:
                        used_words.update(w for v in new.values() for w in (v if isinstance(v, list) else [v])
                                          if isinstance(w, str))
                        parts.append(f"Change of plan for the earlier instruction \"{_describe(x, active[x])}\": "
                                     f"instead, {_lower_first(_describe(x, new))}")
                        changes.append(f"change {x}")
                        active[x] = new
            for _ in range(rng.choice([1, 2]) if t == 0 else 1):  # add constraints
                x = pick()
                if x is None:
                    break
                kw = ic.REGISTRY[x].sample(rng, topic, used_words)
                active[x], _ = kw, ever.add(x)
                parts.append(_describe(x, kw))
                changes.append(f"add {x}")
            if t > 0 and changes:
                parts.append("Keep following all the other instructions I gave before.")
            turns.append({"prompt": " ".join(parts), "instruction_id_list": list(active),
                          "kwargs": [dict(v) for v in active.values()], "changes": changes})
        if not all(t["instruction_id_list"] for t in turns):
            continue  # every turn must check something
        key = stable_hash(turns)
        if key in seen:
            continue
        seen.add(key)
        out.append({"key": f"gen-{key[:12]}", "turns": turns, "category": "composed"})
    return out


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:] if s[:2] != s[:2].upper() else s


def _maybe_json(v):
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def load_multi_if(path: str | Path, *, skip_unsupported: bool = False) -> list[dict]:
    """Read Multi-IF (JSONL, or a JSON list). Unknown instruction ids are an error naming them, or the conversation is
    skipped when ``skip_unsupported``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"Multi-IF data file not found: {p} (pass --data PATH to a JSONL file with turn_1_prompt, "
                        "turn_1_instruction_id_list, turn_1_kwargs, ...)")
    text = p.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as e:
        raise DataError(f"{p}: not JSON / JSONL ({e})") from None
    items, unsupported = [], {}
    for n, row in enumerate(rows, 1):
        turns, bad = [], []
        k = 1
        while f"turn_{k}_prompt" in row and row.get(f"turn_{k}_prompt") not in (None, ""):
            prompt = _maybe_json(row[f"turn_{k}_prompt"])
            if isinstance(prompt, dict):
                prompt = prompt.get("content", "")
            ids = _maybe_json(row.get(f"turn_{k}_instruction_id_list") or [])
            kws = [_maybe_json(x) or {} for x in (_maybe_json(row.get(f"turn_{k}_kwargs")) or [{}] * len(ids))]
            if not isinstance(ids, list) or len(kws) != len(ids):
                raise DataError(f"{p}: row {n} turn {k}: instruction_id_list and kwargs must be lists of one length")
            bad += [x for x in ids if x not in ic.REGISTRY]
            if not bad:
                try:
                    kws = [ic.clean_kwargs(x, kw) for x, kw in zip(ids, kws)]
                except ValueError as e:
                    raise DataError(f"{p}: row {n} turn {k}: {e}") from None
            turns.append({"prompt": str(prompt), "instruction_id_list": list(ids), "kwargs": kws, "changes": []})
            k += 1
        if not turns:
            raise DataError(f"{p}: row {n} has no turn_1_prompt: not the Multi-IF format")
        if bad:
            for x in bad:
                unsupported[x] = unsupported.get(x, 0) + 1
            continue
        items.append({"key": str(row.get("key", n)), "turns": turns, "category": str(row.get("language") or "all")})
    if unsupported and not skip_unsupported:
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(unsupported.items()))
        raise DataError(f"{p}: unsupported instruction ids: {listed}; pass --suite-opt skip_unsupported=true to drop "
                        "those conversations")
    return items


def score_conversation(replies: list[str | None], turns: list[dict]) -> Score:
    """Every turn scored against the constraints in force then (a missing reply is an empty one)."""
    per = []
    for k, spec in enumerate(turns):
        reply = replies[k] if k < len(replies) else None
        s = score_response(reply or "", spec["instruction_id_list"], spec["kwargs"])
        per.append({"ids": list(spec["instruction_id_list"]), "strict": s.extra["strict"], "loose": s.extra["loose"],
                    "reason": s.reason})
    ok = [all(t["strict"]) for t in per]
    loose = [all(t["loose"]) for t in per]
    failed = [str(k + 1) for k, v in enumerate(ok) if not v]
    reason = "every turn followed" if not failed else f"turn(s) {', '.join(failed)} not followed: " + "; ".join(
        per[int(k) - 1]["reason"] for k in failed)
    return Score(1.0 if all(ok) else 0.0, extracted="".join("1" if v else "0" for v in ok), reason=reason[:500],
                 extra={"turns": per, "all_loose": all(loose)})


class MultiTurnIF(Suite):
    name = "mtif"
    version = "1"
    binary = True
    metric = "all_turns_strict"
    prompt_template = "turn 1: task + constraints; turns 2-3: rewrite + add / change / cancel constraints"

    class Options(SuiteOptions):
        data: str | None = None
        n: int = 120
        gen_seed: int = 0
        skip_unsupported: bool = False

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        if o.data is None:
            self.items, self.source = compose_conversations(o.n, o.gen_seed), "composed"
            self._digest = stable_hash(self.items)
        else:
            self.items = load_multi_if(o.data, skip_unsupported=o.skip_unsupported)
            self.source, self._digest = str(o.data), file_digest(o.data)

    def data_hash(self) -> str:
        return self._digest

    def samples(self, seed: int, limit: int | None):
        items = seeded_subset(self.items, seed, limit)
        for it in items:
            yield Sample(id=f"mtif-{it['key']}", input={"turns": it["turns"]}, category=it["category"],
                         meta={"source": self.source})

    def messages(self, sample: Sample) -> list[dict]:
        return []  # the conversation starts empty: converse() adds each user turn

    async def converse(self, sample: Sample, chat) -> None:
        for k, turn in enumerate(sample.input["turns"], 1):
            chat.messages.append({"role": "user", "content": turn["prompt"]})
            await chat.ask(label=f"turn {k}")

    def score(self, completion: str, sample: Sample) -> Score:
        # one reply alone (a caller without turns): it is scored as the first turn, the others as unanswered
        return score_conversation([completion], sample.input["turns"])

    def score_turns(self, turns: list[Turn], sample: Sample) -> Score:
        return score_conversation([t.completion for t in turns], sample.input["turns"])

    def aggregate(self, records: list[Record]) -> list[Metric]:
        return [Metric.of(k, v, kind="proportion", detail=False) for k, v in aggregate(records).items()]


def aggregate(records) -> dict:
    """Per turn: prompt/instruction × strict/loose; all turns strict/loose (conversations scored, errors left out)."""
    n = 0
    conv = [0, 0]
    per: dict[int, list[int]] = {}  # turn -> [prompt strict, prompt loose, inst strict, inst loose, inst n]
    for rec in as_records(records):
        if rec.value is None or not rec.score.extra.get("turns"):
            continue
        n += 1
        turns = rec.score.extra["turns"]
        conv[0] += all(all(t["strict"]) for t in turns)
        conv[1] += all(all(t["loose"]) for t in turns)
        for k, t in enumerate(turns, 1):
            c = per.setdefault(k, [0, 0, 0, 0, 0, 0])
            c[0] += all(t["strict"])
            c[1] += all(t["loose"])
            c[2] += sum(bool(x) for x in t["strict"])
            c[3] += sum(bool(x) for x in t["loose"])
            c[4] += len(t["strict"])
            c[5] += 1
    out = {"all_turns_strict": proportion_summary(conv[0], n), "all_turns_loose": proportion_summary(conv[1], n)}
    for k, c in sorted(per.items()):
        out[f"turn{k}_prompt_strict"] = proportion_summary(c[0], c[5])
        out[f"turn{k}_prompt_loose"] = proportion_summary(c[1], c[5])
        out[f"turn{k}_inst_strict"] = proportion_summary(c[2], c[4])
        out[f"turn{k}_inst_loose"] = proportion_summary(c[3], c[4])
    return out
