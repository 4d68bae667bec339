"""``assay eval --recheck K``: how deterministic are the stored answers? Ask K of them again and count.

Greedy decoding is not bit-reproducible on most engines: the numbers a kernel adds up depend on which other
requests share the batch, so the same prompt can get another answer at another concurrency. A recheck measures it
on a finished run, after the eval and without changing it:

1. **Eligible** answers: records with status ok / truncated / unparsed of single-call suites (a conversational
   suite — ``converse`` — is skipped: its later calls depend on the earlier replies), whose request, rebuilt with the
   runner's own ``request_for`` (suite messages, ``--system-prompt``, the run's sampling parameters with the suite's
   ``request_params``), is exactly what the record says was sent. Anything else is counted by reason.
2. **K of them**, chosen with the run's seed (a seeded shuffle of the eligible answers in suite order and sample id:
   a smaller K picks a prefix of a larger one). K larger than what is eligible asks all of them and says so.
3. Each is **asked twice** with the same messages and parameters: once at concurrency 1 (pass ``c1``), then all of
   them again at the run's concurrency (pass ``run``: the concurrency of the last session that answered samples).
4. The new answers are scored by the suite's own scorer (the runner's ``Scorer`` and ``score_completion``), and per
   pass, per suite and overall: the share of **identical** completions (exact string equality) with n and a 95 %
   Wilson interval, and the **flips** (score value differs from the stored one). A failed request is counted in
   ``errors`` and left out of n, as in the scorecard. ``scorer_drift`` counts identical answers whose score changed
   (a scorer that changed since the run: ``--rescore`` first).

Stored in the run folder, which stays otherwise untouched (records.jsonl and summary.json are not rewritten):
``recheck.jsonl`` — one ``RecheckRecord`` per re-asked sample and pass, appended durably (write + fsync per answer);
``recheck.json`` — the index of recheck passes (``latest`` and, per ``recheck_id``, the choice, counts and figures),
replaced atomically. Every invocation is a new recheck (a new measurement); records of a recheck that was cut off
stay in the file under their id, and the index says ``interrupted``.

Example:
    from assay.engines import connect
    from assay.evals.recheck import recheck
    res = recheck("runs/20250101-120000-ab12cd34", connect("http://127.0.0.1:8000/v1"), k=20)
    print(res["passes"]["c1"]["all"]["identical"]["value"], res["passes"]["run"]["all"]["flips"]["k"])
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from assay.client import Client, SamplingParams
from assay.common import dumps
from assay.errors import AssayError, RequestError
from assay import stats
from assay.evals.base import Record, Suite, as_suite, conversational, status_for
from assay import store as _store
from assay.store import (RECHECK, RECHECK_INDEX, RECORDS, EvalManifest, RecordWriter, RunStore, iso_now,
                         register_record, trim_torn_tail)

ELIGIBLE = ("ok", "truncated", "unparsed")
PASSES = ("c1", "run")


class RecheckRecord(BaseModel):
    """One re-asked sample in one pass (one line of recheck.jsonl)."""

    model_config = ConfigDict(extra="ignore")

    recheck_id: str
    suite: str
    sample_id: str
    pass_name: Literal["c1", "run"]
    concurrency: int
    identical: bool | None = None  # None: the request failed (no answer to compare)
    stored_value: float | None = None
    new_value: float | None = None
    flipped: bool | None = None
    stored_status: str = "ok"
    status: str = "ok"  # of the new answer: ok | truncated | unparsed | error
    completion: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None
    completion_tokens: int | None = None
    e2e_s: float | None = None
    endpoint: str | None = None
    error: str | None = None
    finished_at: str | None = None


register_record("recheck", RecheckRecord)  # what assay.store reads recheck.jsonl as


@dataclass
class Candidate:
    record: Record
    messages: list[dict]
    params: SamplingParams


# ---- what is asked again -------------------------------------------------------------------------------------------
def run_concurrency(manifest: EvalManifest) -> int:
    """The concurrency the run's answers were made at: that of the last session that answered samples."""
    for s in reversed(manifest.sessions or []):
        if s.get("samples"):
            return max(1, int(s.get("concurrency") or manifest.concurrency or 1))
    return max(1, int(manifest.concurrency or 1))


def _norm(x: Any) -> Any:
    return json.loads(dumps(x, sort_keys=True))


def candidates(records, suites: dict[str, Suite], params: SamplingParams, system_prompt: str | None,
               order: list[str] | None = None) -> tuple[list[Candidate], Counter]:
    """The eligible answers (see the module doc) in suite order, then sample id; and the others counted by reason:
    ``conversational``, ``status`` (an error, or no completion), ``request_changed``, ``suite_unavailable``."""
    from assay.evals.runner import request_for

    out: list[Candidate] = []
    skipped: Counter = Counter()
    for r in records:
        suite = suites.get(r.suite)
        if suite is None:
            skipped["suite_unavailable"] += 1
            continue
        if conversational(suite) or r.turns:
            skipped["conversational"] += 1
            continue
        if r.status not in ELIGIBLE or r.completion is None or r.score is None:
            skipped["status"] += 1
            continue
        try:
            messages, p = request_for(suite, r.sample(), params, system_prompt)
        except Exception:  # noqa: BLE001 - the suite cannot build it again: not the same request
            skipped["request_changed"] += 1
            continue
        sent_params = p.model_dump(exclude_none=True)
        if _norm(messages) != _norm(r.messages) or (r.params and _norm(sent_params) != _norm(r.params)):
            skipped["request_changed"] += 1
            continue
        out.append(Candidate(r, messages, p))
    rank = {n: i for i, n in enumerate(order or [])}
    out.sort(key=lambda c: (rank.get(c.record.suite, len(rank)), c.record.suite, str(c.record.sample_id)))
    return out, skipped


def choose(cands: list[Candidate], k: int, seed: int) -> list[Candidate]:
    """``k`` of ``cands`` (all when k is not smaller), a seeded shuffle's prefix, then back in their order."""
    idx = list(range(len(cands)))
    random.Random(seed).shuffle(idx)
    return [cands[i] for i in sorted(idx[:k])]


# ---- the store -----------------------------------------------------------------------------------------------------
def read_index(run_dir: Path | str) -> dict:
    """recheck.json, migrated (``assay.store.read_index``); an empty index when the run was never rechecked."""
    return _store.read_index(run_dir, RECHECK_INDEX)


def _write_entry(run_dir: Path, entry: dict) -> None:
    idx = read_index(run_dir)
    idx["rechecks"][entry["recheck_id"]] = entry
    idx["latest"] = entry["recheck_id"]
    _store.write_index(run_dir, RECHECK_INDEX, idx)


def rechecks(run_dir: Path | str, recheck_id: str | None = None) -> list[RecheckRecord]:
    """The stored recheck records (of one recheck, or all of them)."""
    return list(_store.Run(run_dir).rechecks(recheck_id))


def latest(run_dir: Path | str) -> dict | None:
    """The newest recheck's entry of recheck.json, or None when the run was never rechecked."""
    idx = read_index(run_dir)
    return idx["rechecks"].get(idx["latest"]) if idx.get("latest") else None


# ---- the figures ---------------------------------------------------------------------------------------------------
def _figures(lines: list[RecheckRecord]) -> dict:
    done = [r for r in lines if r.status != "error"]
    n = len(done)
    same = sum(bool(r.identical) for r in done)
    flips = sum(bool(r.flipped) for r in done)
    return {"identical": stats.proportion_summary(same, n), "flips": stats.proportion_summary(flips, n),
            "errors": len(lines) - n, "asked": len(lines),
            "scorer_drift": sum(bool(r.identical and r.flipped) for r in done)}


def summarize_recheck(lines: list[RecheckRecord], concurrency: dict[str, int]) -> dict:
    """Per pass: ``{"concurrency", "all": figures, "suites": {suite: figures}}``; figures are ``identical`` and
    ``flips`` (proportion summaries: value, low, high, n, k), ``errors``, ``asked`` and ``scorer_drift``."""
    out = {}
    for name in PASSES:
        mine = [r for r in lines if r.pass_name == name]
        suites = sorted({r.suite for r in mine})
        out[name] = {"concurrency": concurrency[name], "all": _figures(mine),
                     "suites": {s: _figures([r for r in mine if r.suite == s]) for s in suites}}
    return out


def headline(entry: dict) -> dict:
    """The ``recheck`` object of ``assay eval``'s last JSON line."""

    def flat(f: dict) -> dict:
        i, fl = f["identical"], f["flips"]
        return {"identical": i["value"], "low": i["low"], "high": i["high"], "n": i["n"], "flips": fl["k"],
                "flip_share": fl["value"], "errors": f["errors"]}

    passes = entry.get("passes") or {}
    return {"recheck_id": entry["recheck_id"], "status": entry["status"], "eligible": entry["eligible"],
            "k": entry["k"], "asked": entry["asked"], "skipped": entry["skipped"],
            **{name: {"concurrency": p["concurrency"], **flat(p["all"]),
                      "suites": {s: flat(f) for s, f in p["suites"].items()}} for name, p in passes.items()}}


def render(entry: dict, *, console=None) -> None:
    """A short table beside the scorecard: per pass, overall then per suite."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    passes = entry.get("passes") or {}
    cs = " and ".join(f"c={p['concurrency']}" for p in passes.values())
    t = Table(title=f"recheck {entry['recheck_id']}", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("pass · suite", no_wrap=True, overflow="ellipsis", max_width=30)
    for col in ("identical", "95% CI", "n", "flips", "err"):
        t.add_column(col, justify="right", no_wrap=True)

    def row(label: str, f: dict, style=None) -> None:
        i, fl = f["identical"], f["flips"]
        v = "—" if i["value"] is None else f"{i['value']:.3f}"
        ci = "—" if i["value"] is None else f"{i['low']:.3f}–{i['high']:.3f}"
        flips = f"{fl['k']}" + ("" if fl["value"] is None else f" ({fl['value']:.0%})")
        t.add_row(label, v, ci, str(i["n"]), flips, str(f["errors"]), style=style)

    for name, p in passes.items():
        row(f"{name} (c={p['concurrency']})", p["all"], style="bold")
        for s, f in p["suites"].items():
            row(f"  {s}", f)
        t.add_section()
    console.print(t)
    console.print(f"{entry['asked']} of {entry['eligible']} eligible answers asked again at {cs} · identical: the "
                  "same completion, exact string · flips: the score differs from the stored one")
    for note in entry.get("notes") or []:
        console.print(f"[dim]{note}[/dim]")


# ---- the recheck ---------------------------------------------------------------------------------------------------
def _notes(k: int, eligible: int, skipped: Counter, conv: list[str]) -> list[str]:
    notes = []
    if k > eligible:
        notes.append(f"--recheck {k}: only {eligible} answers are eligible; all {eligible} were asked again")
    if conv:
        notes.append(f"conversational suites not rechecked: {', '.join(conv)} ({skipped['conversational']} answers)")
    if skipped.get("status"):
        notes.append(f"{skipped['status']} records without an answer (errors) not rechecked")
    if skipped.get("request_changed"):
        notes.append(f"{skipped['request_changed']} records not rechecked: the suite now builds another request than "
                     "the one stored (suite changed since the run?)")
    if skipped.get("suite_unavailable"):
        notes.append(f"{skipped['suite_unavailable']} records not rechecked: their suite cannot be built here")
    return notes


async def recheck_async(run_dir: str | Path, endpoints=None, *, k: int, client: Client | None = None,
                        suites: dict[str, Any] | None = None, concurrency: int | None = None,
                        scoring_workers: int | None = None, fsync: bool = True,
                        observer: Callable[[RecheckRecord], None] | None = None) -> dict:
    """Recheck ``k`` answers of the finished run in ``run_dir`` against ``endpoints`` (or a ready ``client``):
    the entry written to recheck.json (see the module doc). ``suites`` (name -> suite) default: rebuilt from the
    manifest, as ``--rescore`` does; ``concurrency`` of the second pass default: the run's."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise AssayError(f"--recheck {k!r}: give how many answered samples to ask again, 1 or more "
                         "(e.g. --recheck 20)")
    if client is None:
        async with Client(endpoints) as own:
            return await recheck_async(run_dir, k=k, client=own, suites=suites, concurrency=concurrency,
                                       scoring_workers=scoring_workers, fsync=fsync, observer=observer)
    from assay.evals.runner import score_completion
    from assay.evals.scorecard import suites_for
    from assay.evals.scoring import Scorer

    store = RunStore(run_dir, Record, RECORDS)
    man = store.manifest
    if man.kind != "eval":
        raise AssayError(f"{store.dir} is a {man.kind} run: --recheck asks an eval run's samples again")
    if man.status != "finished":
        raise AssayError(f"run {man.run_id} is {man.status}: finish it first (re-run the same command), then recheck")
    fp = man.fingerprint or {}
    ep = client.endpoints[0]
    if fp.get("model") and ep.model != fp["model"]:
        raise AssayError(f"--recheck: {ep.base_url} serves {ep.model!r} but run {man.run_id} was made with "
                         f"{fp['model']!r}: recheck against the same model")
    if fp.get("engine") and ep.engine != fp["engine"]:
        raise AssayError(f"--recheck: {ep.base_url} is {ep.engine!r} but run {man.run_id} ran on {fp['engine']!r}: "
                         "recheck on the same engine")
    try:
        params = SamplingParams(**fp.get("params", {}))
    except ValidationError as e:
        raise AssayError(f"--recheck: run {man.run_id} stores sampling parameters this assay cannot rebuild "
                         f"({str(e).splitlines()[0]}): recheck it with the assay that made it") from None
    system_prompt, seed = fp.get("system_prompt"), int(fp.get("seed") or 0)
    suites = {n: as_suite(s) for n, s in suites.items()} if suites is not None else suites_for(man)
    c_run = int(concurrency) if concurrency is not None else run_concurrency(man)
    if c_run < 1:
        raise AssayError(f"recheck concurrency {c_run}: must be 1 or more")
    conc = {"c1": 1, "run": c_run}

    with store.lock():
        for name in man.suites:  # learn server facts the suite's messages may depend on, as the runner did
            if name in suites:
                await suites[name].prepare(client)
        cands, skipped = candidates(store.records(), suites, params, system_prompt, order=man.suites)
        conv = sorted(n for n in man.suites if n in suites and conversational(suites[n]))
        if not cands:
            raise AssayError(f"--recheck: run {man.run_id} has no answer to ask again (eligible: answers with status "
                             f"{'/'.join(ELIGIBLE)} of single-call suites"
                             + (f"; conversational suites are not rechecked: {', '.join(conv)}" if conv else "") + ")")
        chosen = choose(cands, k, seed)
        rid = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"
        entry: dict[str, Any] = {
            "recheck_id": rid, "created_at": iso_now(), "finished_at": None, "status": "running", "seed": seed,
            "k": k, "asked": len(chosen), "eligible": len(cands),
            "eligible_by_suite": dict(Counter(c.record.suite for c in cands)),
            "chosen_by_suite": dict(Counter(c.record.suite for c in chosen)),
            "skipped": {r: n for r, n in sorted(skipped.items())}, "conversational_suites": conv,
            "concurrency": conc, "model": ep.model, "engine": ep.engine,
            "endpoints": [e.base_url for e in client.endpoints], "notes": _notes(k, len(cands), skipped, conv),
            "passes": None}
        _write_entry(store.dir, entry)
        path = store.dir / RECHECK
        trim_torn_tail(path)
        writer = RecordWriter(path, fsync=fsync)
        scorer = Scorer({n: suites[n] for n in {c.record.suite for c in chosen}}, scoring_workers)
        fatal: BaseException | None = None

        async def one(c: Candidate, name: str) -> None:
            r, sample = c.record, c.record.sample()
            line: dict[str, Any] = dict(recheck_id=rid, suite=r.suite, sample_id=r.sample_id, pass_name=name,
                                        concurrency=conc[name], stored_value=r.value, stored_status=r.status)
            try:
                comp = await client.chat(c.messages, c.params)
            except RequestError as e:
                line.update(status="error", error=str(e))
            else:
                line.update(completion=comp.text, reasoning=comp.reasoning, finish_reason=comp.finish_reason,
                            completion_tokens=comp.completion_tokens, e2e_s=comp.e2e_s, endpoint=comp.endpoint,
                            identical=comp.text == r.completion)
                try:
                    score = await score_completion(scorer, r.suite, comp.text, sample,
                                                   think_unclosed=comp.think_unclosed)
                except Exception as e:  # noqa: BLE001 - as in the runner: a scorer failure is that sample's error
                    line.update(status="error", error=f"scoring failed: {type(e).__name__}: {e}", identical=None)
                else:
                    new = float(score.value)
                    line.update(new_value=new, status=status_for(comp.finish_reason, score, None),
                                flipped=r.value is not None and new != r.value)
            rec = RecheckRecord(**line, finished_at=iso_now())
            writer.append(rec)
            if observer is not None:
                observer(rec)

        async def run_pass(name: str) -> None:
            sem = asyncio.Semaphore(conc[name])

            async def gated(c: Candidate) -> None:
                async with sem:
                    await one(c, name)

            tasks = [asyncio.create_task(gated(c)) for c in chosen]
            try:
                await asyncio.gather(*tasks)
            except BaseException:  # one failure stops the pass: no request left running when the writer closes
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

        try:
            await scorer.start()
            for name in PASSES:
                await run_pass(name)
        except BaseException as e:  # the server gone (EndpointUnreachable, EngineDied), Ctrl-C: kept as interrupted
            fatal = e
            raise
        finally:
            writer.close()
            scorer.close()
            lines = rechecks(store.dir, rid)
            entry.update(status="interrupted" if fatal is not None else "finished",
                         finished_at=iso_now() if fatal is None else None,
                         passes=summarize_recheck(lines, conc))
            if fatal is not None:
                entry["ended_by"] = f"{type(fatal).__name__}: {fatal}"
            _write_entry(store.dir, entry)
    return entry


def recheck(run_dir: str | Path, endpoints=None, **kw) -> dict:
    """Synchronous wrapper of ``recheck_async`` (same arguments)."""
    return asyncio.run(recheck_async(run_dir, endpoints, **kw))
