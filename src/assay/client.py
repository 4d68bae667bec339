"""One async OpenAI-compatible client for everything downstream (evals, chat, doc, bench cross-checks).

It records what a careful engineer needs per request: text, finish_reason, the server's own token usage, TTFT,
per-chunk arrival times and end-to-end time. It retries only what is worth retrying (connection errors, 429, 5xx),
a bounded number of times with backoff, and never turns an error into answer text.

Example:
    import asyncio
    from assay.client import Client, SamplingParams
    from assay.engines import Endpoint
    c = Client([Endpoint("http://127.0.0.1:8000/v1", "smollm2-135m")])
    done = asyncio.run(c.chat([{"role": "user", "content": "Hi"}], SamplingParams(max_tokens=16)))
    print(done.text, done.ttft_s, done.completion_tokens)
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator

import httpx
import openai
from pydantic import BaseModel, ConfigDict, Field

from assay.common import split_think, tpot_s
from assay.common import split_think as split_thinking  # noqa: F401 - the name tests and users import
from assay.engines import KNOBS as _KNOBS
from assay.errors import EndpointUnreachable, EngineDied, RequestError

if TYPE_CHECKING:
    from assay.engines import Endpoint


class SamplingParams(BaseModel):
    """Validated sampling parameters; a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    seed: int | None = None
    stop: list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    # None: the neutral value is sent (top-k off, min-p 0, no repetition penalty), not the engine's own default
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    repeat_penalty: float | None = Field(None, gt=0.0)
    response_format: dict | None = None  # {"type": "json_schema", "json_schema": {...}} or {"type": "json_object"}
    ignore_eos: bool = False  # llama.cpp and vLLM accept it; forces output length in benchmarks
    # sent as they are in the request body (vLLM: {"chat_template_kwargs": {"enable_thinking": false}}, top_k, ...)
    extra_body: dict | None = None
    chat_template_kwargs: dict | None = None

    def fingerprint(self) -> dict:
        """What identifies these parameters in a run's fingerprint. Fields added after the first release count only
        when set, so runs started before them still resume."""
        d = self.model_dump()
        return {k: v for k, v in d.items() if k not in _LATE_FIELDS or v is not None}
    # OpenAI function calling: [{"type": "function", "function": {"name", "description", "parameters"}}]
    tools: list[dict] | None = None
    # "auto" | "none" | "required" | {"type": "function", "function": {"name": ...}}; sent as "auto" when tools are
    # given without it (OpenAI's default, but llama-cpp-python ignores the tools unless it is said)
    tool_choice: str | dict | None = None

    def request_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        for name in ("seed", "stop", "presence_penalty", "frequency_penalty", "response_format"):
            v = getattr(self, name)
            if v is not None:
                kw[name] = v
        if self.tools:
            kw["tools"] = self.tools
            kw["tool_choice"] = self.tool_choice if self.tool_choice is not None else "auto"
        extra: dict[str, Any] = dict(self.extra_body or {})
        if self.chat_template_kwargs is not None:
            extra["chat_template_kwargs"] = self.chat_template_kwargs
        if self.ignore_eos:
            # vLLM honours ignore_eos; llama-cpp-python's server ignores it but honours min_tokens (it masks the EOS
            # token until then), so send both to force exactly max_tokens on either engine
            extra["ignore_eos"] = True
            extra["min_tokens"] = self.max_tokens
        if extra:
            kw["extra_body"] = extra
        return kw


_LATE_FIELDS = ("extra_body", "chat_template_kwargs", "tools", "tool_choice", "top_k", "min_p", "repeat_penalty")


def engine_request(params: SamplingParams, ep: "Endpoint") -> dict[str, Any]:
    """The request's sampling fields for ``ep``'s engine: ``params.request_kwargs()``, a JSON schema in the form the
    engine takes, and every knob of ``engines.KNOBS`` the engine reads — the user's value, else the neutral one —
    under the engine's own field name (a field the user put in ``extra_body`` wins). A knob the user set that the
    engine cannot be sent is a one-line error naming ``--extra-body``."""
    from assay.errors import AssayError

    kw = _engine_compat(params.request_kwargs(), ep)
    s = ep.caps.sampling
    extra = dict(kw.get("extra_body") or {})
    for knob in _KNOBS:
        value, wire = getattr(params, knob), s.wire.get(knob)
        if wire is None:
            if value is not None:
                raise AssayError(f"--{knob.replace('_', '-')} cannot be sent to {ep.base_url} (a server of unknown "
                                 f"kind): pass it in --extra-body under the name that server reads")
            continue
        if wire in extra or (knob in _OPENAI_KNOBS and kw.get(wire) is not None):
            continue
        v = value if value is not None else s.neutral.get(knob)
        if v is None:
            continue
        if knob in _OPENAI_KNOBS:
            kw[wire] = v
        else:
            extra[wire] = v
    if extra:
        kw["extra_body"] = extra
    return kw


def knob_fields(params: SamplingParams, ep: "Endpoint") -> dict[str, Any]:
    """The request fields for ``engines.KNOBS`` that ``engine_request`` sends to ``ep``, under the engine's names: what
    a peer harness must send too, or the server fills in its own defaults for it alone."""
    kw = engine_request(params, ep)
    sent = {**kw, **(kw.get("extra_body") or {})}
    wire = ep.caps.sampling.wire
    return {wire[k]: sent[wire[k]] for k in _KNOBS if k in wire and wire[k] in sent}


def effective_sampling(params: SamplingParams, ep: "Endpoint") -> dict[str, Any]:
    """How ``ep``'s engine samples a request built from ``params``: what is sent, plus, for a knob that is not sent,
    the engine's known default or ``"unknown"``. top_k 0 means off. This is what manifests and fingerprints hold."""
    kw = engine_request(params, ep)
    sent = {**{k: v for k, v in kw.items() if k != "extra_body"}, **(kw.get("extra_body") or {})}
    s = ep.caps.sampling
    out: dict[str, Any] = {"temperature": params.temperature, "top_p": params.top_p}
    for knob in _KNOBS:
        wire = s.wire.get(knob)
        if wire is not None and wire in sent:
            out[knob] = sent[wire]
        else:
            out[knob] = s.defaults.get(knob, "unknown")
    if isinstance(out.get("top_k"), int) and out["top_k"] < 0:
        out["top_k"] = 0  # vLLM's older spelling of "off"
    for k in ("seed", "ignore_eos", "min_tokens"):
        if sent.get(k) is not None:
            out[k] = sent[k]
    return out


def describe_sampling(eff: dict[str, Any], ep: "Endpoint") -> str:
    """One line for people: the effective values, and what the engine would have applied had they not been sent."""
    def fmt(k: str, v: Any) -> str:
        return f"{k} off" if k == "top_k" and v == 0 else f"{k} {v}"

    line = ", ".join(fmt(k, eff[k]) for k in ("temperature", "top_p", *_KNOBS) if k in eff)
    d = ep.caps.sampling.defaults
    differs = [fmt(k, d[k]) for k in _KNOBS if k in d and d[k] != eff.get(k) and k in ep.caps.sampling.wire]
    return f"sampling: {line}" + (f" (sent explicitly: {ep.engine} would apply {', '.join(differs)})" if differs
                                  else "")


class ToolCall(BaseModel):
    """One function call a model made: the arguments exactly as sent, and parsed when they are a JSON object."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    name: str = ""
    arguments: str = ""  # raw text as the server sent it (assembled across stream chunks)
    args: Any = None  # the parsed JSON object when ``ok``
    ok: bool = True  # False: ``arguments`` is not a JSON object (scored "unparsed", not wrong)
    error: str | None = None  # why it did not parse

    @classmethod
    def parse(cls, name: str, arguments: str | dict | None, id: str | None = None) -> "ToolCall":
        if isinstance(arguments, dict):
            return cls(id=id, name=name, arguments=json.dumps(arguments, ensure_ascii=False), args=arguments)
        raw = arguments or ""
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            return cls(id=id, name=name, arguments=raw, ok=False, error=f"arguments are not JSON: {e}")
        if not isinstance(value, dict):
            return cls(id=id, name=name, arguments=raw, ok=False,
                       error=f"arguments are JSON {type(value).__name__}, not an object")
        return cls(id=id, name=name, arguments=raw, args=value)

    def message(self) -> dict:
        """The OpenAI ``tool_calls`` item for the assistant message put back into the history."""
        return {"id": self.id or "", "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


class _ToolCallParts:
    """Streamed tool-call deltas, assembled by their ``index``: id and name arrive once, arguments in pieces."""

    def __init__(self):
        self.parts: dict[int, dict] = {}

    def add(self, deltas) -> None:
        for pos, d in enumerate(deltas or []):
            idx = getattr(d, "index", None)
            idx = pos if idx is None else idx
            p = self.parts.setdefault(idx, {"id": None, "name": "", "arguments": ""})
            if getattr(d, "id", None):
                p["id"] = d.id
            fn = getattr(d, "function", None)
            if fn is not None:
                if fn.name and not p["name"].endswith(fn.name):
                    p["name"] += fn.name
                if fn.arguments:
                    p["arguments"] += fn.arguments

    def calls(self) -> list[ToolCall]:
        return [ToolCall.parse(p["name"], p["arguments"], p["id"]) for _, p in sorted(self.parts.items())]


@dataclass
class Completion:
    text: str  # the answer, after a leading <think>...</think> block is removed
    finish_reason: str | None
    prompt_tokens: int | None  # the server's usage, else counted as it rendered the prompt (see prompt_tokens_source)
    completion_tokens: int | None
    ttft_s: float | None  # first content chunk after the request was sent
    e2e_s: float  # request sent -> stream closed
    chunk_times: list[float] = field(default_factory=list)  # seconds since send, one per content chunk
    reasoning: str | None = None  # text of the stripped <think> block
    think_unclosed: bool = False  # a <think> was opened and never closed: text is "" and the answer is unusable
    raw_text: str = ""  # exactly what the server sent
    model: str | None = None  # model id as the server reports it
    endpoint: str | None = None
    started_at: float = 0.0  # wall clock (time.time()) when sent
    # where completion_tokens came from: "server" (the stream's usage chunk), "tokenizer" (the server sent no usage —
    # llama-cpp-python 0.3.x never does when streaming — so the completion was counted with the server's own
    # tokenizer; max_tokens exactly when finish_reason is "length"), or None
    usage_source: str | None = None
    # where prompt_tokens came from: "usage" (the server's own figure), "local" (the messages rendered with the
    # engine's chat template and counted with its tokenizer in this process, engines.prompt_count), "tokenize" (the
    # server's tokenize route given the messages, vLLM's /tokenize), or None (not known: see docs/eval.md)
    prompt_tokens_source: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)  # function calls in the reply (OpenAI ``tools``)
    cached: bool = False  # reused from the answer cache (assay.answers): no call was made, no timings

    def message(self) -> dict:
        """The assistant message to put back into the history (raw text, so a model sees what it wrote)."""
        m: dict[str, Any] = {"role": "assistant", "content": self.raw_text}
        if self.tool_calls:
            m["tool_calls"] = [c.message() for c in self.tool_calls]
        return m

    @property
    def itl_s(self) -> list[float]:
        """Every gap between consecutive content chunks."""
        t = self.chunk_times
        return [b - a for a, b in zip(t, t[1:])]

    @property
    def tpot_s(self) -> float | None:
        """(E2E - TTFT) / (output tokens - 1), vLLM bench serve's definition."""
        return tpot_s(self.e2e_s, self.ttft_s, self.completion_tokens)

    @property
    def decode_tok_s(self) -> float | None:
        tpot = self.tpot_s
        return 1.0 / tpot if tpot else None


def _from_cached(d: dict, endpoint: str) -> Completion:
    calls = [ToolCall.model_validate(c) for c in d.get("tool_calls") or []]
    return Completion(text=d.get("text") or "", finish_reason=d.get("finish_reason"),
                      prompt_tokens=d.get("prompt_tokens"), completion_tokens=d.get("completion_tokens"),
                      ttft_s=None, e2e_s=0.0, reasoning=d.get("reasoning"),
                      think_unclosed=bool(d.get("think_unclosed")), raw_text=d.get("raw_text") or "",
                      model=d.get("model"), endpoint=endpoint, started_at=time.time(),
                      usage_source=d.get("usage_source"), prompt_tokens_source=d.get("prompt_tokens_source"),
                      tool_calls=calls, cached=True)


@dataclass
class Delta:
    """One streamed piece of text. The stream's last item is the finished Completion instead."""

    text: str
    t: float  # seconds since send


_OPENAI_KNOBS = ("presence_penalty", "frequency_penalty")  # top-level OpenAI fields; the others go in extra_body


def _engine_compat(kwargs: dict[str, Any], ep: "Endpoint") -> dict[str, Any]:
    """Callers speak plain OpenAI; an engine whose capabilities say it takes a JSON schema as
    {"type": "json_object", "schema": S} gets it that way."""
    rf = kwargs.get("response_format")
    if ep.caps.json_schema == "json_object" and isinstance(rf, dict) and rf.get("type") == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema") or {}
        kwargs = {**kwargs, "response_format": {"type": "json_object", "schema": schema}}
    return kwargs


_UNSET = object()
_INLINE_CHARS = 16_000  # a longer prompt is counted in a worker thread (tens of ms), not on the event loop


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError, httpx.TransportError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def _message(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        detail = None
        if isinstance(body, dict):
            err = body.get("error", body)
            detail = err.get("message") if isinstance(err, dict) else err
        return f"HTTP {exc.status_code}: {detail or exc.message}"
    return f"{type(exc).__name__}: {exc}"


async def _raise_if_died(ep: "Endpoint", exc: BaseException, wait_s: float = 1.0) -> None:
    """A connection failure to an engine we started: if its process is dead, say how, at once (no retries).

    The socket can close a moment before the process is reaped, so look for up to ``wait_s``."""
    if ep.fate is None:
        return
    deadline = time.monotonic() + wait_s
    while True:
        fate = ep.fate()
        if fate:
            raise EngineDied(f"the engine died during a request: {fate}") from exc
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.05)


class _Slot:
    def __init__(self, endpoint: "Endpoint"):
        self.endpoint = endpoint
        self.outstanding = 0
        self.prompt_counter: Any = _UNSET  # engines.prompt_count.counter(endpoint), built on first use
        self.tokenize_messages = True  # False once the tokenize route refused a chat request (not asked again)
        self.sdk = openai.AsyncOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key or "sk-no-key",
            max_retries=0,  # we retry ourselves, with a narrower rule
            timeout=httpx.Timeout(600.0, connect=10.0),
            http_client=httpx.AsyncClient(
                limits=httpx.Limits(max_connections=1024, max_keepalive_connections=256),
                timeout=httpx.Timeout(600.0, connect=10.0),
            ),
        )


class Client:
    """Async chat over one or more endpoints (least outstanding requests wins)."""

    def __init__(self, endpoints: "list[Endpoint] | Endpoint", *, max_retries: int = 3, backoff_s: float = 0.5,
                 backoff_max_s: float = 8.0, count_without_usage: bool = True, cache: Any = None):
        """``cache``: an ``assay.answers.AnswerCache`` — ``chat`` then reuses a stored answer to the same request of
        the same model (and stores new ones); None: every call goes to the server."""
        if not isinstance(endpoints, (list, tuple)):
            endpoints = [endpoints]
        if not endpoints:
            raise ValueError("Client needs at least one endpoint")
        self.slots = [_Slot(e) for e in endpoints]
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.count_without_usage = count_without_usage
        self._http: httpx.AsyncClient | None = None
        self.cache = cache
        self._cache_model: Any = _UNSET  # the model's identity digests, looked up once

    @property
    def endpoints(self) -> "list[Endpoint]":
        return [s.endpoint for s in self.slots]

    @property
    def model(self) -> str:
        return self.slots[0].endpoint.model

    def _pick(self) -> _Slot:
        low = min(s.outstanding for s in self.slots)
        return random.choice([s for s in self.slots if s.outstanding == low])

    async def aclose(self) -> None:
        for s in self.slots:
            await s.sdk.close()
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def chat(self, messages: list[dict], params: SamplingParams | None = None, *,
                   model: str | None = None) -> Completion:
        """Send one chat request (streamed under the hood, for timings) and return the finished Completion; with an
        answer cache, a stored answer to the same request of the same model instead (``Completion.cached``)."""
        key = self._cache_key(messages, params or SamplingParams()) if self.cache is not None else None
        if key is not None:
            hit = await asyncio.to_thread(self.cache.get, key)
            if hit is not None:
                return _from_cached(hit, self.slots[0].endpoint.base_url)
        result = None
        async for item in self.stream(messages, params, model=model):
            if isinstance(item, Completion):
                result = item
        assert result is not None
        if key is not None and result.finish_reason is not None:
            from assay.answers import to_cached

            await asyncio.to_thread(self.cache.put, key, self._cache_model["digest"], to_cached(result))
        return result

    def _cache_key(self, messages: list[dict], params: SamplingParams) -> str | None:
        """The answer-cache key of this request, or None when its answer is not a function of the key (sampled
        without a reproducible seed) or the model's weights are not known."""
        from assay.answers import answer_key, cacheable
        from assay.common import stable_hash

        ep = self.slots[0].endpoint
        if self._cache_model is _UNSET:
            fp = ep.model_fingerprint() if hasattr(ep, "model_fingerprint") else None
            weights = any((fp or {}).get(k) for k in ("weights_sha256", "source_weights_sha256", "remote_sha256",
                                                       "probe_sha256"))
            # the model as served: its weights and template, and the engine that ran them (name, version, and the
            # facts it records, such as llama.cpp's AMX setting: kernels that change float order change answers)
            served = {"identity": fp, "engine": ep.engine, "engine_version": ep.engine_version,
                      "facts": getattr(ep, "facts", None) or {}}
            self._cache_model = {"fp": served, "digest": stable_hash(fp, n=16)} if weights else None
        if self._cache_model is None:
            return None
        body = {"messages": messages, **engine_request(params, ep)}
        if not cacheable(body, seeded=bool(getattr(ep.caps, "seeded", False))):
            return None
        return answer_key(self._cache_model["fp"], body)

    async def stream(self, messages: list[dict], params: SamplingParams | None = None, *,
                     model: str | None = None) -> AsyncIterator[Delta | Completion]:
        """Yield Delta pieces as they arrive, then the Completion. Retries happen only before the first byte."""
        params = params or SamplingParams()
        attempt = 0
        while True:
            slot = self._pick()
            slot.outstanding += 1
            got_any = False
            try:
                async for item in self._stream_once(slot, messages, params, model):
                    got_any = True
                    yield item
                return
            except (openai.OpenAIError, httpx.HTTPError) as exc:
                if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
                    await _raise_if_died(slot.endpoint, exc)
                if got_any or not _retryable(exc) or attempt >= self.max_retries:
                    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)) and not isinstance(
                        exc, openai.APITimeoutError
                    ):
                        raise EndpointUnreachable(
                            f"endpoint {slot.endpoint.base_url} unreachable after {attempt + 1} tries: {_message(exc)}"
                            " (is the server running? check --endpoint)"
                        ) from exc
                    status = getattr(exc, "status_code", None)
                    raise RequestError(f"{slot.endpoint.base_url}: {_message(exc)}", status=status) from exc
                delay = min(self.backoff_max_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                attempt += 1
                await asyncio.sleep(delay)
            finally:
                slot.outstanding -= 1

    async def _stream_once(self, slot: _Slot, messages, params: SamplingParams, model: str | None):
        ep = slot.endpoint
        if params.tools and not ep.caps.tool_stream:
            # the engine cannot stream a reply that may be a tool call (llama-cpp-python's function-calling formats
            # refuse "auto" tool choice when streaming): one plain request, so no TTFT for these
            yield await self._complete_once(slot, messages, params, model)
            return
        started_at = time.time()
        t0 = time.perf_counter()
        stream = await slot.sdk.chat.completions.create(
            model=model or ep.model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **engine_request(params, ep),
        )
        parts: list[str] = []
        reasoning_parts: list[str] = []  # vLLM's reasoning parsers send it apart: delta.reasoning_content / .reasoning
        chunk_times: list[float] = []
        finish_reason = None
        usage = None
        server_model = None
        calls = _ToolCallParts()
        try:
            async for chunk in stream:
                now = time.perf_counter() - t0
                server_model = server_model or chunk.model
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    delta = choice.delta
                    piece = delta.content if delta else None
                    thought = (getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
                               if delta else None)
                    if thought:
                        reasoning_parts.append(thought)
                        chunk_times.append(now)
                    if piece:
                        parts.append(piece)
                        chunk_times.append(now)
                        yield Delta(piece, now)
                    if choice.delta is not None and getattr(choice.delta, "tool_calls", None):
                        calls.add(choice.delta.tool_calls)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        finally:
            await stream.close()
        e2e = time.perf_counter() - t0
        raw = "".join(parts)
        text, reasoning, unclosed = split_think(raw)
        if reasoning_parts:
            reasoning = "".join(reasoning_parts) + (f"\n{reasoning}" if reasoning else "")
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        usage_source = "server" if usage is not None else None
        prompt_source = "usage" if prompt_tokens is not None else None
        if prompt_tokens is None and self.count_without_usage:  # after e2e was taken, so timings are unaffected
            prompt_tokens, prompt_source = await self._count_prompt(slot, messages, params)
        if usage is None and self.count_without_usage:
            # after e2e was taken, so timings are unaffected
            if finish_reason == "length":
                completion_tokens, usage_source = params.max_tokens, "tokenizer"
            elif not raw:
                completion_tokens, usage_source = 0, "tokenizer"
            else:
                toks = await self._tokenize_on(ep, raw)
                if toks is not None:
                    completion_tokens, usage_source = len(toks), "tokenizer"
        yield Completion(
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage_source=usage_source,
            prompt_tokens_source=prompt_source,
            ttft_s=chunk_times[0] if chunk_times else None,
            e2e_s=e2e,
            chunk_times=chunk_times,
            reasoning=reasoning,
            think_unclosed=unclosed,
            raw_text=raw,
            model=server_model,
            endpoint=ep.base_url,
            started_at=started_at,
            tool_calls=calls.calls(),
        )

    async def _complete_once(self, slot: _Slot, messages, params: SamplingParams, model: str | None) -> Completion:
        ep = slot.endpoint
        started_at = time.time()
        t0 = time.perf_counter()
        resp = await slot.sdk.chat.completions.create(model=model or ep.model, messages=messages, stream=False,
                                                      **engine_request(params, ep))
        e2e = time.perf_counter() - t0
        choice = (resp.choices or [None])[0]
        msg = choice.message if choice is not None else None
        raw = (msg.content if msg is not None else None) or ""
        text, reasoning, unclosed = split_think(raw)
        calls = [ToolCall.parse(c.function.name if c.function else "", c.function.arguments if c.function else "",
                                c.id) for c in ((msg.tool_calls if msg is not None else None) or [])]
        usage = resp.usage
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        prompt_source = "usage" if prompt_tokens is not None else None
        if prompt_tokens is None and self.count_without_usage:
            prompt_tokens, prompt_source = await self._count_prompt(slot, messages, params)
        return Completion(
            text=text, finish_reason=choice.finish_reason if choice is not None else None,
            prompt_tokens=prompt_tokens, prompt_tokens_source=prompt_source,
            completion_tokens=getattr(usage, "completion_tokens", None),
            usage_source="server" if usage is not None else None, ttft_s=None, e2e_s=e2e, chunk_times=[],
            reasoning=reasoning, think_unclosed=unclosed, raw_text=raw, model=resp.model, endpoint=ep.base_url,
            started_at=started_at, tool_calls=calls)

    async def _count_prompt(self, slot: _Slot, messages: list[dict],
                            params: SamplingParams) -> tuple[int | None, str | None]:
        """The prompt tokens of a request whose server sent no usage, and where the figure came from.

        With the engine's tokenizer in this process (``caps.local_tokenizer``): the messages rendered as that server
        renders them (``engines.prompt_count``), never its tokenize route (which waits behind queued generations);
        None when that render is not reproducible here. Else the ``/tokenize`` route given the messages (vLLM's
        chat form: ``messages`` + ``add_generation_prompt``), once refused never asked again for this endpoint."""
        ep = slot.endpoint
        tools = params.tools or None
        choice = (params.tool_choice if params.tool_choice is not None else "auto") if tools else None
        if ep.caps.local_tokenizer is not None:
            if slot.prompt_counter is _UNSET:
                from assay.engines.prompt_count import counter

                slot.prompt_counter = counter(ep)
            count = slot.prompt_counter
            if count is None:
                return None, None
            if sum(len(str(m.get("content") or "")) for m in messages) > _INLINE_CHARS:
                n = await asyncio.to_thread(count, messages, tools, choice)
            else:
                n = count(messages, tools, choice)
            return (n, "local") if n else (None, None)
        if "/tokenize" not in ep.caps.tokenize_routes or not slot.tokenize_messages:
            return None, None
        body: dict[str, Any] = {"model": ep.model, "messages": messages, "add_generation_prompt": True}
        if tools:
            body["tools"] = tools
        template_kwargs = params.chat_template_kwargs or (params.extra_body or {}).get("chat_template_kwargs")
        if template_kwargs:
            body["chat_template_kwargs"] = template_kwargs
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=120.0)
        headers = {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}
        try:
            r = await self._http.post(f"{ep.root}/tokenize", json=body, headers=headers)
        except httpx.HTTPError:
            return None, None
        try:
            data = r.json() if r.status_code == 200 else None
        except ValueError:
            data = None
        n = data.get("count") if isinstance(data, dict) else None
        if not isinstance(n, int) and isinstance(data, dict) and isinstance(data.get("tokens"), list):
            n = len(data["tokens"])
        if isinstance(n, int) and n > 0:
            return n, "tokenize"
        if r.status_code < 500:
            slot.tokenize_messages = False  # no such route, or it read no messages (a text-only /tokenize)
        return None, None

    async def tokenize(self, text: str) -> list[int] | None:
        """Token ids from the served model's tokenizer (llama.cpp /extras/tokenize, vLLM /tokenize); None if neither."""
        return await self._tokenize_on(self.slots[0].endpoint, text)

    async def _tokenize_on(self, ep: "Endpoint", text: str) -> list[int] | None:
        if ep.caps.local_tokenizer is not None:
            return ep.caps.local_tokenizer(text)
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=120.0)
        root = ep.base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}
        bodies = {"/extras/tokenize": {"input": text},
                  "/tokenize": {"model": ep.model, ep.caps.tokenize_text_field: text}}
        for route in ep.caps.tokenize_routes:
            url, body = f"{root}{route}", bodies[route]
            try:
                r = await self._http.post(url, json=body, headers=headers)
            except httpx.HTTPError:
                continue
            if r.status_code == 200:
                toks = r.json().get("tokens")
                if isinstance(toks, list):
                    return toks
        return None

    async def count_tokens(self, text: str) -> int:
        """Exact count from the server's tokenizer, else an estimate of 1 token per 4 characters (stated in docs)."""
        toks = await self.tokenize(text)
        return len(toks) if toks is not None else max(1, len(text) // 4)
