"""The exact model: weights / template / tokenizer digests in the fingerprint, so two GGUF files under one served name
never share a run; a remote model swapped mid-run stops the run without mixing answers."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from assay.engines import Endpoint
from assay.engines import identity as ident
from assay.errors import AssayError
from assay.store import iter_records, read_manifest


def _gguf():
    from assay.models import resolve

    return resolve("smollm2-135m").gguf_path()


def test_gguf_identity_reads_digests_quantisation_template_and_tokenizer(tmp_path):
    src = _gguf()
    idn = ident.gguf_identity(src)
    assert idn["weights_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert idn["quantisation"] == "q4_1" and idn["format"] == "gguf"
    assert len(idn["chat_template_sha256"]) == 64 and idn["tokenizer_sha256"]
    # cached by path, size and mtime: a copy is hashed once, then read from $ASSAY_HOME/digests.json
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(src, copy)
    assert ident.weights_sha256(copy) == idn["weights_sha256"]
    cached = (ident._home() / ident.DIGESTS).read_text()
    assert str(copy.resolve()) in cached
    # same bytes elsewhere: the same model; one weight byte changed: another (template and tokenizer unchanged)
    assert ident.fingerprint_part(ident.gguf_identity(copy)) == ident.fingerprint_part(idn)
    data = bytearray(copy.read_bytes())
    data[-100] ^= 0xFF
    copy.write_bytes(bytes(data))  # new size/mtime -> hashed again
    other = ident.gguf_identity(copy)
    assert other["weights_sha256"] != idn["weights_sha256"]
    assert other["tokenizer_sha256"] == idn["tokenizer_sha256"] and other["quantisation"] == "q4_1"


def test_two_gguf_files_under_one_served_name_never_share_a_run(stub, tmp_path):
    from assay.client import SamplingParams
    from assay.evals.runner import run

    st = stub(reply="x")
    a = tmp_path / "a.gguf"
    b = tmp_path / "b.gguf"
    shutil.copyfile(_gguf(), a)
    data = bytearray(_gguf().read_bytes())
    data[-64] ^= 0x01
    b.write_bytes(bytes(data))
    out = tmp_path / "runs"

    def ep(path):  # both served as "smollm2-135m" by llama.cpp: only the bytes differ
        return st.endpoint("smollm2-135m", engine="llama.cpp", extra={"identity": ident.gguf_identity(path)})

    kw = dict(out_dir=out, limit=2, params=SamplingParams(max_tokens=8))
    first = run(["json"], [ep(a)], **kw)
    other = run(["json"], [ep(b)], **kw)
    assert other.run_dir != first.run_dir and not other.resumed
    again = run(["json"], [ep(a)], **kw)
    assert again.run_dir == first.run_dir and again.resumed and again.samples_this_session == 0
    m = read_manifest(first.run_dir)
    assert m.fingerprint["model_identity"]["weights_sha256"] == ident.weights_sha256(a)
    assert m.engine["model_identity"]["path"] == str(a.resolve())
    with pytest.raises(AssayError, match="the endpoints serve different models"):
        run(["json"], [ep(a), ep(b)], **kw)


def test_a_remote_model_swapped_mid_run_stops_the_run_without_mixing(stub, tmp_path, monkeypatch):
    """A llama.cpp-style server whose /props starts naming another file after a few answers: the run stops with one
    line, keeps only answers from before the last good look, and the same command then starts a new run."""
    from typer.testing import CliRunner

    import assay.evals.runner as runner
    from assay.cli import app

    monkeypatch.setattr(runner, "IDENTITY_CHECK_S", 0.0)  # look after every batch
    st = stub(first_delay_s=0.05)  # slower than a look at /props, so the looks keep up with the answers
    st.props = {"model_path": "/models/a.gguf", "total_slots": 1}

    def reply(req):
        if st.count >= 12:
            st.props = {"model_path": "/models/b.gguf", "total_slots": 1}
        return "model-" + st.props["model_path"][-6]

    st.reply = reply
    out = tmp_path / "runs"
    args = ["eval", "--endpoint", st.base_url, "--suite", "json", "--limit", "20", "--out", str(out), "-c", "1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    line = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert line and "changed during the run (server facts" in line[0] and "never a mix" in line[0]
    first = next(out.iterdir())
    kept = list(iter_records(first / "records.jsonl"))
    assert kept and all(r["completion"] == "model-a" for r in kept)  # nothing from the swapped model
    assert read_manifest(first).status == "interrupted"
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(runs) == 2  # a new run for the model now served, never a resume into the old one
    new = next(p for p in runs if p != first)
    assert all(r["completion"] == "model-b" for r in iter_records(new / "records.jsonl"))


def test_probe_digest_moves_with_the_answer_not_the_server(stub):
    st = stub(reply="hello")
    before = ident.remote_identity(st.base_url, st.model, probe=True)
    again = ident.remote_identity(st.base_url, st.model, probe=True)
    assert before == again and before["format"] == "remote"
    assert before["probe_sha256"] is None  # the stub sends no logprobs: no probe, said as None, not a fake digest
    ep = st.endpoint(extra={"identity": before})
    assert ep.model_changed() is None
    st.props = {"model_path": "/other.gguf"}
    assert "server facts" in ep.model_changed()


def test_replicas_of_one_model_look_the_same_despite_per_start_fields(stub):
    """llama-server's /props carries a media marker drawn at random per start, and slot counts: two replicas of one
    model must not look like two models (measured: two llama-server replicas were refused as different models)."""
    a, b = stub(), stub()
    a.props = {"model_path": "/m.gguf", "media_marker": "<__media_o3UND6__>", "total_slots": 4, "is_sleeping": False}
    b.props = {"model_path": "/m.gguf", "media_marker": "<__media_cROZOw__>", "total_slots": 2, "is_sleeping": True}
    ia, ib = (ident.remote_identity(s.base_url, s.model) for s in (a, b))
    assert ia["remote_sha256"] == ib["remote_sha256"] and ident.same_model(ia, ib)
    b.props = {**b.props, "model_path": "/other.gguf"}
    assert not ident.same_model(ia, ident.remote_identity(b.base_url, b.model))


@pytest.mark.engine
def test_the_served_gguf_is_identified_exactly(embedded):
    idn = embedded.identity
    assert idn["weights_sha256"] == hashlib.sha256(_gguf().read_bytes()).hexdigest() and idn["quantisation"] == "q4_1"


def test_roofline_uses_the_weights_actually_served(tmp_path):
    """vLLM serving the embedded preset reads the bf16 copy, not the Q4_1 GGUF: the roofline's weight bytes are the
    safetensors files it loads (the preset's q4_1 figure would overstate the bound about 3x)."""
    from assay.bench.roofline import model_facts

    (tmp_path / "model.safetensors").write_bytes(b"\0" * 262_144)
    (tmp_path / "config.json").write_text("{}")
    ep = Endpoint("http://127.0.0.1:9/v1", "smollm2-135m", engine="vllm",
                  extra={"model_path": str(tmp_path), "identity": {"quantisation": "bf16 (dequantised from q4_1)"}})
    facts = model_facts(ep)
    assert facts["weight_bytes"] == 262_144 and "bf16 (dequantised from q4_1)" in facts["weight_source"]
    preset_only = model_facts(Endpoint("http://127.0.0.1:9/v1", "smollm2-135m", engine="vllm"))
    assert preset_only["weight_bytes"] != 262_144 and "preset" in preset_only["weight_source"]


@pytest.mark.engine
def test_the_probe_is_stable_on_one_server_and_moves_with_the_prompt(embedded, monkeypatch):
    """On a real server the probe digest is there and repeats; asked with another fixed prompt (as if the weights
    answered differently) it moves."""
    first = ident.remote_identity(embedded.base_url, embedded.model, probe=True)
    again = ident.remote_identity(embedded.base_url, embedded.model, probe=True)
    assert first["probe_sha256"] and first["probe_sha256"] == again["probe_sha256"]
    assert first["probe_greedy_sha256"] == again["probe_greedy_sha256"]
    monkeypatch.setattr(ident, "PROBE_PROMPT", "Name three colours of the rainbow:")
    assert ident.remote_identity(embedded.base_url, embedded.model, probe=True)["probe_sha256"] != first["probe_sha256"]



def test_a_look_that_misses_a_route_is_no_evidence_of_a_new_model(stub, monkeypatch):
    """A busy server (llama-cpp-python answers one request at a time) can time out the look at /v1/models: that
    must not read as another model and stop the run."""
    import httpx

    st = stub(reply="hello")
    st.props = {"model_path": "/m.gguf"}
    before = ident.remote_identity(st.base_url, st.model)
    assert before["remote_routes"] == ["/props", "models_entry"]
    real_get = httpx.get

    def slow_models(url, *a, **kw):
        if url.endswith("/models"):
            raise httpx.ReadTimeout("busy")
        return real_get(url, *a, **kw)

    monkeypatch.setattr(httpx, "get", slow_models)
    assert ident.changed(before, st.base_url, st.model) is None
    monkeypatch.setattr(httpx, "get", real_get)
    st.props = {"model_path": "/other.gguf"}  # every route answers and one says another file: a new model
    assert "server facts" in ident.changed(before, st.base_url, st.model)
