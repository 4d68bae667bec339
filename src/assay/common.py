"""One copy of the small helpers every part of assay needs: shipped data paths, JSONL, digests, atomic writes,
code fences, and the ``<think>`` rule. Standard library only, and it imports nothing from assay but ``errors``, so
any module (client, engines, bench, evals, report, doc) can use it without pulling machinery along.

The think rule (the only one in assay, for the client, the scorers and the reports):

- A reply that *starts* with ``<think>`` (after whitespace) is a thinking reply. If a ``</think>`` follows, the
  answer is everything after the **last** ``</think>`` (a draft answer inside the block never counts) and the
  reasoning is what lies between the opening tag and that close. If none follows, the block is *unclosed*: there is
  no answer (the scorer is not asked; the record is ``unparsed``).
- A reply with a ``</think>`` but no opening tag before it (chat templates that open the block inside the prompt,
  e.g. Qwen3 thinking) is split the same way at the last ``</think>``.
- Anything else is all answer: ``<think>`` tags in the middle of an answer are text the model wrote.

Example:
    >>> split_think("<think>2+2?</think> 4")
    ThinkSplit(answer='4', reasoning='2+2?', unclosed=False)
    >>> [b.body for b in fenced_blocks("x\\n```json\\n{}\\n```")]
    ['{}\\n']
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from assay.errors import DataError

# ---- shipped data ----------------------------------------------------------------------------------------------------
DATA_DIR = Path(__file__).parent / "evals" / "data"


def data_path(name: str) -> Path:
    """A file shipped in ``assay/evals/data/`` (raises DataError naming the file when the install lacks it)."""
    p = DATA_DIR / name
    if not p.exists():
        raise DataError(f"shipped data file {name} is missing from {DATA_DIR}: reinstall assay (pip install -e .)")
    return p


# ---- JSON / JSONL ----------------------------------------------------------------------------------------------------
def iter_jsonl(path: Path | str, *, missing: str = "data file {path} does not exist: pass an existing JSONL file "
                                                   "with --data") -> Iterator[tuple[int, dict]]:
    """(line number, object) for each line of a JSONL file (``.gz`` read compressed); blank lines skipped. A missing
    file raises DataError(``missing`` with ``{path}``); a bad line or a non-object raises one naming file and line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(missing.format(path=p))
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{i} is not valid JSON ({exc.msg}): is this a JSONL file?") from None
            if not isinstance(row, dict):
                raise DataError(f"{p}:{i} is not a JSON object")
            yield i, row


def read_jsonl(path: Path | str, *, what: str = "--data") -> list[dict]:
    """All objects of a JSONL file (see ``iter_jsonl``); an empty file is a DataError too (``what`` names the option
    the user should fix)."""
    rows = [row for _, row in iter_jsonl(path, missing=f"data file {{path}} does not exist: pass an existing JSONL "
                                                       f"file with {what}")]
    if not rows:
        raise DataError(f"{Path(path).expanduser()} holds no records")
    return rows


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for what assay stores: paths as text, inf/nan as text, sets as sorted lists,
    pydantic models as their dumps, anything else as ``str``."""
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


def dumps(obj: Any, **kw) -> str:
    return json.dumps(obj, ensure_ascii=False, default=json_default, **kw)


@contextmanager
def atomic_file(path: Path | str, mode: str = "w") -> Iterator[Any]:
    """Write ``path`` so that a reader (or a crash) sees the old file or the new one, never half of one: a temp file
    beside it, flushed and fsynced, then renamed over it. An exception inside the block leaves the old file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    f = open(tmp, mode, encoding=None if "b" in mode else "utf-8")
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException:
        f.close()
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path | str, obj: Any) -> None:
    with atomic_file(path) as f:
        f.write(dumps(obj, indent=2) + "\n")


def seeded_subset(items: list, seed: int, limit: int | None) -> list:
    """``limit`` items chosen with ``seed``, kept in their original order (so the first items of a small run are the
    same for every model); all of them when ``limit`` is None or not smaller. Nested: the items of a smaller limit
    are among those of a larger one (the first ``limit`` of one seeded permutation), so ``--limit 50`` then
    ``--limit 200`` shares 50 questions and their cached answers."""
    import random

    items = list(items)
    if limit is None or limit >= len(items):
        return items
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    return [items[j] for j in sorted(order[:limit])]


# ---- digests ---------------------------------------------------------------------------------------------------------
def file_digest(path: Path | str, n: int | None = 16) -> str:
    """sha256 of a file's bytes (streamed), hex, first ``n`` digits (None: all 64)."""
    h = hashlib.sha256()
    with open(Path(path).expanduser(), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n] if n else h.hexdigest()


def stable_hash(obj: Any, n: int = 16) -> str:
    """sha256 of a canonical JSON dump (sorted keys), first ``n`` hex digits: the same value on every machine."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def text_digest(text: str, n: int | None = None) -> str:
    d = hashlib.sha256(text.encode()).hexdigest()
    return d[:n] if n else d


# ---- code fences -----------------------------------------------------------------------------------------------------
class Fence(NamedTuple):
    lang: str  # the info string's first word ("" when none), as written
    body: str
    closed: bool  # False: the reply ended inside the fence (a truncated answer)
    start: int
    end: int


# ``` + an optional language word + spaces, then the body: from the rest of that line when it is not blank
# (```json {"a": 1}```), else from the next line; to the next ``` or, for a reply cut off inside it, the end of the text.
_FENCE = re.compile(r"```[ \t]*(?P<lang>[A-Za-z][A-Za-z0-9_+.-]*)?[ \t]*\n?(?P<body>.*?)(?P<close>```|\Z)", re.S)


def fenced_blocks(text: str | None) -> list[Fence]:
    """Every Markdown code fence in ``text``, in order; a fence the reply never closed runs to the end
    (``closed=False``) and is the last one."""
    return [Fence(m["lang"] or "", m["body"], m["close"] == "```", m.start(), m.end())
            for m in _FENCE.finditer(text or "")]


def strip_fence_markers(text: str) -> str:
    """The text with fence markers (```` ``` ```` and ```` ```lang ````) removed, contents kept."""
    return re.sub(r"```[A-Za-z0-9_+.-]*", "", text or "")


# ---- <think> ---------------------------------------------------------------------------------------------------------
class ThinkSplit(NamedTuple):
    answer: str
    reasoning: str | None
    unclosed: bool


_OPEN = re.compile(r"^\s*<think>", re.S)
_CLOSE = "</think>"


def split_think(raw: str | None) -> ThinkSplit:
    """The module docstring's rule: (answer, reasoning, unclosed)."""
    raw = raw or ""
    m = _OPEN.match(raw)
    if m:
        inner = raw[m.end():]
        if _CLOSE in inner:
            reasoning, answer = inner.rsplit(_CLOSE, 1)
            return ThinkSplit(answer.lstrip(), reasoning.strip(), False)
        return ThinkSplit("", inner.strip(), True)
    if _CLOSE in raw and "<think>" not in raw.split(_CLOSE, 1)[0]:
        reasoning, answer = raw.rsplit(_CLOSE, 1)
        return ThinkSplit(answer.lstrip(), reasoning.strip(), False)
    return ThinkSplit(raw, None, False)


def short_model(model: str | None) -> str:
    """A model's short name for tables: the last path part, without ``.gguf`` ("?" when unknown)."""
    if not model:
        return "?"
    name = str(model).rstrip("/").split("/")[-1]
    return name[:-5] if name.lower().endswith(".gguf") else name


def tpot_s(e2e_s: float | None, ttft_s: float | None, output_tokens: int | None) -> float | None:
    """Time per output token, vLLM bench serve's definition: (E2E − TTFT) / (output tokens − 1); None below 2 tokens
    or without both times. The one copy (the client, the benchmark's SSE reader and its vLLM-format result use it)."""
    if e2e_s is None or ttft_s is None or not output_tokens or output_tokens < 2:
        return None
    return (e2e_s - ttft_s) / (output_tokens - 1)


def check_port_free(host: str, port: int, *, reuse_addr: bool = False) -> None:
    """Fail with one line naming the fix if something listens on ``host:port``. ``reuse_addr``: bind as uvicorn does
    (SO_REUSEADDR), so a port that a previous run left in TIME_WAIT counts as free."""
    import socket

    from assay.errors import AssayError

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if reuse_addr:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise AssayError(f"port {port} on {host} is already in use: pick another with --port {port + 1}") from None


_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*(\{)?")


def find_boxed(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` / ``\\fbox{...}`` in order, braces matched (``\\boxed{\\frac{1}{2}}``).

    ``\\boxed 5`` (no braces, as some models write) gives the next token. An unclosed box is skipped.
    """
    out = []
    for m in _BOX_OPEN.finditer(text):
        if m.group(1) is None:
            tok = re.match(r"[^\s$.,;]+", text[m.end():])
            if tok:
                out.append(tok.group(0))
            continue
        depth, i = 1, m.end()
        while i < len(text) and depth:
            ch = text[i]
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
                i += 2  # \{ and \} are literal braces, not grouping
                continue
            depth += ch == "{"
            depth -= ch == "}"
            i += 1
        if depth == 0:
            out.append(text[m.end():i - 1])
    return out
