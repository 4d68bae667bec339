"""The answer cache: a model's answer is a function of (the exact model, the messages, the effective sampling
parameters, the seed). assay keeps the answers it was given under that key, content-addressed, in one SQLite file
under ``$ASSAY_HOME`` (``answers.sqlite``), so that ``--limit 50`` then ``--limit 200`` asks 150 questions, a new
suite version with the same prompts is rescored without a call, and suites sharing prompts share answers.

What makes the key (``answer_key``):
- the model's identity digests (``Endpoint.model_fingerprint()``: weights sha256, quantisation, chat template and
  tokenizer digests — never a path or a served name), so an answer never crosses models; a server whose weights are
  not known (a remote URL without ``--probe-identity``) gets no caching at all;
- the messages and the request's fields as the engine receives them (``client.engine_request``: temperature, top-p,
  max tokens, seed, tools, response format, and every sampling knob the engine reads, with its neutral value when the
  user set none).
What is reused: greedy answers (temperature 0) always; temperature > 0 only where the request carries a seed and the
engine declares seeded sampling reproducible (``Capabilities.seeded``: llama.cpp and vLLM do per request; a remote
server of unknown kind does not).

Crash-safe: SQLite in WAL mode; a ``kill -9`` during a write loses at most that answer (tests/test_answers.py kills a
writer mid-stream and checks the file). Bounded: past ``ASSAY_ANSWER_CACHE_MB`` (default 512) the least recently used
answers are removed. ``--no-cache`` turns it off for a command.

Example:
    cache = AnswerCache.default()
    key = answer_key(fp, body)
    if (hit := cache.get(key)) is None:
        cache.put(key, fp_digest, answer_dict)
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from assay.common import stable_hash

SCHEMA_VERSION = 1
DEFAULT_MAX_MB = 512.0


def answer_key(model_fingerprint: dict, body: dict) -> str:
    """The content address of one answer: the model's identity digests and the request exactly as sent (messages
    and sampling fields; the served name, ``stream`` and its options left out)."""
    request = {k: v for k, v in body.items() if k not in ("model", "stream", "stream_options")}
    return stable_hash({"v": SCHEMA_VERSION, "model": model_fingerprint, "request": request}, n=64)


def cacheable(body: dict, *, seeded: bool) -> bool:
    """Whether an answer to ``body`` is a function of the key: greedy, or seeded on an engine whose seeded
    sampling is reproducible."""
    temperature = body.get("temperature")
    if temperature is None:  # the server's default temperature: not known, so not a function of the request
        return False
    if float(temperature) == 0.0:
        return True
    return seeded and body.get("seed") is not None


class AnswerCache:
    """One SQLite file of answers; thread-safe; every write is its own transaction."""

    def __init__(self, path: str | Path, *, max_mb: float | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        env = os.environ.get("ASSAY_ANSWER_CACHE_MB")
        self.max_bytes = int(1024 * 1024 * (max_mb if max_mb is not None else float(env) if env else DEFAULT_MAX_MB))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable against a killed process
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                         "value TEXT NOT NULL, bytes INTEGER NOT NULL, created REAL NOT NULL, used REAL NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS answers_used ON answers(used)")
        self.hits = self.misses = self.stored = 0

    @classmethod
    def default(cls) -> "AnswerCache":
        from assay.engines import assay_home

        return cls(assay_home() / "answers.sqlite")

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self._db.execute("UPDATE answers SET used = ? WHERE key = ?", (time.time(), key))
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, model: str, value: dict) -> None:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        now = time.time()
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers (key, model, value, bytes, created, used) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (key, model, text, len(text), now, now))
            self.stored += 1
            self._bound()

    def _bound(self) -> None:
        total = self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM answers").fetchone()[0]
        if total <= self.max_bytes:
            return
        target = int(self.max_bytes * 0.9)
        drop, freed = [], 0
        for key, size in self._db.execute("SELECT key, bytes FROM answers ORDER BY used ASC"):
            if total - freed <= target:
                break
            drop.append((key,))
            freed += size
        self._db.executemany("DELETE FROM answers WHERE key = ?", drop)

    def count(self, model: str | None = None) -> int:
        with self._lock:
            q = ("SELECT COUNT(*) FROM answers", ()) if model is None else (
                "SELECT COUNT(*) FROM answers WHERE model = ?", (model,))
            return self._db.execute(*q).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def to_cached(completion: Any) -> dict:
    """What is kept of a Completion: the answer and its token counts (timings are not reused: a cached answer took
    no time, and the record says it came from the cache)."""
    return {"text": completion.text, "raw_text": completion.raw_text, "reasoning": completion.reasoning,
            "think_unclosed": completion.think_unclosed, "finish_reason": completion.finish_reason,
            "prompt_tokens": completion.prompt_tokens, "prompt_tokens_source": completion.prompt_tokens_source,
            "completion_tokens": completion.completion_tokens, "usage_source": completion.usage_source,
            "model": completion.model,
            "tool_calls": [c.model_dump() for c in completion.tool_calls]}
