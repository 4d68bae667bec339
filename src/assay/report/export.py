"""Peer formats in and out: a run as lm-eval results + samples files, as an Inspect eval log, and lm-eval samples
files read back as a run for ``assay compare``.

- **lm-eval** (``lm_eval --log_samples`` layout): ``results_<time>.json`` with ``results`` (``"<metric>,none"`` and
  ``"<metric>_stderr,none"`` per task), ``configs``, ``versions``, ``n-shot``, ``higher_is_better``, ``n-samples``,
  ``config``; and one ``samples_<task>_<time>.jsonl`` per task with ``doc_id, doc, target, arguments, resps,
  filtered_resps, filter, metrics, doc_hash, prompt_hash, target_hash``, the metric value and ``truncated`` (1.0 when
  the answer was cut at max_tokens). Both validate against lm-eval's own schema (``lm_eval.result_schema``:
  ``EvalResults``, ``SampleResult``, whose extra keys must be numbers, so the per-sample status, the scorer's reason
  and the assay sample id stay in the run folder and the Inspect export); the target is a string (structured
  targets as JSON). Hashes are computed as
  lm-eval computes them (sha256 of ``json.dumps(doc, indent=2, ensure_ascii=False)``, of the prompt, of
  ``str(target)``), so samples pair by ``doc_hash`` with lm-eval's own files of the same docs.
- **Inspect** (``inspect view`` / ``inspect_ai.log.read_eval_log``): one JSON eval log per suite (Inspect has one task
  per log) with the spec, results (the headline metric, its interval as ``ci_low`` / ``ci_high`` metrics, n),
  stats, and every sample: its messages, the model's output, the score (value, answer, explanation), the status.

Example:
    assay export runs/RUN --format lm-eval --out exported/
    assay export runs/RUN --format inspect --out logs/ && inspect view --log-dir logs/
    assay compare runs/RUN exported/samples_math_*.jsonl
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from assay.common import atomic_file, dumps, iter_jsonl, write_json_atomic
from assay.errors import DataError
from assay.evals.base import Record, Score
from assay.report.runs import EvalRun

# --format NAME -> the writer (run, out folder) -> files written. Adding a format: a writer in this file and a line
# here (and its row in docs/report.md).
EXPORTERS: dict[str, Any] = {}  # filled below the writers


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _prompt(rec: Record) -> str:
    """The prompt as one string (lm-eval's ``arguments`` hold the rendered prompt; a chat is the messages' text)."""
    msgs = rec.messages or []
    if len(msgs) == 1 and isinstance(msgs[0].get("content"), str):
        return msgs[0]["content"]
    return json.dumps(msgs, ensure_ascii=False)


def _doc(rec: Record) -> Any:
    return {"id": rec.sample_id, "category": rec.category, "input": rec.input, "target": rec.target}


def _target(rec: Record) -> str:
    """lm-eval's targets are strings: a structured target as JSON, none as ""."""
    t = rec.target
    return "" if t is None else t if isinstance(t, str) else json.dumps(t, ensure_ascii=False, default=str)


def doc_hash(doc: Any) -> str:
    """lm-eval's doc hash: sha256 of ``json.dumps(doc, indent=2, ensure_ascii=False)`` (non-JSON values as text)."""
    return _sha(json.dumps(doc, indent=2, default=str, ensure_ascii=False))


def _metric_name(run: EvalRun, suite: str) -> str:
    m = (run.suites.get(suite) or {}).get("metric") or "accuracy"
    return "".join(c if c.isalnum() else "_" for c in m.lower()).strip("_") or "score"


def to_lm_eval(run: EvalRun, out: Path) -> list[Path]:
    """``results_<time>.json`` + ``samples_<suite>_<time>.jsonl`` for every suite of the run."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%f")
    results, configs, versions, nshot, hib, nsamples, paths = {}, {}, {}, {}, {}, {}, []
    fp = run.fingerprint
    params = fp.get("params") or {}
    for suite, s in run.suites.items():
        metric = _metric_name(run, suite)
        v, lo, hi, n = s.get("value"), s.get("low"), s.get("high"), s.get("n") or 0
        stderr = (hi - lo) / (2 * 1.959963984540054) if lo is not None and hi is not None else "N/A"
        results[suite] = {"name": suite, "alias": suite, "sample_len": s.get("total") or n,
                          f"{metric},none": v, f"{metric}_stderr,none": stderr}
        versions[suite] = str(((fp.get("suites") or {}).get(suite) or {}).get("version", ""))
        nshot[suite] = 0
        hib[suite] = {metric: True}
        nsamples[suite] = {"original": s.get("total") or n, "effective": s.get("total") or n}
        configs[suite] = {"task": suite, "output_type": "generate_until", "num_fewshot": 0,
                          "generation_kwargs": {k: params.get(k) for k in ("temperature", "top_p", "max_tokens")
                                                if k in params},
                          "metric_list": [{"metric": metric, "aggregation": "mean", "higher_is_better": True}],
                          "metadata": {"assay_suite_version": versions[suite], "assay_run": run.run_id,
                                       "interval": "95% " + ("Wilson" if s.get("binary", True) else "bootstrap"),
                                       "ci_low": lo, "ci_high": hi}}
        p = out / f"samples_{suite}_{stamp}.jsonl"
        with atomic_file(p) as f:
            for i, r in enumerate(x for x in run.records if x.suite == suite):
                doc, prompt, target = _doc(r), _prompt(r), _target(r)
                row = {"doc_id": i, "doc": doc, "target": target,
                       "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {k: v for k, v in (r.params or {}).items()
                                                                              if k != "extra_body"}}},
                       "resps": [[r.completion if r.completion is not None else ""]],
                       "filtered_resps": [r.score.extracted if r.score and r.score.extracted is not None
                                          else (r.completion or "")],
                       "filter": "none", "metrics": [metric], "doc_hash": doc_hash(doc), "prompt_hash": _sha(prompt),
                       "target_hash": _sha(target), metric: r.value, "truncated": float(r.status == "truncated")}
                f.write(dumps(row) + "\n")
        paths.append(p)
    doc = {"results": results, "group_subtasks": {}, "configs": configs, "versions": versions, "n-shot": nshot,
           "higher_is_better": hib, "n-samples": nsamples,
           "config": {"model": "local-chat-completions", "model_args": f"model={fp.get('model')}",
                      "batch_size": str(run.manifest.concurrency), "gen_kwargs": params, "random_seed": fp.get("seed"),
                      "limit": fp.get("limit")},
           "model_name": fp.get("model"), "date": _dt.datetime.now(_dt.timezone.utc).timestamp(),
           "assay": {"run_id": run.run_id, "fingerprint_hash": run.manifest.fingerprint_hash,
                     "engine": fp.get("engine"), "engine_version": fp.get("engine_version")}}
    rp = out / f"results_{stamp}.json"
    write_json_atomic(rp, doc)
    return [rp, *paths]


def _inspect_messages(rec: Record) -> list[dict]:
    out = []
    for m in rec.messages or []:
        role = m.get("role") if m.get("role") in ("system", "user", "assistant", "tool") else "user"
        content = m.get("content")
        out.append({"role": role, "content": content if isinstance(content, str) else json.dumps(content)})
    return out


def _inspect_score(rec: Record) -> dict:
    if rec.score is None:
        return {"value": None, "explanation": rec.error or "no score"}
    s: Score = rec.score
    return {"value": s.value, "answer": s.extracted, "explanation": s.reason or None,
            "metadata": {"status": rec.status, "parsed": s.parsed}}


def to_inspect(run: EvalRun, out: Path) -> list[Path]:
    """One Inspect JSON eval log per suite (``<run-id>_<suite>.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fp, m = run.fingerprint, run.manifest
    params = fp.get("params") or {}
    created = m.created_at or _dt.datetime.now(_dt.timezone.utc).isoformat()
    paths = []
    for suite, s in run.suites.items():
        recs = [r for r in run.records if r.suite == suite]
        metric = _metric_name(run, suite)
        samples = []
        for i, r in enumerate(recs):
            usage = {"input_tokens": r.prompt_tokens or 0, "output_tokens": r.completion_tokens or 0,
                     "total_tokens": (r.prompt_tokens or 0) + (r.completion_tokens or 0)}
            stop = {"length": "max_tokens", "stop": "stop"}.get(r.finish_reason or "", "unknown")
            output = {"model": fp.get("model") or "?", "choices": [] if r.completion is None else [
                {"message": {"role": "assistant", "content": r.completion, "source": "generate"},
                 "stop_reason": stop}], "usage": usage, "time": r.e2e_s, "error": r.error}
            target = r.target if isinstance(r.target, str) else json.dumps(r.target, ensure_ascii=False, default=str)
            samples.append({"id": r.sample_id, "epoch": 1, "input": _inspect_messages(r) or "", "target": target,
                            "messages": _inspect_messages(r) + ([{"role": "assistant", "content": r.completion}]
                                                                if r.completion is not None else []),
                            "output": output, "scores": {"assay": _inspect_score(r)},
                            "metadata": {"category": r.category, "status": r.status, "assay_index": i},
                            "error": {"message": r.error, "traceback": "", "traceback_ansi": ""} if r.error else None,
                            "model_usage": {fp.get("model") or "?": usage}, "total_time": r.e2e_s})
        metrics = {metric: {"name": metric, "value": s.get("value")}}
        if s.get("low") is not None:
            metrics["ci_low"] = {"name": "ci_low", "value": s["low"]}
            metrics["ci_high"] = {"name": "ci_high", "value": s["high"]}
        log = {
            "version": 2, "status": "success" if m.status == "finished" else "cancelled",
            "eval": {"run_id": run.run_id, "created": created, "task": suite, "task_id": f"{run.run_id}-{suite}",
                     "task_version": 0, "dataset": {"name": suite, "samples": len(recs),
                                                    "sample_ids": [r.sample_id for r in recs]},
                     "model": fp.get("model") or "?", "model_base_url": (m.endpoints or [None])[0],
                     "config": {"limit": fp.get("limit"), "epochs": 1},
                     "model_generate_config": {"temperature": params.get("temperature"),
                                               "top_p": params.get("top_p"), "max_tokens": params.get("max_tokens"),
                                               "seed": params.get("seed")},
                     "metadata": {"assay_fingerprint_hash": m.fingerprint_hash, "engine": fp.get("engine"),
                                  "suite_version": ((fp.get("suites") or {}).get(suite) or {}).get("version")}},
            "results": {"total_samples": s.get("total") or len(recs), "completed_samples": s.get("n") or 0,
                        "scores": [{"name": "assay", "scorer": f"assay/{suite}", "reducer": "mean",
                                    "scored_samples": s.get("n") or 0, "unscored_samples": s.get("errors") or 0,
                                    "metrics": metrics}]},
            "stats": {"started_at": created, "completed_at": m.finished_at or created},
            "samples": samples,
        }
        p = out / f"{run.run_id}_{suite}.json"
        write_json_atomic(p, log)
        paths.append(p)
    return paths


def export(run: EvalRun, fmt: str, out: Path) -> list[Path]:
    writer = EXPORTERS.get(fmt)
    if writer is None:
        raise DataError(f"unknown export format {fmt!r}: choose {' or '.join(EXPORTERS)}")
    return writer(run, out)


# ---- lm-eval samples in -----------------------------------------------------------------------------------------------
def is_lm_eval_samples(path: Path) -> bool:
    p = Path(path)
    return p.is_file() and p.name.startswith("samples_") and p.suffix == ".jsonl"


def load_lm_eval_samples(path: Path, metric: str | None = None, lm_filter: str | None = None) -> EvalRun:
    """An lm-eval samples file as an EvalRun for ``assay compare``. Samples are identified by ``doc_hash`` (so they
    pair with another harness's file of the same docs, or with an assay export); the score is ``metric`` (default:
    the first name in the row's ``metrics``), which must be a number per sample. lm-eval writes one row per document
    *and filter* (gsm8k: ``strict-match`` and ``flexible-extract``): one filter is read, ``lm_filter`` or else the
    file's first, and the others are named in the run's notes."""
    from assay.evals.scorecard import summarize
    from assay.store import EvalManifest

    path = Path(path)
    task = path.name.removeprefix("samples_").rsplit("_", 1)[0] or "lm-eval"
    rows = list(iter_jsonl(path, missing="lm-eval samples file not found: {path}"))
    filters = list(dict.fromkeys(str(row.get("filter", "none")) for _, row in rows))
    chosen = lm_filter or (filters[0] if filters else "none")
    if lm_filter and lm_filter not in filters:
        raise DataError(f"{path.name} has no filter {lm_filter!r}: it has {', '.join(filters)} "
                        "(pick one with --lm-eval-filter)")
    recs = []
    for lineno, row in rows:
        if str(row.get("filter", "none")) != chosen:
            continue
        name = metric or (row.get("metrics") or [None])[0]
        value = row.get(name) if name else None
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)):
            raise DataError(f"{path}:{lineno}: no numeric {name or 'metric'!r} in the sample: the file's first "
                            "metric must be a number per sample (lm-eval --log_samples writes one)")
        sid = row.get("doc_hash") or str(row.get("doc_id"))
        resp = (row.get("resps") or [[None]])[0]
        filt = row.get("filtered_resps") or [None]
        recs.append(Record(run_id=path.stem, suite=task, sample_id=str(sid), target=row.get("target"),
                           completion=resp[0] if isinstance(resp, list) and resp else None,
                           score=Score(float(value), extracted=str(filt[0]) if filt and filt[0] is not None else None),
                           status="ok", meta={"doc_id": row.get("doc_id")}, input=row.get("doc")))
    if not recs:
        raise DataError(f"{path} holds no samples")
    manifest = EvalManifest(run_id=path.stem, created_at="", status="finished",
                            fingerprint={"model": f"lm-eval:{path.parent.name}", "suites": {task: {"version": "?"}}},
                            fingerprint_hash="")
    notes = ["imported from an lm-eval samples file: paired on doc_hash, else on the document's text"]
    if len(filters) > 1:
        notes.append(f"lm-eval filter {chosen!r} read (the file also has {', '.join(f for f in filters if f != chosen)}"
                     "; choose with --lm-eval-filter)")
    return EvalRun(path=path, manifest=manifest, records=recs, card=summarize(recs), label=f"lm-eval {task}",
                   notes=notes)


def _texts(value: Any, min_len: int = 16) -> list[str]:
    """The strings (of at least ``min_len`` characters) in a document or an input, nested values included."""
    if isinstance(value, str):
        return [value.strip()] if len(value.strip()) >= min_len else []
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v, min_len)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v, min_len)]
    return []


def _text_index(imported: list[EvalRun]) -> dict[tuple[str, str], str]:
    """(suite, text) -> doc_hash for every text that names exactly one document of its file."""
    seen: dict[tuple[str, str], set[str]] = {}
    for imp in imported:
        for rec in imp.records:
            for t in _texts(rec.input):
                seen.setdefault((rec.suite, t), set()).add(rec.sample_id)
    return {k: next(iter(v)) for k, v in seen.items() if len(v) == 1}


def pair_by_doc_hash(runs: list[EvalRun]) -> list[str]:
    """When lm-eval samples files are among ``runs``, key every assay run's records by their lm-eval ``doc_hash`` too
    (in place), so an assay run pairs with its own export or with any file of the same docs. Returns warnings for
    imported files that share no sample with a run (they are compared unpaired: nothing is left to pair)."""
    imported = [r for r in runs if is_lm_eval_samples(r.path)]
    if not imported:
        return []
    known = {rec.sample_id for imp in imported for rec in imp.records}
    by_text = _text_index(imported)

    def key(rec: Record) -> str:
        h = doc_hash(_doc(rec))
        if h in known:  # an assay export of the same run
            return h
        # another harness's file: its doc is the dataset row, so match the row by the text the prompt was built from
        # (GSM8K's question, IFEval's prompt) when that text names one document
        return next((by_text[(rec.suite, t)] for t in _texts(rec.input) if (rec.suite, t) in by_text), h)

    for r in runs:
        if r in imported:
            continue
        r.records = [rec.model_copy(update={"sample_id": key(rec),
                                            "meta": {**(rec.meta or {}), "assay_sample_id": rec.sample_id}})
                     for rec in r.records]
    warnings = []
    for imp in imported:
        ids = {rec.sample_id for rec in imp.records}
        for r in runs:
            if r is imp:
                continue
            if not ids & {rec.sample_id for rec in r.records}:
                warnings.append(f"{imp.path.name} shares no doc_hash with {r.run_id}: the docs differ (another "
                                "harness's wording), so its samples cannot be paired; compare only the overall scores")
    return warnings


EXPORTERS.update({"lm-eval": to_lm_eval, "inspect": to_inspect})
FORMATS = tuple(EXPORTERS)
