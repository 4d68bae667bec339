"""A tiny GGUF metadata reader (header key/values only, no tensors), enough for architecture facts.

Kept instead of the ``gguf`` package (maintained with llama.cpp) on purpose: ``gguf.GGUFReader`` maps and parses the
whole file, tensors and 49k-entry vocabularies included (6 s on the embedded file on a busy 2-core machine), where
this reads the header in ~30 ms; tests/test_plan.py checks every entry against ``gguf``. And loading the model through llama_cpp just to read a few
integers would cost its weights' worth of memory; the format's header is simple (see ggml's docs/gguf.md).

Example:
    meta = read_metadata("SmolLM2-135M-Instruct.Q4_1.gguf")
    arch_facts(meta)  # {"n_layers": 30, "n_heads": 9, "n_kv_heads": 3, "head_dim": 64, ...}
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from assay.errors import ModelNotFound

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_metadata(path: str | Path, *, skip_arrays_over: int = 64, digest_arrays: bool = False) -> dict:
    """Key → value for every metadata entry; arrays longer than ``skip_arrays_over`` become their length (an int
    under ``key + ".len"``) so the tokenizer's 50k-entry vocabularies are skipped, not decoded. ``digest_arrays``: also
    the sha256 of each skipped array's raw bytes under ``key + ".sha256"`` (the tokenizer's identity)."""
    p = Path(path)
    try:
        f = open(p, "rb")
    except OSError as e:
        raise ModelNotFound(f"cannot read GGUF {p}: {e.strerror}") from None
    with f:
        if f.read(4) != b"GGUF":
            raise ModelNotFound(f"{p} is not a GGUF file (bad magic)")
        (version,) = struct.unpack("<I", f.read(4))
        if version < 2:
            raise ModelNotFound(f"{p}: GGUF version {version} is too old (need ≥ 2)")
        _n_tensors, n_kv = struct.unpack("<QQ", f.read(16))

        def rstr() -> str:
            (n,) = struct.unpack("<Q", f.read(8))
            return f.read(n).decode("utf-8", "replace")

        def rval(t: int):
            if t in _SCALARS:
                fmt = _SCALARS[t]
                return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
            if t == 8:
                return rstr()
            raise ValueError(t)

        out: dict = {"gguf.version": version}
        for _ in range(n_kv):
            key = rstr()
            (t,) = struct.unpack("<I", f.read(4))
            if t == 9:
                (et,) = struct.unpack("<I", f.read(4))
                (n,) = struct.unpack("<Q", f.read(8))
                if n > skip_arrays_over:
                    h = hashlib.sha256() if digest_arrays else None
                    if et in _SCALARS:
                        size = n * struct.calcsize(_SCALARS[et])
                        if h is not None:
                            h.update(f.read(size))
                        else:
                            f.seek(size, 1)
                    elif et == 8:
                        for _ in range(n):
                            raw = f.read(8)
                            (m,) = struct.unpack("<Q", raw)
                            if h is not None:
                                h.update(raw + f.read(m))
                            else:
                                f.seek(m, 1)
                    else:
                        raise ModelNotFound(f"{p}: nested GGUF arrays are not supported in key {key}")
                    out[key + ".len"] = n
                    if h is not None:
                        out[key + ".sha256"] = h.hexdigest()
                else:
                    out[key] = [rval(et) for _ in range(n)]
            else:
                out[key] = rval(t)
        return out


def arch_facts(meta: dict) -> dict:
    """Layers, heads, KV heads, head dim, hidden size, context from GGUF keys (``<arch>.block_count`` ...)."""
    arch = meta.get("general.architecture", "llama")

    def g(k):
        v = meta.get(f"{arch}.{k}")
        if isinstance(v, list):  # per-layer head counts in some architectures: take the max
            v = max(v) if v else None
        return v

    n_heads = g("attention.head_count")
    n_kv = g("attention.head_count_kv") or n_heads
    hidden = g("embedding_length")
    head_dim = g("attention.key_length") or (hidden // n_heads if hidden and n_heads else None)
    return {"architecture": arch, "n_layers": g("block_count"), "n_heads": n_heads, "n_kv_heads": n_kv,
            "head_dim": head_dim, "hidden_size": hidden, "context": g("context_length"),
            "name": meta.get("general.name"), "file_type": meta.get("general.file_type")}
