"""The judge step over stored eval runs, as one function that ``assay judge``, ``assay eval --judge``, ``assay
compare --judge`` and ``assay review`` share: rubric passes on one run, or a pairwise pass over two runs' shared
samples; the summaries, the warnings (a judge judging itself) and the JSON result. Rendering is the caller's: it
passes ``progress`` (a context manager factory yielding a per-record callback) and ``show`` (called with each
summary as it is ready).

Example:
    from assay.judge import provide_judge
    with provide_judge("embedded") as eps:
        out = judge_runs(Path("runs/A"), None, eps, rubrics=["naturalness"])
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Callable

from assay.common import short_model


@contextlib.contextmanager
def _no_progress():
    yield None


def judge_runs(run_a: Path, run_b: Path | None, eps: list, *, rubrics: list[str] | None = None,
               template: str = "pairwise", suites: list[str] | None = None, limit: int | None = None,
               concurrency: int = 4, max_tokens: int = 256,
               progress: Callable[[], contextlib.AbstractContextManager] = _no_progress,
               show: Callable[[str, str, dict], None] | None = None) -> dict:
    """Judge ``run_a`` with rubric templates (``rubrics``; default: per suite), or ``run_a`` against ``run_b``
    pairwise in both orders. Resumable: the passes are stored in the run folder. ``show(kind, name, summary)``:
    kind "rubric" or "pairwise". Returns the JSON-able result (pass ids, new and resumed calls, summaries,
    warnings)."""
    from assay.client import Client, SamplingParams
    from assay.judge import rubrics_for, same_model
    from assay.judge.run import judge_pairwise, judge_rubric
    from assay.judge.summary import pairwise_summary, rubric_summary
    from assay.judge.templates import load_template
    from assay.store import read_manifest

    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=0)
    ma = read_manifest(run_a)
    mb = read_manifest(run_b) if run_b else None
    model_of = lambda m: str((m.fingerprint or {}).get("model") or "?")  # noqa: E731
    judged_models = [model_of(ma)] + ([model_of(mb)] if mb else [])
    warnings: list[str] = []
    out: dict = {"run_a": ma.run_id or Path(run_a).name, "judge_model": eps[0].model, "warnings": warnings}

    async def go():
        async with Client(eps) as client:
            for m in dict.fromkeys(judged_models):
                if same_model(client.model, m):
                    warnings.append(f"the judge ({client.model}) is the same model as one being judged ({m}): "
                                    "judges favour their own answers; treat these numbers as a smoke test")
            if run_b is None:
                out["rubrics"] = {}
                for name in rubrics or rubrics_for(suites or ma.suites):
                    t = load_template(name)
                    with progress() as tick:
                        res = await judge_rubric(run_a, t, client, params=params, suites=suites, limit=limit,
                                                 concurrency=concurrency, observer=tick)
                    summ = rubric_summary(res.records, t.scale or (1, 5))
                    if show:
                        show("rubric", t.ref, summ)
                    out["rubrics"][t.name] = {"pass_id": res.pass_id, "template": t.ref, "new_calls": res.new,
                                              "resumed": res.kept, "summary": summ}
                return
            t = load_template(template)
            with progress() as tick:
                res = await judge_pairwise(run_a, run_b, t, client, params=params, suites=suites, limit=limit,
                                           concurrency=concurrency, observer=tick)
            ids = (ma.run_id or Path(run_a).name, mb.run_id or Path(run_b).name)
            names = (short_model(model_of(ma)) or ids[0], short_model(model_of(mb)) or ids[1])
            if names[0] == names[1]:
                names = (f"A ({ids[0]})", f"B ({ids[1]})")
            summ = pairwise_summary(res.records, names)
            if show:
                show("pairwise", t.ref, summ)
            out.update(run_b=ids[1], pass_id=res.pass_id, template=t.ref, new_calls=res.new, resumed=res.kept,
                       pairwise={k: v for k, v in summ.items() if k != "samples"})

    asyncio.run(go())
    return out


def judge_votes_agreement(votes: list[dict], eps: list, out_dir: Path, *, max_tokens: int = 256,
                          concurrency: int = 4) -> dict:
    """The judge on every arena vote's pair in both orders, against the people: Cohen's kappa and raw agreement,
    plus a warning when the judge is one of the arena's models. The JSON-able result."""
    from assay.client import Client, SamplingParams
    from assay.judge import same_model
    from assay.judge.run import judge_votes
    from assay.judge.summary import people_agreement
    from assay.judge.templates import load_template

    async def go():
        async with Client(eps) as c:
            return await judge_votes(votes, out_dir, load_template("pairwise"), c,
                                     params=SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=0),
                                     concurrency=concurrency)

    res = asyncio.run(go())
    agree = people_agreement(votes, res.records)
    models = {v["model_a"] for v in votes} | {v["model_b"] for v in votes}
    warn = [f"the judge ({eps[0].model}) is one of the arena's models: it may favour its own answers"
            for m in models if same_model(eps[0].model, m)][:1]
    return {**agree, "judge_model": eps[0].model, "pass_id": res.pass_id, "warnings": warn}


def judge_pairs(runs: list, eps: list, *, limit: int | None = None, concurrency: int = 4, max_tokens: int = 256,
                progress: Callable[[], contextlib.AbstractContextManager] = _no_progress,
                show: Callable[[str, str, dict], None] | None = None) -> list[dict]:
    """Pairwise judge passes for every pair of ``runs`` (objects with ``path`` and ``label``), each stored in the
    pair's first run folder (resumable). One result per pair, with the pair's labels as "a" and "b"."""
    from itertools import combinations

    return [{"a": x.label, "b": y.label, **judge_runs(x.path, y.path, eps, template="pairwise", limit=limit,
                                                      concurrency=concurrency, max_tokens=max_tokens,
                                                      progress=progress, show=show)}
            for x, y in combinations(runs, 2)]
