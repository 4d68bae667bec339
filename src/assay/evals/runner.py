"""The eval runner: suites × one OpenAI-compatible client -> a crash-safe, resumable run folder.

How a run goes:
1. Each suite's samples are streamed once to count them and hash them (unless the suite has ``data_hash()``); with
   the suite versions and prompt templates, the model id the server reports, the engine, the sampling parameters,
   the seed and the limit, that is the *fingerprint*. Its hash picks the run folder: the same command finds the same
   run and resumes it; a different fingerprint gets a new run id, so two configurations never mix.
2. Samples are streamed again through a bounded queue into ``concurrency`` workers. A worker builds the messages,
   calls the client (which retries connection errors / 429 / 5xx a bounded number of times), scores the answer and
   hands the Record to the single writer, which appends it, fsyncs (group commit: one fsync for all records that
   are ready) and only then counts it. SIGKILL at any moment loses at most the samples in flight.
3. A failed request is a Record with status "error" and the message; the run goes on — unless the server is gone
   (the engine we started died: ``EngineDied``, with its exit signal and log tail; or no server answered after the
   client's retries): then the run stops at once as "interrupted", saying why (``ended_by``), finished records kept,
   and the error propagates (the CLI exits non-zero). On resume, done samples are skipped and error records are
   dropped and tried again, so records.jsonl keeps one record per sample.
4. Scoring marked ``slow_scoring`` runs in a process pool with a per-sample timeout (a worker that overruns is
   killed; the sample gets Score(parsed=False, reason="scoring timeout")). Math-Verify's SIGALRM timeout works there
   because each worker runs the scorer in its main thread.
5. At the end: summary.json (the scorecard), suite artifacts, and the manifest with counts and throughput.

Example:
    from assay.client import Client, SamplingParams
    from assay.engines import connect
    from assay.evals.runner import run
    eps = connect("http://127.0.0.1:8000/v1")
    result = run(["math", "json"], eps, out_dir="runs", params=SamplingParams(max_tokens=384), limit=20)
    print(result.run_dir, result.summary["suites"]["math"]["value"])
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import pickle
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from assay.client import Client, Completion, SamplingParams
from assay.errors import AssayError, DataError, EndpointUnreachable, EngineDied, RequestError
from assay.evals.base import Record, Sample, Score, stable_hash, status_for
from assay.evals.scorecard import summarize
from assay.evals.store import (MANIFEST, RECORDS, SUMMARY, RecordWriter, RunLock, find_run, iter_records,
                               new_run_id, read_manifest, rewrite_records, trim_torn_tail, write_json_atomic)

DEFAULT_SCORING_TIMEOUT_S = 30.0
STATUS_KEYS = ("ok", "error", "truncated", "unparsed")


# ---- fingerprint ---------------------------------------------------------------------------------------------------
def _scan(suite, seed: int, limit: int | None) -> tuple[int, str]:
    """Stream the samples once: their count and (unless the suite hashes its own data) a hash of all of them.
    Duplicate ids are a suite bug that would break resume and pairing, so they stop the run here."""
    h = hashlib.sha256()
    seen: set[str] = set()
    n = 0
    for s in suite.samples(seed, limit):
        if s.id in seen:
            raise DataError(f"suite {suite.name!r} yields sample id {s.id!r} twice: ids must be unique")
        seen.add(s.id)
        n += 1
        h.update(json.dumps(dataclasses.asdict(s), sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    hook = getattr(suite, "data_hash", None)
    data_hash = str(hook()) if callable(hook) else h.hexdigest()[:16]
    return n, data_hash


def fingerprint(suites: list, suite_scan: dict[str, tuple[int, str]], *, model: str, engine: str,
                engine_version: str | None, params: SamplingParams, seed: int, limit: int | None) -> dict:
    """Everything that, if changed, makes two runs incomparable. Its hash decides resume vs new run."""
    return {
        "suites": {s.name: {"version": str(s.version), "data_hash": suite_scan[s.name][1],
                            "prompt_template": getattr(s, "prompt_template", None)} for s in suites},
        "model": model,
        "engine": engine,
        "engine_version": engine_version,
        "params": params.model_dump(),
        "seed": seed,
        "limit": limit,
    }


# ---- scoring -------------------------------------------------------------------------------------------------------
_WORKER_SUITES: dict[str, Any] = {}


def _worker_init(blob: bytes) -> None:
    global _WORKER_SUITES
    _WORKER_SUITES = pickle.loads(blob)


def _worker_score(suite_name: str, completion: str, sample: Sample) -> Score:
    return _WORKER_SUITES[suite_name].score(completion, sample)


def _worker_ping() -> int:
    return os.getpid()


class Scorer:
    """Calls ``suite.score`` inline for fast scorers and in a killable process pool for ``slow_scoring`` ones."""

    def __init__(self, suites: dict[str, Any], workers: int | None = None):
        self.suites = suites
        self.slow = {n for n, s in suites.items() if getattr(s, "slow_scoring", False)}
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None
        self._sem: asyncio.Semaphore | None = None
        self._blob: bytes | None = None
        self._threaded = False
        self._warm: asyncio.Future | None = None

    async def start(self) -> None:
        """Start and warm the pool (spawned workers import the suites once) so start-up is not billed to the first
        samples' scoring timeouts."""
        if not self.slow:
            return
        self._sem = asyncio.Semaphore(self.workers)
        try:
            self._blob = pickle.dumps({n: self.suites[n] for n in self.slow})
        except Exception as e:  # noqa: BLE001 - any pickling failure means: no process pool for this suite
            print(f"warning: slow suites cannot be sent to a worker process ({type(e).__name__}: {e}); scoring in "
                  "threads, where a runaway scorer cannot be killed", file=sys.stderr)
            self._threaded = True
            return
        pool = self._get_pool()
        # Warm up in the background while the first requests are out; score() waits for it before its timeout runs.
        self._warm = asyncio.gather(*(asyncio.wrap_future(pool.submit(_worker_ping)) for _ in range(self.workers)),
                                    return_exceptions=True)

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing as mp

            # spawn, not fork: the parent has threads (event loop executors, HTTP pools) that fork would copy mid-air.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_worker_init, initargs=(self._blob,))
        return self._pool

    def _kill(self, pool: ProcessPoolExecutor) -> None:
        """A scorer that overran cannot be cancelled inside a ProcessPoolExecutor: kill its processes (private
        ``_processes``; there is no public way) and let the next call start a fresh pool."""
        if self._pool is pool:
            self._pool = None
        for p in list((getattr(pool, "_processes", None) or {}).values()):
            try:
                p.kill()
            except Exception:  # noqa: BLE001 - already gone
                pass
        pool.shutdown(wait=False, cancel_futures=True)

    async def score(self, suite_name: str, completion: str, sample: Sample) -> Score:
        suite = self.suites[suite_name]
        if suite_name not in self.slow:
            return suite.score(completion, sample)
        timeout = float(getattr(suite, "scoring_timeout_s", DEFAULT_SCORING_TIMEOUT_S))
        timed_out = Score(0.0, reason=f"scoring timeout ({timeout:g} s)", parsed=False)
        assert self._sem is not None, "Scorer.start() not awaited"
        if self._warm is not None:
            await self._warm
        async with self._sem:  # at most `workers` submitted: a queued task must not burn its timeout waiting
            if self._threaded:
                try:
                    return await asyncio.wait_for(asyncio.to_thread(suite.score, completion, sample), timeout)
                except asyncio.TimeoutError:
                    return timed_out
            for _ in range(3):
                pool = self._get_pool()
                fut = asyncio.wrap_future(pool.submit(_worker_score, suite_name, completion, sample))
                try:
                    return await asyncio.wait_for(fut, timeout)
                except asyncio.TimeoutError:
                    self._kill(pool)
                    return timed_out
                except BrokenProcessPool:  # another sample's timeout killed the pool under us: try again
                    self._kill(pool)
            return Score(0.0, reason="scoring worker crashed", parsed=False)

    def close(self) -> None:
        if self._warm is not None and not self._warm.done():
            self._warm.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


async def score_completion(scorer: Scorer, suite_name: str, completion: str, sample: Sample, *,
                           think_unclosed: bool = False) -> Score:
    """The Score for one answer; a thinking model that never closed <think> has no answer to score."""
    if think_unclosed:
        return Score(0.0, reason="unclosed <think>: no answer", parsed=False, extra={"think_unclosed": True})
    return await scorer.score(suite_name, completion, sample)


# ---- the run -------------------------------------------------------------------------------------------------------
class Observer:
    """Progress hooks (the CLI draws rich bars with them). All are optional no-ops here."""

    def begin(self, run_dir: Path, totals: dict[str, int], done: dict[str, dict[str, int]], resumed: bool,
              scores: dict[str, tuple[float, int]]) -> None: ...

    def record(self, rec: Record) -> None: ...


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    manifest: dict
    summary: dict
    resumed: bool = False
    samples_this_session: int = 0
    artifacts: list[Path] = field(default_factory=list)


def _zero_counts() -> dict[str, int]:
    return {k: 0 for k in STATUS_KEYS}


def _resolve_suites(suites: Iterable, suite_options: dict[str, dict] | None) -> list:
    from assay.evals.suites import get_suite

    out = []
    for s in suites:
        if isinstance(s, str):
            out.append(get_suite(s, **((suite_options or {}).get(s) or {})))
        else:
            out.append(s)
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise AssayError(f"suite listed twice: {', '.join(names)}")
    return out


def _merge_params(base: SamplingParams, override: dict | None) -> SamplingParams:
    if not override:
        return base
    return SamplingParams(**{**base.model_dump(), **override})


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, AssayError):
        return str(exc)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    return f"{type(exc).__name__}: {exc}\n{tb}"


async def run_eval(suites: Iterable, endpoints, *, out_dir: str | Path = "runs", params: SamplingParams | None = None,
                   seed: int = 0, limit: int | None = None, concurrency: int = 8, command: list[str] | None = None,
                   fresh: bool = False, suite_options: dict[str, dict] | None = None, observer: Observer | None = None,
                   scoring_workers: int | None = None, fsync: bool = True, client: Client | None = None) -> RunResult:
    """Run ``suites`` (names from the registry or Suite objects) against ``endpoints`` (Endpoint list, or pass a
    ready ``client``) into ``out_dir/<run-id>/``, resuming a run with the same fingerprint unless ``fresh``."""
    params = params or SamplingParams()
    observer = observer or Observer()
    suite_list = _resolve_suites(suites, suite_options)
    by_name = {s.name: s for s in suite_list}
    if client is None:
        async with Client(endpoints) as own:
            return await run_eval(suite_list, None, out_dir=out_dir, params=params, seed=seed, limit=limit,
                                  concurrency=concurrency, command=command, fresh=fresh, suite_options=suite_options,
                                  observer=observer, scoring_workers=scoring_workers, fsync=fsync, client=own)
    eps = client.endpoints
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    for s in suite_list:  # optional hook: learn facts about the server (context window, tokenizer) before sampling
        hook = getattr(s, "prepare", None)
        if callable(hook):
            await hook(client)
    scan = {s.name: _scan(s, seed, limit) for s in suite_list}
    totals = {name: n for name, (n, _) in scan.items()}
    fp = fingerprint(suite_list, scan, model=eps[0].model, engine=eps[0].engine, engine_version=eps[0].engine_version,
                     params=params, seed=seed, limit=limit)
    fp_hash = stable_hash(fp)

    run_dir = None if fresh else find_run(out_dir, fp_hash)
    resumed = run_dir is not None
    if run_dir is None:
        run_dir = out_dir / new_run_id(out_dir, fp_hash)
        run_dir.mkdir(parents=True)
    lock = RunLock(run_dir).acquire()
    scorer = Scorer(by_name, scoring_workers)
    try:
        records_path = run_dir / RECORDS
        old: dict = {}
        if resumed:
            old = read_manifest(run_dir)
            trim_torn_tail(records_path)
            if any(r.get("status") == "error" for r in iter_records(records_path)):
                # Errors are harness failures, not answers: drop them so they are tried again, keeping one record
                # per sample in the file (a retried sample never appears twice).
                rewrite_records(records_path, lambda r: None if r.get("status") == "error" else r)
        done: set[tuple[str, str]] = set()
        counts = {name: _zero_counts() for name in by_name}
        running: dict[str, list[float]] = {name: [0.0, 0] for name in by_name}  # score sum, n (progress only)
        for r in iter_records(records_path):
            key = (r["suite"], r["sample_id"])
            if key in done:
                raise AssayError(f"{records_path} holds {key} twice: the run is corrupt; start it again with --fresh")
            done.add(key)
            if r["suite"] in counts:
                counts[r["suite"]][r.get("status", "ok")] += 1
                if r.get("status") != "error" and r.get("score"):
                    running[r["suite"]][0] += float(r["score"]["value"])
                    running[r["suite"]][1] += 1

        run_id = run_dir.name
        now = time.time()
        manifest = {
            "kind": "eval",
            "run_id": run_id,
            "created_at": old.get("created_at", _iso(now)),
            "finished_at": None,
            "status": "running",
            "fingerprint": fp,
            "fingerprint_hash": fp_hash,
            "endpoints": [e.base_url for e in eps],
            # engine facts that are not part of the fingerprint (a run resumes across them), e.g. the AMX decision
            "engine": {k: v for k, v in {"name": eps[0].engine, "version": eps[0].engine_version,
                                         "llama_amx": (eps[0].extra or {}).get("llama_amx")}.items() if v is not None},
            "counts": {},
            "command": list(command) if command is not None else list(sys.argv),
            "concurrency": concurrency,
            "wall_s": old.get("wall_s", 0.0),
            "request_s_sum": old.get("request_s_sum", 0.0),
            "samples_per_s": old.get("samples_per_s"),
            "harness_overhead": old.get("harness_overhead"),
            "sessions": old.get("sessions", []),
            "suite_options": {k: v for k, v in (suite_options or {}).items() if k in by_name},
            "pid": os.getpid(),
        }

        def set_counts() -> None:
            manifest["counts"] = {name: {**counts[name], "total": totals[name],
                                         "done": sum(counts[name].values())} for name in by_name}

        set_counts()
        write_json_atomic(run_dir / MANIFEST, manifest)
        observer.begin(run_dir, totals, {n: dict(c) for n, c in counts.items()}, resumed,
                       {n: (v[0], int(v[1])) for n, v in running.items()})

        session = {"started_at": _iso(time.time()), "samples": 0, "request_s_sum": 0.0}
        t0 = time.perf_counter()
        await scorer.start()
        # A request that found no server after the client's retries stops the run: the server is gone, and failing
        # every remaining sample would only bury the cause. Finished records stay; the same command resumes.
        state: dict = {"unreachable": None}

        work: asyncio.Queue = asyncio.Queue(maxsize=2 * concurrency)
        written: asyncio.Queue = asyncio.Queue(maxsize=4 * concurrency)
        writer = RecordWriter(records_path, fsync=fsync)
        STOP = object()

        async def produce() -> None:
            for s in suite_list:
                for sample in s.samples(seed, limit):
                    if (s.name, sample.id) not in done:
                        await work.put((s, sample))
            for _ in range(concurrency):
                await work.put(STOP)

        async def one(suite, sample: Sample) -> Record:
            base = dict(run_id=run_id, suite=suite.name, sample_id=sample.id, category=sample.category,
                        target=sample.target, meta=dict(sample.meta), input=sample.input)
            try:
                messages = suite.messages(sample)
                hook = getattr(suite, "request_params", None)
                p = _merge_params(params, hook(sample) if callable(hook) else None)
            except Exception as e:  # noqa: BLE001 - a suite bug on one sample is that sample's error, not the run's
                return Record(**base, messages=[], completion=None, status="error", error=_error_text(e),
                              finished_at=time.time())
            rec_params = p.model_dump(exclude_none=True)
            t_send = time.perf_counter()
            try:
                comp: Completion = await client.chat(messages, p)
            except (RequestError, EndpointUnreachable) as e:
                dt = time.perf_counter() - t_send
                session["request_s_sum"] += dt
                if isinstance(e, EndpointUnreachable):
                    state["unreachable"] = state["unreachable"] or str(e)
                return Record(**base, messages=messages, completion=None, status="error", error=str(e),
                              params=rec_params, e2e_s=dt, finished_at=time.time())
            session["request_s_sum"] += comp.e2e_s
            rec = Record(**base, messages=messages, completion=comp.text, reasoning=comp.reasoning,
                         finish_reason=comp.finish_reason, prompt_tokens=comp.prompt_tokens,
                         completion_tokens=comp.completion_tokens, ttft_s=comp.ttft_s, e2e_s=comp.e2e_s,
                         params=rec_params, endpoint=comp.endpoint)
            try:
                score = await score_completion(scorer, suite.name, comp.text, sample,
                                               think_unclosed=comp.think_unclosed)
            except Exception as e:  # noqa: BLE001
                rec.status, rec.error = "error", f"scoring failed: {_error_text(e)}"
                rec.finished_at = time.time()
                return rec
            rec.score = score.to_dict()
            rec.status = status_for(comp.finish_reason, score, None)
            rec.finished_at = time.time()
            return rec

        async def worker() -> None:
            while True:
                item = await work.get()
                if item is STOP:
                    return
                rec = await one(*item)
                await written.put(rec)
                if state["unreachable"]:
                    raise EndpointUnreachable(f"{state['unreachable']}: run stopped")

        async def write_loop() -> None:
            # Group commit: write every record that is ready, fsync once, then count them. Durable before counted.
            while True:
                rec = await written.get()
                if rec is STOP:
                    return
                batch = [rec]
                stop = False
                while not written.empty():
                    nxt = written.get_nowait()
                    if nxt is STOP:
                        stop = True
                        break
                    batch.append(nxt)
                data = "".join(r.to_json() + "\n" for r in batch)
                await asyncio.to_thread(writer.append, data)
                for r in batch:
                    counts[r.suite][r.status] += 1
                    session["samples"] += 1
                    observer.record(r)
                if stop:
                    return

        wtask = asyncio.create_task(write_loop())
        ptask = asyncio.create_task(produce())
        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        status = "interrupted"
        fatal: BaseException | None = None
        main = asyncio.gather(ptask, *workers)
        try:
            # The writer only ends early by failing (disk full ...): then stop the workers instead of blocking them.
            await asyncio.wait({main, wtask}, return_when=asyncio.FIRST_COMPLETED)
            if wtask.done():
                wtask.result()
                raise AssayError("record writer stopped unexpectedly")
            await main
            await written.put(STOP)
            await wtask
            status = "finished"
        except (EngineDied, EndpointUnreachable) as e:
            fatal = e
            raise
        finally:
            if status != "finished":
                main.cancel()
                await asyncio.gather(main, return_exceptions=True)
                # Records already handed to the writer are finished samples: keep them.
                if not wtask.done():
                    await written.put(STOP)
                    await asyncio.gather(wtask, return_exceptions=True)
            writer.close()
            wall = time.perf_counter() - t0
            sess = {**session, "wall_s": wall, "concurrency": concurrency,
                    "samples_per_s": session["samples"] / wall if wall > 0 else None,
                    "harness_overhead": _overhead(wall, session["request_s_sum"], concurrency)}
            manifest["sessions"] = manifest["sessions"] + [sess]
            manifest["wall_s"] = manifest["wall_s"] + wall
            manifest["request_s_sum"] = manifest["request_s_sum"] + session["request_s_sum"]
            # Throughput and overhead of the whole run (all sessions; a resumed run adds up its parts).
            all_samples = sum(s.get("samples", 0) for s in manifest["sessions"])
            manifest["samples_per_s"] = all_samples / manifest["wall_s"] if manifest["wall_s"] > 0 else None
            manifest["harness_overhead"] = _overhead(manifest["wall_s"], manifest["request_s_sum"], concurrency)
            set_counts()
            complete = all(manifest["counts"][n]["done"] >= totals[n] for n in by_name)
            manifest["status"] = "finished" if (status == "finished" and complete) else "interrupted"
            manifest["finished_at"] = _iso(time.time()) if manifest["status"] == "finished" else None
            manifest.pop("pid", None)
            if fatal is not None:
                manifest["ended_by"] = str(fatal)
            else:
                manifest.pop("ended_by", None)
            write_json_atomic(run_dir / MANIFEST, manifest)
            if manifest["status"] != "finished":
                # A partial scorecard of what is durable, so an interrupted run can be looked at before resuming.
                try:
                    summary = {"run_id": run_id, "partial": True,
                               **summarize(iter_records(records_path), by_name)}
                    write_json_atomic(run_dir / SUMMARY, summary)
                except Exception as e:  # noqa: BLE001 - never mask the interruption itself
                    print(f"warning: partial summary not written: {type(e).__name__}: {e}", file=sys.stderr)
            if fatal is not None:
                kept = sum(manifest["counts"][n]["done"] - manifest["counts"][n]["error"] for n in by_name)
                raise type(fatal)(f"{fatal}; {kept} finished records kept in {run_dir}: re-run the same command to "
                                  "resume") from fatal

        summary, artifacts = finish_run(run_dir, by_name, manifest)
        return RunResult(run_id=run_id, run_dir=run_dir, manifest=manifest, summary=summary, resumed=resumed,
                         samples_this_session=session["samples"], artifacts=artifacts)
    finally:
        scorer.close()
        lock.release()


def _iso(t: float) -> str:
    """UTC ISO-8601 with milliseconds: readable, and sorts as text."""
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _overhead(wall: float, request_s_sum: float, concurrency: int) -> float | None:
    """(wall − Σ request time ÷ concurrency) ÷ wall: the share of wall time the harness, not the server, cost.
    Near 0 when the workers always had a request in flight; it can be negative when the client's retries overlap."""
    if wall <= 0:
        return None
    return (wall - request_s_sum / max(1, concurrency)) / wall


def finish_run(run_dir: Path, suites: dict[str, Any], manifest: dict | None = None) -> tuple[dict, list[Path]]:
    """Write summary.json from the stored records, and the suites' artifacts (write_artifacts hook)."""
    manifest = manifest or read_manifest(run_dir)
    summary = {"run_id": manifest["run_id"], **summarize((r for r in iter_records(run_dir / RECORDS)), suites)}
    write_json_atomic(run_dir / SUMMARY, summary)
    artifacts: list[Path] = []
    for name, suite in suites.items():
        hook = getattr(suite, "write_artifacts", None)
        if callable(hook):
            recs = [r for r in iter_records(run_dir / RECORDS) if r.get("suite") == name]
            try:
                artifacts += [Path(p) for p in (hook(recs, run_dir) or [])]
            except Exception as e:  # noqa: BLE001 - a failed plot must not lose the run's numbers
                print(f"warning: {name}.write_artifacts failed: {type(e).__name__}: {e}", file=sys.stderr)
    if artifacts:
        manifest["artifacts"] = [str(p.relative_to(run_dir) if p.is_relative_to(run_dir) else p) for p in artifacts]
        write_json_atomic(run_dir / MANIFEST, manifest)
    return summary, artifacts


def run(suites: Iterable, endpoints, **kw) -> RunResult:
    """Synchronous wrapper of ``run_eval`` (same arguments)."""
    return asyncio.run(run_eval(suites, endpoints, **kw))


# ---- rescore -------------------------------------------------------------------------------------------------------
async def rescore_async(run_dir: str | Path, suites: dict[str, Any] | None = None, *, batch: int = 256,
                        scoring_workers: int | None = None) -> dict:
    """Score the stored completions again with the current scorers (no model call) and rewrite records + summary.

    With unchanged scorers the summary is reproduced exactly. Error records stay errors (there is no answer)."""
    from assay.evals.scorecard import suites_for

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    suites = suites if suites is not None else suites_for(manifest, strict=True)
    missing = set((manifest.get("fingerprint") or {}).get("suites", {})) - set(suites)
    if missing:
        raise AssayError(f"cannot rescore: suite(s) {', '.join(sorted(missing))} not available")
    lock = RunLock(run_dir).acquire()
    scorer = Scorer(suites, scoring_workers)
    try:
        await scorer.start()
        path = run_dir / RECORDS
        tmp = path.with_name(f".{path.name}.rescore.tmp")
        changed = 0

        async def redo(r: dict) -> dict:
            nonlocal changed
            if r.get("status") == "error" or r.get("completion") is None:
                return r
            sample = Sample(id=r["sample_id"], input=r.get("input"), target=r.get("target"),
                            category=r.get("category") or "all", meta=r.get("meta") or {})
            old_score = r.get("score") or {}
            unclosed = bool((old_score.get("extra") or {}).get("think_unclosed"))
            score = await score_completion(scorer, r["suite"], r["completion"], sample, think_unclosed=unclosed)
            new = {**r, "score": score.to_dict(), "status": status_for(r.get("finish_reason"), score, None)}
            if new["score"] != old_score or new["status"] != r.get("status"):
                changed += 1
            return new

        with open(tmp, "w", encoding="utf-8") as out:
            pending: list[dict] = []

            async def flush() -> None:
                for new in await asyncio.gather(*(redo(r) for r in pending)):
                    out.write(json.dumps(new, ensure_ascii=False, default=str) + "\n")
                pending.clear()

            trim_torn_tail(path)
            for r in iter_records(path):
                pending.append(r)
                if len(pending) >= batch:
                    await flush()
            await flush()
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        manifest["rescored_at"] = _iso(time.time())
        manifest["rescored_versions"] = {n: str(getattr(s, "version", "")) for n, s in suites.items()}
        write_json_atomic(run_dir / MANIFEST, manifest)
        summary, _ = finish_run(run_dir, suites, manifest)
        return {"summary": summary, "changed": changed, "manifest": manifest}
    finally:
        scorer.close()
        lock.release()


def rescore(run_dir: str | Path, suites: dict[str, Any] | None = None, **kw) -> dict:
    """Synchronous wrapper of ``rescore_async``."""
    return asyncio.run(rescore_async(run_dir, suites, **kw))


def _jsonable(obj: Any) -> Any:  # pragma: no cover - used by callers printing results
    return json.loads(json.dumps(obj, default=str))
