"""A small OpenAI-compatible stub server on loopback, for tests that must control the bytes and for benchmarking
assay's own client / load generator (where a real engine would be the bottleneck).

It speaks just enough HTTP/1.1 (keep-alive, chunked SSE) over asyncio streams to be fast on one core.

Behaviour is set per server (constructor) and can be overridden per request with directives in the last user message:
``[[status:429]]`` (answer with that HTTP status), ``[[delay:0.2]]`` (seconds before the first token),
``[[gap:0.01]]`` (seconds between tokens), ``[[reply:some text]]``, ``[[reasoning:some text]]`` (streamed first as
``delta.reasoning_content``, the way vLLM's reasoning parsers send it).

``tool_calls`` (a list of ``{"name", "arguments"}`` with arguments as raw text — malformed JSON is sent as given —, or
a function of the request returning one) makes the reply carry OpenAI tool calls: streamed, each call's id and name
come in one chunk and its arguments split over ``tool_chunks`` chunks, so a client must assemble them.

Example:
    with StubServer(reply="hello world", gap_s=0.01) as stub:
        print(stub.base_url)          # http://127.0.0.1:PORT/v1
        ...
        print(stub.requests[-1])      # the JSON body the server received
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from typing import Any, Callable

_DIRECTIVE = re.compile(r"\[\[(status|delay|gap|reply|reasoning):([^\]]*)\]\]")


class StubServer:
    def __init__(self, reply: str | Callable[[dict], str] = "The answer is \\boxed{42}.", *, model: str = "stub-model",
                 first_delay_s: float = 0.0, gap_s: float = 0.0, fail_first: int = 0, fail_status: int = 500,
                 status: int | None = None, host: str = "127.0.0.1", port: int = 0, record: bool = True,
                 ctx: int = 8192, tool_calls: list[dict] | Callable[[dict], list[dict] | None] | None = None,
                 tool_chunks: int = 3, slots: int | None = None):
        self.reply = reply
        self.model = model
        self.first_delay_s = first_delay_s
        self.gap_s = gap_s
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.status = status
        self.host = host
        self.port = port
        self.record = record
        self.ctx = ctx
        self.tool_calls = tool_calls
        self.tool_chunks = max(1, tool_chunks)
        # a known capacity: at most ``slots`` chat requests are served at once, the others wait for a free slot (FIFO)
        # -- with first_delay_s + gap_s per token as the service time, capacity = slots / service time
        self.slots = slots
        self._slot_sem: asyncio.Semaphore | None = None
        self.requests: list[dict] = []
        self.props: dict | None = None  # served at GET /props when set (llama.cpp server facts)
        self.count = 0
        self.in_chat = 0
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # ---- lifecycle -------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def endpoint(self, model: str | None = None, **kw):
        """An ``engines.Endpoint`` for this server (``kw``: engine, extra, caps, ...): the one way tests get one."""
        from assay.engines import Endpoint

        return Endpoint(self.base_url, model or self.model, **kw)

    def start(self) -> "StubServer":
        self._thread = threading.Thread(target=self._run, daemon=True, name="assay-stub")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("stub server did not start")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, self.host, self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._loop and self._server:
            async def _close():
                self._server.close()
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)

    def __enter__(self) -> "StubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def serve_forever_async(self) -> None:
        """Run in the current event loop (used by the generator benchmark's separate server process)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    # ---- HTTP ------------------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = b""
                n = int(headers.get("content-length", "0") or 0)
                if n:
                    body = await reader.readexactly(n)
                await self._route(method, path.split("?")[0], body, writer)
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            try:
                writer.close()
            except Exception:
                pass

    @staticmethod
    def _send(writer, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n"
                     .encode() + data)

    async def _route(self, method: str, path: str, body: bytes, writer) -> None:
        if method == "GET" and path == "/props" and self.props is not None:
            self._send(writer, 200, self.props)  # what llama.cpp's server says about its model (tests set it)
        elif method == "GET" and path == "/v1/models":
            self._send(writer, 200, {"object": "list", "data": [{"id": self.model, "object": "model",
                                                                 "max_model_len": self.ctx}]})
        elif method == "POST" and path in ("/extras/tokenize", "/tokenize"):
            req = json.loads(body or b"{}")
            text = req.get("input") or req.get("prompt") or req.get("content") or ""
            toks = list(range(len(text.split())))
            self._send(writer, 200, {"tokens": toks, "count": len(toks)})
        elif method == "POST" and path == "/v1/chat/completions" and self.slots:
            if self._slot_sem is None:
                self._slot_sem = asyncio.Semaphore(self.slots)
            async with self._slot_sem:
                await self._chat(json.loads(body or b"{}"), writer)
                await writer.drain()
        elif method == "POST" and path == "/v1/chat/completions":
            await self._chat(json.loads(body or b"{}"), writer)
        else:
            self._send(writer, 404, {"error": {"message": f"no route {method} {path}"}})
        await writer.drain()

    async def _chat(self, req: dict, writer) -> None:
        self.in_chat += 1  # a reply callable can read it: how many chat requests are being answered, this one included
        try:
            await self._chat_body(req, writer)
        finally:
            self.in_chat -= 1

    async def _chat_body(self, req: dict, writer) -> None:
        self.count += 1
        if self.record:
            self.requests.append(req)
        last_user = next((m.get("content") for m in reversed(req.get("messages") or []) if m.get("role") == "user"), "")
        last_user = last_user if isinstance(last_user, str) else json.dumps(last_user)
        d = dict(_DIRECTIVE.findall(last_user))
        status = int(d["status"]) if "status" in d else self.status
        if status is None and self.count <= self.fail_first:
            status = self.fail_status
        if status is not None and status != 200:
            self._send(writer, status, {"error": {"message": f"stub says {status}", "code": status}})
            return
        first_delay = float(d.get("delay", self.first_delay_s))
        gap = float(d.get("gap", self.gap_s))
        if "reply" in d:
            text = d["reply"]
        elif callable(self.reply):
            text = self.reply(req)
        else:
            text = self.reply
        max_tokens = req.get("max_tokens") or req.get("max_completion_tokens")
        pieces = re.findall(r"\S+\s*|\s+", text) or [""]
        finish = "stop"
        if max_tokens is not None and len(pieces) > max_tokens:
            pieces, finish = pieces[:max_tokens], "length"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in req.get("messages") or [])
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                 "total_tokens": prompt_tokens + len(pieces)}
        cid, created = f"chatcmpl-{self.count}", int(time.time())
        calls = self.tool_calls(req) if callable(self.tool_calls) else self.tool_calls
        calls = [{"id": c.get("id") or f"call_{self.count}_{i}", "name": c["name"], "arguments": c.get("arguments", "")}
                 for i, c in enumerate(calls or [])]
        if calls:
            finish = "tool_calls"
        if not req.get("stream"):
            if first_delay:
                await asyncio.sleep(first_delay)
            message: dict = {"role": "assistant", "content": "".join(pieces) if pieces != [""] or not calls else None}
            if calls:
                message["tool_calls"] = [{"id": c["id"], "type": "function",
                                          "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]
            self._send(writer, 200, {"id": cid, "object": "chat.completion", "created": created, "model": self.model,
                                     "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                                     "usage": usage})
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")

        def event(obj) -> None:
            data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))

        if first_delay:
            await asyncio.sleep(first_delay)
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": self.model}
        for piece in re.findall(r"\S+\s*|\s+", d.get("reasoning", "")):
            event({**base, "choices": [{"index": 0, "delta": {"reasoning_content": piece}, "finish_reason": None}]})
        for i, piece in enumerate(pieces):
            if i and gap:
                await writer.drain()
                await asyncio.sleep(gap)
            if piece or not calls:  # (a reply that is only tool calls sends no empty content chunk)
                event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        for i, c in enumerate(calls):
            head = {"index": i, "id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": ""}}
            event({**base, "choices": [{"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}]})
            args, k = c["arguments"], self.tool_chunks
            step = max(1, -(-len(args) // k))
            for j in range(0, len(args), step):  # the arguments cut anywhere, even inside a string or an escape
                if gap:
                    await writer.drain()
                    await asyncio.sleep(gap)
                part = {"index": i, "function": {"arguments": args[j:j + step]}}
                event({**base, "choices": [{"index": 0, "delta": {"tool_calls": [part]}, "finish_reason": None}]})
        event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (req.get("stream_options") or {}).get("include_usage"):
            event({**base, "choices": [], "usage": usage})
        event(b"[DONE]")
        writer.write(b"0\r\n\r\n")
