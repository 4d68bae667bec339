"""Peer-harness cross-check with lm-eval: the same llama.cpp server and the same GSM8K items, 5-shot, run by
lm-eval (``local-chat-completions``, its own ``gsm8k`` task config, ``--apply_chat_template --fewshot_as_multiturn``)
and by assay (``gsm8k`` with ``shots=5``), compared request by request: identical prompts, identical replies,
identical verdicts — and the scores side by side with Wilson intervals.

lm-eval is installed from PyPI into its own environment (its dependency set — datasets, evaluate, scikit-learn — is
not assay's), and it runs offline: the task is lm-eval's installed ``gsm8k.yaml`` with only the data source changed
to local JSON files (the first 5 test items as the few-shot split, read with lm-eval's ``first_n`` sampler; the next
``--limit`` items as the test split), so both harnesses see the same exemplars in the same order.

    python -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install "lm-eval[api]==0.4.13"
    python benchmarks/peer_lm_eval.py --lm-eval /tmp/lmeval/bin/lm_eval --limit 100

Prints a Markdown table (docs/report.md holds the measured one) and a JSON line.
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
SHOTS = 5
STOP = ["Question:", "</s>", "<|im_end|>"]  # lm-eval gsm8k's ``until``
TASK = "gsm8k_assay_peer"


def _reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "benchmarks" / "reproduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lm_eval_task(exe: Path, rows: list[str], limit: int, where: Path) -> Path:
    """A task folder: lm-eval's own gsm8k.yaml, data source swapped for local files. Returns the folder."""
    import yaml

    py = exe.parent / "python"
    src = subprocess.run([str(py), "-c", "import lm_eval, pathlib; print(pathlib.Path(lm_eval.__file__).parent)"],
                         check=True, capture_output=True, text=True).stdout.strip()
    cfg = yaml.safe_load((Path(src) / "tasks" / "gsm8k" / "gsm8k.yaml").read_text())
    (where / "train.jsonl").write_text("".join(rows[:SHOTS]))
    (where / "test.jsonl").write_text("".join(rows[SHOTS:SHOTS + limit]))
    cfg.pop("tag", None)
    cfg.pop("dataset_name", None)
    cfg.update(task=TASK, dataset_path="json",
               dataset_kwargs={"data_files": {"train": str(where / "train.jsonl"), "test": str(where / "test.jsonl")}},
               fewshot_config={"sampler": "first_n"}, num_fewshot=SHOTS)
    (where / f"{TASK}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return where


def run_lm_eval(exe: Path, base_url: str, model: str, task_dir: Path, out: Path, limit: int) -> list[dict]:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [str(exe), "--model", "local-chat-completions",
           "--model_args", f"model={model},base_url={base_url}/chat/completions,num_concurrent=1,max_retries=1,"
                           "tokenizer_backend=None,tokenized_requests=False",
           "--tasks", TASK, "--include_path", str(task_dir), "--apply_chat_template", "--fewshot_as_multiturn",
           "--log_samples", "--output_path", str(out), "--limit", str(limit)]
    print("running:", " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"lm-eval failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    (samples,) = list(out.rglob(f"samples_{TASK}_*.jsonl"))
    if os.environ.get("PEER_KEEP"):
        shutil.copy(samples, os.environ["PEER_KEEP"])
    return [json.loads(line) for line in samples.read_text().splitlines() if line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lm-eval", default=shutil.which("lm_eval") or shutil.which("lm-eval"),
                    help="lm-eval's executable (in its own environment)")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--data", default=str(GSM8K))
    args = ap.parse_args()
    if not args.lm_eval or not Path(args.lm_eval).exists():
        sys.exit('lm-eval not found: python -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install "lm-eval[api]==0.4.13", '
                 "then pass --lm-eval /tmp/lmeval/bin/lm_eval")
    exe = Path(args.lm_eval)

    from assay.client import SamplingParams
    from assay.engines import provide
    from assay.evals.runner import run
    from assay.evals.stats import proportion_summary
    from assay.evals.suites import get_suite

    rep = _reproduce()
    rows = Path(args.data).read_text(encoding="utf-8").splitlines(keepends=True)
    suite = get_suite("gsm8k", data=args.data, shots=SHOTS)
    with provide(model="smollm2-135m") as eps, tempfile.TemporaryDirectory() as tmp:
        ep, tmp = eps[0], Path(tmp)
        params = SamplingParams(temperature=0.0, max_tokens=256, seed=0, stop=STOP)
        res = run([suite], eps, out_dir=tmp / "runs", params=params, limit=args.limit, concurrency=1)
        ours = [json.loads(x) for x in (res.run_dir / "records.jsonl").read_text().splitlines() if x.strip()]
        theirs = run_lm_eval(exe, ep.base_url, ep.model, lm_eval_task(exe, rows, args.limit, tmp), tmp / "lm",
                             args.limit)

    by_id = {r["sample_id"]: r for r in ours}
    lm: dict[int, dict] = {}
    for row in theirs:  # one row per document and filter
        d = lm.setdefault(row["doc_id"], {"resp": row["resps"][0][0],
                                          "prompt": row["arguments"]["gen_args_0"]["arg_0"]})
        d[row["filter"]] = bool(row["exact_match"])
    same_prompt = same_text = same_strict = same_flex = 0
    readings = {"assay (assay's scorer)": [], "assay (lm-eval strict-match)": [], "assay (lm-eval flexible)": [],
                "lm-eval strict-match": [], "lm-eval flexible-extract": []}
    diffs = []
    for i, d in sorted(lm.items()):
        r = by_id[f"gsm8k-{i + SHOTS:04d}"]
        prompt = d["prompt"]
        if isinstance(prompt, list) and len(prompt) == 1:  # lm-eval logs the chat as [json.dumps(messages)]
            prompt = prompt[0]
        msgs = json.loads(prompt) if isinstance(prompt, str) else prompt
        same_prompt += msgs == r["messages"][:len(msgs)] and len(msgs) == 2 * SHOTS + 1
        text = r.get("completion") or ""
        same_text += text == d["resp"]
        strict, flex = rep.lm_eval_gsm8k(text, str(r["target"]))
        same_strict += strict == d["strict-match"]
        same_flex += flex == d["flexible-extract"]
        readings["assay (assay's scorer)"].append((r.get("score") or {}).get("value") == 1.0)
        readings["assay (lm-eval strict-match)"].append(strict)
        readings["assay (lm-eval flexible)"].append(flex)
        readings["lm-eval strict-match"].append(d["strict-match"])
        readings["lm-eval flexible-extract"].append(d["flexible-extract"])
        if text != d["resp"] or strict != d["strict-match"] or flex != d["flexible-extract"]:
            diffs.append({"doc_id": i, "assay": text[:160], "lm_eval": d["resp"][:160]})
    n = len(lm)
    print(f"\nGSM8K 5-shot, the same llama.cpp server, items {SHOTS + 1}–{SHOTS + n} of the test file, greedy, "
          f"256 tokens\n")
    print("| harness (reading) | correct | accuracy [95 % CI] |\n|---|---|---|")
    table = {}
    for name, hits in readings.items():
        s = proportion_summary(sum(hits), len(hits))
        table[name] = {"k": sum(hits), "n": len(hits), "value": s["value"], "low": s["low"], "high": s["high"]}
        print(f"| {name} | {sum(hits)}/{len(hits)} | {100 * s['value']:.1f} [{100 * s['low']:.1f}, "
              f"{100 * s['high']:.1f}] |")
    print(f"\nidentical prompts {same_prompt}/{n} · identical replies {same_text}/{n} · same strict-match verdict "
          f"{same_strict}/{n} · same flexible-extract verdict {same_flex}/{n}")
    for d in diffs[:10]:
        print(f"- doc {d['doc_id']}: assay {d['assay']!r}\n  lm-eval {d['lm_eval']!r}")
    print(json.dumps({"bench": "peer_lm_eval", "n": n, "identical_prompts": same_prompt, "identical_replies": same_text,
                      "same_strict": same_strict, "same_flexible": same_flex, "readings": table,
                      "differences": diffs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
