"""Chat history in SQLite, through Chainlit's own ``SQLAlchemyDataLayer`` (``sqlite+aiosqlite``).

The data layer reads and writes tables it never creates, and when a column it writes is missing it logs a warning and
drops the row: a thread then silently vanishes from history. So the schema below carries every column Chainlit 2.x
writes (steps: ``command``, ``modes``, ``defaultOpen``, ``autoCollapse``, ``icon`` ...; tested against the installed
package's own SQL and dict types in tests/test_chat_history.py) and ``create_schema`` adds any missing column to an
older file at start.

SQLite has no JSON or array types: metadata is stored as JSON text (the data layer ``json.dumps`` it), and the thread
``tags`` list cannot be stored at all, which is why the app keeps ``auto_tag_thread = false``.

Example:
    from assay.chat.history import create_schema, default_db_path, list_threads
    path = create_schema(default_db_path())
    for t in list_threads(path):
        print(t["id"], t["name"], len(t["steps"]))
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

# table -> {column: SQL type}. Order is the CREATE order. "id" is the primary key everywhere (the data layer upserts
# with ON CONFLICT (id)).
SCHEMA: dict[str, dict[str, str]] = {
    "users": {
        "id": "TEXT PRIMARY KEY",
        "identifier": "TEXT NOT NULL UNIQUE",
        "metadata": "TEXT NOT NULL DEFAULT '{}'",
        "createdAt": "TEXT",
    },
    "threads": {
        "id": "TEXT PRIMARY KEY",
        "createdAt": "TEXT",
        "name": "TEXT",
        "userId": "TEXT",
        "userIdentifier": "TEXT",
        "tags": "TEXT",
        "metadata": "TEXT",
    },
    "steps": {
        "id": "TEXT PRIMARY KEY",
        "name": "TEXT",
        "type": "TEXT",
        "threadId": "TEXT",
        "parentId": "TEXT",
        "command": "TEXT",
        "modes": "TEXT",
        "streaming": "BOOLEAN",
        "waitForAnswer": "BOOLEAN",
        "isError": "BOOLEAN",
        "metadata": "TEXT",
        "tags": "TEXT",
        "input": "TEXT",
        "output": "TEXT",
        "createdAt": "TEXT",
        "start": "TEXT",
        "end": "TEXT",
        "generation": "TEXT",
        "showInput": "TEXT",
        "defaultOpen": "BOOLEAN",
        "autoCollapse": "BOOLEAN",
        "language": "TEXT",
        "icon": "TEXT",
        "indent": "INTEGER",
        "feedback": "TEXT",
    },
    "elements": {
        "id": "TEXT PRIMARY KEY",
        "threadId": "TEXT",
        "type": "TEXT",
        "chainlitKey": "TEXT",
        "path": "TEXT",
        "url": "TEXT",
        "objectKey": "TEXT",
        "name": "TEXT",
        "display": "TEXT",
        "size": "TEXT",
        "language": "TEXT",
        "page": "INTEGER",
        "props": "TEXT",
        "autoPlay": "BOOLEAN",
        "playerConfig": "TEXT",
        "forId": "TEXT",
        "mime": "TEXT",
    },
    "feedbacks": {
        "id": "TEXT PRIMARY KEY",
        "forId": "TEXT",
        "threadId": "TEXT",
        "value": "INTEGER",
        "comment": "TEXT",
    },
}

_INDEXES = [
    'CREATE INDEX IF NOT EXISTS idx_threads_user ON threads ("userId")',
    'CREATE INDEX IF NOT EXISTS idx_steps_thread ON steps ("threadId")',
    'CREATE INDEX IF NOT EXISTS idx_elements_thread ON elements ("threadId")',
]


def default_db_path() -> Path:
    """$ASSAY_CHAT_DB, else <ASSAY_HOME or the platform user-data dir>/chat/history.sqlite."""
    if os.environ.get("ASSAY_CHAT_DB"):
        return Path(os.environ["ASSAY_CHAT_DB"]).expanduser()
    from platformdirs import user_data_dir

    return Path(os.environ.get("ASSAY_HOME") or user_data_dir("assay")) / "chat" / "history.sqlite"


def db_url(path: str | Path) -> str:
    return f"sqlite+aiosqlite:///{Path(path).resolve()}"


def create_schema(path: str | Path) -> Path:
    """Create the tables (or add columns a newer Chainlit needs to an existing file). Idempotent."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    try:
        # WAL lets the test / export readers look while the app writes.
        con.execute("PRAGMA journal_mode=WAL")
        for table, cols in SCHEMA.items():
            body = ", ".join(f'"{c}" {t}' for c, t in cols.items())
            con.execute(f'CREATE TABLE IF NOT EXISTS {table} ({body})')
            have = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
            for c, t in cols.items():
                if c not in have:
                    t = t.replace("PRIMARY KEY", "").replace("NOT NULL", "").replace("UNIQUE", "")
                    con.execute(f'ALTER TABLE {table} ADD COLUMN "{c}" {t}')
        for sql in _INDEXES:
            con.execute(sql)
        con.commit()
    finally:
        con.close()
    return path


def table_columns(path: str | Path) -> dict[str, set[str]]:
    con = sqlite3.connect(path)
    try:
        return {t: {row[1] for row in con.execute(f"PRAGMA table_info({t})")} for t in SCHEMA}
    finally:
        con.close()


def make_data_layer(path: str | Path):
    """Chainlit's SQLAlchemy data layer on this SQLite file (tables created first)."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

    create_schema(path)
    return SQLAlchemyDataLayer(conninfo=db_url(path))


def _loads(v):
    if isinstance(v, str):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v


def list_threads(path: str | Path, user: str | None = None) -> list[dict]:
    """Threads with their steps (oldest step first), read straight from the file: for tests, export and debugging."""
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        q = 'SELECT * FROM threads' + (' WHERE "userIdentifier" = ?' if user else '') + ' ORDER BY "createdAt"'
        threads = [dict(r) for r in con.execute(q, (user,) if user else ())]
        for t in threads:
            t["metadata"] = _loads(t.get("metadata")) or {}
            steps = [dict(r) for r in con.execute(
                'SELECT * FROM steps WHERE "threadId" = ? ORDER BY "createdAt"', (t["id"],))]
            for s in steps:
                s["metadata"] = _loads(s.get("metadata")) or {}
            t["steps"] = steps
        return threads
    finally:
        con.close()
