"""The run store: ``runs/<run-id>/`` for eval **and** bench runs, typed, crash-safe, versioned.

A run folder holds ``manifest.json`` (an ``EvalManifest`` or ``BenchManifest``, with ``format_version``), one
append-only JSONL of records (``records.jsonl`` for evals: ``assay.evals.base.Record``; ``requests.jsonl`` for
benchmarks: ``assay.bench.run.RequestRecord``) and ``summary.json``. Everything reads and writes through this module.

Crash-safety rules, in one place:

- The records file is append-only while a run is going: one record per line, written, flushed and fsynced before
  the sample is counted. A SIGKILL loses at most the samples in flight and can leave one half-written last line;
  ``RunStore.open`` cuts that torn tail off before appending again, and ``iter_records`` skips it when reading.
- ``manifest.json``, ``summary.json`` and any rewrite of the records (retrying errors, rescoring) are replaced
  atomically (``assay.common.atomic_file``: temp file, fsync, rename).
- Only one process may write a run at a time (``flock`` on ``.lock``; the kernel drops it when a process dies).
- An eval run is found again by its fingerprint hash: the same command resumes the same run.

Formats: ``format_version`` 1 is this layout. Folders written before it existed (no ``format_version``: "0") load
through ``migrate``: bench manifests gain ``status``/``format_version``, eval manifests their defaults; records of
both versions have the same fields. A folder from a *newer* assay is refused with a one-line error.

Example:
    from assay.store import RunStore
    store = RunStore("runs/20250101-120000-ab12cd34")
    print(store.manifest.status, sum(1 for r in store.records()))
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Iterator, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from assay.common import atomic_file, dumps, write_json_atomic
from assay.errors import RunMismatch

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
REQUESTS = "requests.jsonl"
SUMMARY = "summary.json"
LOCK = ".lock"
FORMAT_VERSION = 1

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


def migrate(raw: dict) -> dict:
    """A manifest dict of any known format version, brought to ``FORMAT_VERSION``."""
    v = int(raw.get("format_version", 0))
    if v > FORMAT_VERSION:
        raise RunMismatch(f"run {raw.get('run_id')!r} was written by a newer assay (format {v}; this one reads up to "
                          f"{FORMAT_VERSION}): upgrade assay (pip install -U assay)")
    out = dict(raw)
    if v == 0:
        if out.get("kind") == "bench":
            out.setdefault("status", "finished")  # v0 bench folders were written only when the run had finished
    out["format_version"] = FORMAT_VERSION
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


def read_manifest(run_dir: Path | str) -> Manifest:
    p = Path(run_dir) / MANIFEST
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunMismatch(f"{run_dir} is not a run folder (no {MANIFEST})") from None
    except json.JSONDecodeError as e:
        raise RunMismatch(f"{p} is not valid JSON ({e})") from None
    return parse_manifest(raw, str(p))


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

    with open(path, "rb") as f:
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
    with open(path, "rb+") as f:
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
        self.f = open(self.path, "ab", buffering=0)

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
    """One run folder: its manifest, its records file (typed by ``record``) and its summary."""

    def __init__(self, run_dir: Path | str, record: type[M] | None = None, records_name: str | None = None):
        self.dir = Path(run_dir)
        self._manifest: Manifest | None = None
        if record is None or records_name is None:
            kind = self.manifest.kind if (self.dir / MANIFEST).is_file() else "eval"
            record = record or _default_record(kind)
            records_name = records_name or (REQUESTS if kind == "bench" else RECORDS)
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

    async def rewrite_async(self, redo: Callable[[list], Awaitable[list]], batch: int = 256) -> int:
        return await rewrite_records_async(self.records_path, redo, model=self.record, batch=batch)

    def summary(self) -> dict | None:
        p = self.dir / SUMMARY
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.dir / SUMMARY, summary)

    def lock(self) -> RunLock:
        return RunLock(self.dir)


def _default_record(kind: str):
    if kind == "bench":
        from assay.bench.run import RequestRecord

        return RequestRecord
    from assay.evals.base import Record

    return Record
