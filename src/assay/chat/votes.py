"""Arena votes and thumbs, in the chat's SQLite history file, and the ratings they give.

Arena votes have their own table (``arena_votes``, created here, beside Chainlit's tables; Chainlit never reads it):
one row per vote with the prompt, both answers, which model was shown as A and as B, the vote (``a`` / ``b`` /
``tie`` / ``both_bad``), the sampling settings and the thread. Thumbs on ordinary replies are Chainlit's own
``feedbacks`` rows (value 1 up, 0 down); the model is read from the answer step's metadata.

``arena_report`` fits Bradley-Terry on the votes: a tie and "both bad" count as a tie (as Chatbot Arena counts
them); ``export_votes`` writes them as JSONL so a judge can be scored against people.

Example:
    from assay.chat.history import default_db_path
    from assay.chat.votes import arena_report
    print(arena_report(default_db_path())["bt"]["ranking"])
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

VOTES = ("a", "b", "tie", "both_bad")
SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}

_COLUMNS = {
    "id": "TEXT PRIMARY KEY",
    "createdAt": "TEXT",
    "threadId": "TEXT",
    "userIdentifier": "TEXT",
    "prompt": "TEXT",
    "model_a": "TEXT",
    "model_b": "TEXT",
    "answer_a": "TEXT",
    "answer_b": "TEXT",
    "vote": "TEXT",
    "settings": "TEXT",
    "stats": "TEXT",
}


def create_table(path: str | Path) -> None:
    con = sqlite3.connect(path)
    try:
        body = ", ".join(f'"{c}" {t}' for c, t in _COLUMNS.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS arena_votes ({body})")
        con.commit()
    finally:
        con.close()


def record_vote(path: str | Path, *, prompt: str, model_a: str, model_b: str, answer_a: str, answer_b: str,
                vote: str, thread_id: str | None = None, user: str | None = None, settings: dict | None = None,
                stats: dict | None = None, created_at: str | None = None) -> str:
    """Store one vote (committed before this returns). Returns its id."""
    from assay.store import iso_now

    if vote not in VOTES:
        raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")
    create_table(path)
    vid = str(uuid.uuid4())
    con = sqlite3.connect(path)
    try:
        con.execute('INSERT INTO arena_votes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                    (vid, created_at or iso_now(), thread_id, user, prompt, model_a, model_b, answer_a, answer_b,
                     vote, json.dumps(settings or {}), json.dumps(stats or {})))
        con.commit()
    finally:
        con.close()
    return vid


def list_votes(path: str | Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    create_table(path)
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in con.execute('SELECT * FROM arena_votes ORDER BY "createdAt"')]
    finally:
        con.close()
    for r in rows:
        for k in ("settings", "stats"):
            r[k] = json.loads(r[k] or "{}")
    return rows


def export_votes(path: str | Path, out: str | Path) -> int:
    from assay.common import atomic_file

    votes = list_votes(path)
    with atomic_file(out) as f:
        for v in votes:
            f.write(json.dumps(v, ensure_ascii=False) + "\n")
    return len(votes)


def thumbs(path: str | Path) -> dict[str, dict]:
    """model -> {"up", "down", "share_up"} from Chainlit's feedbacks on answers (1 up, 0 down)."""
    from assay.stats import proportion_summary

    if not Path(path).is_file():
        return {}
    con = sqlite3.connect(path)
    try:
        have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"feedbacks", "steps"} <= have:
            return {}
        # Chainlit 2 attaches feedback to the run step ("on_message"); the answer is its child step
        rows = con.execute(
            'SELECT f."value", COALESCE(c."metadata", s."metadata"), COALESCE(c."name", s."name") FROM feedbacks f '
            'LEFT JOIN steps s ON s."id" = f."forId" '
            'LEFT JOIN steps c ON c."parentId" = f."forId" AND c."metadata" LIKE \'%"kind": "answer"%\'').fetchall()
    finally:
        con.close()
    out: dict[str, dict] = {}
    for value, meta, name in rows:
        try:
            m = json.loads(meta or "{}")
        except json.JSONDecodeError:
            m = {}
        a = m.get("assay") or {}
        if a.get("kind") != "answer":  # thumbs on a notice or an arena pair are not about one model
            continue
        model = (a.get("stats") or {}).get("model") or name or "?"
        d = out.setdefault(model, {"up": 0, "down": 0})
        d["up" if (value or 0) >= 1 else "down"] += 1
    for d in out.values():
        d["share_up"] = proportion_summary(d["up"], d["up"] + d["down"])
    return out


def arena_report(path: str | Path, *, seed: int = 0, n_boot: int = 1000, prior: float = 1.0) -> dict:
    from assay.stats import bradley_terry, win_matrix

    votes = list_votes(path)
    games = [(v["model_a"], v["model_b"], SCORE[v["vote"]]) for v in votes if v["vote"] in SCORE]
    bt = bradley_terry(games, prior=prior, n_boot=n_boot, seed=seed)
    counts = {k: sum(v["vote"] == k for v in votes) for k in VOTES}
    return {"db": str(path), "votes": len(votes), "vote_counts": counts, "bt": bt.to_dict(),
            "win_matrix": win_matrix(games), "thumbs": thumbs(path),
            "note": "ties and 'both bad' count as ties; prior = virtual tied games per pair that met"}
