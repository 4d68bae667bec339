"""Published numbers reproduced: the embedded SmolLM2-135M-Instruct on the full official IFEval (541 prompts) and a
GSM8K subset (5-shot), assay's numbers next to the model card's, with 95 % intervals and a consistent / not verdict.

The card (HuggingFaceTB/SmolLM2-135M-Instruct) gives IFEval 29.9, "average prompt/inst": the mean of prompt-level and
instruction-level accuracy. It does not say strict or loose in that row, so both are shown. The embedded GGUF is
**Q4_1** (the card measured the bf16 model), which can cost a point or two on its own. Each completion is scored under
both rule sets from one set of answers: reference rules (the reference implementation's verdicts, what the card's
harness computes) and assay's stricter rules.

Interval for the prompt/inst average: percentile bootstrap over prompts (each resample recomputes both levels).
Verdict: "consistent" when 29.9 lies inside the 95 % interval of the matching average.

    python benchmarks/reproduce.py --data ../shared/benchmarks/ifeval_input_data.jsonl          # runs the model
    python benchmarks/reproduce.py --data ../shared/benchmarks/ifeval_input_data.jsonl --max-tokens 1280
    python benchmarks/reproduce.py --run runs/20261202-130436-76567bb1                         # score a stored run
    python benchmarks/reproduce.py --task gsm8k --gsm8k-data ../shared/benchmarks/gsm8k_test.jsonl --limit 250
    python benchmarks/reproduce.py --task gsm8k --run runs/<id>

GSM8K: the card's row is "GSM8K (5-shot)" 1.4. Settings: 5 exemplars as chat turns (``--suite-opt shots=5``, the
first five test items, which are then not scored), greedy, 256 new tokens, lm-eval's stop list (its ``until``:
"Question:", "</s>", "<|im_end|>"), the first ``--limit`` scored items in file order. Three readings of the same
answers: assay's math scorer ("####", box or "answer is" phrase, checked by Math-Verify), lm-eval's
``strict-match`` (the first ``#### n``) and its ``flexible-extract`` (the last number in the reply), each with a
Wilson interval. Verdict as for IFEval: consistent when the card's figure lies in the interval.

Running the model: ``assay eval --suite ifeval --data FILE --max-tokens N`` under the hood (resumable; greedy,
temperature 0, the prompt as the only user message, as in the IFEval harnesses). On a shared 2-core CPU, 541 answers
at 128 tokens take ~45 minutes; long answers are cut at --max-tokens (counted as "truncated"), which lowers the
length-constraint scores, so say which limit was used next to the number.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

CARD = {"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "ifeval_avg_prompt_inst": 29.9, "gsm8k_5shot": 1.4}
GSM8K_SETTINGS = ["--suite-opt", "shots=5", "--max-tokens", "256",  # lm-eval gsm8k's until:
                  "--extra-body", '{"stop": ["Question:", "</s>", "<|im_end|>"]}']


def load_records(run_dir: Path) -> list[dict]:
    from assay import store

    rows = list(store.open(run_dir).records(raw=True))
    # A resumed run can hold a sample twice (a retried error); the last record wins, as in assay's reports.
    return list({r["sample_id"]: r for r in rows}.values())


def verdicts(records: list[dict], suite) -> list[tuple[list[bool], list[bool]]]:
    """(strict, loose) per-instruction verdicts for each ok/truncated record, rescored from its completion."""
    by_id = {s.id: s for s in suite.samples(0, None)}
    out = []
    for r in records:
        if r.get("status") == "error" or r["sample_id"] not in by_id:
            continue
        extra = suite.score(r.get("completion") or "", by_id[r["sample_id"]]).extra
        out.append((extra["strict"], extra["loose"]))
    return out


def summarise(v: list[tuple[list[bool], list[bool]]], n_boot: int = 2000, seed: int = 0) -> dict:
    from assay.stats import proportion_summary

    res = {}
    for j, level in ((0, "strict"), (1, "loose")):
        prompt = np.array([all(x[j]) for x in v], dtype=float)
        k_inst = np.array([sum(x[j]) for x in v], dtype=float)
        n_inst = np.array([len(x[j]) for x in v], dtype=float)
        avg = (prompt.mean() + k_inst.sum() / n_inst.sum()) / 2
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(n_boot):
            idx = rng.integers(0, len(v), len(v))
            boots.append((prompt[idx].mean() + k_inst[idx].sum() / n_inst[idx].sum()) / 2)
        lo, hi = np.percentile(boots, [2.5, 97.5])
        res[level] = {"prompt": proportion_summary(int(prompt.sum()), len(v)),
                      "inst": proportion_summary(int(k_inst.sum()), int(n_inst.sum())),
                      "avg": {"value": float(avg), "low": float(lo), "high": float(hi)}}
    return res


def pct(x: dict) -> str:
    return f"{100 * x['value']:5.1f} [{100 * x['low']:4.1f}, {100 * x['high']:4.1f}]"


# lm-eval's gsm8k filters (lm_eval/tasks/gsm8k/gsm8k.yaml): strict = the first "#### n"; flexible = the last number;
# then exact_match with its regexes_to_ignore and ignore_case. Checked against lm-eval's own filters in the tests.
_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_FLEX = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")


def _extract(rx: re.Pattern, text: str, group_select: int) -> str:
    found = rx.findall(text)
    if not found:
        return "[invalid]"
    m = found[group_select]
    if isinstance(m, tuple):
        m = next((g for g in m if g), "[invalid]")
    return m.strip()


def _norm(x: str) -> str:
    for rx in _IGNORE:
        x = re.sub(rx, "", x)
    return x.lower()


def lm_eval_gsm8k(completion: str, target: str) -> tuple[bool, bool]:
    """(strict-match, flexible-extract) verdicts as lm-eval computes them for one reply and its gold answer."""
    gold = _norm(target)
    return (_norm(_extract(_STRICT, completion, 0)) == gold, _norm(_extract(_FLEX, completion, -1)) == gold)


def run_model(suite: str, data: str, extra: list[str], a) -> Path:
    cmd = [sys.executable, "-m", "assay.cli", "eval", "--suite", suite, "--data", data, *extra,
           "--replicas", str(a.replicas), "--concurrency", str(2 * a.replicas), "--out", a.out]
    if a.limit and suite == "gsm8k":
        cmd += ["--limit", str(a.limit)]
    print("running:", " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return Path(next(line.split(": ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("run: ")))


def run_facts(run_dir: Path, default_max: int) -> tuple[list[dict], int, int, int, dict]:
    from assay import store

    manifest = store.open(run_dir).manifest.model_dump()
    records = load_records(run_dir)
    truncated = sum(r.get("status") == "truncated" for r in records)
    errors = sum(r.get("status") == "error" for r in records)
    params = manifest.get("fingerprint", {}).get("params") or {}
    return records, truncated, errors, params.get("max_tokens", default_max), params


def report_ifeval(run_dir: Path, data: str) -> dict:
    from assay.evals.suites import get_suite

    records, truncated, errors, max_tokens, _ = run_facts(run_dir, 1280)
    rows = {}
    for rules in ("reference", "assay"):
        suite = get_suite("ifeval", data=data, rules=rules)
        rows[rules] = summarise(verdicts(records, suite))
    n = len(records) - errors
    card = CARD["ifeval_avg_prompt_inst"] / 100

    print(f"\nIFEval, {CARD['model']} (embedded GGUF Q4_1 on llama.cpp), n = {n} prompts"
          f" ({truncated} cut at max_tokens={max_tokens}, {errors} errors), run {run_dir.name}\n")
    print(f"{'rules':10} {'level':6} {'prompt':>22} {'inst':>22} {'avg prompt/inst':>22}  card  verdict")
    verdict = {}
    for rules, res in rows.items():
        for level in ("strict", "loose"):
            r = res[level]
            ok = r["avg"]["low"] <= card <= r["avg"]["high"]
            verdict[f"{rules}_{level}"] = "consistent" if ok else "not consistent"
            print(f"{rules:10} {level:6} {pct(r['prompt']):>22} {pct(r['inst']):>22} {pct(r['avg']):>22}  "
                  f"{100 * card:4.1f}  {verdict[f'{rules}_{level}']}")
    print("\nThe card's 29.9 is bf16 through its harness; this is Q4_1, greedy, the settings above.")
    return {"bench": "reproduce_ifeval", "run": str(run_dir), "n": n, "truncated": truncated,
            "max_tokens": max_tokens, "card": CARD["ifeval_avg_prompt_inst"],
            "results": {k: {lv: {m: v[lv][m]["value"] for m in ("prompt", "inst", "avg")}
                            for lv in ("strict", "loose")} for k, v in rows.items()},
            "verdict": verdict}


def report_gsm8k(run_dir: Path) -> dict:
    from assay.stats import proportion_summary

    records, truncated, errors, max_tokens, params = run_facts(run_dir, 256)
    ok = [r for r in records if r.get("status") != "error"]
    readings = {"assay": [float(r.get("score", {}).get("value") or 0.0) == 1.0 for r in ok]}
    lm = [lm_eval_gsm8k(r.get("completion") or "", str(r.get("target"))) for r in ok]
    readings["lm-eval strict-match"] = [x[0] for x in lm]
    readings["lm-eval flexible-extract"] = [x[1] for x in lm]
    card = CARD["gsm8k_5shot"] / 100
    print(f"\nGSM8K 5-shot, {CARD['model']} (GGUF Q4_1), n = {len(ok)} items ({truncated} cut at "
          f"max_tokens={max_tokens}, {errors} errors), run {run_dir.name}\n")
    print(f"{'reading':26} {'accuracy':>24}  card  verdict")
    out = {}
    for name, hits in readings.items():
        s = proportion_summary(sum(hits), len(hits))
        v = "consistent" if s["low"] <= card <= s["high"] else "not consistent"
        out[name] = {"k": sum(hits), "n": len(hits), **{m: s[m] for m in ("value", "low", "high")}, "verdict": v}
        print(f"{name:26} {sum(hits):3d}/{len(hits):<4d} {pct(s):>15}  {100 * card:4.1f}  {v}")
    return {"bench": "reproduce_gsm8k", "run": str(run_dir), "n": len(ok), "truncated": truncated,
            "max_tokens": max_tokens,
            "stop": params.get("stop") or (params.get("extra_body") or {}).get("stop"), "card": CARD["gsm8k_5shot"], "results": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=("ifeval", "gsm8k", "all"), default="ifeval")
    ap.add_argument("--data", default="../shared/benchmarks/ifeval_input_data.jsonl", help="IFEval input_data.jsonl")
    ap.add_argument("--gsm8k-data", default="../shared/benchmarks/gsm8k_test.jsonl")
    ap.add_argument("--run", help="score this stored run folder (of --task) instead of running the model")
    ap.add_argument("--max-tokens", type=int, default=1280, help="IFEval: lighteval's generation size is 1280")
    ap.add_argument("--limit", type=int, default=250, help="GSM8K: the first N scored items")
    ap.add_argument("--replicas", type=int, default=2, help="llama.cpp replicas (assay eval --replicas)")
    ap.add_argument("--out", default="runs")
    a = ap.parse_args()
    if a.run and a.task == "all":
        ap.error("--run scores one run: pass --task ifeval or --task gsm8k")

    results = []
    if a.task in ("ifeval", "all"):
        run_dir = Path(a.run) if a.run else run_model("ifeval", a.data, ["--max-tokens", str(a.max_tokens)], a)
        results.append(report_ifeval(run_dir, a.data))
    if a.task in ("gsm8k", "all"):
        run_dir = Path(a.run) if a.run else run_model("gsm8k", a.gsm8k_data, GSM8K_SETTINGS, a)
        results.append(report_gsm8k(run_dir))
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
