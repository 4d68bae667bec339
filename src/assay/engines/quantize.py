"""Re-quantise a GGUF with llama.cpp's own quantiser (``llama_model_quantize`` of the installed llama-cpp-python):
the second local model of a review, or a deliberately damaged variant for a gate (the same weights, fewer bits).

Re-quantising an already quantised file needs llama.cpp's ``allow_requantize``: the result is the original's
dequantised weights quantised again, so it is never better than the original — exactly what a "lower quantisation"
comparison wants.

Example:
    requantize("SmolLM2-135M-Instruct.Q4_1.gguf", "/tmp/smollm2-q2_k.gguf", "Q2_K")
"""

from __future__ import annotations

import os
from pathlib import Path

from assay.errors import AssayError


def _ftypes() -> dict[str, int]:
    import llama_cpp

    return {n.removeprefix("LLAMA_FTYPE_MOSTLY_"): getattr(llama_cpp, n) for n in dir(llama_cpp)
            if n.startswith("LLAMA_FTYPE_MOSTLY_")}


def requantize(src: str | Path, dst: str | Path, ftype: str = "Q4_0", *, threads: int | None = None) -> Path:
    """Write ``src`` quantised as ``ftype`` (a llama.cpp type name: Q4_0, Q4_1, Q5_0, Q8_0, Q2_K, Q3_K_S, ...) to
    ``dst`` (atomically: a temp file renamed; llama.cpp's per-tensor log in ``dst``.log). Returns ``dst``; a one-line
    error naming the known types otherwise. On a model whose rows are not a multiple of 256 (SmolLM2-135M: 576) the
    k-quants fall back to Q4_0 for most tensors, as llama.cpp's log says."""
    import llama_cpp

    types = _ftypes()
    key = ftype.upper().removeprefix("LLAMA_FTYPE_MOSTLY_")
    if key not in types:
        raise AssayError(f"unknown quantisation {ftype!r}: use one of {', '.join(sorted(types))}")
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise AssayError(f"no GGUF at {src}: pass an existing .gguf file")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".part")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = types[key]
    params.allow_requantize = True
    params.nthread = threads or (os.cpu_count() or 1)
    log = dst.with_name(dst.name + ".log")
    with open(log, "wb") as sink:  # llama.cpp prints every tensor on fd 2: keep it in a log beside the file
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise AssayError(f"llama.cpp could not quantise {src} as {key} (return code {rc}; see {log})")
    os.replace(tmp, dst)
    return dst
