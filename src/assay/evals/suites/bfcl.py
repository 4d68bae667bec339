"""bfcl — the Berkeley Function Calling Leaderboard v4, scored with BFCL's own rules (``assay.evals.bfcl``).

Data: the v4 files (``BFCL_v4_<category>.json``, ``possible_answer/``, ``multi_turn_func_doc/``) from ``data=DIR``,
``$ASSAY_BFCL_DATA``, an installed ``bfcl-eval`` package's ``data/`` or ``../shared/benchmarks/bfcl_v4``.
Categories (``categories=a,b``; default all of them): simple_python, multiple, parallel, parallel_multiple,
irrelevance, live_simple, live_multiple, live_parallel, live_parallel_multiple, live_irrelevance, multi_turn_base
(and live_relevance when the folder has it). ``--limit N`` takes N items interleaved over the categories; each runs
in every mode (``modes=native,prompted``): native sends BFCL's OpenAI ``tools``, prompted BFCL's system prompt and
reads the Python call list BFCL's way.

Multi-turn (``multi_turn_base``): the conversation is held through ``converse``; each reply's calls are executed on
BFCL's own API classes (from the installed ``bfcl-eval``, ``bfcl_eval=DIR`` to point at one) and the results go back
(native: ``role: tool`` messages; prompted: one user message, as BFCL does); a turn ends at a reply with no call, after
20 steps the conversation ends. Scored from the stored turns by BFCL's multi-turn rules.

Metrics per mode: accuracy per category, and BFCL's summaries (non-live AST, live AST, irrelevance, multi-turn), each
with n and a 95 % interval. See docs/suites-tools.md.

Example:
    assay eval --suite bfcl --limit 20
    assay eval --suite bfcl --suite-opt categories=simple_python,multiple --suite-opt modes=prompted --limit 50
"""

from __future__ import annotations

import itertools

from assay.errors import AssayError
from assay.evals.base import Metric, Record, Sample, Score, ToolResult, Turn, as_records
from assay.evals.bfcl import data as bd
from assay.evals.bfcl import prompt as bp
from assay.evals.bfcl.decode import is_empty_execution
from assay.evals.bfcl.multiturn import MAX_STEPS, Env, check_multi_turn
from assay.evals.bfcl.score import model_turns, step_calls
from assay.evals.suites.tools import MODES, ToolsSuite, call_rate_metrics
from assay.stats import bootstrap_corpus_ci, proportion_summary


class BfclSuite(ToolsSuite):
    name = "bfcl"
    version = "1"
    prompt_template = bp.SYSTEM_PROMPT

    class Options(ToolsSuite.Options):
        categories: str = ",".join(bd.DEFAULT_CATEGORIES)
        bfcl_eval: str | None = None  # folder holding the bfcl_eval package (the multi-turn APIs)

    def load_tasks(self) -> tuple[list[dict], str]:
        if self.options.rules != "bfcl":
            raise AssayError("bfcl: scoring is BFCL's (rules=bfcl); use the tools suite for rules=assay")
        if self.options.answers:
            raise AssayError("bfcl: answers come from the folder's possible_answer/ (no answers option)")
        cats = [c.strip() for c in self.options.categories.split(",") if c.strip()]
        bad = [c for c in cats if c not in bd.CATEGORIES]
        if bad or not cats:
            raise AssayError(f"bfcl: unknown category {', '.join(bad) or '(none)'}: choose from "
                             f"{', '.join(bd.CATEGORIES)}")
        root = bd.find_data(self.options.data, self.options.bfcl_eval)
        tasks = []
        for c in cats:
            for r in bd.load_category(root, c):
                turns = r["question"]
                tasks.append({"id": r["id"], "category": c, "question": turns[0], "turns": turns,
                              "functions": r["function"], "docs": r["function"], "truth": r.get("ground_truth", []),
                              "bfcl_category": c, "involved_classes": r.get("involved_classes"),
                              "initial_config": r.get("initial_config")})
        self.categories = cats
        return tasks, bd.data_digest(root, cats)

    def make_sample(self, t: dict, mode: str) -> Sample:
        s = super().make_sample(t, mode)
        if t["involved_classes"] is not None:
            s.input.update(turns=t["turns"], involved_classes=t["involved_classes"],
                           initial_config=t["initial_config"], bfcl_id=t["id"])
        return s

    @staticmethod
    def _entry(sample: Sample) -> dict:
        return {"id": sample.input["bfcl_id"], "involved_classes": sample.input["involved_classes"],
                "initial_config": sample.input["initial_config"]}

    async def converse(self, sample: Sample, chat) -> None:
        if "turns" not in sample.input:
            return await super().converse(sample, chat)
        mode = sample.input["mode"]
        env = Env(self._entry(sample), bfcl_eval=self.options.bfcl_eval)
        params = {"tools": self.tools_param(sample)} if mode == "native" else None
        for t, msgs in enumerate(sample.input["turns"]):
            if t > 0:
                chat.messages.extend(dict(m) for m in msgs)
            for step in itertools.count(1):
                await chat.ask(params, label=f"turn{t}")
                turn = chat.turns[-1]
                calls = step_calls(turn, mode)
                if is_empty_execution(calls):
                    break
                results = env.run_all(calls)
                if mode == "native":
                    for tc, r in zip(turn.tool_calls, results):
                        chat.tool_result(ToolResult(call_id=tc.id, name=tc.name, content=r))
                else:
                    shown = repr([{"role": "tool", "name": c, "content": r} for c, r in zip(calls, results)])
                    chat.tool_result(ToolResult(name="bfcl", content=shown, detail={"calls": calls}),
                                     as_message={"role": "user", "content": shown})
                if step > MAX_STEPS:
                    return  # BFCL force-quits the conversation: the missing turns fail it

    def score(self, completion: str, sample: Sample) -> Score:
        if "turns" in sample.input:
            return self.score_turns([Turn(completion=completion, label="turn0")], sample)
        return super().score(completion, sample)

    def score_turns(self, turns: list[Turn], sample: Sample) -> Score:
        if "turns" not in sample.input:
            return super().score_turns(turns, sample)
        steps = model_turns(turns, sample.input["mode"])
        v = check_multi_turn(steps, sample.target or [], self._entry(sample), bfcl_eval=self.options.bfcl_eval)
        n_calls = sum(len(s) for turn in steps for s in turn)
        extra = {"n_calls": n_calls, "expected_calls": sum(len(g) for g in sample.target or []),
                 "turns": len(steps), "error_type": v.get("error_type", "")}
        if v["valid"]:
            return Score(1.0, extracted=f"{n_calls} calls over {len(steps)} turns", reason="state and results match",
                         extra=extra)
        return Score(0.0, extracted=f"{n_calls} calls over {len(steps)} turns",
                     reason=f"{v['error_type']}: {v.get('error_message', '')}"[:300], extra=extra)

    def aggregate(self, records: list[Record]) -> list[Metric]:
        """Per mode: accuracy per BFCL category (Wilson), BFCL's summaries — live AST pooled (Wilson), the unweighted
        means with an item bootstrap — and the unparsed / no-call rates."""
        records = as_records(records)
        out: list[Metric] = []
        for mode in self.modes:
            rows = [r for r in records if r.category.startswith(f"{mode}/") and r.value is not None]
            per: dict[str, list[float]] = {}
            for r in rows:
                per.setdefault(r.category.split("/", 1)[1], []).append(float(r.value))
            for cat in bd.CATEGORIES:
                if cat in per:
                    v = per[cat]
                    out.append(Metric.of("accuracy", proportion_summary(int(sum(v)), len(v)), category=f"{mode}/{cat}",
                                         kind="proportion", key=f"{mode}/{cat}/accuracy"))
            items = [(c, v) for c, vs in per.items() for v in vs]

            def stat(sub, name):
                counts: dict[str, list[int]] = {}
                for c, v in sub:
                    k = counts.setdefault(c, [0, 0])
                    k[0] += int(v)
                    k[1] += 1
                val = bd.summaries({c: (k[0], k[1]) for c, k in counts.items()}).get(name)
                return float("nan") if val is None else val

            full = bd.summaries({c: (int(sum(v)), len(v)) for c, v in per.items()})
            for name, value in full.items():
                group = {"non_live_ast": bd.NON_LIVE_AST, "live_ast": bd.LIVE_AST, "irrelevance": bd.IRRELEVANCE,
                         "multi_turn": bd.MULTI_TURN_ALL}[name]
                sub = [(c, v) for c, v in items if c in group]
                if name == "live_ast":
                    summary = proportion_summary(int(sum(v for _, v in sub)), len(sub))
                    kind = "proportion"
                else:
                    lo, hi = bootstrap_corpus_ci(sub, lambda s, n=name: stat(s, n))
                    summary = {"value": value, "low": lo, "high": hi, "n": len(sub), "interval": "bootstrap"}
                    kind = "bootstrap"
                out.append(Metric.of(f"bfcl_{name}", summary, category=mode, kind=kind, key=f"{mode}/bfcl_{name}",
                                     detail=False))
            out += call_rate_metrics(rows, mode)
        return out


__all__ = ["BfclSuite", "MODES"]
