"""Peer-harness cross-check: the same server, the same GSM8K items and the same prompt, scored by assay and by
Inspect (inspect_ai's ``openai-api`` provider and its own ``match(numeric=True)`` scorer, as inspect_evals' GSM8K
uses), side by side with intervals, per-sample agreement and the disagreements explained.

Run (long on CPU; the embedded SmolLM2-135M on llama.cpp; needs ../shared/benchmarks/gsm8k_test.jsonl):
    python benchmarks/peer_harness.py --limit 40 --max-tokens 256

Prints a Markdown table (put it in docs/reproduce.md) and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "benchmarks" / "gsm8k_test.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--data", default=str(GSM8K))
    args = ap.parse_args()

    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import MemoryDataset, Sample as ISample
    from inspect_ai.model import GenerateConfig
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    from assay.client import SamplingParams, knob_fields
    from assay.engines import provide
    from assay import stats
    from assay.evals.runner import run
    from assay.evals.suites import get_suite

    suite = get_suite("gsm8k", data=args.data)
    samples = list(suite.samples(0, args.limit))
    with provide(model="smollm2-135m") as eps, tempfile.TemporaryDirectory() as tmp:
        ep = eps[0]
        params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, seed=0)
        res = run([suite], eps, out_dir=Path(tmp) / "runs", params=params, limit=args.limit, concurrency=1)
        from assay import store

        ours = {r["sample_id"]: r for r in store.open(res.run_dir).records(raw=True)}

        os.environ["PEER_BASE_URL"] = ep.base_url
        os.environ["PEER_API_KEY"] = ep.api_key or "none"
        task = Task(dataset=MemoryDataset([ISample(id=s.id, input=suite.messages(s)[0]["content"],
                                                   target=str(s.target)) for s in samples]),
                    solver=generate(), scorer=match(numeric=True))
        logs = inspect_eval(task, model=f"openai-api/peer/{ep.model}", log_dir=str(Path(tmp) / "logs"),
                            max_connections=1, display="none",
                            **GenerateConfig(temperature=0.0, max_tokens=args.max_tokens, seed=0,
                                             extra_body=knob_fields(params, ep)).model_dump(exclude_none=True))
        theirs = {str(s.id): s for s in logs[0].samples}

    ids = [s.id for s in samples]
    a = [float(ours[i]["score"]["value"]) if ours[i].get("score") else 0.0 for i in ids]
    b = [1.0 if theirs[i].scores["match"].value == "C" else 0.0 for i in ids]
    same_text = sum(1 for i in ids if (ours[i].get("completion") or "").strip()
                    == (theirs[i].output.completion or "").strip())
    disagree = [i for i, x, y in zip(ids, a, b) if x != y]
    rows = []
    for name, v in (("assay", a), ("inspect_ai (match numeric)", b)):
        k = int(sum(v))
        lo, hi = stats.wilson(k, len(v))
        rows.append(f"| {name} | {k}/{len(v)} | {k / len(v):.3f} | {lo:.3f}–{hi:.3f} |")
    print("| harness | correct | accuracy | 95 % CI (Wilson) |\n|---|---|---|---|\n" + "\n".join(rows))
    print(f"\nsame completion text: {same_text}/{len(ids)}; verdicts differ on {len(disagree)}: {disagree[:10]}")
    for i in disagree[:5]:
        print(f"- {i}: target {ours[i]['target']!r}; assay extracted {ours[i]['score'].get('extracted')!r}; "
              f"inspect answer {theirs[i].scores['match'].answer!r}")
    print(json.dumps({"n": len(ids), "assay": sum(a), "inspect": sum(b), "same_text": same_text,
                      "disagree": disagree}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
