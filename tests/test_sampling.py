"""The exact request: assay sends neutral values for every sampling knob an engine would otherwise default, records the
effective values in the manifest and the fingerprint, and never resumes a run sampled the old way into a new one.

The bytes are checked on the stub (parameter echo); that the engine applies what was sent is checked on the real
llama.cpp server (a request with the knobs left out is sampled differently from assay's, which equals the one that
spells the neutral values out)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.client import Client, SamplingParams, describe_sampling, effective_sampling, engine_request
from assay.common import stable_hash
from assay.engines import Endpoint
from assay.errors import AssayError


def _ep(stub, engine: str) -> Endpoint:
    return stub.endpoint(engine=engine)


def _sent(stub, engine: str, params: SamplingParams) -> dict:
    async def go():
        async with Client([_ep(stub, engine)]) as c:
            await c.chat([{"role": "user", "content": "hi"}], params)

    asyncio.run(go())
    return stub.requests[-1]


def test_llama_cpp_gets_every_knob_neutral_unless_set(stub):
    st = stub(reply="ok")
    body = _sent(st, "llama.cpp", SamplingParams(max_tokens=8))
    # the values llama-cpp-python would otherwise fill in are top_k 40, min_p 0.05, repeat_penalty 1.1
    assert (body["top_k"], body["min_p"], body["repeat_penalty"]) == (0, 0.0, 1.0)
    assert body["presence_penalty"] == 0.0 and body["frequency_penalty"] == 0.0
    assert body["temperature"] == 0.0 and body["top_p"] == 1.0
    body = _sent(st, "llama.cpp", SamplingParams(max_tokens=8, repeat_penalty=1.1, top_k=40))
    assert (body["top_k"], body["min_p"], body["repeat_penalty"]) == (40, 0.0, 1.1)
    # a field the user puts in extra_body wins over the neutral value
    body = _sent(st, "llama.cpp", SamplingParams(max_tokens=8, extra_body={"min_p": 0.1}))
    assert body["min_p"] == 0.1 and body["repeat_penalty"] == 1.0


def test_vllm_gets_its_own_field_names_and_a_remote_only_openai_ones(stub):
    st = stub(reply="ok")
    body = _sent(st, "vllm", SamplingParams(max_tokens=8, repeat_penalty=1.05))
    assert body["repetition_penalty"] == 1.05 and "repeat_penalty" not in body and body["top_k"] == 0
    body = _sent(st, "remote", SamplingParams(max_tokens=8))
    assert body["presence_penalty"] == 0.0 and not {"top_k", "min_p", "repeat_penalty", "repetition_penalty"} & set(body)
    with pytest.raises(AssayError, match=r"--repeat-penalty cannot be sent to .*: pass it in --extra-body"):
        engine_request(SamplingParams(repeat_penalty=1.1), _ep(st, "remote"))


def test_effective_sampling_says_what_was_sent_and_what_is_unknown(stub):
    st = stub()
    eff = effective_sampling(SamplingParams(), _ep(st, "llama.cpp"))
    assert eff == {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0,
                   "presence_penalty": 0.0, "frequency_penalty": 0.0}
    line = describe_sampling(eff, _ep(st, "llama.cpp"))
    assert "top_k off" in line and "would apply top_k 40, min_p 0.05, repeat_penalty 1.1" in line
    remote = effective_sampling(SamplingParams(), _ep(st, "remote"))
    assert remote["repeat_penalty"] == "unknown" and remote["top_k"] == "unknown" and remote["presence_penalty"] == 0
    assert effective_sampling(SamplingParams(extra_body={"repetition_penalty": 1.2}),
                              _ep(st, "vllm"))["repeat_penalty"] == 1.2


def test_manifest_records_effective_sampling_and_an_old_run_is_not_resumed(stub, tmp_path, capsys):
    from assay.evals.runner import run
    from assay.store import read_manifest, write_json_atomic

    st = stub(reply="w")
    ep = _ep(st, "llama.cpp")
    out = tmp_path / "runs"
    params = SamplingParams(max_tokens=8)
    first = run(["json"], [ep], out_dir=out, limit=2, params=params)
    m = read_manifest(first.run_dir)
    assert m.fingerprint["sampling"] == effective_sampling(params, ep)
    assert m.fingerprint["sampling"]["repeat_penalty"] == 1.0
    # the same run made before assay sent neutral values: no "sampling" in its fingerprint
    raw = json.loads((first.run_dir / "manifest.json").read_text())
    del raw["fingerprint"]["sampling"]
    raw["fingerprint_hash"] = stable_hash(raw["fingerprint"])
    write_json_atomic(first.run_dir / "manifest.json", raw)
    capsys.readouterr()
    again = run(["json"], [ep], out_dir=out, limit=2, params=params)
    assert again.run_dir != first.run_dir and not again.resumed
    err = capsys.readouterr().err
    assert f"run {first.run_dir.name} has the same suites" in err and "not resumed, a new run starts" in err
    # and a different repetition penalty is a different run, never a resume
    third = run(["json"], [ep], out_dir=out, limit=2, params=SamplingParams(max_tokens=8, repeat_penalty=1.1))
    assert third.run_dir not in (first.run_dir, again.run_dir)


def test_cli_takes_the_knobs_and_prints_the_effective_line(stub, tmp_path):
    st = stub(reply="x")  # answers /extras/tokenize, so --endpoint takes it for a llama-cpp-python server
    res = CliRunner().invoke(app, ["eval", "--endpoint", st.base_url, "--suite", "json", "--limit", "1", "--out",
                                   str(tmp_path), "--min-p", "0.2", "--repeat-penalty", "1.1"])
    assert res.exit_code == 0, res.output
    assert "sampling: temperature 0.0, top_p 1.0, top_k off, min_p 0.2, repeat_penalty 1.1" in res.output
    assert "would apply top_k 40, min_p 0.05" in res.output
    body = st.requests[-1]
    assert (body["min_p"], body["repeat_penalty"], body["top_k"]) == (0.2, 1.1, 0)
    res = CliRunner().invoke(app, ["eval", "--endpoint", st.base_url, "--suite", "json", "--limit", "1", "--out",
                                   str(tmp_path), "--min-p", "2"])
    assert res.exit_code != 0 and "--min-p" in res.output


@pytest.mark.engine
def test_llama_cpp_applies_what_assay_sends(embedded):
    """The real server: assay's request (neutral values sent) gets the same greedy reply as one that spells them out;
    one that leaves the knobs out gets the same reply as one that spells out the defaults this engine file declares;
    and on at least one of a few forced-length replies the two differ (else the check would be vacuous)."""
    prompts = ["Write the word banana twenty times.", "Count from one to fifty in words.",
               "List the days of the week, again and again.", "Tell me about cats. Then tell me again."]

    async def ours(content):
        async with Client([embedded]) as c:
            return (await c.chat([{"role": "user", "content": content}],
                                 SamplingParams(max_tokens=48, ignore_eos=True))).text

    def raw(content, **knobs):
        r = httpx.post(f"{embedded.base_url}/chat/completions", timeout=120, json={
            "model": embedded.model, "messages": [{"role": "user", "content": content}], "max_tokens": 48,
            "min_tokens": 48, "temperature": 0.0, "top_p": 1.0, **knobs})
        return r.json()["choices"][0]["message"]["content"]

    from assay.engines.llamacpp import SAMPLING

    differs = 0
    for content in prompts:
        neutral = raw(content, **SAMPLING.neutral)
        left_out = raw(content)
        assert left_out == raw(content, **SAMPLING.defaults), content  # the declared defaults are the engine's
        differs += left_out != neutral
    assert asyncio.run(ours(prompts[0])) == raw(prompts[0], **SAMPLING.neutral)
    assert differs >= 1, "the engine's defaults sampled every reply like the neutral values: are they applied?"


def test_knob_fields_are_what_a_peer_harness_must_send(stub):
    """benchmarks/peer_lm_eval.py and peer_harness.py hand these to lm-eval / Inspect so the server samples both
    harnesses alike; they must equal the knob fields of assay's own request body."""
    from assay.client import knob_fields

    st = stub(reply="ok")
    body = _sent(st, "vllm", SamplingParams(max_tokens=8, repeat_penalty=1.1))
    fields = knob_fields(SamplingParams(max_tokens=8, repeat_penalty=1.1), _ep(st, "vllm"))
    assert fields == {k: body[k] for k in fields} and fields["repetition_penalty"] == 1.1
    assert set(fields) == {"top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty"}
    assert set(knob_fields(SamplingParams(), _ep(st, "remote"))) == {"presence_penalty", "frequency_penalty"}
