"""Workloads: what each benchmark request sends.

- ``seed``: the seed report's three shapes, 50 → 100, 8K (8,192) → 300 and 120 → 200 tokens.
- ``fixed:IN:OUT``: IN prompt tokens → OUT output tokens (``K`` suffix allowed: ``fixed:2K:128``).
- ``suite:NAME[:OUT]``: real prompts from an eval suite (``assay.evals.suites``), output up to OUT (default 256)
  tokens, not forced: their natural length is what is measured.
Several can be joined with commas: ``fixed:16:8,fixed:512:64``.

Input sizes count what the *server* counts (usage.prompt_tokens, chat template included): the filler text is sized
with the served model's own tokenizer (llama.cpp ``/extras/tokenize``, vLLM ``/tokenize``) after measuring the chat
template's overhead once. An input that would not fit the served context window with its output is capped, with a note.
Each request gets different filler so a prefix cache cannot make later requests look faster.

Example:
    specs = parse_workloads("seed")
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from assay.errors import AssayError

SEED = (("50→100", 50, 100), ("8K→300", 8192, 300), ("120→200", 120, 200))
CONTEXT_MARGIN = 8  # tokens kept free beyond input + output (BOS / generation prompt slack)

_WORDS = (
    "time year people way day man thing woman life child world school state family student group country problem "
    "hand part place case week company system program question work government number night point home water room "
    "mother area money story fact month lot right study book eye job word business issue side kind head house service "
    "friend father power hour game line end member law car city community name president team minute idea kid body "
    "information back parent face others level office door health person art war history party result change morning "
    "reason research girl guy moment air teacher force education river garden bridge window market summer winter music "
    "paper table light stone field forest island valley letter river engine signal model memory network answer method "
    "measure value order pattern theory energy metal glass cloud voice street train"
).split()


@dataclass
class WorkloadSpec:
    name: str
    input_tokens: int | None  # None for suite prompts (their own length)
    output_tokens: int
    suite: str | None = None
    forced: bool = True  # output length forced with max_tokens + ignore_eos/min_tokens (suite prompts: no)

    def to_dict(self) -> dict:
        return {"name": self.name, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "suite": self.suite, "forced": self.forced}


@dataclass
class Prepared:
    spec: WorkloadSpec
    messages: list[list[dict]]  # distinct prompts, cycled over the requests
    input_tokens: int | None  # target after capping (server-counted, template included)
    prompt_tokens: list[int | None] = field(default_factory=list)  # per prompt as sized with the tokenizer
    notes: list[str] = field(default_factory=list)

    @property
    def n_bench(self) -> int:
        """Prompts the benchmark cycles through: all but the last, which is kept unseen for the cross-check."""
        return max(1, len(self.messages) - 1)

    def message_for(self, g: int) -> list[dict]:
        """Messages for the g-th request of this workload (counted across load levels). After one pass over the
        distinct prompts, a request-number prefix keeps every prompt unique, so no prefix cache (vLLM keeps many)
        can serve a repeat; that costs a couple of tokens over the sized length."""
        msgs = self.messages[g % self.n_bench]
        if g < self.n_bench or self.spec.suite:
            return msgs
        last = dict(msgs[-1])
        last["content"] = f"{g}. {last['content']}"
        return [*msgs[:-1], last]

    def to_dict(self) -> dict:
        return {**self.spec.to_dict(), "input_tokens_target": self.input_tokens, "prompts": len(self.messages),
                "notes": self.notes}


def _count(text: str) -> int:
    text = text.strip().upper()
    m = re.fullmatch(r"(\d+)(K?)", text)
    if not m:
        raise AssayError(f"bad token count {text!r} in --workload: use a number like 512 or 8K")
    return int(m.group(1)) * (1024 if m.group(2) else 1)


def parse_workloads(text: str) -> list[WorkloadSpec]:
    out: list[WorkloadSpec] = []
    for part in [p.strip() for p in (text or "seed").split(",") if p.strip()]:
        kind, _, rest = part.partition(":")
        kind = kind.lower()
        if kind == "seed" and not rest:
            out.extend(WorkloadSpec(n, i, o) for n, i, o in SEED)
        elif kind == "fixed":
            bits = rest.split(":")
            if len(bits) != 2:
                raise AssayError(f"bad workload {part!r}: use fixed:IN:OUT, e.g. fixed:512:128")
            i, o = _count(bits[0]), _count(bits[1])
            if i < 1 or o < 1:
                raise AssayError(f"bad workload {part!r}: IN and OUT must be ≥ 1")
            out.append(WorkloadSpec(f"{i}→{o}", i, o))
        elif kind == "suite":
            name, _, o = rest.partition(":")
            if not name:
                raise AssayError(f"bad workload {part!r}: use suite:NAME or suite:NAME:OUT, e.g. suite:gsm8k:256")
            out.append(WorkloadSpec(f"suite:{name}", None, _count(o) if o else 256, suite=name, forced=False))
        else:
            raise AssayError(f"unknown workload {part!r}: use seed, fixed:IN:OUT or suite:NAME[:OUT]")
    return out


def filler(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n_words))


CountFn = Callable[[str], Awaitable[int]]


async def fit_text(count: CountFn, target: int, rng: random.Random,
                   words_per_token: float | None = None) -> tuple[str, int]:
    """Filler text whose token count is as close to ``target`` as possible without exceeding it.

    Secant steps on the word count, bracketed by bisection; with a ``words_per_token`` hint from an earlier prompt
    the first guess is usually within a token or two, so 2–3 tokenizer calls per prompt.
    """
    if target <= 0:
        return "", 0
    words = [rng.choice(_WORDS) for _ in range(int(target * max(1.0, words_per_token or 1.0) * 1.3) + 16)]
    lo, lo_c = 0, 0
    hi, hi_c = len(words), None
    if words_per_token:
        guess = min(max(1, round(target * words_per_token)), len(words) - 1)
        c = await count(" ".join(words[:guess]))
        if c == target:
            return " ".join(words[:guess]), c
        if c < target:
            lo, lo_c = guess, c
        else:
            hi, hi_c = guess, c
    if hi_c is None:
        hi_c = await count(" ".join(words))
        while hi_c < target:  # a tokenizer with more words per token than assumed: grow
            words += [rng.choice(_WORDS) for _ in range(len(words))]
            hi = len(words)
            hi_c = await count(" ".join(words))
    for _ in range(24):
        if hi - lo <= 1:
            break
        guess = lo + round((target - lo_c) * (hi - lo) / max(1, hi_c - lo_c))
        guess = min(max(guess, lo + 1), hi - 1)
        c = await count(" ".join(words[:guess]))
        if c == target:
            return " ".join(words[:guess]), c
        if c < target:
            lo, lo_c = guess, c
        else:
            hi, hi_c = guess, c
    if hi_c == target:
        return " ".join(words[:hi]), hi_c
    return " ".join(words[:lo]), lo_c


async def prepare(spec: WorkloadSpec, *, n_prompts: int, context: int | None, count: CountFn | None,
                  template_overhead: int, seed: int = 0) -> Prepared:
    """Build ``n_prompts`` distinct prompts for ``spec`` (capped to ``context``)."""
    if spec.suite:
        p = _prepare_suite(spec, n_prompts, seed)
        if count is not None:  # for servers that stream no usage; approximate for multi-message prompts
            p.prompt_tokens = [await count("\n".join(str(m.get("content", "")) for m in msgs)) + template_overhead
                               for msgs in p.messages]
        return p
    notes: list[str] = []
    target = spec.input_tokens or 1
    if context and target + spec.output_tokens + CONTEXT_MARGIN > context:
        capped = context - spec.output_tokens - CONTEXT_MARGIN
        if capped < 1:
            raise AssayError(f"workload {spec.name}: {spec.output_tokens} output tokens do not fit the served context "
                             f"of {context}: serve a longer context (--ctx) or ask for fewer output tokens")
        notes.append(f"input capped from {target} to {capped} tokens: the served context is {context} "
                     f"(input + {spec.output_tokens} output + {CONTEXT_MARGIN} slack must fit)")
        target = capped
    content_target = max(1, target - template_overhead)
    if target - template_overhead < 1:
        notes.append(f"input of {target} tokens is below the chat template's own {template_overhead} tokens: "
                     f"requests carry {template_overhead + 1}")
    msgs, sized = [], []
    ratio = None  # words per token, learnt from the first prompt
    for k in range(n_prompts):
        rng = random.Random(f"{seed}:{spec.name}:{k}")
        if count is None:
            text = filler(rng, content_target)  # ~1 token per filler word; actual count comes from usage
            sized.append(None)
        else:
            text, c = await fit_text(count, content_target, rng, ratio)
            if c > 0 and text:
                ratio = len(text.split()) / c
            sized.append(c + template_overhead)
        msgs.append([{"role": "user", "content": text}])
    if count is None:
        notes.append("no tokenizer endpoint: input sized at ~1 token per word; the actual count is the server's usage")
    return Prepared(spec, msgs, target, sized, notes)


def _prepare_suite(spec: WorkloadSpec, n_prompts: int, seed: int) -> Prepared:
    from assay.evals.suites import get_suite

    suite = get_suite(spec.suite)
    samples = list(suite.samples(seed, n_prompts))
    if not samples:
        raise AssayError(f"suite {spec.suite!r} gave no samples for the benchmark")
    msgs = [suite.messages(s) for s in samples]
    return Prepared(spec, msgs, None, [None] * len(msgs),
                    [f"prompts from suite {spec.suite} ({len(msgs)} distinct); output up to {spec.output_tokens} "
                     "tokens at its natural length (not forced)"])


def request_body(model: str, messages: list[dict], spec: WorkloadSpec, *, force: bool,
                 knobs: dict | None = None) -> dict:
    """The chat request. Forcing the output length: vLLM and llama.cpp's server read ``ignore_eos``;
    llama-cpp-python's server ignores it but honours ``min_tokens`` (EOS masked until then), so both are sent.
    ``knobs``: the neutral sampling fields for the engine (``client.knob_fields``), as ``assay eval`` sends them."""
    body = {"model": model, "messages": messages, "max_tokens": spec.output_tokens, "temperature": 0.0,
            "top_p": 1.0, **(knobs or {}), "stream": True, "stream_options": {"include_usage": True}}
    if force and spec.forced:
        body["ignore_eos"] = True
        body["min_tokens"] = spec.output_tokens
    return body


def context_for(specs: list, model: str | None) -> int | None:
    """The context window to start an engine with so the longest workload fits: prompt + output + a margin, at least
    2048, at most the model's own window; None (the engine's default) when no workload fixes its prompt length.
    llama.cpp's default is 8192 (SmolLM2's own window), so 8K + 300 gets capped there."""
    if not any(s.input_tokens for s in specs):
        return None
    need = max(max((s.input_tokens or 0) + s.output_tokens + 16 for s in specs), 2048)
    from assay.models import resolve

    window = resolve(model).context
    return min(need, window) if window else need
