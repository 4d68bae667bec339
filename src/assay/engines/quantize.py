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
    ``dst`` (atomically: a temp file renamed). Returns ``dst``; a one-line error naming the known types otherwise."""
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
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise AssayError(f"llama.cpp could not quantise {src} as {key} (return code {rc})")
    os.replace(tmp, dst)
    return dst
