"""Turn a GGUF (the embedded SmolLM2-135M) into a Hugging Face checkpoint that vLLM can serve, offline, once.

vLLM 0.32 cannot load a GGUF (it reads the file as a JSON config), so ``--engine vllm --model smollm2-135m`` serves a
dequantized bf16 copy made by transformers (``GgufConfig(dequantize=True)``; needs ``gguf`` and ``accelerate``). The
copy is cached under ``assay_home()/hf/<name>-<sha256[:12]>/`` and made atomically (a half-written folder is never
served). The conversion runs in the vLLM interpreter (which has torch and transformers), not in assay's own process.

Example:
    python -m assay.engines.hfconvert SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smollm2-hf     # what cached_checkpoint runs
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DONE = "assay-converted.txt"  # written last: its presence means the folder is complete


def file_sha256(path: Path) -> str:
    """The GGUF's sha256, through the model-identity cache (hashed once per path, size and mtime, not at every start)."""
    from assay.engines.identity import weights_sha256

    return weights_sha256(path)


def cache_dir(gguf: Path, name: str, home: Path) -> Path:
    return home / "hf" / f"{name}-{file_sha256(gguf)[:12]}"


def convert(gguf: Path, out: Path) -> None:
    """GGUF -> bf16 safetensors + tokenizer (with the GGUF's chat template) in ``out``. Runs where torch is."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf.parent), gguf.name
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16,
                                                 quantization_config=GgufConfig(gguf_file=name, dequantize=True))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # a dequantized checkpoint must not claim to be quantized, or vLLM looks for a GGUF quant method
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    if not getattr(tok, "chat_template", None):
        raise SystemExit(f"{gguf} carries no chat template: vLLM's /v1/chat/completions would refuse every request")


def cached_checkpoint(gguf: Path, name: str, python: str, home: Path, env: dict | None = None,
                      log=lambda m: print(m, file=sys.stderr)) -> Path:
    """The cached HF folder for ``gguf``, converting it first (with ``python``, the vLLM interpreter) if needed."""
    from assay.errors import EngineStartError

    out = cache_dir(gguf, name, home)
    if (out / DONE).is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"converting {gguf.name} to a Hugging Face checkpoint for vLLM (once, ~30 s) -> {out}")
    t0 = time.monotonic()
    proc = subprocess.run([python, "-m", "assay.engines.hfconvert", str(gguf), str(tmp)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise EngineStartError(f"converting {gguf.name} for vLLM failed: {tail}; fix: install the converter's needs "
                               f"in the vLLM environment ({python} -m pip install gguf==0.19.0 accelerate==1.16.0)")
    (tmp / DONE).write_text(f"{gguf}\nsha256 {file_sha256(gguf)}\nconverted in {time.monotonic() - t0:.1f}s\n")
    try:
        tmp.rename(out)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"converted in {time.monotonic() - t0:.0f}s")
    return out


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
