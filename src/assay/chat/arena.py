"""The blind arena of ``assay chat --arena``: two anonymous models answer the same prompt side by side, the person
votes (A better / B better / tie / both bad), and only then are the names shown. Votes go to ``arena_votes`` in the
chat's SQLite history (``assay.chat.votes``); ``assay arena report`` turns them into Bradley-Terry ratings.

Each prompt is its own battle (single turn): the two sides' histories would diverge after the first answer, so a
multi-turn battle would no longer compare the models on the same conversation. The pair and the A/B sides are drawn
at random for every prompt, so neither position nor a model's place in the list can be learnt.

Imported by the Chainlit app (assay/chat/app.py) when ``ASSAY_CHAT_ARENA=1``; the side-by-side view is the custom
element ``public/elements/ArenaPair.jsx``.

Example:
    assay chat --arena -e http://127.0.0.1:8000/v1 -e http://127.0.0.1:8001/v1    # two models, blind
    assay arena report                                                            # ratings from the votes
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any
from urllib.parse import urlparse

import chainlit as cl

from assay.chat.settings import build_messages, sampling_from
from assay.chat.votes import record_vote
from assay.client import Client, Completion, Delta
from assay.errors import AssayError

VOTE_LABELS = {"a": "A is better", "b": "B is better", "tie": "Tie", "both_bad": "Both are bad"}
_UPDATE_EVERY_S = 0.15  # how often the streaming columns are redrawn


def contestants(endpoints: list) -> dict[str, Client]:
    """Name -> client. One per distinct model; with one model on several servers (two quantisations served under
    one id, say), one per server, named ``model @ host:port``."""
    by_model: dict[str, list] = {}
    for e in endpoints:
        by_model.setdefault(e.model, []).append(e)
    if len(by_model) >= 2:
        groups = by_model
    else:
        groups = {f"{e.model} @ {urlparse(e.base_url).netloc}": [e] for e in endpoints}
    return {name: Client(eps, max_retries=1, backoff_s=0.2) for name, eps in groups.items()}


class Battle:
    """One prompt, two sides. Plain object in the user session (see app.State for why not a dataclass)."""

    def __init__(self, prompt: str, name_a: str, name_b: str, settings: dict):
        self.id = f"{time.time():.6f}-{random.randrange(1 << 30)}"
        self.prompt, self.name_a, self.name_b, self.settings = prompt, name_a, name_b, settings
        self.text = {"a": "", "b": ""}
        self.done: dict[str, Completion | None] = {"a": None, "b": None}
        self.error: dict[str, str | None] = {"a": None, "b": None}
        self.vote: str | None = None
        self.msg: cl.Message | None = None
        self.element: Any = None
        self.actions: list = []

    def props(self, *, streaming: bool) -> dict:
        revealed = self.vote is not None
        return {"a": self.text["a"], "b": self.text["b"], "streaming": streaming, "revealed": revealed,
                "name_a": self.name_a if revealed else "", "name_b": self.name_b if revealed else "",
                "vote": self.vote, "note_a": self._note("a"), "note_b": self._note("b")}

    def _note(self, side: str) -> str:
        if self.error[side]:
            return "no answer: the model failed"
        d = self.done[side]
        if d is None:
            return ""
        return f"{d.completion_tokens or '?'} tokens" + (" · cut at max tokens" if d.finish_reason == "length" else "")

    def stats(self) -> dict:
        out = {}
        for side, name in (("a", self.name_a), ("b", self.name_b)):
            d = self.done[side]
            out[side] = {"model": name, "error": self.error[side]}
            if d is not None:
                out[side].update(ttft_s=d.ttft_s, e2e_s=round(d.e2e_s, 4), completion_tokens=d.completion_tokens,
                                 finish_reason=d.finish_reason, served_model=d.model)
        return out


def _battles() -> dict[str, Battle]:
    b = cl.user_session.get("assay_arena")
    if not isinstance(b, dict):
        b = {}
        cl.user_session.set("assay_arena", b)
    return b


async def _push(battle: Battle, *, streaming: bool) -> None:
    """Redraw the pair. While streaming, straight to the page (no file per redraw); the last one through
    ``update()``."""
    battle.element.props = battle.props(streaming=streaming)
    if streaming:
        await cl.context.emitter.send_element(battle.element.to_dict())
    else:
        await battle.element.update()


async def start_notice(names: list[str]) -> None:
    await cl.Message(
        content=f"**Arena mode**: {len(names)} models take part. Each prompt goes to two of them, drawn at random "
                "and shown as *Assistant A* and *Assistant B*; vote after reading both, and the names are revealed.",
        author="arena", metadata={"assay": {"kind": "notice"}}).send()


async def battle(prompt: str, settings: dict, clients: dict[str, Client]) -> None:
    """Stream both answers side by side, then offer the vote."""
    name_a, name_b = random.sample(sorted(clients), 2)
    b = Battle(prompt, name_a, name_b, settings)
    _battles()[b.id] = b
    b.element = cl.CustomElement(name="ArenaPair", props=b.props(streaming=True), display="inline")
    b.msg = cl.Message(content="Two anonymous answers: read both, then vote below.", author="arena",
                       elements=[b.element], metadata={"assay": {"kind": "arena", "battle": b.id}})
    await b.msg.send()
    messages = build_messages(settings.get("system_prompt", ""), [{"role": "user", "content": prompt}])
    params = sampling_from(settings)

    async def side(key: str, name: str) -> None:
        try:
            async for item in clients[name].stream(messages, params):
                if isinstance(item, Delta):
                    b.text[key] += item.text
                else:
                    b.done[key] = item
                    if not item.think_unclosed:
                        b.text[key] = item.text
        except AssayError as e:
            b.error[key] = str(e)

    async def redraw() -> None:
        while True:
            await asyncio.sleep(_UPDATE_EVERY_S)
            await _push(b, streaming=True)

    painter = asyncio.create_task(redraw())
    try:
        await asyncio.gather(side("a", name_a), side("b", name_b))
    finally:
        painter.cancel()
    await _push(b, streaming=False)
    if b.error["a"] or b.error["b"]:
        await cl.Message(content="One side gave no answer (the model failed), so this prompt takes no vote. "
                                 "Send another.", author="arena", metadata={"assay": {"kind": "error"}}).send()
        return
    b.actions = [cl.Action(name="arena_vote", payload={"battle": b.id, "vote": v}, label=label,
                           tooltip=f"Vote: {label}") for v, label in VOTE_LABELS.items()]
    for a in b.actions:
        await a.send(for_id=b.msg.id)


def _reveal_markdown(b: Battle) -> str:
    pick = {"a": f"A ({b.name_a})", "b": f"B ({b.name_b})", "tie": "a tie", "both_bad": "both bad"}[b.vote or "tie"]
    return f"**Your vote: {pick}.** Assistant A was `{b.name_a}`, Assistant B was `{b.name_b}`."


async def on_vote(action: cl.Action, db_path: str, user: str) -> None:
    payload = action.payload or {}
    b = _battles().get(payload.get("battle", ""))
    if b is None or b.vote is not None:
        await cl.Message(content="That vote was already counted (or its battle is from another session).",
                         author="arena", metadata={"assay": {"kind": "notice"}}).send()
        return
    b.vote = payload.get("vote")
    record_vote(db_path, prompt=b.prompt, model_a=b.name_a, model_b=b.name_b, answer_a=b.text["a"],
                answer_b=b.text["b"], vote=b.vote, thread_id=cl.context.session.thread_id, user=user,
                settings=b.settings, stats=b.stats())
    for a in b.actions:
        try:
            await a.remove()
        except Exception:  # the message may be gone already
            pass
    await _push(b, streaming=False)
    b.msg.content = _reveal_markdown(b)
    b.msg.metadata = {"assay": {"kind": "arena", "battle": b.id, "vote": b.vote, "model_a": b.name_a,
                                "model_b": b.name_b, "answer_a": b.text["a"], "answer_b": b.text["b"]}}
    await b.msg.update()
