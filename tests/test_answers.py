"""The answer cache (assay.answers): an answer is reused only for the same model, messages, sampling and seed; it is
bounded, survives kill -9 mid-write, and `--limit 50` then `--limit 200` asks 150 questions."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from assay.answers import AnswerCache, answer_key, cacheable
from assay.client import Client, SamplingParams
from assay.evals.runner import run

IDENT_A = {"format": "gguf", "weights_sha256": "a" * 64, "quantisation": "Q4_1"}
IDENT_B = {"format": "gguf", "weights_sha256": "b" * 64, "quantisation": "Q4_1"}


def _ep(st, ident=IDENT_A, **kw):
    return st.endpoint("smollm2-135m", engine="llama.cpp", extra={"identity": ident}, **kw)


def _ask(ep, cache, params=None, text="What is 2+2?"):
    async def go():
        async with Client(ep, cache=cache) as c:
            return await c.chat([{"role": "user", "content": text}], params or SamplingParams(max_tokens=8))

    return asyncio.run(go())


def test_key_moves_with_model_messages_and_sampling_and_not_with_the_served_name():
    body = {"model": "x", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0, "max_tokens": 8,
            "stream": True}
    k = answer_key({"w": 1}, body)
    assert answer_key({"w": 1}, {**body, "model": "renamed", "stream": False}) == k
    assert answer_key({"w": 2}, body) != k
    assert answer_key({"w": 1}, {**body, "max_tokens": 9}) != k
    assert answer_key({"w": 1}, {**body, "messages": [{"role": "user", "content": "hi!"}]}) != k
    assert answer_key({"w": 1}, {**body, "extra_body": {"top_k": 0}}) != k


def test_only_answers_that_are_a_function_of_the_key_are_cacheable():
    assert cacheable({"temperature": 0.0}, seeded=False)
    assert not cacheable({"temperature": 0.7, "seed": 1}, seeded=False)  # the engine's seeded sampling not known
    assert cacheable({"temperature": 0.7, "seed": 1}, seeded=True)
    assert not cacheable({"temperature": 0.7}, seeded=True)  # no seed: a draw, not a function
    assert not cacheable({}, seeded=True)  # the server's default temperature is not known


def test_client_reuses_an_answer_of_the_same_model_only(stub, tmp_path):
    st = stub(reply="four")
    cache = AnswerCache(tmp_path / "answers.sqlite")
    first = _ask(_ep(st), cache)
    again = _ask(_ep(st), cache)
    assert st.count == 1 and not first.cached and again.cached
    assert again.text == first.text == "four" and again.completion_tokens == first.completion_tokens
    assert again.ttft_s is None  # a reused answer took no time and says so
    _ask(_ep(st, IDENT_B), cache)  # other weights under the same name: asked
    assert st.count == 2
    _ask(_ep(st), cache, SamplingParams(max_tokens=8, top_k=5))  # other sampling: asked
    assert st.count == 3
    _ask(st.endpoint("stub-model"), cache)  # weights not known (a remote URL without a probe): never cached
    _ask(st.endpoint("stub-model"), cache)
    assert st.count == 5


def test_sampled_answers_are_reused_only_with_a_seed_on_a_seeded_engine(stub, tmp_path):
    st = stub(reply="maybe")
    cache = AnswerCache(tmp_path / "answers.sqlite")
    hot = SamplingParams(max_tokens=8, temperature=0.8, seed=7)
    remote = _ep(st)
    remote.engine = "remote"
    remote.caps = type(remote.caps)()  # a server of unknown kind: seeded sampling not declared reproducible
    _ask(remote, cache, hot)
    _ask(remote, cache, hot)
    assert st.count == 2
    seeded = _ep(st)
    if not getattr(seeded.caps, "seeded", False):
        pytest.skip("llama.cpp's capabilities do not declare seeded sampling reproducible")
    _ask(seeded, cache, hot)
    _ask(seeded, cache, hot)
    assert st.count == 3


def test_the_cache_is_bounded_least_recently_used_first(tmp_path):
    cache = AnswerCache(tmp_path / "answers.sqlite", max_mb=0.05)  # ~52 KB
    blob = "x" * 10_000
    for i in range(4):
        cache.put(f"k{i}", "m", {"text": blob})
    assert cache.get("k0") is not None  # k0 used most recently now; k1 is the oldest
    for i in range(4, 8):
        cache.put(f"k{i}", "m", {"text": blob})
    assert cache.count() <= 5
    assert cache.get("k1") is None and cache.get("k7") is not None


WRITER = """
import sys
from assay.answers import AnswerCache
c = AnswerCache(sys.argv[1])
i = 0
print("ready", flush=True)
while True:
    c.put(f"k{i}", "m", {"text": "y" * 20000, "i": i})
    i += 1
"""


def test_kill_9_mid_write_leaves_a_readable_cache(tmp_path):
    path = tmp_path / "answers.sqlite"
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    db = sqlite3.connect(str(path))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    cache = AnswerCache(path)
    n = cache.count()
    assert n > 10, "the writer should have stored answers before it was killed"
    for i in range(n):
        got = cache.get(f"k{i}")
        assert got is not None and got["i"] == i and len(got["text"]) == 20000
    cache.put("after", "m", {"text": "ok"})  # and it takes writes again
    assert cache.get("after") == {"text": "ok"}


def test_a_larger_limit_asks_only_the_new_samples(stub, tmp_path):
    st = stub(reply="The answer is \\boxed{42}.")
    cache = AnswerCache(tmp_path / "answers.sqlite")
    kw = dict(out_dir=tmp_path / "runs", params=SamplingParams(max_tokens=16), cache=cache)
    small = run(["math"], [_ep(st)], limit=3, **kw)
    assert st.count == 3 and small.summary["suites"]["math"].get("cached") is None
    big = run(["math"], [_ep(st)], limit=6, **kw)
    assert big.run_dir != small.run_dir  # another limit is another run ...
    assert st.count == 6  # ... but only the 3 new questions were asked
    assert big.summary["suites"]["math"]["cached"] == 3
    assert big.manifest.sessions[-1]["from_cache"] == 3
    recs = {r.sample_id: r for r in __import__("assay.store", fromlist=["open"]).open(big.run_dir).records()}
    assert sum(r.cached for r in recs.values()) == 3
    assert all(r.e2e_s is None for r in recs.values() if r.cached)
    no_cache = run(["math"], [_ep(st)], limit=6, fresh=True, out_dir=tmp_path / "runs",
                   params=SamplingParams(max_tokens=16))
    assert st.count == 12 and no_cache.summary["suites"]["math"].get("cached") is None


@pytest.mark.engine
def test_llama_cpp_seeded_sampling_is_reproducible_as_its_capabilities_declare(embedded):
    """The answer cache reuses a sampled answer only where the engine declares seeded sampling reproducible:
    llama.cpp does (Capabilities.seeded); the same seed at temperature 0.9 must give the same answer twice."""
    assert embedded.caps.seeded
    hot = SamplingParams(max_tokens=24, temperature=0.9, top_p=1.0, seed=7)
    first = _ask(embedded, None, hot, text="Tell me a short story about a fox.")
    again = _ask(embedded, None, hot, text="Tell me a short story about a fox.")
    assert first.completion_tokens and first.raw_text == again.raw_text
