"""The client against a stub server that controls the bytes: retries, no-retry on 4xx, timings, think stripping."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from assay.client import Client, Completion, Delta, SamplingParams, split_thinking
from assay.engines import Endpoint
from assay.errors import EndpointUnreachable, RequestError

MSG = [{"role": "user", "content": "hello"}]


def ep(stub) -> Endpoint:
    return stub.endpoint()


def run(coro):
    return asyncio.run(coro)


async def _chat(client, messages=MSG, params=None):
    try:
        return await client.chat(messages, params)
    finally:
        await client.aclose()


def test_text_usage_and_finish_reason(stub):
    s = stub(reply="one two three four")
    done = run(_chat(Client(ep(s))))
    assert done.text == "one two three four"
    assert done.finish_reason == "stop"
    # usage comes from the server's usage chunk (stub counts words), not from counting chunks client-side
    assert done.completion_tokens == 4 and done.prompt_tokens == 1
    assert s.requests[-1]["stream_options"] == {"include_usage": True}


def test_length_finish_reason_is_reported(stub):
    s = stub(reply="a b c d e f g h")
    done = run(_chat(Client(ep(s)), params=SamplingParams(max_tokens=3)))
    assert done.finish_reason == "length" and done.completion_tokens == 3


def test_streaming_timings_positive_and_ordered(stub):
    s = stub(reply="w1 w2 w3 w4 w5", first_delay_s=0.15, gap_s=0.03)
    done = run(_chat(Client(ep(s))))
    assert done.ttft_s >= 0.15
    assert len(done.chunk_times) == 5
    assert all(b >= a for a, b in zip(done.chunk_times, done.chunk_times[1:]))
    # lower bounds only (a loaded machine can delay an arrival, never advance one): the last token cannot arrive
    # before the server sent it, 0.15 s + 4 gaps of 0.03 s after the request
    assert done.chunk_times[-1] >= 0.15 + 4 * 0.03 - 1e-3
    assert len(done.itl_s) == 4 and sum(done.itl_s) == pytest.approx(done.chunk_times[-1] - done.chunk_times[0])
    assert done.e2e_s >= done.chunk_times[-1]
    assert done.tpot_s == pytest.approx((done.e2e_s - done.ttft_s) / 4)


def test_stream_yields_deltas_then_completion(stub):
    s = stub(reply="alpha beta gamma")

    async def go():
        c = Client(ep(s))
        items = [x async for x in c.stream(MSG)]
        await c.aclose()
        return items

    items = run(go())
    assert [type(x) for x in items] == [Delta, Delta, Delta, Completion]
    assert "".join(x.text for x in items[:-1]) == items[-1].text


@pytest.mark.parametrize("status", [500, 503, 429])
def test_retries_transient_errors_then_succeeds(stub, status):
    s = stub(reply="ok then", fail_first=2, fail_status=status)
    done = run(_chat(Client(ep(s), backoff_s=0.01)))
    assert done.text == "ok then"
    assert s.count == 3


def test_gives_up_after_bounded_retries(stub):
    s = stub(status=500)
    with pytest.raises(RequestError) as e:
        run(_chat(Client(ep(s), max_retries=2, backoff_s=0.01)))
    assert s.count == 3  # 1 try + 2 retries, never forever
    assert "500" in str(e.value) and e.value.status == 500


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_4xx_raises_at_once_with_server_message(stub, status):
    s = stub(status=status)
    with pytest.raises(RequestError) as e:
        run(_chat(Client(ep(s), backoff_s=0.01)))
    assert s.count == 1
    assert f"stub says {status}" in str(e.value)


def test_unreachable_endpoint_is_an_error_not_text():
    from assay.engines import free_port

    dead = Endpoint(f"http://127.0.0.1:{free_port()}/v1", "x")
    with pytest.raises(EndpointUnreachable, match="unreachable"):
        run(_chat(Client(dead, max_retries=1, backoff_s=0.01)))


def test_sampling_params_forbid_typos_and_reach_the_request(stub):
    with pytest.raises(ValidationError):
        SamplingParams(temprature=0.5)
    with pytest.raises(ValidationError):
        SamplingParams(temperature=-1)
    s = stub(reply="x")
    run(_chat(Client(ep(s)), params=SamplingParams(temperature=0.3, top_p=0.9, max_tokens=7, seed=5,
                                                    ignore_eos=True)))
    req = s.requests[-1]
    assert (req["temperature"], req["top_p"], req["max_tokens"], req["seed"], req["ignore_eos"]) == (0.3, 0.9, 7, 5, True)
    assert req["min_tokens"] == 7


def test_least_outstanding_spreads_over_endpoints(stub):
    a, b = stub(reply="a", first_delay_s=0.05), stub(reply="b", first_delay_s=0.05)

    async def go():
        c = Client([ep(a), ep(b)])
        await asyncio.gather(*(c.chat(MSG) for _ in range(20)))
        await c.aclose()

    run(go())
    # with 20 concurrent requests, least-outstanding gives each endpoint exactly half
    assert a.count == 10 and b.count == 10


@pytest.mark.parametrize(
    "raw, text, reasoning, unclosed",
    [
        ("<think>hmm 2+2</think>\nThe answer is 4", "The answer is 4", "hmm 2+2", False),
        ("  <think>\nstep\n</think>\\boxed{4}", "\\boxed{4}", "step", False),
        ("<think>never ends \\boxed{9}", "", "never ends \\boxed{9}", True),
        ("No thinking here <think>x</think>", "No thinking here <think>x</think>", None, False),
        ("", "", None, False),
    ],
)
def test_split_thinking(raw, text, reasoning, unclosed):
    assert split_thinking(raw) == (text, reasoning, unclosed)


def test_think_block_stripped_from_completion(stub):
    s = stub(reply="<think>secret plan</think> 42")
    done = run(_chat(Client(ep(s))))
    assert done.text == "42" and done.reasoning == "secret plan" and not done.think_unclosed
    assert done.raw_text.startswith("<think>")


def test_no_usage_chunk_falls_back_to_the_servers_tokenizer(stub):
    # the stub sends usage only when asked; a server that ignores stream_options (llama-cpp-python) is simulated by
    # a subclass that never sends it
    from assay.stub import StubServer

    class NoUsage(StubServer):
        async def _chat(self, req, writer):
            req = {**req, "stream_options": None}
            await super()._chat(req, writer)

    s = NoUsage(reply="one two three").start()
    try:
        done = run(_chat(Client(s.endpoint())))
        assert done.usage_source == "tokenizer" and done.completion_tokens == 3 and done.prompt_tokens is None
        trunc = run(_chat(Client(s.endpoint()), params=SamplingParams(max_tokens=2)))
        assert trunc.finish_reason == "length" and trunc.completion_tokens == 2
        raw = run(_chat(Client(s.endpoint(), count_without_usage=False)))
        assert raw.completion_tokens is None and raw.usage_source is None
    finally:
        s.stop()
