"""A lean streaming HTTP/1.1 client for the load generator: raw asyncio streams, keep-alive pool, chunked SSE.

Why not ``assay.client.Client``: it goes through the openai SDK (httpx + a pydantic model per chunk), which costs
hundreds of microseconds per request and tens per chunk — enough to become the bottleneck against a fast server and to
inflate latencies. This path parses only what the metrics need (content deltas, finish_reason, the usage chunk) and
takes a timestamp per chunk. ``assay bench --self-test`` measures both paths against the stub server.

Example:
    pool = SSEPool("http://127.0.0.1:8000/v1", api_key=None)
    res = await pool.chat({"model": "m", "messages": [...], "max_tokens": 16}, t_start=time.perf_counter())
    print(res.ttft_s, res.output_tokens)
"""

from __future__ import annotations

import asyncio
import json
import ssl as _ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from assay.common import tpot_s


@dataclass
class RequestResult:
    """One timed request. All times are seconds; ``t_start`` is the intended send time (perf_counter clock)."""

    ok: bool = False
    error: str | None = None
    status: int | None = None
    input_tokens: int | None = None  # server usage.prompt_tokens
    output_tokens: int | None = None  # server usage.completion_tokens (None if the server sent no usage)
    chunk_times: list[float] = field(default_factory=list)  # since t_start, one per content chunk
    e2e_s: float | None = None
    finish_reason: str | None = None
    started_at: float = 0.0  # wall clock (time.time()) of the intended send
    send_lag_s: float = 0.0  # actual send - intended send (open loop: generator lateness, counted in latency)
    text: str = ""  # the streamed content (kept for token counting when the server sends no usage)
    tokens_source: str = "usage"  # "usage" | "tokenizer" (re-tokenized text: llama-cpp-python streams no usage)

    @property
    def ttft_s(self) -> float | None:
        return self.chunk_times[0] if self.chunk_times else None

    @property
    def itl_s(self) -> list[float]:
        t = self.chunk_times
        return [b - a for a, b in zip(t, t[1:])]

    @property
    def tpot_s(self) -> float | None:
        """(E2E − TTFT) / (output tokens − 1): vLLM bench serve's definition."""
        return tpot_s(self.e2e_s, self.ttft_s, self.output_tokens)


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass


class _Closed(Exception):
    """The server closed a kept-alive connection before answering: safe to resend once on a fresh one."""


class SSEPool:
    """Keep-alive connections to one OpenAI-compatible base URL; one request per connection at a time."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout_s: float = 600.0):
        u = urlsplit(base_url.rstrip("/"))
        self.host = u.hostname or "127.0.0.1"
        self.tls = u.scheme == "https"
        self.port = u.port or (443 if self.tls else 80)
        self.path = (u.path or "") + "/chat/completions"
        self.timeout_s = timeout_s
        auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        host_hdr = self.host if u.port is None else f"{self.host}:{self.port}"
        self._head = (f"POST {self.path} HTTP/1.1\r\nHost: {host_hdr}\r\n{auth}"
                      "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                      "Connection: keep-alive\r\nContent-Length: ").encode()
        self._idle: list[_Conn] = []
        self._ctx = _ssl.create_default_context() if self.tls else None

    async def _connect(self) -> _Conn:
        r, w = await asyncio.open_connection(self.host, self.port, ssl=self._ctx, limit=1 << 20)
        return _Conn(r, w)

    async def aclose(self) -> None:
        for c in self._idle:
            c.close()
        self._idle.clear()

    async def chat(self, body: dict, t_start: float | None = None) -> RequestResult:
        """POST a streaming chat request; never raises for server or network errors (they are data: ok=False)."""
        t0 = time.perf_counter() if t_start is None else t_start
        res = RequestResult(started_at=time.time() - (time.perf_counter() - t0))
        payload = json.dumps(body, separators=(",", ":")).encode()
        req = self._head + str(len(payload)).encode() + b"\r\n\r\n" + payload
        for attempt in (0, 1):
            # the resend goes on a fresh connection: the other idle ones are as old (llama-server drops them after 5 s)
            reused = bool(self._idle) and attempt == 0
            try:
                conn = self._idle.pop() if reused else await self._connect()
            except OSError as e:
                res.error = f"connect failed: {type(e).__name__}: {e}"
                return res
            try:
                if attempt == 0:
                    res.send_lag_s = time.perf_counter() - t0
                keep = await asyncio.wait_for(self._exchange(conn, req, res, t0), self.timeout_s)
            except _Closed:
                conn.close()
                if reused and attempt == 0:
                    continue  # stale keep-alive connection: resend once on a fresh one
                res.error = "server closed the connection"
                return res
            except asyncio.TimeoutError:
                conn.close()
                res.error = f"timeout after {self.timeout_s:.0f}s"
                return res
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                conn.close()
                res.error = f"{type(e).__name__}: {e}"
                return res
            except BaseException:
                conn.close()
                raise
            if keep:
                self._idle.append(conn)
            else:
                conn.close()
            return res
        return res

    async def _exchange(self, conn: _Conn, req: bytes, res: RequestResult, t0: float) -> bool:
        conn.writer.write(req)
        await conn.writer.drain()
        reader = conn.reader
        status_line = await reader.readline()
        if not status_line:
            raise _Closed()
        parts = status_line.split(b" ", 2)
        status = int(parts[1])
        res.status = status
        chunked = False
        length = None
        keep = True
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b"\n"):
                break
            if not h:
                raise asyncio.IncompleteReadError(b"", None)
            k, _, v = h.partition(b":")
            k = k.strip().lower()
            if k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
            elif k == b"content-length":
                length = int(v.strip())
            elif k == b"connection" and b"close" in v.lower():
                keep = False
        if status != 200:
            data = await self._read_body(reader, chunked, length)
            res.e2e_s = time.perf_counter() - t0
            res.error = f"HTTP {status}: {_error_text(data)}"
            return keep and (chunked or length is not None)
        # Stream: split into lines as bytes arrive; an SSE event is "data: ..." lines (comments start with ":").
        buf = b""
        chunk_times = res.chunk_times
        pieces: list[str] = []
        done = False
        perf = time.perf_counter
        async for piece in self._iter_body(reader, chunked, length):
            now = perf() - t0
            buf += piece
            while True:
                i = buf.find(b"\n")
                if i < 0:
                    break
                line = buf[:i].rstrip(b"\r")
                buf = buf[i + 1:]
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                    continue
                try:
                    obj = json.loads(data)
                except ValueError:
                    continue
                if "error" in obj and not obj.get("choices"):
                    res.error = f"stream error: {_error_text(data)}"
                usage = obj.get("usage")
                if usage:
                    res.input_tokens = usage.get("prompt_tokens")
                    res.output_tokens = usage.get("completion_tokens")
                for ch in obj.get("choices") or ():
                    delta = ch.get("delta") or {}
                    content = delta.get("content") or delta.get("reasoning_content") or ch.get("text")
                    if content:
                        chunk_times.append(now)
                        pieces.append(content)
                    if ch.get("finish_reason"):
                        res.finish_reason = ch["finish_reason"]
        res.e2e_s = perf() - t0
        res.text = "".join(pieces)
        if not chunked and length is None:
            keep = False  # body delimited by close
        if res.error is None:
            if not chunk_times:
                res.error = "no content chunks in the stream"
            else:
                res.ok = True
        if not done and res.ok and res.finish_reason is None:
            res.ok, res.error = False, "stream ended without finish_reason or [DONE]"
        return keep

    async def _iter_body(self, reader: asyncio.StreamReader, chunked: bool, length: int | None):
        if chunked:
            while True:
                size_line = await reader.readline()
                if not size_line:
                    raise asyncio.IncompleteReadError(b"", None)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until blank line
                    while True:
                        t = await reader.readline()
                        if t in (b"\r\n", b"\n", b""):
                            return
                data = await reader.readexactly(size + 2)
                yield data[:-2]
        elif length is not None:
            left = length
            while left > 0:
                data = await reader.read(min(left, 65536))
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(data)
                yield data
        else:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                yield data

    async def _read_body(self, reader, chunked: bool, length: int | None) -> bytes:
        out = b""
        async for piece in self._iter_body(reader, chunked, length):
            out += piece
        return out


def _error_text(data: bytes) -> str:
    try:
        obj = json.loads(data)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        if isinstance(err, dict):
            err = err.get("message") or err.get("detail") or err
        if isinstance(obj, dict) and "detail" in obj and err is obj:
            err = obj["detail"]
        return str(err)[:300]
    except ValueError:
        return data[:300].decode("utf-8", "replace")
