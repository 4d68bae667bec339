"""Optional experiment tracking: ``assay eval --log-to mlflow`` logs a finished run to MLflow (lazily imported; the
``mlflow`` extra, or ``pip install mlflow-skinny``). Where it goes is MLflow's own setting: ``MLFLOW_TRACKING_URI``
(default: a local ``./mlruns`` file store — MLflow 3 keeps that backend in maintenance mode, so assay opts in with
``MLFLOW_ALLOW_FILE_STORE=true`` when it picks it; a ``sqlite:///...`` URI needs full ``mlflow``), experiment ``MLFLOW_EXPERIMENT_NAME`` (default "assay").

Logged: the fingerprint (flattened) and engine as params, the fingerprint hash and run id as tags, every suite's
headline value with its interval bounds and n as metrics, and manifest.json, summary.json and any report files in the
run folder as artifacts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from assay.errors import PrerequisiteError

TARGETS = ("mlflow",)


def _flat(d, prefix=""):
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def log_to_mlflow(run_dir: Path, manifest, summary: dict) -> str:
    """Log one eval run; returns the MLflow run id."""
    try:
        import mlflow
    except ImportError:
        raise PrerequisiteError("--log-to mlflow needs MLflow: pip install 'assay[mlflow]' (or mlflow-skinny)") from None
    uri = os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "assay"))
    with mlflow.start_run(run_name=manifest.run_id) as active:
        params = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v)
                  for k, v in _flat(manifest.fingerprint).items()}
        mlflow.log_params({k[:250]: str(v)[:500] for k, v in params.items()})
        mlflow.set_tags({"assay.run_id": manifest.run_id, "assay.fingerprint_hash": manifest.fingerprint_hash,
                         "assay.status": manifest.status})
        metrics = {}
        for suite, s in (summary.get("suites") or {}).items():
            for k in ("value", "low", "high", "n", "errors", "truncated", "unparsed"):
                if s.get(k) is not None:
                    metrics[f"{suite}.{k}"] = float(s[k])
        mlflow.log_metrics(metrics)
        from assay.store import MANIFEST, SUMMARY

        for name in (MANIFEST, SUMMARY, "report.html", "report.md"):
            p = Path(run_dir) / name
            if p.is_file():
                mlflow.log_artifact(str(p))
        return active.info.run_id
