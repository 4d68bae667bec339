"""assay plan: hand-computed arithmetic, GQA-awareness, config.json and GGUF sources, and the CLI."""

from __future__ import annotations

import json
import struct

import pytest

from assay.bench import plan as P
from assay.gguf_meta import arch_facts, read_metadata
from assay.bench.gpus import GPUS, GiB, lookup, match_name
from assay.errors import AssayError

QWEN = "qwen3-4b-instruct-2507"


def test_qwen3_4b_kv_per_token_and_full_context():
    f = P.load_model(QWEN)
    # 36 layers x 8 KV heads x 128 head dim x 2 (K,V) x 2 bytes = 147,456 B/token
    assert f.kv_bytes_per_token("bf16") == 36 * 8 * 128 * 2 * 2 == 147_456
    assert f.kv_bytes_per_token("fp8") == 73_728
    assert f.kv_bytes_per_token("bf16") * 262_144 == 36 * GiB  # exactly 36 GiB of KV cache alone
    assert f.weight_bytes == 4_022_468_096 * 2


def test_gqa_uses_kv_heads_not_attention_heads():
    f = P.ModelFacts("x", n_layers=2, n_kv_heads=2, head_dim=64, context=1000, weight_bytes=0)
    mha = P.ModelFacts("x", n_layers=2, n_kv_heads=16, head_dim=64, context=1000, weight_bytes=0)
    assert mha.kv_bytes_per_token() == 8 * f.kv_bytes_per_token() == 8 * (2 * 2 * 64 * 2 * 2)


def test_fit_hand_computed():
    f = P.load_model(QWEN)
    # RTX 4090: 24 GiB x 0.9 = 21.6 GiB; - 8,044,936,192 B weights - 1.5 GiB headroom
    r = P.fit(f, 24 * GiB, kv_dtype="bf16", context=32_768, utilization=0.9, headroom=int(1.5 * GiB))
    kv_mem = 24 * GiB * 0.9 - 8_044_936_192 - 1.5 * GiB
    assert r["kv_memory"] == pytest.approx(kv_mem)
    assert r["max_context"] == int(kv_mem // 147_456) == 91_805
    assert r["sequences"] == int(kv_mem // (147_456 * 32_768)) == 2
    assert r["fits"] and r["verdict"].startswith("yes")
    full = P.fit(f, 24 * GiB, kv_dtype="bf16", context=262_144)
    assert not full["fits"] and "36.00 GiB" in full["verdict"]
    # concurrency that does not fit
    r3 = P.fit(f, 24 * GiB, kv_dtype="bf16", context=32_768, concurrency=3)
    assert not r3["fits"]


def test_weights_that_do_not_fit():
    f = P.load_model(QWEN)
    r = P.fit(f, 8 * GiB, kv_dtype="bf16", context=4096)
    assert r["max_context"] == 0 and r["sequences"] == 0 and not r["fits"]
    assert "exceed" in r["verdict"]
    # int4 weights (0.5 B/param) fit on the same card
    small = P.load_model(QWEN, "int4")
    assert small.weight_bytes == 4_022_468_096 // 2
    assert P.fit(small, 8 * GiB, kv_dtype="fp8", context=32_768)["fits"]


def test_max_context_capped_at_model_window():
    f = P.load_model(QWEN)
    r = P.fit(f, 141 * GiB, context=262_144)
    assert r["max_context"] == 262_144 and r["max_context_uncapped"] > 262_144
    assert r["sequences"] == 3  # (141*0.9 - 7.49 - 1.5) GiB / 36 GiB = 3.27


def test_seed_rows_verdicts():
    rows = {(r["gpu"], r["context"], r["kv_dtype"], r["weights"]): r for r in P.seed_rows()}
    h100 = rows[(GPUS["h100"].name, 262_144, "bf16", "bf16")]
    assert h100["fits"] and h100["kv_needed"] == 36 * GiB
    a100 = rows[(GPUS["a100-40"].name, 262_144, "bf16", "bf16")]
    assert not a100["fits"] and 150_000 < a100["max_context"] < 262_144
    assert rows[(GPUS["a100-40"].name, 262_144, "fp8", "bf16")]["fits"]  # fp8 KV halves it to 18 GiB
    assert not rows[(GPUS["rtx4060"].name, 8_192, "bf16", "bf16")]["fits"]  # 7.49 GiB of weights on 8 GB
    assert all(r["verdict"].startswith(("yes", "no")) for r in rows.values())


def test_parse_bytes_and_gpu_lookup():
    assert P.parse_bytes("24GiB") == 24 * GiB == P.parse_bytes("24gb") == P.parse_bytes("24 G")
    assert P.parse_bytes("512MiB") == 512 << 20
    with pytest.raises(AssayError):
        P.parse_bytes("lots")
    assert lookup("RTX4090") is GPUS["rtx4090"] and lookup("4090") is GPUS["rtx4090"]
    assert match_name("NVIDIA H100 80GB HBM3") is GPUS["h100"]
    assert match_name("NVIDIA H100 PCIe") is GPUS["h100-pcie"]
    assert match_name("NVIDIA A100-SXM4-40GB") is GPUS["a100-40"]
    assert match_name("NVIDIA H200") is GPUS["h200"]
    with pytest.raises(AssayError):
        P.kv_bytes("int3")


def test_config_json_source(tmp_path):
    cfg = {"num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "hidden_size": 1024,
           "head_dim": 128, "intermediate_size": 3072, "vocab_size": 151936, "max_position_embeddings": 40960,
           "tie_word_embeddings": True, "torch_dtype": "bfloat16"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    f = P.load_model(str(tmp_path))
    assert f.kv_bytes_per_token("bf16") == 28 * 8 * 128 * 2 * 2
    assert f.context == 40960 and f.weight_dtype == "bf16"
    # Qwen3-0.6B's real count is 596M (+ q/k norms); the estimate must be close
    assert 0.55e9 < f.n_params < 0.62e9
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1000)
    assert P.load_model(str(tmp_path / "config.json")).weight_bytes == 1000  # real files beat the estimate


def _write_gguf(path, kv: dict):
    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for k, v in kv.items():
        out += s(k)
        if isinstance(v, str):
            out += struct.pack("<I", 8) + s(v)
        elif isinstance(v, list):  # array of strings (a vocabulary)
            out += struct.pack("<IIQ", 9, 8, len(v)) + b"".join(s(x) for x in v)
        else:
            out += struct.pack("<II", 4, v)
    path.write_bytes(out + b"\0" * 4096)


def test_own_gguf_reader(tmp_path):
    p = tmp_path / "m.gguf"
    _write_gguf(p, {"general.architecture": "llama", "general.name": "tiny", "tokenizer.ggml.tokens": ["a"] * 500,
                    "llama.block_count": 30, "llama.attention.head_count": 9, "llama.attention.head_count_kv": 3,
                    "llama.embedding_length": 576, "llama.context_length": 8192})
    meta = read_metadata(p)
    assert meta["tokenizer.ggml.tokens.len"] == 500  # big arrays skipped, not decoded
    a = arch_facts(meta)
    assert (a["n_layers"], a["n_heads"], a["n_kv_heads"], a["head_dim"], a["context"]) == (30, 9, 3, 64, 8192)
    f = P.load_model(str(p))
    assert f.weight_bytes == p.stat().st_size and f.kv_bytes_per_token("f16") == 30 * 3 * 64 * 2 * 2
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope")
    with pytest.raises(AssayError, match="not a GGUF"):
        read_metadata(bad)


def test_embedded_gguf_metadata_matches_preset():
    from assay.models import PRESETS, embedded_gguf_path

    try:
        path = embedded_gguf_path()
    except AssayError as e:
        pytest.skip(str(e))
    a = arch_facts(read_metadata(path))
    spec = PRESETS["smollm2-135m"]
    assert (a["n_layers"], a["n_kv_heads"], a["head_dim"]) == (spec.n_layers, spec.n_kv_heads, spec.head_dim)


def test_plan_cli(capsys):
    from typer.testing import CliRunner

    from assay.cli import app

    res = CliRunner().invoke(app, ["plan", "--model", QWEN, "--gpu", "rtx4090", "--context", "32768"])
    assert res.exit_code == 0, res.output
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert last["kv_bytes_per_token"] == 147456 and last["fit"]["sequences"] == 2
    res = CliRunner().invoke(app, ["plan", "--model", QWEN])
    assert res.exit_code == 0 and "seed hardware rows" in res.output
    assert len(json.loads(res.stdout.strip().splitlines()[-1])["seed_rows"]) == len(P.SEED_ROWS)
    res = CliRunner().invoke(app, ["plan", "--gpu", "nosuchgpu"])
    assert res.exit_code == 1


def test_gguf_reader_agrees_with_the_gguf_package():
    """The header reader (32 ms on the embedded file) against the reference reader maintained with llama.cpp
    (``gguf.GGUFReader`` maps the whole file: seconds): every scalar and string entry identical."""
    gguf = pytest.importorskip("gguf", reason="the gguf package is in the test extras")
    from assay.models import resolve

    path = resolve("smollm2-135m").gguf_path()
    ours = read_metadata(path)
    ref = gguf.GGUFReader(path)
    compared = 0
    for name, field in ref.fields.items():
        if name.startswith("GGUF."):
            continue
        value = field.contents()
        if isinstance(value, list) and len(value) > 64:
            assert ours[f"{name}.len"] == len(value), name
        elif isinstance(value, float):
            assert ours[name] == pytest.approx(value, rel=1e-6), name
        else:
            assert ours[name] == value, name
        compared += 1
    assert compared >= 30
