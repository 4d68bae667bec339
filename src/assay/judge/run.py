"""The judge pass: a pass over a run's stored Records after the eval (or on any existing run), never a change to
the eval pipeline.

Every judge call becomes a ``JudgeRecord`` (the prompt sent, the raw reply, the parsed verdict, tokens, timings,
template and judge model), appended durably to ``<run>/judgements.jsonl`` through ``assay.store`` by the runner's
own writer (``store.GroupCommit``: batched, fsynced off the event loop). What identifies a pass (kind, template name +
version + digest, judge model, sampling parameters, the other run for pairwise) is hashed into ``pass_id`` and listed
in ``<run>/judge.json`` (versioned; read through ``assay.store.read_index``, which migrates it). The same command
resumes the same pass as the runner resumes a run (``RunStore.retry_errors``: error records are retried, the rest
kept); ``rescore_judgements`` re-parses stored replies without calling the judge. A reply that cannot be parsed is
status "unparsed": counted and shown, never a default score.

Pairwise passes live in run A's folder and ask the judge about every shared sample **twice**, A shown first ("AB")
and B shown first ("BA"); ``assay.judge.summary.pairwise_summary`` turns a flip into a tie.

Example:
    import asyncio
    from assay.client import Client
    from assay.engines import connect
    from assay.judge.run import judge_rubric
    from assay.judge.templates import load_template
    client = Client(connect(["http://127.0.0.1:8000/v1"]))
    res = asyncio.run(judge_rubric("runs/A", load_template("naturalness"), client))
    print(res.summary["all"])
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict

from assay import store as _store
from assay.client import Client, SamplingParams
from assay.common import stable_hash
from assay.errors import AssayError
from assay.evals.base import Record
from assay.judge.parse import parse
from assay.judge.templates import Template
from assay.store import JUDGE_INDEX, JUDGEMENTS, GroupCommit, RunLock, RunStore, iso_now, register_record

DEFAULT_PARAMS = SamplingParams(temperature=0.0, max_tokens=256, seed=0)


class JudgeRecord(BaseModel):
    """One judge call, as stored (one line of judgements.jsonl)."""

    model_config = ConfigDict(extra="ignore")

    pass_id: str
    kind: Literal["rubric", "pairwise"]
    template: str  # name.vN@digest
    judge_model: str
    judge_endpoint: str | None = None
    run_a: str
    run_b: str | None = None  # pairwise
    suite: str
    sample_id: str
    order: Literal["", "AB", "BA"] = ""  # pairwise: which run's answer was shown first
    messages: list[dict] = []  # the judge prompt exactly as sent
    reply: str | None = None  # raw, as the judge sent it
    value: float | None = None  # rubric rating
    choice: str | None = None  # pairwise verdict in shown positions: "A" | "B" | "tie"
    winner: str | None = None  # pairwise verdict mapped to runs: "a" | "b" | "tie"
    reason: str = ""  # parse detail
    status: Literal["ok", "unparsed", "error"] = "ok"
    error: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    e2e_s: float | None = None
    answer_chars: list[int] = []  # length of the judged answer(s), in run order (a, b)
    answer_tokens: list[int | None] = []
    finished_at: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.pass_id, self.suite, self.sample_id, self.order)


register_record("judge", JudgeRecord)  # what assay.store reads judgements.jsonl as


# ---- pass identity -------------------------------------------------------------------------------------------------
def pass_fingerprint(kind: str, template: Template, judge_model: str, params: SamplingParams, run_a: str,
                     run_b: str | None = None) -> dict:
    return {"kind": kind, "template": template.name, "template_version": template.version,
            "template_digest": template.digest, "judge_model": judge_model,
            "params": params.fingerprint(), "run_a": run_a, "run_b": run_b}  # late fields count only when set


def read_index(run_dir: Path | str) -> dict:
    """judge.json of a folder, migrated to its current format; an empty index when it has no judge pass."""
    return _store.read_index(run_dir, JUDGE_INDEX)


def _register_pass(run_dir: Path, pass_id: str, fp: dict, **extra) -> None:
    idx = read_index(run_dir)
    entry = idx["passes"].setdefault(pass_id, {**fp, "created_at": iso_now()})
    entry.update(extra, updated_at=iso_now())
    _store.write_index(run_dir, JUDGE_INDEX, idx)


def _judge_store(run_dir: Path | str) -> RunStore:
    return RunStore(run_dir, JudgeRecord, JUDGEMENTS)


def judgements(run_dir: Path | str, pass_id: str | None = None) -> list[JudgeRecord]:
    return list(_store.Run(run_dir).judgements(pass_id))


# ---- what the judge sees -------------------------------------------------------------------------------------------
def question_of(rec: Record) -> str:
    """The user's last message (what the answer answers); a system prompt, if any, is shown above it."""
    msgs = rec.messages or []
    user = next((m.get("content") for m in reversed(msgs) if m.get("role") == "user"), "")
    system = next((m.get("content") for m in msgs if m.get("role") == "system"), None)
    user = user if isinstance(user, str) else str(user)
    return f"(system prompt: {system})\n{user}" if system else user


def _judgeable(rec: Record) -> bool:
    return rec.status != "error" and rec.completion is not None


def _load_run(run_dir: Path, suites: list[str] | None, limit: int | None) -> tuple[Any, dict[tuple, Record]]:
    run = _store.open(run_dir)
    if not isinstance(run, _store.EvalRun):
        raise AssayError(f"{run_dir} is a {run.kind} run: judges read eval runs")
    man = run.manifest
    out: dict[tuple, Record] = {}
    per_suite: dict[str, int] = {}
    for r in run.records():
        if suites and r.suite not in suites:
            continue
        if not _judgeable(r):
            continue
        if limit is not None and per_suite.get(r.suite, 0) >= limit:
            continue
        per_suite[r.suite] = per_suite.get(r.suite, 0) + 1
        out[(r.suite, str(r.sample_id))] = r
    return man, out


# ---- the pass ------------------------------------------------------------------------------------------------------
@dataclass
class Job:
    suite: str
    sample_id: str
    order: str
    messages: list[dict]
    answer_chars: list[int]
    answer_tokens: list[int | None]


@dataclass
class PassResult:
    run_dir: Path
    pass_id: str
    fingerprint: dict
    records: list[JudgeRecord]
    new: int  # judge calls made this time
    kept: int  # judgements already stored (resumed)


def _verdict_fields(kind: str, template: Template, reply: str | None, order: str) -> dict:
    p = parse(kind, reply, template.scale)
    out: dict[str, Any] = {"value": p.value, "choice": p.choice, "reason": p.reason,
                           "status": "ok" if p.parsed else "unparsed", "winner": None}
    if kind == "pairwise" and p.parsed:
        if p.choice == "tie":
            out["winner"] = "tie"
        else:  # positions as shown -> runs: in order BA the answer shown as "A" is run B's
            first = p.choice == "A"
            out["winner"] = ("a" if first else "b") if order == "AB" else ("b" if first else "a")
    return out


async def _run_pass(run_dir: Path, kind: str, template: Template, client: Client, params: SamplingParams,
                    fp: dict, jobs: list[Job], *, concurrency: int, base: dict,
                    observer: Callable[[JudgeRecord], None] | None) -> PassResult:
    pass_id = stable_hash(fp, 12)
    js = _judge_store(run_dir)
    with RunLock(run_dir):
        js.retry_errors(lambda r: r.pass_id == pass_id)  # the runner's resume: errors are asked again
        done = js.done(lambda r: r.key)
        todo = [j for j in jobs if (pass_id, j.suite, j.sample_id, j.order) not in done]
        _register_pass(run_dir, pass_id, fp, n_jobs=len(jobs))

        def stored(batch: list[JudgeRecord]) -> None:  # called once the batch is on disk
            if observer:
                for jr in batch:
                    observer(jr)

        commit = GroupCommit(js.writer(), stored, maxsize=4 * max(1, concurrency))
        sem = asyncio.Semaphore(max(1, concurrency))
        endpoint = client.endpoints[0].base_url

        async def one(job: Job) -> None:
            async with sem:
                rec: dict[str, Any] = dict(base, pass_id=pass_id, suite=job.suite, sample_id=job.sample_id,
                                           order=job.order, messages=job.messages, answer_chars=job.answer_chars,
                                           answer_tokens=job.answer_tokens, judge_endpoint=endpoint)
                try:
                    done_c = await client.chat(job.messages, params)
                except AssayError as e:  # failed calls are data: stored as errors, retried on resume
                    rec.update(status="error", error=str(e))
                else:
                    rec.update(reply=done_c.raw_text, finish_reason=done_c.finish_reason,
                               prompt_tokens=done_c.prompt_tokens, completion_tokens=done_c.completion_tokens,
                               ttft_s=done_c.ttft_s, e2e_s=round(done_c.e2e_s, 4),
                               **_verdict_fields(kind, template, done_c.raw_text, job.order))
                rec["finished_at"] = iso_now()
            await commit.put(JudgeRecord(**rec))

        await commit.run(asyncio.gather(*(one(j) for j in todo)))
        recs = judgements(run_dir, pass_id)
        _register_pass(run_dir, pass_id, fp, n_jobs=len(jobs), n_done=len(recs),
                       n_error=sum(r.status == "error" for r in recs))
    return PassResult(run_dir, pass_id, fp, recs, new=len(todo), kept=len(jobs) - len(todo))


async def judge_rubric(run_dir: Path | str, template: Template, client: Client, *,
                       params: SamplingParams = DEFAULT_PARAMS, suites: list[str] | None = None,
                       limit: int | None = None, concurrency: int = 4,
                       observer: Callable[[JudgeRecord], None] | None = None) -> PassResult:
    """Rate every judgeable answer of the run (status not "error") on ``template``'s scale."""
    if template.kind != "rubric":
        raise AssayError(f"template {template.name} is a {template.kind} template: use it with assay judge A B")
    run_dir = Path(run_dir)
    man, recs = _load_run(run_dir, suites, limit)
    if not recs:
        raise AssayError(f"{run_dir}: no answers to judge" + (f" in suites {', '.join(suites)}" if suites else ""))
    fp = pass_fingerprint("rubric", template, client.model, params, man.run_id)
    jobs = []
    for (suite, sid), r in recs.items():
        ref = r.target if isinstance(r.target, str) else ("" if r.target is None else str(r.target))
        msgs = template.render(question=question_of(r), answer=r.completion or "", reference=ref or "(none)")
        jobs.append(Job(suite, sid, "", msgs, [len(r.completion or "")], [r.completion_tokens]))
    base = {"kind": "rubric", "template": template.ref, "judge_model": client.model, "run_a": man.run_id}
    return await _run_pass(run_dir, "rubric", template, client, params, fp, jobs, concurrency=concurrency,
                           base=base, observer=observer)


async def judge_pairwise(run_a: Path | str, run_b: Path | str, template: Template, client: Client, *,
                         params: SamplingParams = DEFAULT_PARAMS, suites: list[str] | None = None,
                         limit: int | None = None, concurrency: int = 4,
                         observer: Callable[[JudgeRecord], None] | None = None) -> PassResult:
    """Ask which answer is better for every sample both runs answered, in both orders (stored in run A)."""
    if template.kind != "pairwise":
        raise AssayError(f"template {template.name} is a {template.kind} template, not a pairwise one")
    run_a, run_b = Path(run_a), Path(run_b)
    man_a, ra = _load_run(run_a, suites, None)
    man_b, rb = _load_run(run_b, suites, None)
    shared = [k for k in ra if k in rb]
    if limit is not None:
        per: dict[str, int] = {}
        keep = []
        for k in shared:
            if per.get(k[0], 0) < limit:
                per[k[0]] = per.get(k[0], 0) + 1
                keep.append(k)
        shared = keep
    if not shared:
        raise AssayError(f"{run_a.name} and {run_b.name} share no answered sample (same suite and sample id): "
                         "nothing to judge pairwise")
    fp = pass_fingerprint("pairwise", template, client.model, params, man_a.run_id, man_b.run_id)
    jobs = []
    for suite, sid in shared:
        x, y = ra[(suite, sid)], rb[(suite, sid)]
        q = question_of(x)
        chars = [len(x.completion or ""), len(y.completion or "")]
        toks = [x.completion_tokens, y.completion_tokens]
        jobs.append(Job(suite, sid, "AB", template.render(question=q, answer_a=x.completion or "",
                                                           answer_b=y.completion or ""), chars, toks))
        jobs.append(Job(suite, sid, "BA", template.render(question=q, answer_a=y.completion or "",
                                                           answer_b=x.completion or ""), chars, toks))
    base = {"kind": "pairwise", "template": template.ref, "judge_model": client.model, "run_a": man_a.run_id,
            "run_b": man_b.run_id}
    return await _run_pass(run_a, "pairwise", template, client, params, fp, jobs, concurrency=concurrency,
                           base=base, observer=observer)


def rescore_judgements(run_dir: Path | str, pass_id: str | None = None) -> int:
    """Parse the stored judge replies again with the current parser (no judge call). Returns how many changed."""
    from assay.judge.templates import load_template

    run_dir = Path(run_dir)
    js = _judge_store(run_dir)
    if not js.records_path.exists():
        raise AssayError(f"{run_dir} has no {JUDGEMENTS}: judge it first (assay judge {run_dir})")
    changed = 0
    cache: dict[str, Template] = {}

    def redo(r: JudgeRecord) -> JudgeRecord:
        nonlocal changed
        if (pass_id and r.pass_id != pass_id) or r.status == "error":
            return r
        name = r.template.split("@")[0]
        if name not in cache:
            cache[name] = load_template(name)
        t = cache[name]
        fields = _verdict_fields(r.kind, t, r.reply, r.order)
        new = r.model_copy(update=fields)
        if (new.value, new.choice, new.status, new.winner) != (r.value, r.choice, r.status, r.winner):
            changed += 1
        return new

    with RunLock(run_dir):
        js.rewrite(redo)
    return changed


async def judge_votes(votes: list[dict], out_dir: Path | str, template: Template, client: Client, *,
                      params: SamplingParams = DEFAULT_PARAMS, concurrency: int = 4,
                      observer: Callable[[JudgeRecord], None] | None = None) -> PassResult:
    """Judge the arena's votes (prompt, answer_a, answer_b) pairwise in both orders, so the judge can be scored
    against people. Stored like any pass, in ``out_dir`` (judgements.jsonl + judge.json), resumable."""
    if template.kind != "pairwise":
        raise AssayError(f"template {template.name} is a {template.kind} template, not a pairwise one")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fp = pass_fingerprint("pairwise", template, client.model, params, "arena")
    jobs = []
    for v in votes:
        chars = [len(v["answer_a"] or ""), len(v["answer_b"] or "")]
        for order, (x, y) in (("AB", (v["answer_a"], v["answer_b"])), ("BA", (v["answer_b"], v["answer_a"]))):
            jobs.append(Job("arena", v["id"], order, template.render(question=v["prompt"], answer_a=x or "",
                                                                     answer_b=y or ""), chars, [None, None]))
    base = {"kind": "pairwise", "template": template.ref, "judge_model": client.model, "run_a": "arena"}
    return await _run_pass(out_dir, "pairwise", template, client, params, fp, jobs, concurrency=concurrency,
                           base=base, observer=observer)
