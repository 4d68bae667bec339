"""Peer-harness cross-check with lm-eval: the same llama.cpp server and the same items run by lm-eval
(``local-chat-completions`` with its own task config and scoring) and by assay, compared request by request:
identical prompts, identical replies, identical verdicts — and the scores side by side with Wilson intervals.

- ``--task gsm8k``: lm-eval's ``gsm8k`` (5-shot, ``--apply_chat_template --fewshot_as_multiturn``, strict-match and
  flexible-extract) vs assay's ``gsm8k`` with ``shots=5``. The few-shot split is the first 5 test items, read with
  lm-eval's ``first_n`` sampler, so both harnesses use the same exemplars in the same order; the test split is the
  next ``--limit`` items.
- ``--task ifeval``: lm-eval's ``ifeval`` (its vendored reference checkers, 1280 new tokens) vs assay's ``ifeval``
  (default reference rules) on the same prompts (assay's seeded ``--limit`` subset, handed to lm-eval as its data),
  prompt- and instruction-level, strict and loose.

lm-eval is installed from PyPI into its own environment (its dependency set — datasets, evaluate, scikit-learn — is
not assay's) and runs offline: each task is lm-eval's installed YAML, ``include``d with only the data source changed
to local JSON files; IFEval's punkt_tab is written from the registry tables assay uses (``NLTK_DATA``).

    python -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install "lm-eval[api,ifeval]==0.4.13"
    python benchmarks/peer_lm_eval.py --lm-eval /tmp/lmeval/bin/lm_eval --task gsm8k --limit 100
    python benchmarks/peer_lm_eval.py --lm-eval /tmp/lmeval/bin/lm_eval --task ifeval --limit 100

Prints a Markdown table (docs/report.md holds the measured ones) and a JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "benchmarks" / "gsm8k_test.jsonl"
IFEVAL = ROOT.parent / "shared" / "benchmarks" / "ifeval_input_data.jsonl"
SHOTS = 5
STOP = ["Question:", "</s>", "<|im_end|>"]  # lm-eval gsm8k's ``until``
TASK = "assay_peer"


def _reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "benchmarks" / "reproduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lm_eval_task(exe: Path, name: str, where: Path, train: list[str], test: list[str], **overrides) -> Path:
    """A task folder: lm-eval's own ``<name>.yaml`` included, its data source swapped for local JSONL files."""
    import yaml

    py = exe.parent / "python"
    src = subprocess.run([str(py), "-c", "import lm_eval, pathlib; print(pathlib.Path(lm_eval.__file__).parent)"],
                         check=True, capture_output=True, text=True).stdout.strip()
    files = {}
    for split, rows in (("train", train), ("test", test)):
        if rows:
            (where / f"{split}.jsonl").write_text("".join(rows), encoding="utf-8")
            files[split] = str(where / f"{split}.jsonl")
    cfg = {"include": str(Path(src) / "tasks" / name / f"{name}.yaml"), "task": TASK, "tag": [],
           "dataset_path": "json", "dataset_name": None, "dataset_kwargs": {"data_files": files}, **overrides}
    (where / f"{TASK}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return where


def run_lm_eval(exe: Path, base_url: str, model: str, task_dir: Path, out: Path, limit: int,
                knobs: dict | None = None) -> list[dict]:
    from assay.evals.ifeval_reference import write_punkt_tab

    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "NLTK_DATA": str(write_punkt_tab(task_dir / "nltk_data"))}
    cmd = [str(exe), "--model", "local-chat-completions",
           "--model_args", f"model={model},base_url={base_url}/chat/completions,num_concurrent=1,max_retries=1,"
                           "tokenizer_backend=None,tokenized_requests=False",
           "--tasks", TASK, "--include_path", str(task_dir), "--apply_chat_template", "--fewshot_as_multiturn",
           "--log_samples", "--output_path", str(out), "--limit", str(limit)]
    if knobs:  # what assay sends beyond temperature (assay.client.knob_fields); lm-eval's API models put unknown
        # generation kwargs into the request body as they are
        cmd += ["--gen_kwargs", ",".join(f"{k}={v}" for k, v in knobs.items())]
    print("running:", " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"lm-eval failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    (samples,) = list(out.rglob(f"samples_{TASK}_*.jsonl"))
    return [json.loads(line) for line in samples.read_text().splitlines() if line.strip()]


def wilson_rows(readings: dict[str, list[bool]]) -> dict:
    from assay.stats import proportion_summary

    print("| harness (reading) | correct | accuracy [95 % CI] |\n|---|---|---|")
    table = {}
    for name, hits in readings.items():
        s = proportion_summary(sum(hits), len(hits))
        table[name] = {"k": sum(hits), "n": len(hits), "value": s["value"], "low": s["low"], "high": s["high"]}
        print(f"| {name} | {sum(hits)}/{len(hits)} | {100 * s['value']:.1f} [{100 * s['low']:.1f}, "
              f"{100 * s['high']:.1f}] |")
    return table


def chat_of(row: dict) -> list[dict]:
    prompt = row["arguments"]["gen_args_0"]["arg_0"]
    if isinstance(prompt, list) and len(prompt) == 1:  # lm-eval logs the chat as [json.dumps(messages)]
        prompt = prompt[0]
    return json.loads(prompt) if isinstance(prompt, str) else prompt


def compare_gsm8k(ours: list[dict], theirs: list[dict]) -> dict:
    rep = _reproduce()
    by_id = {r["sample_id"]: r for r in ours}
    lm: dict[int, dict] = {}
    for row in theirs:  # one row per document and filter
        d = lm.setdefault(row["doc_id"], {"resp": row["resps"][0][0], "chat": chat_of(row)})
        d[row["filter"]] = bool(row["exact_match"])
    agree = {"identical prompts": 0, "identical replies": 0, "same strict-match verdict": 0,
             "same flexible-extract verdict": 0}
    readings = {k: [] for k in ("assay (assay's scorer)", "assay (lm-eval strict-match)", "assay (lm-eval flexible)",
                                "lm-eval strict-match", "lm-eval flexible-extract")}
    diffs = []
    for i, d in sorted(lm.items()):
        r = by_id[f"gsm8k-{i + SHOTS:04d}"]
        text = r.get("completion") or ""
        strict, flex = rep.lm_eval_gsm8k(text, str(r["target"]))
        agree["identical prompts"] += d["chat"] == r["messages"] and len(d["chat"]) == 2 * SHOTS + 1
        agree["identical replies"] += text == d["resp"]
        agree["same strict-match verdict"] += strict == d["strict-match"]
        agree["same flexible-extract verdict"] += flex == d["flexible-extract"]
        for k, v in zip(readings, ((r.get("score") or {}).get("value") == 1.0, strict, flex, d["strict-match"],
                                   d["flexible-extract"])):
            readings[k].append(v)
        if text != d["resp"] or strict != d["strict-match"] or flex != d["flexible-extract"]:
            diffs.append({"doc_id": i, "assay": text[:160], "lm_eval": d["resp"][:160]})
    return {"n": len(lm), "agree": agree, "readings": readings, "differences": diffs}


def compare_ifeval(ours: list[dict], theirs: list[dict]) -> dict:
    by_key = {int(r["sample_id"].split("-")[-1]): r for r in ours}
    agree = {"identical prompts": 0, "identical replies": 0, "same prompt verdicts (strict and loose)": 0,
             "same instruction verdicts (strict and loose)": 0}
    readings = {k: [] for k in ("assay prompt strict", "lm-eval prompt strict", "assay prompt loose",
                                "lm-eval prompt loose", "assay inst strict", "lm-eval inst strict",
                                "assay inst loose", "lm-eval inst loose")}
    diffs = []
    for row in sorted(theirs, key=lambda x: x["doc_id"]):
        r = by_key[int(row["doc"]["key"])]
        text = r.get("completion") or ""
        ex = r["score"]["extra"]
        ps, pl = all(ex["strict"]), all(ex["loose"])
        agree["identical prompts"] += chat_of(row) == r["messages"]
        agree["identical replies"] += text == row["resps"][0][0]
        agree["same prompt verdicts (strict and loose)"] += (ps, pl) == (row["prompt_level_strict_acc"],
                                                                         row["prompt_level_loose_acc"])
        agree["same instruction verdicts (strict and loose)"] += (
            list(ex["strict"]) == list(row["inst_level_strict_acc"])
            and list(ex["loose"]) == list(row["inst_level_loose_acc"]))
        readings["assay prompt strict"].append(ps)
        readings["lm-eval prompt strict"].append(bool(row["prompt_level_strict_acc"]))
        readings["assay prompt loose"].append(pl)
        readings["lm-eval prompt loose"].append(bool(row["prompt_level_loose_acc"]))
        readings["assay inst strict"] += list(ex["strict"])
        readings["lm-eval inst strict"] += [bool(x) for x in row["inst_level_strict_acc"]]
        readings["assay inst loose"] += list(ex["loose"])
        readings["lm-eval inst loose"] += [bool(x) for x in row["inst_level_loose_acc"]]
        if text != row["resps"][0][0] or list(ex["strict"]) != list(row["inst_level_strict_acc"]):
            diffs.append({"key": row["doc"]["key"], "assay": text[:160], "lm_eval": row["resps"][0][0][:160]})
    return {"n": len(theirs), "agree": agree, "readings": readings, "differences": diffs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lm-eval", default=shutil.which("lm_eval") or shutil.which("lm-eval"),
                    help="lm-eval's executable (in its own environment)")
    ap.add_argument("--task", choices=("gsm8k", "ifeval"), default="gsm8k")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--data", help="the task's file (default: ../shared/benchmarks/<gsm8k_test|ifeval_input_data>)")
    ap.add_argument("--keep", help="copy assay's run folder and lm-eval's samples file (renamed samples_<task>_...) "
                                   "into this folder, for `assay compare RUN SAMPLES`")
    args = ap.parse_args()
    if not args.lm_eval or not Path(args.lm_eval).exists():
        sys.exit('lm-eval not found: python -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install '
                 '"lm-eval[api,ifeval]==0.4.13", then pass --lm-eval /tmp/lmeval/bin/lm_eval')
    exe = Path(args.lm_eval)
    data = args.data or str(GSM8K if args.task == "gsm8k" else IFEVAL)

    from assay.client import SamplingParams, knob_fields
    from assay.engines import provide
    from assay.evals.runner import run
    from assay.evals.suites import get_suite

    rows = Path(data).read_text(encoding="utf-8").splitlines(keepends=True)
    if args.task == "gsm8k":
        suite = get_suite("gsm8k", data=data, shots=SHOTS)
        params = SamplingParams(temperature=0.0, max_tokens=256, seed=0, stop=STOP)
    else:
        suite = get_suite("ifeval", data=data)
        params = SamplingParams(temperature=0.0, max_tokens=1280, seed=0)
    with provide(model="smollm2-135m") as eps, tempfile.TemporaryDirectory() as tmp:
        ep, tmp = eps[0], Path(tmp)
        res = run([suite], eps, out_dir=tmp / "runs", params=params, limit=args.limit, concurrency=1)
        from assay import store

        ours = list(store.open(res.run_dir).records(raw=True))
        if args.task == "gsm8k":
            task_dir = lm_eval_task(exe, "gsm8k", tmp, rows[:SHOTS], rows[SHOTS:SHOTS + args.limit],
                                    fewshot_config={"sampler": "first_n"}, num_fewshot=SHOTS)
        else:  # the same prompts assay ran (its seeded subset), in file order
            keys = {int(r["sample_id"].split("-")[-1]) for r in ours}
            task_dir = lm_eval_task(exe, "ifeval", tmp, [], [x for x in rows if json.loads(x)["key"] in keys],
                                    test_split="test")
        theirs = run_lm_eval(exe, ep.base_url, ep.model, task_dir, tmp / "lm", args.limit, knob_fields(params, ep))
        if args.keep:  # lm-eval names the file after the task; assay compare pairs suites by that name
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copytree(res.run_dir, keep / res.run_dir.name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".lock"))
            (samples,) = list((tmp / "lm").rglob(f"samples_{TASK}_*.jsonl"))
            shutil.copy(samples, keep / samples.name.replace(f"samples_{TASK}_", f"samples_{args.task}_"))

    cmp = compare_gsm8k(ours, theirs) if args.task == "gsm8k" else compare_ifeval(ours, theirs)
    n = cmp["n"]
    print(f"\n{args.task}, the same llama.cpp server (embedded SmolLM2-135M-Instruct Q4_1), {n} items, greedy, "
          f"max_tokens {params.max_tokens}\n")
    table = wilson_rows(cmp["readings"])
    print("\n" + " · ".join(f"{k} {v}/{n}" for k, v in cmp["agree"].items()))
    for d in cmp["differences"][:10]:
        print(f"- {d}")
    print(json.dumps({"bench": f"peer_lm_eval_{args.task}", "n": n, "agree": cmp["agree"], "readings": table,
                      "differences": cmp["differences"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
