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
4. Scoring marked ``slow_scoring`` runs in the killable process pool of ``assay.evals.scoring``.
5. At the end: summary.json (the scorecard), suite artifacts, and the manifest with counts and throughput.

Example:
    from assay.client import SamplingParams
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
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from assay.client import Client, Completion, SamplingParams, effective_sampling
from assay.common import stable_hash
from assay.errors import AssayError, DataError, EndpointUnreachable, EngineDied, ModelChanged, RequestError
from assay.evals.base import (Record, Sample, Score, Suite, ToolResult, Turn, as_suite, conversational, status_for,
                              suite_ref)
from assay.evals.scorecard import summarize
from assay.evals.scoring import Scorer
from assay.store import RECORDS, EvalManifest, GroupCommit, RunStore, find_run, iso_now, list_runs, new_run_id

STATUS_KEYS = ("ok", "error", "truncated", "unparsed")


# ---- step 1: what is being run (suites, fingerprint) ---------------------------------------------------------------
@dataclass
class Plan:
    suites: dict[str, Suite]
    totals: dict[str, int]
    fingerprint: dict
    fp_hash: str
    params: SamplingParams
    seed: int
    limit: int | None
    system_prompt: str | None = None


def resolve_suites(suites: Iterable, suite_options: dict[str, dict] | None) -> dict[str, Suite]:
    """Names from the registry (built with their options) or suite objects, as ``Suite``s by name."""
    from assay.evals.suites import get_suite

    out = [get_suite(s, **((suite_options or {}).get(s) or {})) if isinstance(s, str) else as_suite(s)
           for s in suites]
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise AssayError(f"suite listed twice: {', '.join(names)}")
    return {s.name: s for s in out}


def _scan(suite: Suite, seed: int, limit: int | None) -> tuple[int, str]:
    """Stream the samples once: their count and (unless the suite hashes its own data) a hash of all of them.
    Duplicate ids are a suite bug that would break resume and pairing, so they stop the run here."""
    h = hashlib.sha256()
    seen: set[str] = set()
    for s in suite.samples(seed, limit):
        if s.id in seen:
            raise DataError(f"suite {suite.name!r} yields sample id {s.id!r} twice: ids must be unique")
        seen.add(s.id)
        h.update(json.dumps(dataclasses.asdict(s), sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    own = suite.data_hash()
    return len(seen), str(own) if own is not None else h.hexdigest()[:16]


def fingerprint(suites: list[Suite], suite_scan: dict[str, tuple[int, str]], *, model: str, engine: str,
                engine_version: str | None, params: SamplingParams, seed: int, limit: int | None,
                system_prompt: str | None = None) -> dict:
    """Everything that, if changed, makes two runs incomparable. Its hash decides resume vs new run."""
    extra = {"system_prompt": system_prompt} if system_prompt else {}  # only when set: older runs keep their hash
    return {**extra,
        "suites": {s.name: {"version": str(s.version), "data_hash": suite_scan[s.name][1],
                            "prompt_template": s.prompt_template} for s in suites},
        "model": model, "engine": engine, "engine_version": engine_version, "params": params.fingerprint(),
        "seed": seed, "limit": limit,
    }


async def plan_run(suites: dict[str, Suite], client: Client, params: SamplingParams, seed: int,
                   limit: int | None, system_prompt: str | None = None) -> Plan:
    for s in suites.values():  # learn facts about the server (context window, tokenizer) before sampling
        await s.prepare(client)
    scan = {name: _scan(s, seed, limit) for name, s in suites.items()}
    ep = client.endpoints[0]
    fp = fingerprint(list(suites.values()), scan, model=ep.model, engine=ep.engine, engine_version=ep.engine_version,
                     params=params, seed=seed, limit=limit, system_prompt=system_prompt)
    # how the engine samples, exactly: what is sent plus what it is known to apply (a run from before assay sent the
    # neutral values has no such key, so it never resumes into one that does; open_run says why)
    fp["sampling"] = effective_sampling(params, ep)
    # the exact model: weights / template / tokenizer digests (two files under one served name never share a run)
    ids = {stable_hash(e.model_fingerprint()) for e in client.endpoints}
    if len(ids) > 1:
        raise AssayError("the endpoints serve different models (their weights or server facts differ): evaluate "
                         "them as separate runs, or point every --endpoint at the same model")
    part = ep.model_fingerprint()
    if part:
        fp["model_identity"] = part
    if ep.caps.tool_format:
        # a server-wide tool-call chat format changes every prompt it renders (llama.cpp); only set when used, so
        # the fingerprints of runs without it are unchanged
        fp["tool_format"] = ep.caps.tool_format
    return Plan(suites, {n: c for n, (c, _) in scan.items()}, fp, stable_hash(fp), params, seed, limit,
                system_prompt)


# ---- step 2: the run folder (new, or resumed) ----------------------------------------------------------------------
@dataclass
class Progress:
    """What a resumed run already holds."""

    done: set[tuple[str, str]] = field(default_factory=set)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    running: dict[str, list[float]] = field(default_factory=dict)  # suite -> [score sum, n] (progress bars only)


def open_run(out_dir: Path, plan: Plan, fresh: bool) -> tuple[RunStore, bool]:
    """The run folder with this fingerprint (unless ``fresh``), or a new one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    found = None if fresh else find_run(out_dir, plan.fp_hash)
    if found is not None:
        return RunStore(found, Record, RECORDS), True
    if not fresh:
        for old in _older_sampling(out_dir, plan.fingerprint):
            print(f"note: run {old} has the same suites, model and settings but was sampled with the engine's own "
                  "defaults (made before assay sent neutral sampling; on llama.cpp: repeat_penalty 1.1, top_k 40, "
                  "min_p 0.05): not resumed, a new run starts", file=sys.stderr)
    return RunStore.create(out_dir, new_run_id(out_dir, plan.fp_hash), Record, RECORDS), False


def _older_sampling(out_dir: Path, fp: dict) -> list[str]:
    """Runs whose fingerprint equals ``fp`` but for the effective sampling and model digests they never recorded."""
    same = {k: v for k, v in fp.items() if k not in ("sampling", "model_identity")}
    out = []
    for p, m in list_runs(out_dir):
        old = getattr(m, "fingerprint", None) or {}
        if "sampling" not in old and old.get("suites") and stable_hash(old) == stable_hash(same):
            out.append(p.name)
    return out


def load_progress(store: RunStore, plan: Plan, resumed: bool) -> Progress:
    """Count what is stored; on resume, drop error records first so they are tried again (one record per sample)."""
    prog = Progress(counts={n: dict.fromkeys(STATUS_KEYS, 0) for n in plan.suites},
                    running={n: [0.0, 0] for n in plan.suites})
    if resumed:
        store.retry_errors()
    for r in store.records():
        key = (r.suite, r.sample_id)
        if key in prog.done:
            raise AssayError(f"{store.records_path} holds {key} twice: the run is corrupt; start it again with --fresh")
        prog.done.add(key)
        if r.suite in prog.counts:
            prog.counts[r.suite][r.status] += 1
            if r.value is not None:
                prog.running[r.suite][0] += r.value
                prog.running[r.suite][1] += 1
    return prog


def start_manifest(store: RunStore, plan: Plan, eps, *, resumed: bool, command, concurrency: int,
                   suite_options: dict | None) -> EvalManifest:
    old = store.manifest if resumed else None
    ep = eps[0]
    m = EvalManifest(
        run_id=store.dir.name, created_at=old.created_at if old else iso_now(), status="running",
        fingerprint=plan.fingerprint, fingerprint_hash=plan.fp_hash, endpoints=[e.base_url for e in eps],
        engine={k: v for k, v in {"name": ep.engine, "version": ep.engine_version,
                                  **ep.facts,  # the engine's own facts, opaque (Engine.facts)
                                  "model_identity": ep.identity}.items() if v is not None},
        command=list(command) if command is not None else list(sys.argv), concurrency=concurrency,
        wall_s=old.wall_s if old else 0.0, request_s_sum=old.request_s_sum if old else 0.0,
        samples_per_s=old.samples_per_s if old else None, harness_overhead=old.harness_overhead if old else None,
        sessions=list(old.sessions) if old else [], pid=os.getpid(),
        suite_options={n: opts for n, s in plan.suites.items()
                       if (opts := {**s.option_values(), **((suite_options or {}).get(n) or {})})},
        suite_refs={n: ref for n, s in plan.suites.items() if (ref := suite_ref(s)) and not _registered(n, ref)})
    return m


def _registered(name: str, ref: str) -> bool:
    return ref.startswith(f"assay.evals.suites.{name}:")


def set_counts(m: EvalManifest, plan: Plan, counts: dict[str, dict[str, int]]) -> None:
    m.counts = {n: {**counts[n], "total": plan.totals[n], "done": sum(counts[n].values())} for n in plan.suites}


# ---- step 3: the pipeline (produce -> workers -> one durable writer) -----------------------------------------------
class Observer:
    """Progress hooks (the CLI draws rich bars with them). All are optional no-ops here."""

    def begin(self, run_dir: Path, totals: dict[str, int], done: dict[str, dict[str, int]], resumed: bool,
              scores: dict[str, tuple[float, int]]) -> None: ...

    def record(self, rec: Record) -> None: ...


def with_system_prompt(messages: list[dict], system_prompt: str | None) -> list[dict]:
    """``--system-prompt``: a system message first, unless the suite wrote its own (then the suite's wins)."""
    if not system_prompt or (messages and messages[0].get("role") == "system"):
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]


def _merge_params(base: SamplingParams, override: dict | None) -> SamplingParams:
    return SamplingParams(**{**base.model_dump(), **override}) if override else base


def request_for(suite: Suite, sample: Sample, params: SamplingParams, system_prompt: str | None = None
                ) -> tuple[list[dict], SamplingParams]:
    """The messages and sampling parameters the runner sends for one single-call sample (``--recheck`` sends the
    same again): the suite's messages after ``--system-prompt``, the run's parameters with its ``request_params``."""
    messages = with_system_prompt(suite.messages(sample), system_prompt)
    return messages, _merge_params(params, suite.request_params(sample))


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, AssayError):
        return str(exc)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    return f"{type(exc).__name__}: {exc}\n{tb}"


async def score_completion(scorer: Scorer, suite_name: str, completion: str, sample: Sample, *,
                           think_unclosed: bool = False) -> Score:
    """The Score for one answer; a thinking model that never closed <think> has no answer to score."""
    if think_unclosed:
        return Score(0.0, reason="unclosed <think>: no answer", parsed=False, extra={"think_unclosed": True})
    return await scorer.score(suite_name, completion, sample)


def _conversation_record(rec: Record, chat: "Conversation") -> Record:
    """The record of a conversation: whole history, turns, and the totals (tokens and time summed over turns; TTFT
    of the first call; finish_reason "length" when any turn was cut, else the last turn's)."""
    turns = chat.turns
    if not turns:
        return rec.model_copy(update={"messages": chat.messages})

    def total(name: str) -> int | None:
        vals = [getattr(t, name) for t in turns]
        return None if any(v is None for v in vals) else sum(vals)

    last = turns[-1]
    cut = any(t.finish_reason == "length" for t in turns)
    cached = all(t.cached for t in turns)  # every call's answer came from the answer cache
    return rec.model_copy(update=dict(
        messages=chat.messages, turns=turns, completion=last.completion, reasoning=last.reasoning,
        finish_reason="length" if cut else last.finish_reason, prompt_tokens=total("prompt_tokens"),
        prompt_tokens_source=None if total("prompt_tokens") is None else "+".join(
            sorted({t.prompt_tokens_source or "?" for t in turns})),
        completion_tokens=total("completion_tokens"), ttft_s=turns[0].ttft_s,
        e2e_s=None if cached else sum(t.e2e_s or 0.0 for t in turns), endpoint=chat.endpoint, cached=cached))


async def score_conversation(scorer: Scorer, suite_name: str, turns: list[Turn], sample: Sample) -> Score:
    """The Score for a conversation from its turns (a thinking model that never closed <think> in its last reply has
    no answer to score)."""
    if turns and turns[-1].think_unclosed:
        return Score(0.0, reason="unclosed <think>: no answer", parsed=False, extra={"think_unclosed": True})
    return await scorer.score_turns(suite_name, turns, sample)


class Conversation:
    """The state of one sample's conversation, handed to ``Suite.converse``: the history (``messages``, which the
    suite appends user and tool messages to), and every model call as a ``Turn``. ``ask`` sends the history, appends
    the reply (with its tool calls) and returns the Completion; a failed request raises (the sample is an error)."""

    def __init__(self, client: Client, params: SamplingParams, messages: list[dict]):
        self.client, self.params = client, params
        self.messages: list[dict] = list(messages)
        self.turns: list[Turn] = []
        self.request_s = 0.0
        self.endpoint: str | None = None  # the server of the last reply

    async def ask(self, params: dict | None = None, *, label: str = "") -> Completion:
        p = _merge_params(self.params, params)
        sent = len(self.messages)
        t0 = time.perf_counter()
        try:
            comp: Completion = await self.client.chat(list(self.messages), p)
        except (RequestError, EndpointUnreachable):
            self.request_s += time.perf_counter() - t0
            raise
        self.request_s += comp.e2e_s
        self.endpoint = comp.endpoint
        self.messages.append(comp.message())
        self.turns.append(Turn(
            sent=sent, completion=comp.text, reasoning=comp.reasoning, finish_reason=comp.finish_reason,
            think_unclosed=comp.think_unclosed, prompt_tokens=comp.prompt_tokens,
            prompt_tokens_source=comp.prompt_tokens_source,
            completion_tokens=comp.completion_tokens, ttft_s=comp.ttft_s, e2e_s=comp.e2e_s,
            tool_calls=list(comp.tool_calls), label=label, cached=comp.cached,
            params={k: v for k, v in (params or {}).items() if v is not None}))
        return comp

    def tool_result(self, result: ToolResult, *, as_message: dict | None = None) -> None:
        """Record a tool's answer on the last turn and append it to the history: as an OpenAI ``role: tool``
        message for a native call, or as ``as_message`` (prompted tool use answers in a user message)."""
        if self.turns:
            self.turns[-1].tool_results.append(result)
        self.messages.append(as_message if as_message is not None else
                             {"role": "tool", "tool_call_id": result.call_id or "", "content": result.content})


IDENTITY_CHECK_S = 30.0  # how often a remote endpoint's model is looked at again during a run


class Pipeline:
    """Samples through a bounded queue into ``concurrency`` workers (build messages, call, score) and one writer
    that appends, fsyncs (group commit) and only then counts. SIGKILL at any moment loses at most what is in flight."""

    _STOP = object()

    def __init__(self, store: RunStore, plan: Plan, client: Client, scorer: Scorer, prog: Progress,
                 observer: Observer, concurrency: int, fsync: bool):
        self.store, self.plan, self.client, self.scorer, self.prog = store, plan, client, scorer, prog
        self.observer, self.concurrency, self.fsync = observer, concurrency, fsync
        self.samples = 0
        self.from_cache = 0  # of them, answers reused from the answer cache
        self.request_s_sum = 0.0
        self.unreachable: str | None = None
        # a remote URL can start serving another model mid-run: look again every IDENTITY_CHECK_S and at the end;
        # the answers written since the last good look are the ones that may come from the other model
        self.watched = [e for e in client.endpoints if (e.identity or {}).get("format") == "remote"]
        self.unchecked: list[tuple[str, str]] = []
        self.last_check = time.monotonic()

    async def check_model(self, force: bool = False) -> None:
        """Raise ModelChanged if a watched endpoint now serves another model; else the written answers are good."""
        if not self.watched or not self.unchecked:
            return
        if not force and time.monotonic() - self.last_check < IDENTITY_CHECK_S:
            return
        for ep in self.watched:
            moved = await asyncio.to_thread(ep.model_changed)
            if moved:
                raise ModelChanged(f"the model behind {ep.base_url} changed during the run ({moved})", self.unchecked)
        self.unchecked, self.last_check = [], time.monotonic()

    async def produce(self, work: asyncio.Queue) -> None:
        for s in self.plan.suites.values():
            for sample in s.samples(self.plan.seed, self.plan.limit):
                if (s.name, sample.id) not in self.prog.done:
                    await work.put((s, sample))
        for _ in range(self.concurrency):
            await work.put(self._STOP)

    async def one(self, suite: Suite, sample: Sample) -> Record:
        rec = Record(run_id=self.store.dir.name, suite=suite.name, sample_id=sample.id, category=sample.category,
                     target=sample.target, meta=dict(sample.meta), input=sample.input)
        try:
            rec.messages, p = request_for(suite, sample, self.plan.params, self.plan.system_prompt)
        except Exception as e:  # noqa: BLE001 - a suite bug on one sample is that sample's error, not the run's
            return self._failed(rec, _error_text(e))
        rec.params = p.model_dump(exclude_none=True)
        if conversational(suite):
            return await self.converse(suite, sample, rec, p)
        t_send = time.perf_counter()
        try:
            comp: Completion = await self.client.chat(rec.messages, p)
        except (RequestError, EndpointUnreachable) as e:
            rec.e2e_s = time.perf_counter() - t_send
            self.request_s_sum += rec.e2e_s
            if isinstance(e, EndpointUnreachable):
                self.unreachable = self.unreachable or str(e)
            return self._failed(rec, str(e))
        self.request_s_sum += comp.e2e_s
        rec = rec.model_copy(update=dict(
            completion=comp.text, reasoning=comp.reasoning, finish_reason=comp.finish_reason,
            prompt_tokens=comp.prompt_tokens, prompt_tokens_source=comp.prompt_tokens_source,
            completion_tokens=comp.completion_tokens, ttft_s=comp.ttft_s,
            e2e_s=None if comp.cached else comp.e2e_s, endpoint=comp.endpoint, cached=comp.cached))
        try:
            score = await score_completion(self.scorer, suite.name, comp.text, sample,
                                           think_unclosed=comp.think_unclosed)
        except Exception as e:  # noqa: BLE001
            return self._failed(rec, f"scoring failed: {_error_text(e)}")
        rec.score, rec.status, rec.finished_at = score, status_for(comp.finish_reason, score, None), time.time()
        return rec

    async def converse(self, suite: Suite, sample: Sample, rec: Record, p: SamplingParams) -> Record:
        """A sample that is a conversation: the suite drives it through a ``Conversation``; the record keeps the
        whole history and every turn; scoring reads the turns (``score_turns``), as --rescore will."""
        chat = Conversation(self.client, p, rec.messages)
        try:
            await suite.converse(sample, chat)
        except (RequestError, EndpointUnreachable) as e:
            if isinstance(e, EndpointUnreachable):
                self.unreachable = self.unreachable or str(e)
            return self._failed(_conversation_record(rec, chat), str(e))
        except Exception as e:  # noqa: BLE001 - a suite bug on one sample is that sample's error
            return self._failed(_conversation_record(rec, chat), _error_text(e))
        finally:
            self.request_s_sum += chat.request_s
        rec = _conversation_record(rec, chat)
        if not chat.turns:
            return self._failed(rec, f"suite {suite.name!r}: converse() made no model call")
        try:
            score = await score_conversation(self.scorer, suite.name, rec.turns, sample)
        except Exception as e:  # noqa: BLE001
            return self._failed(rec, f"scoring failed: {_error_text(e)}")
        rec.score, rec.status, rec.finished_at = score, status_for(rec.finish_reason, score, None), time.time()
        return rec

    @staticmethod
    def _failed(rec: Record, error: str) -> Record:
        rec.status, rec.error, rec.finished_at = "error", error, time.time()
        return rec

    async def worker(self, work: asyncio.Queue, commit: GroupCommit) -> None:
        while (item := await work.get()) is not self._STOP:
            await commit.put(await self.one(*item))
            if self.unreachable:
                # no server after the client's retries: failing every remaining sample would only bury the cause
                raise EndpointUnreachable(f"{self.unreachable}: run stopped")

    async def committed(self, batch: list[Record]) -> None:
        # called by the group commit once the batch is on disk: durable before counted
        for r in batch:
            self.prog.counts[r.suite][r.status] += 1
            self.samples += 1
            self.from_cache += r.cached
            self.observer.record(r)
            self.unchecked.append((r.suite, r.sample_id))
        await self.check_model()

    async def run(self) -> None:
        """Until every sample is stored; on any exception the records already handed over are still written."""
        work: asyncio.Queue = asyncio.Queue(maxsize=2 * self.concurrency)
        commit = GroupCommit(self.store.writer(fsync=self.fsync), self.committed, maxsize=4 * self.concurrency)
        await commit.run(asyncio.gather(self.produce(work),
                                        *(self.worker(work, commit) for _ in range(self.concurrency))))
        await self.check_model(force=True)


# ---- step 4: finalise ----------------------------------------------------------------------------------------------
def _overhead(wall: float, request_s_sum: float, concurrency: int) -> float | None:
    """(wall − Σ request time ÷ concurrency) ÷ wall: the share of wall time the harness, not the server, cost.
    Near 0 when the workers always had a request in flight; it can be negative when the client's retries overlap."""
    if wall <= 0:
        return None
    return (wall - request_s_sum / max(1, concurrency)) / wall


def close_session(store: RunStore, m: EvalManifest, plan: Plan, pipe: Pipeline, started: str, wall: float,
                  ok: bool, fatal: BaseException | None) -> None:
    """Add this session's figures to the manifest, set the status, write it (and a partial scorecard if unfinished)."""
    c = pipe.concurrency
    m.sessions = m.sessions + [{"started_at": started, "samples": pipe.samples, "from_cache": pipe.from_cache,
                                "request_s_sum": pipe.request_s_sum,
                                "wall_s": wall, "concurrency": c,
                                "samples_per_s": pipe.samples / wall if wall > 0 else None,
                                "harness_overhead": _overhead(wall, pipe.request_s_sum, c)}]
    m.wall_s += wall
    m.request_s_sum += pipe.request_s_sum
    all_samples = sum(s.get("samples", 0) for s in m.sessions)  # a resumed run adds up its parts
    m.samples_per_s = all_samples / m.wall_s if m.wall_s > 0 else None
    m.harness_overhead = _overhead(m.wall_s, m.request_s_sum, c)
    set_counts(m, plan, pipe.prog.counts)
    complete = all(m.counts[n]["done"] >= plan.totals[n] for n in plan.suites)
    m.status = "finished" if ok and complete else "interrupted"
    m.finished_at = iso_now() if m.status == "finished" else None
    m.pid, m.ended_by = None, (str(fatal) if fatal is not None else None)
    store.write_manifest(m)
    if m.status != "finished":
        try:  # a partial scorecard of what is durable, so an interrupted run can be looked at before resuming
            store.write_summary({"run_id": m.run_id, "partial": True, **summarize(store.records(), plan.suites)})
        except Exception as e:  # noqa: BLE001 - never mask the interruption itself
            print(f"warning: partial summary not written: {type(e).__name__}: {e}", file=sys.stderr)


def finish_run(run_dir: Path | RunStore, suites: dict[str, Suite], manifest: EvalManifest | None = None
               ) -> tuple[dict, list[Path]]:
    """Write summary.json from the stored records, and the suites' artifacts (``write_artifacts``)."""
    store = run_dir if isinstance(run_dir, RunStore) else RunStore(run_dir, Record, RECORDS)
    manifest = manifest or store.manifest
    summary = {"run_id": manifest.run_id, **summarize(store.records(), suites)}
    store.write_summary(summary)
    artifacts: list[Path] = []
    for name, suite in suites.items():
        recs = [r for r in store.records() if r.suite == name]
        try:
            artifacts += [Path(p) for p in (suite.write_artifacts(recs, store.dir) or [])]
        except Exception as e:  # noqa: BLE001 - a failed plot must not lose the run's numbers
            print(f"warning: {name}.write_artifacts failed: {type(e).__name__}: {e}", file=sys.stderr)
    if artifacts:
        manifest.artifacts = [str(p.relative_to(store.dir) if p.is_relative_to(store.dir) else p) for p in artifacts]
        store.write_manifest(manifest)
    return summary, artifacts


# ---- the run -------------------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    manifest: EvalManifest
    summary: dict
    resumed: bool = False
    samples_this_session: int = 0
    artifacts: list[Path] = field(default_factory=list)


async def run_eval(suites: Iterable, endpoints, *, out_dir: str | Path = "runs", params: SamplingParams | None = None,
                   seed: int = 0, limit: int | None = None, concurrency: int = 8, command: list[str] | None = None,
                   fresh: bool = False, suite_options: dict[str, dict] | None = None, observer: Observer | None = None,
                   scoring_workers: int | None = None, fsync: bool = True, client: Client | None = None,
                   system_prompt: str | None = None, cache=None) -> RunResult:
    """Run ``suites`` (names from the registry or suite objects) against ``endpoints`` (Endpoint list, or pass a
    ready ``client``) into ``out_dir/<run-id>/``, resuming a run with the same fingerprint unless ``fresh``.
    ``cache``: an ``assay.answers.AnswerCache`` — answers to the same request of the same model are reused (records
    marked ``cached``); None: every sample is asked."""
    by_name = resolve_suites(suites, suite_options)
    if client is None:
        async with Client(endpoints, cache=cache) as own:
            return await run_eval(list(by_name.values()), None, out_dir=out_dir, params=params, seed=seed,
                                  limit=limit, concurrency=concurrency, command=command, fresh=fresh,
                                  suite_options=suite_options, observer=observer, scoring_workers=scoring_workers,
                                  fsync=fsync, client=own, system_prompt=system_prompt)
    observer = observer or Observer()
    plan = await plan_run(by_name, client, params or SamplingParams(), seed, limit, system_prompt)
    store, resumed = open_run(Path(out_dir), plan, fresh)
    lock = store.lock().acquire()
    scorer = Scorer(by_name, scoring_workers)
    try:
        prog = load_progress(store, plan, resumed)
        manifest = start_manifest(store, plan, client.endpoints, resumed=resumed, command=command,
                                  concurrency=concurrency, suite_options=suite_options)
        set_counts(manifest, plan, prog.counts)
        store.write_manifest(manifest)
        observer.begin(store.dir, plan.totals, {n: dict(c) for n, c in prog.counts.items()}, resumed,
                       {n: (v[0], int(v[1])) for n, v in prog.running.items()})
        pipe = Pipeline(store, plan, client, scorer, prog, observer, concurrency, fsync)
        started, t0, ok, fatal = iso_now(), time.perf_counter(), False, None
        try:
            await scorer.start()
            await pipe.run()
            ok = True
        except (EngineDied, EndpointUnreachable) as e:
            fatal = e
            raise
        except ModelChanged as e:
            fatal = e
            suspect = set(e.suspect)
            store.rewrite(lambda r: None if (r.suite, r.sample_id) in suspect else r)
            pipe.samples -= len(suspect)
            prog.counts = {n: dict.fromkeys(STATUS_KEYS, 0) for n in prog.counts}
            kept = 0
            for r in store.records():
                kept += 1
                if r.suite in prog.counts:
                    prog.counts[r.suite][r.status] += 1
            raise ModelChanged(f"{e}: the {len(suspect)} answers since the last look were dropped and the run stops "
                               f"with {kept} earlier ones in {store.dir}; the same command starts a new run for the "
                               "model now served (never a mix)", e.suspect) from None
        finally:
            close_session(store, manifest, plan, pipe, started, time.perf_counter() - t0, ok, fatal)
            if fatal is not None and not isinstance(fatal, ModelChanged):
                kept = sum(c["done"] - c["error"] for c in manifest.counts.values())
                raise type(fatal)(f"{fatal}; {kept} finished records kept in {store.dir}: re-run the same command "
                                  "to resume") from fatal
        summary, artifacts = finish_run(store, by_name, manifest)
        return RunResult(run_id=store.dir.name, run_dir=store.dir, manifest=manifest, summary=summary,
                         resumed=resumed, samples_this_session=pipe.samples, artifacts=artifacts)
    finally:
        scorer.close()
        lock.release()


def run(suites: Iterable, endpoints, **kw) -> RunResult:
    """Synchronous wrapper of ``run_eval`` (same arguments)."""
    return asyncio.run(run_eval(suites, endpoints, **kw))


# ---- rescore -------------------------------------------------------------------------------------------------------
async def rescore_async(run_dir: str | Path, suites: dict[str, Any] | None = None, *, batch: int = 256,
                        scoring_workers: int | None = None) -> dict:
    """Score the stored completions again with the current scorers (no model call) and rewrite records + summary.

    With unchanged scorers the summary is reproduced exactly. Error records stay errors (there is no answer)."""
    from assay.evals.scorecard import suites_for

    store = RunStore(run_dir, Record, RECORDS)
    manifest = store.manifest
    suites = {n: as_suite(s) for n, s in suites.items()} if suites is not None else suites_for(manifest, strict=True)
    missing = set(manifest.suites) - set(suites)
    if missing:
        raise AssayError(f"cannot rescore: suite(s) {', '.join(sorted(missing))} not available")
    scorer = Scorer(suites, scoring_workers)
    changed = 0

    async def redo(r: Record) -> Record:
        nonlocal changed
        if r.status == "error" or (r.completion is None and not r.turns):
            return r
        if r.turns:  # a conversation: scored from its stored turns
            score = await score_conversation(scorer, r.suite, r.turns, r.sample())
        else:
            unclosed = bool(r.score is not None and r.score.extra.get("think_unclosed"))
            score = await score_completion(scorer, r.suite, r.completion, r.sample(), think_unclosed=unclosed)
        new = r.model_copy(update={"score": score, "status": status_for(r.finish_reason, score, None)})
        before = (r.score.value, r.score.parsed, r.score.extracted) if r.score else None
        changed += (new.status != r.status or before != (score.value, score.parsed, score.extracted))
        return new

    async def redo_batch(recs: list[Record]) -> list[Record]:
        return list(await asyncio.gather(*(redo(r) for r in recs)))

    with store.lock():
        try:
            await scorer.start()
            await store.rewrite_async(redo_batch, batch=batch)
        finally:
            scorer.close()
        manifest.rescored_at = iso_now()
        manifest.rescored_versions = {n: str(s.version) for n, s in suites.items()}
        store.write_manifest(manifest)
        summary, _ = finish_run(store, suites, manifest)
    return {"summary": summary, "changed": changed, "manifest": manifest}


def rescore(run_dir: str | Path, suites: dict[str, Any] | None = None, **kw) -> dict:
    """Synchronous wrapper of ``rescore_async``."""
    return asyncio.run(rescore_async(run_dir, suites, **kw))
