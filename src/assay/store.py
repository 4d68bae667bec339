"""The run store: ``runs/<run-id>/`` for eval **and** bench runs and judge passes, typed, crash-safe, versioned.

A run folder holds ``manifest.json`` (an ``EvalManifest`` or ``BenchManifest``, with ``format_version``), one
append-only JSONL of records (``records.jsonl`` for evals; ``requests.jsonl`` for benchmarks) and ``summary.json``;
an eval run may also hold judge passes (``judge.json``, an index with its own ``format_version``, and
``judgements.jsonl``) and rechecks (``recheck.json`` + ``recheck.jsonl``). Every file name lives here, and everything
reads and writes through this module: ``open(path)`` returns the typed run (``EvalRun``, ``BenchRun`` or, for a
folder of judge passes only, ``JudgePass``) with every file's migrations applied.

Record types register by kind (``register_record("eval", Record)`` in ``assay.evals.base``, ``"bench"`` in
``assay.bench.run``, ``"judge"`` in ``assay.judge.run``, ``"recheck"`` in ``assay.evals.recheck``), so this module
imports nothing from assay but ``common`` and ``errors`` and never knows what a suite is.

Crash-safety rules, in one place:

- The records file is append-only while a run is going: one record per line, written, flushed and fsynced before
  the sample is counted. A SIGKILL loses at most the samples in flight and can leave one half-written last line;
  ``RunStore.open`` cuts that torn tail off before appending again, and ``iter_records`` skips it when reading.
- ``manifest.json``, ``summary.json`` and any rewrite of the records (retrying errors, rescoring) are replaced
  atomically (``assay.common.atomic_file``: temp file, fsync, rename).
- Appending goes through one writer task (``GroupCommit``): every record that is ready is written with one write and
  one fsync in a worker thread, off the event loop, and handed on (counted, shown) only once durable. The eval runner
  and the judge pass both use it; a resume drops error records first (``RunStore.retry_errors``) so they run again.
- Only one process may write a run at a time (``flock`` on ``.lock``; the kernel drops it when a process dies).
- An eval run is found again by its fingerprint hash: the same command resumes the same run.

Formats: each versioned file has its own ``format_version`` chain, applied by ``migrate(raw, file)``
(``FORMATS``). ``manifest.json`` 1 is this layout; folders written before it existed (no ``format_version``: "0")
load through it: bench manifests gain ``status``, eval manifests their defaults; records of both versions have the
same fields. ``judge.json`` and ``recheck.json`` are at 1; one without ``format_version`` (0) gains its empty
tables. A file from a *newer* assay is refused with a one-line error.

Example:
    from assay import store
    run = store.open("runs/20250101-120000-ab12cd34")
    print(run.kind, run.manifest.status, sum(1 for r in run.records()), list(run.judge["passes"]))
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as _dt
import json
import os
import secrets
from pathlib import Path
from typing import Any, Awaitable, Callable, ClassVar, Hashable, Iterable, Iterator, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from assay.common import atomic_file, dumps, write_json_atomic
from assay.errors import AssayError, RunMismatch

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"  # an eval run's records
REQUESTS = "requests.jsonl"  # a bench run's records
SUMMARY = "summary.json"
JUDGE_INDEX = "judge.json"  # the judge passes of a folder (an eval run's, or a folder of passes only)
JUDGEMENTS = "judgements.jsonl"  # their records
RECHECK_INDEX = "recheck.json"  # the rechecks of an eval run
RECHECK = "recheck.jsonl"  # their records
LOCK = ".lock"
FORMAT_VERSION = 1  # manifest.json
JUDGE_FORMAT_VERSION = 1  # judge.json
RECHECK_FORMAT_VERSION = 1  # recheck.json

# which records file a kind of record lives in
RECORD_FILES = {"eval": RECORDS, "bench": REQUESTS, "judge": JUDGEMENTS, "recheck": RECHECK}

M = TypeVar("M", bound=BaseModel)


# ---- manifests -------------------------------------------------------------------------------------------------------
class Manifest(BaseModel):
    """What every run folder says about itself. Unknown keys are kept (a newer minor field survives a rewrite)."""

    model_config = ConfigDict(extra="allow")

    format_version: int = FORMAT_VERSION
    kind: Literal["eval", "bench"]
    run_id: str
    created_at: str = ""
    finished_at: str | None = None
    status: Literal["running", "finished", "interrupted"] = "running"

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    # read-only access by key, as the stored JSON is read (``manifest["status"]``); code in assay uses attributes
    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class EvalManifest(Manifest):
    kind: Literal["eval"] = "eval"
    fingerprint: dict = {}
    fingerprint_hash: str = ""
    endpoints: list[str] = []
    engine: dict = {}  # engine facts that are not part of the fingerprint (name, version, llama_amx)
    counts: dict[str, dict[str, int]] = {}
    command: list[str] = []
    concurrency: int = 1
    wall_s: float = 0.0
    request_s_sum: float = 0.0
    samples_per_s: float | None = None
    harness_overhead: float | None = None
    sessions: list[dict] = []
    suite_options: dict[str, dict] = {}
    suite_refs: dict[str, str] = {}  # suite name -> "module:qualname" for suites not in the registry
    pid: int | None = None
    ended_by: str | None = None
    artifacts: list[str] = []
    rescored_at: str | None = None
    rescored_versions: dict[str, str] | None = None

    @property
    def suites(self) -> list[str]:
        return list((self.fingerprint or {}).get("suites", {}))


class BenchManifest(Manifest):
    kind: Literal["bench"] = "bench"
    status: Literal["running", "finished", "interrupted"] = "finished"
    model: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    endpoints: list[dict] = []
    workload: dict = {}
    machine: dict = {}
    counts: dict[str, int] = {}


_KINDS: dict[str, type[Manifest]] = {"eval": EvalManifest, "bench": BenchManifest}


# ---- format versions: one chain per versioned file -------------------------------------------------------------------
def _manifest_v0(raw: dict) -> dict:
    if raw.get("kind") == "bench":
        raw.setdefault("status", "finished")  # v0 bench folders were written only when the run had finished
    return raw


def _judge_v0(raw: dict) -> dict:
    raw["passes"] = dict(raw.get("passes") or {})
    return raw


def _recheck_v0(raw: dict) -> dict:
    raw["rechecks"] = dict(raw.get("rechecks") or {})
    raw.setdefault("latest", None)
    return raw


# file -> (its current format_version, {version: the step that brings a dict of that version to the next})
FORMATS: dict[str, tuple[int, dict[int, Callable[[dict], dict]]]] = {
    MANIFEST: (FORMAT_VERSION, {0: _manifest_v0}),
    JUDGE_INDEX: (JUDGE_FORMAT_VERSION, {0: _judge_v0}),
    RECHECK_INDEX: (RECHECK_FORMAT_VERSION, {0: _recheck_v0}),
}


def migrate(raw: dict, file: str = MANIFEST) -> dict:
    """A dict read from ``file`` (``manifest.json`` by default, ``judge.json``, ``recheck.json``), of any known
    format version, brought to that file's current one step by step. A newer version is refused in one line."""
    current, steps = FORMATS[file]
    v = int(raw.get("format_version", 0))
    if v > current:
        what = f"run {raw.get('run_id')!r}" if file == MANIFEST else f"its {file}"
        raise RunMismatch(f"{what} was written by a newer assay (format {v}; this one reads up to {current}): "
                          "upgrade assay (pip install -U assay)")
    out = dict(raw)
    while v < current:
        out = steps[v](out)
        v += 1
    out["format_version"] = current
    return out


def parse_manifest(raw: dict, where: str = "manifest") -> Manifest:
    kind = raw.get("kind")
    if kind not in _KINDS:
        raise RunMismatch(f"{where}: unknown run kind {kind!r} (expected eval or bench)")
    try:
        return _KINDS[kind].model_validate(migrate(raw))
    except ValidationError as e:
        err = e.errors()[0]
        raise RunMismatch(f"{where}: field {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RunMismatch(f"{p} is not valid JSON ({e})") from None


def read_manifest(run_dir: Path | str) -> Manifest:
    p = Path(run_dir) / MANIFEST
    try:
        raw = _read_json(p)
    except FileNotFoundError:
        raise RunMismatch(f"{run_dir} is not a run folder (no {MANIFEST})") from None
    return parse_manifest(raw, str(p))


def read_summary(run_dir: Path | str) -> dict | None:
    """``summary.json`` of a run folder, or None when there is none yet."""
    p = Path(run_dir) / SUMMARY
    return _read_json(p) if p.is_file() else None


def read_index(run_dir: Path | str, file: str) -> dict:
    """A run folder's index of passes (``judge.json``, ``recheck.json``), migrated to its current format; an empty
    one of the current format when the folder has none."""
    p = Path(run_dir) / file
    raw = _read_json(p) if p.is_file() else {}
    if not isinstance(raw, dict):
        raise RunMismatch(f"{p}: not a JSON object")
    return migrate(raw, file)


def write_index(run_dir: Path | str, file: str, index: dict) -> None:
    """Replace an index file atomically, stamped with its current format version."""
    write_json_atomic(Path(run_dir) / file, {**index, "format_version": FORMATS[file][0]})


# ---- record kinds ----------------------------------------------------------------------------------------------------
_RECORD_TYPES: dict[str, type[BaseModel]] = {}


def register_record(kind: str, model: type[M]) -> type[M]:
    """Say which pydantic model the records of ``kind`` (``eval``, ``bench``, ``judge``, ``recheck``) are read as.
    Each record type registers itself from its own module, so the store imports none of them."""
    _RECORD_TYPES[kind] = model
    return model


def record_type(kind: str) -> type[BaseModel]:
    try:
        return _RECORD_TYPES[kind]
    except KeyError:
        raise RunMismatch(f"no record type is registered for {kind!r} records: import the module that defines it "
                          "(it calls assay.store.register_record)") from None


# ---- records ---------------------------------------------------------------------------------------------------------
def iter_records(path: Path | str, model: type[M] | None = None) -> Iterator[Any]:
    """Stream a records file: dicts, or ``model`` instances. A torn *last* line (kill -9 mid-write) is skipped; a
    corrupt line anywhere else is an error, because that is not something a crash can produce."""
    path = Path(path)
    if not path.exists():
        return

    def load(line: bytes, lineno: int):
        try:
            return model.model_validate_json(line) if model is not None else json.loads(line)
        except (json.JSONDecodeError, ValidationError) as e:
            raise RunMismatch(f"{path}:{lineno}: corrupt record ({str(e).splitlines()[0]}); the file was edited by "
                              "hand?") from None

    with builtins.open(path, "rb") as f:
        pending: bytes | None = None
        lineno = 0
        for line in f:
            if pending is not None:
                yield load(pending, lineno)
            pending = line
            lineno += 1
        if pending is not None and pending.endswith(b"\n"):
            yield load(pending, lineno)
        # else: a torn last line without its newline -> the sample was not finished; it will be run again


def _line(rec: Any) -> str:
    return rec.model_dump_json() if isinstance(rec, BaseModel) else dumps(rec)


def trim_torn_tail(path: Path | str) -> int:
    """Cut a half-written last line off (everything after the last newline). Returns the bytes removed."""
    path = Path(path)
    if not path.exists():
        return 0
    with builtins.open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return 0
        pos, block = size, 65536  # walk back in blocks to the last newline; the torn tail is at most one record
        keep = 0
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            i = f.read(pos - start).rfind(b"\n")
            if i >= 0:
                keep = start + i + 1
                break
            pos = start
        if keep < size:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return size - keep


class RecordWriter:
    """Append records durably: each call's lines are written, flushed and fsynced before ``append`` returns."""

    def __init__(self, path: Path | str, *, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self.f = builtins.open(self.path, "ab", buffering=0)

    def append(self, records: Any) -> None:
        """One record (model or dict), a list of them, or preformatted text lines."""
        if isinstance(records, str):
            data = (records.rstrip("\n") + "\n").encode("utf-8")
        else:
            batch = records if isinstance(records, list) else [records]
            data = "".join(_line(r) + "\n" for r in batch).encode("utf-8")
        view = memoryview(data)  # one write of the whole batch: a crash leaves at most one torn line at the end
        while view:
            n = self.f.write(view)
            view = view[n:]
        if self.fsync:
            os.fsync(self.f.fileno())

    def close(self) -> None:
        if not self.f.closed:
            self.f.close()


class GroupCommit:
    """One durable writer task for many producers (the eval runner's workers, the judge pass's calls).

    ``await put(record)`` hands a record over; the writer task takes every record that is ready, appends them with
    one write and one fsync in a worker thread (off the event loop), and only then calls ``on_batch(batch)``: what
    is counted or shown is on disk. ``run(main)`` awaits the producers (``main``, a future) with the writer beside
    them; when it returns every handed-over record is written, and when anything fails the records already handed
    over are still written before the exception goes on. A failing writer (disk full) stops the producers.

    Example:
        gc = GroupCommit(RunStore(d).writer(), on_batch=lambda batch: print(len(batch)))
        await gc.run(asyncio.gather(*(work(gc.put) for _ in range(8))))
    """

    _STOP = object()

    def __init__(self, writer: RecordWriter, on_batch: Callable[[list], Awaitable[None] | None] | None = None, *,
                 maxsize: int = 0):
        self.writer, self.on_batch = writer, on_batch
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=maxsize)

    async def put(self, record: Any) -> None:
        await self.queue.put(record)

    async def _loop(self) -> None:
        stop = False
        while not stop:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            cut = next((i for i, r in enumerate(batch) if r is self._STOP), None)
            if cut is not None:
                stop, batch = True, batch[:cut]
            if batch:
                await asyncio.to_thread(self.writer.append, batch)
            if self.on_batch is not None:
                res = self.on_batch(batch)
                if asyncio.iscoroutine(res):
                    await res

    async def run(self, main: Awaitable) -> None:
        main = asyncio.ensure_future(main)
        wtask = asyncio.create_task(self._loop())
        try:
            # The writer only ends early by failing (disk full ...): then stop the producers instead of blocking them.
            await asyncio.wait({main, wtask}, return_when=asyncio.FIRST_COMPLETED)
            if wtask.done():
                wtask.result()
                raise AssayError("record writer stopped unexpectedly")
            await main
            await self.queue.put(self._STOP)
            await wtask
        finally:
            if not main.done():
                main.cancel()
            await asyncio.gather(main, return_exceptions=True)
            if not wtask.done():
                await self.queue.put(self._STOP)
                await asyncio.gather(wtask, return_exceptions=True)
            self.writer.close()


def write_records(path: Path | str, records: Iterable[Any]) -> int:
    """Write a whole records file atomically (a finished bench run, a rewrite). Returns the count."""
    n = 0
    with atomic_file(path) as f:
        for r in records:
            f.write(_line(r) + "\n")
            n += 1
    return n


def rewrite_records(path: Path | str, keep: Callable[[Any], Any], model: type[M] | None = None) -> tuple[int, int]:
    """Stream ``path`` through ``keep(record) -> record | None`` into a new file that atomically replaces it (drop
    error records before they are retried). Returns (kept, dropped)."""
    kept = dropped = 0

    def gen():
        nonlocal kept, dropped
        for rec in iter_records(path, model):
            new = keep(rec)
            if new is None:
                dropped += 1
                continue
            kept += 1
            yield new

    trim_torn_tail(path)
    write_records(path, gen())
    return kept, dropped


async def rewrite_records_async(path: Path | str, redo: Callable[[list], Awaitable[list]], *,
                                model: type[M] | None = None, batch: int = 256) -> int:
    """``rewrite_records`` for an async transformation applied ``batch`` records at a time (rescoring in a process
    pool). Returns the number of records written."""
    path = Path(path)
    trim_torn_tail(path)
    n = 0
    with atomic_file(path) as f:
        pending: list = []
        for rec in iter_records(path, model):
            pending.append(rec)
            if len(pending) >= batch:
                for new in await redo(pending):
                    f.write(_line(new) + "\n")
                    n += 1
                pending = []
        if pending:
            for new in await redo(pending):
                f.write(_line(new) + "\n")
                n += 1
    return n


# ---- folders ---------------------------------------------------------------------------------------------------------
def new_run_id(out_dir: Path | str, tag: str, prefix: str = "") -> str:
    """Sortable and unique: [prefix-]UTC time-tag (+ a random suffix if that folder exists)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = f"{prefix}-{stamp}" if prefix else stamp
    run_id = f"{base}-{tag[:8]}"
    while (Path(out_dir) / run_id).exists():
        run_id = f"{base}-{tag[:8]}-{secrets.token_hex(2)}"
    return run_id


def iso_now() -> str:
    """UTC ISO-8601 with milliseconds: readable, and sorts as text."""
    return (_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def list_runs(out_dir: Path | str, kind: str = "eval") -> list[tuple[Path, Manifest]]:
    """Run folders of ``kind`` under ``out_dir``, newest first by created_at; unreadable folders are skipped."""
    out = []
    d = Path(out_dir)
    if not d.is_dir():
        return out
    for child in d.iterdir():
        if not (child / MANIFEST).is_file():
            continue
        try:
            man = read_manifest(child)
        except RunMismatch:
            continue
        if man.kind == kind:
            out.append((child, man))
    out.sort(key=lambda pm: str(pm[1].created_at), reverse=True)
    return out


def find_run(out_dir: Path | str, fingerprint_hash: str) -> Path | None:
    """The newest eval run in ``out_dir`` with this fingerprint (unfinished ones first), or None."""
    matches = [(p, m) for p, m in list_runs(out_dir) if getattr(m, "fingerprint_hash", None) == fingerprint_hash]
    for p, m in matches:
        if m.status != "finished":
            return p
    return matches[0][0] if matches else None


def resolve_run(ref: str | Path, out_dir: Path | str | None = None) -> Path:
    """A run folder from a path, or a run id under ``out_dir``; ``latest`` means the newest eval run there."""
    p = Path(ref)
    if (p / MANIFEST).is_file():
        return p
    if out_dir is not None:
        if str(ref) == "latest":
            runs = list_runs(out_dir)
            if runs:
                return runs[0][0]
        q = Path(out_dir) / str(ref)
        if (q / MANIFEST).is_file():
            return q
    raise RunMismatch(f"no run at {ref!r}" + (f" (nor under {out_dir})" if out_dir else "")
                      + ": pass a run folder path or a run id")


class RunLock:
    """An exclusive lock on a run folder for the life of a writer. Two writers would duplicate samples."""

    def __init__(self, run_dir: Path | str):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise RunMismatch(f"run {self.path.parent} is being written by another process: wait for it, or use "
                              "--fresh to start a separate run") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class RunStore:
    """One run folder's writer side: its manifest, one records file (typed by ``record``) and its summary.

    ``RunStore(d)`` picks the records file and type from the manifest's kind (the registered record type);
    ``RunStore(d, JudgeRecord, JUDGEMENTS)`` is any other records file of the folder."""

    def __init__(self, run_dir: Path | str, record: type[M] | None = None, records_name: str | None = None):
        self.dir = Path(run_dir)
        self._manifest: Manifest | None = None
        if record is None or records_name is None:
            kind = self.manifest.kind if (self.dir / MANIFEST).is_file() else "eval"
            record = record or record_type(kind)
            records_name = records_name or RECORD_FILES[kind]
        self.record = record
        self.records_path = self.dir / records_name

    @classmethod
    def create(cls, out_dir: Path | str, run_id: str, record: type[M], records_name: str = RECORDS) -> "RunStore":
        d = Path(out_dir) / run_id
        d.mkdir(parents=True, exist_ok=True)
        return cls(d, record, records_name)

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = read_manifest(self.dir)
        return self._manifest

    def write_manifest(self, manifest: Manifest) -> None:
        self._manifest = manifest
        write_json_atomic(self.dir / MANIFEST, manifest.to_dict())

    def records(self) -> Iterator[Any]:
        return iter_records(self.records_path, self.record)

    def writer(self, *, fsync: bool = True) -> RecordWriter:
        trim_torn_tail(self.records_path)
        return RecordWriter(self.records_path, fsync=fsync)

    def write_records(self, records: Iterable[Any]) -> int:
        return write_records(self.records_path, records)

    def rewrite(self, keep: Callable[[Any], Any]) -> tuple[int, int]:
        return rewrite_records(self.records_path, keep, self.record)

    def retry_errors(self, mine: Callable[[Any], bool] | None = None) -> tuple[int, int]:
        """Resume: drop the error records (of those ``mine`` picks, default all) so they are asked again, and cut a
        torn tail. The eval runner and the judge pass resume through this. Returns (kept, dropped)."""
        if not self.records_path.exists():
            return 0, 0
        return self.rewrite(lambda r: None if (r.status == "error" and (mine is None or mine(r))) else r)

    def done(self, key: Callable[[Any], Hashable]) -> set:
        """The keys of the records stored (after ``retry_errors``: the ones that need no call again)."""
        return {key(r) for r in self.records()}

    async def rewrite_async(self, redo: Callable[[list], Awaitable[list]], batch: int = 256) -> int:
        return await rewrite_records_async(self.records_path, redo, model=self.record, batch=batch)

    def summary(self) -> dict | None:
        return read_summary(self.dir)

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.dir / SUMMARY, summary)

    def lock(self) -> RunLock:
        return RunLock(self.dir)


# ---- reading a run: open(path) ---------------------------------------------------------------------------------------
class Run:
    """A folder opened for reading, every file migrated: ``manifest`` (typed; None for a folder of judge passes
    only), ``records()`` (the registered record type of ``kind``), ``summary``, ``judge`` (the ``judge.json`` index)
    and ``judgements()``, ``recheck`` (the ``recheck.json`` index) and ``rechecks()``. ``store()`` is the writer side
    of the same folder."""

    kind: ClassVar[str] = ""

    def __init__(self, run_dir: Path | str, manifest: Manifest | None = None):
        self.dir = Path(run_dir)
        self.manifest = manifest

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.dir)!r})"

    @property
    def run_id(self) -> str:
        return (self.manifest.run_id if self.manifest is not None else "") or self.dir.name

    @property
    def records_path(self) -> Path:
        return self.dir / RECORD_FILES[self.kind]

    def records(self, *, raw: bool = False) -> Iterator[Any]:
        """Stream the records (a torn last line is skipped): typed, or dicts with ``raw``."""
        return _iter_kind(self.records_path, self.kind, raw)

    def store(self) -> RunStore:
        return RunStore(self.dir, record_type(self.kind), RECORD_FILES[self.kind])

    @property
    def summary(self) -> dict | None:
        return read_summary(self.dir)

    @property
    def judge(self) -> dict:
        """``judge.json``, migrated: ``{"format_version", "passes": {pass_id: {fingerprint..., n_jobs, ...}}}``."""
        return read_index(self.dir, JUDGE_INDEX)

    def judgements(self, pass_id: str | None = None, *, raw: bool = False) -> Iterator[Any]:
        recs = _iter_kind(self.dir / JUDGEMENTS, "judge", raw)
        return (r for r in recs if pass_id is None or (r["pass_id"] if raw else r.pass_id) == pass_id)

    @property
    def recheck(self) -> dict:
        """``recheck.json``, migrated: ``{"format_version", "latest", "rechecks": {recheck_id: entry}}``."""
        return read_index(self.dir, RECHECK_INDEX)

    def rechecks(self, recheck_id: str | None = None) -> Iterator[Any]:
        recs = _iter_kind(self.dir / RECHECK, "recheck", False)
        return (r for r in recs if recheck_id is None or r.recheck_id == recheck_id)


def _iter_kind(path: Path, kind: str, raw: bool) -> Iterator[Any]:
    if raw or not path.exists():  # no file, no records: no record type is needed to read none
        yield from iter_records(path)
    else:
        yield from iter_records(path, record_type(kind))


class EvalRun(Run):
    """An eval run: ``EvalManifest``, ``records.jsonl`` (``assay.evals.base.Record``), ``summary.json``."""

    kind = "eval"
    manifest: EvalManifest


class BenchRun(Run):
    """A bench run: ``BenchManifest``, ``requests.jsonl`` (``assay.bench.run.RequestRecord``), ``summary.json``."""

    kind = "bench"
    manifest: BenchManifest


class JudgePass(Run):
    """A folder of judge passes and nothing else (``assay arena agree``): ``judge.json`` + ``judgements.jsonl``, no
    manifest; ``records()`` are its judgements."""

    kind = "judge"


_RUNS: dict[str, type[Run]] = {"eval": EvalRun, "bench": BenchRun}


def open(run_dir: Path | str, out_dir: Path | str | None = None) -> Run:  # noqa: A001 - store.open(path)
    """The run at ``run_dir`` (a folder; or a run id or ``latest`` under ``out_dir``), typed by its kind, its manifest
    migrated: ``EvalRun``, ``BenchRun``, or ``JudgePass`` for a folder holding judge passes only. Raises
    ``RunMismatch`` (one line) for anything else."""
    p = Path(run_dir)
    if not (p / MANIFEST).is_file():
        if p.is_dir() and ((p / JUDGE_INDEX).is_file() or (p / JUDGEMENTS).is_file()):
            return JudgePass(p)
        if out_dir is None:
            read_manifest(p)  # raises: not a run folder
        p = resolve_run(run_dir, out_dir)
    man = read_manifest(p)
    return _RUNS[man.kind](p, man)
