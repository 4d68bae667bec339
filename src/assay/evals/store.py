"""The run folder: ``runs/<run-id>/`` with ``manifest.json``, ``records.jsonl`` and ``summary.json``.

Crash-safety rules, in one place:

- ``records.jsonl`` is append-only while a run is going: one ``Record`` per line, written, flushed and fsynced before
  the sample is counted. A SIGKILL loses at most the samples in flight and can leave one half-written last line;
  ``open_run`` cuts that torn tail off before appending again, and ``iter_records`` skips it when reading.
- ``manifest.json`` and ``summary.json`` are replaced atomically (write a temp file, fsync, rename).
- Only one process may write a run at a time (``flock`` on ``.lock``; the kernel drops it when a process dies).
- A run is found again by its fingerprint hash: the same command resumes the same run; anything that changes the
  fingerprint (suite version or data, prompt, model, engine, sampling parameters, seed, limit) gets a new run id.

Example:
    from assay.evals.store import find_run, iter_records
    run_dir = find_run("runs", fingerprint_hash)
    for rec in iter_records(run_dir / "records.jsonl"):
        print(rec["sample_id"], rec["status"])
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
from pathlib import Path
from typing import Iterator

from assay.errors import RunMismatch

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
SUMMARY = "summary.json"
LOCK = ".lock"


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON so that a reader (or a crash) sees either the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_manifest(run_dir: Path) -> dict:
    p = Path(run_dir) / MANIFEST
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunMismatch(f"{run_dir} is not a run folder (no {MANIFEST})") from None
    except json.JSONDecodeError as e:
        raise RunMismatch(f"{p} is not valid JSON ({e})") from None


def iter_records(path: Path) -> Iterator[dict]:
    """Stream the records of a records.jsonl as dicts. A torn *last* line (kill -9 mid-write) is skipped; a corrupt
    line anywhere else is an error, because that is not something a crash can produce."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        pending: bytes | None = None
        lineno = 0
        for line in f:
            if pending is not None:
                try:
                    yield json.loads(pending)
                except json.JSONDecodeError as e:
                    raise RunMismatch(f"{path}:{lineno}: corrupt record ({e}); the file was edited by hand?") from None
            pending = line
            lineno += 1
        if pending is not None and pending.endswith(b"\n"):
            try:
                yield json.loads(pending)
            except json.JSONDecodeError as e:
                raise RunMismatch(f"{path}:{lineno}: corrupt record ({e})") from None
        # else: a torn last line without its newline -> the sample was not finished; it will be run again


def trim_torn_tail(path: Path) -> int:
    """Cut a half-written last line off (everything after the last newline). Returns the bytes removed."""
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return 0
        # Walk back in blocks to the last newline; the torn tail is at most one record long.
        pos, block = size, 65536
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            i = chunk.rfind(b"\n")
            if i >= 0:
                keep = start + i + 1
                break
            pos = start
        else:
            keep = 0
        if keep < size:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return size - keep


def new_run_id(out_dir: Path, fingerprint_hash: str) -> str:
    """Sortable and unique: UTC time + fingerprint prefix (+ a random suffix if that folder exists)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-{fingerprint_hash[:8]}"
    while (Path(out_dir) / run_id).exists():
        run_id = f"{stamp}-{fingerprint_hash[:8]}-{secrets.token_hex(2)}"
    return run_id


def list_runs(out_dir: Path, kind: str = "eval") -> list[tuple[Path, dict]]:
    """Run folders of ``kind`` ("eval" or "bench") under ``out_dir``, newest first by created_at, with their
    manifests; unreadable folders are skipped."""
    out = []
    d = Path(out_dir)
    if not d.is_dir():
        return out
    for child in d.iterdir():
        m = child / MANIFEST
        if not m.is_file():
            continue
        try:
            man = json.loads(m.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if man.get("kind") == kind:
            out.append((child, man))
    out.sort(key=lambda pm: str(pm[1].get("created_at", "")), reverse=True)
    return out


def find_run(out_dir: Path, fingerprint_hash: str) -> Path | None:
    """The newest run in ``out_dir`` with this fingerprint (unfinished ones first), or None."""
    matches = [(p, m) for p, m in list_runs(out_dir) if m.get("fingerprint_hash") == fingerprint_hash]
    for p, m in matches:
        if m.get("status") != "finished":
            return p
    return matches[0][0] if matches else None


def resolve_run(ref: str | Path, out_dir: Path | None = None) -> Path:
    """A run folder from a path, or a run id under ``out_dir``; ``latest`` means the newest run there."""
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

    def __init__(self, run_dir: Path):
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


class RecordWriter:
    """Append records durably: each line is written, flushed and fsynced before ``append`` returns."""

    def __init__(self, path: Path, *, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self.f = open(self.path, "ab", buffering=0)

    def append(self, line: str) -> None:
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        # One write of the whole line: a crash leaves at most one torn line at the end.
        view = memoryview(data)
        while view:
            n = self.f.write(view)
            view = view[n:]
        if self.fsync:
            os.fsync(self.f.fileno())

    def close(self) -> None:
        if not self.f.closed:
            self.f.close()


def rewrite_records(path: Path, keep) -> tuple[int, int]:
    """Stream ``path`` through ``keep(record) -> dict | None`` into a temp file, then atomically replace it.

    Used to drop error records before they are retried (so the file keeps one record per sample) and by rescore.
    Returns (kept, dropped)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    kept = dropped = 0
    with open(tmp, "w", encoding="utf-8") as out:
        for rec in iter_records(path):
            new = keep(rec)
            if new is None:
                dropped += 1
                continue
            out.write(json.dumps(new, ensure_ascii=False, default=str) + "\n")
            kept += 1
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return kept, dropped
