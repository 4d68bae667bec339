"""Small helpers shared by the test modules (imported as ``from helpers import ...``: pytest puts tests/ on the path)."""

from __future__ import annotations

import json
import time
from pathlib import Path


def suite_metrics(suite, recs):
    """A suite's corpus metrics over plain dict records, keyed as in summary.json."""
    from assay.evals.base import Record

    return {m.key: m.model_dump() for m in suite.aggregate([Record.model_validate(r) for r in recs])}


def write_eval_run(runs_dir: Path, run_id: str, *, model: str = "SmolLM2-135M-Instruct", suites: dict,
                   params: dict | None = None, seed: int = 0, prompt_template: str = "default", version: str = "1",
                   concurrency: int = 1) -> Path:
    """A run folder as the eval runner writes it. ``suites``: {suite: [(sample_id, category, value | None, status,
    extracted, completion_tokens, e2e_s)]}; value None with status "error" is a failed request."""
    params = params or {"temperature": 0.0, "top_p": 1.0, "max_tokens": 128}
    from assay.evals.base import Record, Score, stable_hash

    d = Path(runs_dir) / run_id
    d.mkdir(parents=True)
    fp = {"suites": {s: {"version": version, "data_hash": f"h-{s}", "prompt_template": prompt_template}
                     for s in suites},
          "model": model, "engine": "llamacpp", "engine_version": "0.3.16", "params": params, "seed": seed,
          "limit": None}
    lines = []
    for suite, rows in suites.items():
        for sid, cat, value, status, extracted, ctoks, e2e in rows:
            err = "HTTP 500 after 3 retries" if status == "error" else None
            score = None if status == "error" else Score(float(value), extracted=extracted,
                                                         reason="match" if value else "mismatch",
                                                         parsed=status != "unparsed").to_dict()
            completion = None if status == "error" else f"Let me think step by step. The answer is {extracted}."
            rec = Record(run_id=run_id, suite=suite, sample_id=sid, category=cat,
                         messages=[{"role": "user", "content": f"Question {sid}: what is it?"}], target="42",
                         completion=completion, finish_reason="length" if status == "truncated" else "stop",
                         prompt_tokens=20, completion_tokens=None if status == "error" else ctoks,
                         ttft_s=None if status == "error" else 0.05, e2e_s=None if status == "error" else e2e,
                         score=score, status=status, error=err, params=params, finished_at=time.time())
            lines.append(rec.to_json())
    (d / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = {"kind": "eval", "run_id": run_id, "created_at": "2025-01-01T12:00:00Z",
                "finished_at": "2025-01-01T12:01:00Z", "status": "finished", "fingerprint": fp,
                "fingerprint_hash": stable_hash(fp), "endpoints": ["http://127.0.0.1:8000/v1"],
                "counts": {}, "command": ["assay", "eval"], "wall_s": 60.0, "request_s_sum": 55.0,
                "concurrency": concurrency}
    (d / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (d / "summary.json").write_text("{}", encoding="utf-8")
    return d


def rows(n: int, values, *, cat=lambda i: "algebra" if i % 2 else "geometry", prefix="q", statuses=None,
         ctoks=40, e2e=lambda i: 0.5 + i / 100):
    statuses = statuses or {}
    out = []
    for i in range(n):
        st = statuses.get(i, "ok")
        v = None if st == "error" else values[i]
        out.append((f"{prefix}{i:03d}", cat(i), v, st, "42" if v else f"4{i % 10}x", ctoks, e2e(i)))
    return out
