"""``assay plan``: what fits on which hardware. Pure arithmetic, no model loaded, no GPU needed.

- Weights: the GGUF file size, the safetensors files beside a config.json, or parameters × bytes per parameter.
- KV cache per token = layers × KV heads × head dim × 2 (K and V) × bytes per element. GQA-aware: it is the number
  of *KV* heads that counts (Qwen3-4B: 36 × 8 × 128 × 2 × 2 B = 147,456 B/token in bf16).
- Usable memory = memory × utilisation fraction (vLLM's --gpu-memory-utilization, default 0.9) × the platform's share
  (unified memory: ~75 %), minus weights, minus a headroom for activations, CUDA context and CUDA graphs (default
  1.5 GiB, an estimate: vLLM profiles the real figure at start-up; override with --headroom).
- Largest context = KV memory ÷ KV bytes per token (capped at the model's window); sequences that fit at a context
  = KV memory ÷ (KV bytes per token × context) — the figure vLLM logs as "Maximum concurrency".

Example:
    facts = load_model("qwen3-4b-instruct-2507")
    fit(facts, memory=24 * GiB, kv_dtype="bf16", context=32768)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from assay.bench.gpus import GPUS, GiB, lookup
from assay.errors import AssayError, ModelNotFound

KV_BYTES = {"bf16": 2.0, "fp16": 2.0, "f16": 2.0, "auto": 2.0, "fp8": 1.0, "fp8_e4m3": 1.0, "fp8_e5m2": 1.0,
            "fp32": 4.0, "f32": 4.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "float16": 2.0, "bfloat16": 2.0, "float32": 4.0,
                "fp8": 1.0, "int8": 1.0, "int4": 0.5, "awq": 0.5, "gptq": 0.5, "q8_0": 34 / 32, "q4_1": 20 / 32,
                "q4_0": 18 / 32, "q4_k_m": 4.85 / 8}
DEFAULT_UTILIZATION = 0.9
DEFAULT_HEADROOM = int(1.5 * GiB)


@dataclass
class ModelFacts:
    name: str
    n_layers: int | None
    n_kv_heads: int | None
    head_dim: int | None
    context: int | None
    n_params: int | None = None
    weight_bytes: int | None = None
    weight_dtype: str | None = None
    weight_source: str = ""
    arch_source: str = ""

    def kv_bytes_per_token(self, kv_dtype: str = "bf16") -> float:
        if None in (self.n_layers, self.n_kv_heads, self.head_dim):
            raise AssayError(f"{self.name}: layers / KV heads / head dim unknown ({self.arch_source or 'no source'}); "
                             "pass a config.json or .gguf with the architecture")
        return self.n_layers * self.n_kv_heads * self.head_dim * 2 * kv_bytes(kv_dtype)

    def to_dict(self) -> dict:
        return asdict(self)


def kv_bytes(dtype: str) -> float:
    d = dtype.lower()
    if d not in KV_BYTES:
        raise AssayError(f"unknown KV cache dtype {dtype!r}: use one of {', '.join(KV_BYTES)}")
    return KV_BYTES[d]


def parse_bytes(text: str) -> int:
    """"24GiB", "24GB" (taken as GiB, as GPUs are sold), "80g", "512MiB", "1.5e10" → bytes."""
    t = text.strip().lower().replace(" ", "")
    for suffix, mult in (("gib", GiB), ("gb", GiB), ("g", GiB), ("mib", 1 << 20), ("mb", 1 << 20), ("m", 1 << 20),
                         ("tib", 1 << 40), ("tb", 1 << 40)):
        if t.endswith(suffix):
            try:
                return int(float(t[: -len(suffix)]) * mult)
            except ValueError:
                break
    try:
        return int(float(t))
    except ValueError:
        raise AssayError(f"bad memory size {text!r}: use e.g. 24GiB, 80GB or 512MiB") from None


def load_model(model: str | None, weight_dtype: str | None = None) -> ModelFacts:
    """A preset name, a HF config.json (or a folder with one), or a .gguf file."""
    from assay.models import PRESETS, resolve

    model = model or "qwen3-4b-instruct-2507"
    p = Path(model).expanduser()
    if model.lower().endswith(".gguf"):
        return _from_gguf(p)
    if p.name == "config.json" or (p.is_dir() and (p / "config.json").is_file()):
        return _from_config(p if p.name == "config.json" else p / "config.json", weight_dtype)
    spec = PRESETS.get(model) or resolve(model)
    if spec.gguf == "embedded" and weight_dtype is None:
        try:
            facts = _from_gguf(spec.gguf_path())
            facts.name = spec.name
            return facts
        except ModelNotFound:
            pass  # package not installed: fall back to the preset's parameter count
    wd = (weight_dtype or spec.weight_dtype or "bf16").lower()
    if spec.n_params is None:
        raise ModelNotFound(f"no parameter count for {model!r}: pass its config.json or .gguf to assay plan")
    if wd not in WEIGHT_BYTES:
        raise AssayError(f"unknown weight dtype {wd!r}: use one of {', '.join(WEIGHT_BYTES)}")
    return ModelFacts(name=spec.name, n_layers=spec.n_layers, n_kv_heads=spec.n_kv_heads, head_dim=spec.head_dim,
                      context=spec.context, n_params=spec.n_params,
                      weight_bytes=int(spec.n_params * WEIGHT_BYTES[wd]), weight_dtype=wd,
                      weight_source=f"{spec.n_params:,} params × {WEIGHT_BYTES[wd]:g} B ({wd})",
                      arch_source=f"preset {spec.name}")


def _from_gguf(p: Path) -> ModelFacts:
    from assay.gguf_meta import arch_facts, read_metadata

    if not p.is_file():
        raise ModelNotFound(f"GGUF not found: {p}")
    a = arch_facts(read_metadata(p))
    size = p.stat().st_size
    return ModelFacts(name=a.get("name") or p.stem, n_layers=a["n_layers"], n_kv_heads=a["n_kv_heads"],
                      head_dim=a["head_dim"], context=a["context"], weight_bytes=size, weight_dtype="gguf",
                      weight_source=f"GGUF file size of {p.name}", arch_source=f"GGUF metadata ({a['architecture']})")


def _from_config(path: Path, weight_dtype: str | None) -> ModelFacts:
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelNotFound(f"cannot read {path}: {e}") from None
    cfg = cfg.get("text_config", cfg)  # multimodal configs nest the language model
    layers = cfg.get("num_hidden_layers")
    heads = cfg.get("num_attention_heads")
    kv = cfg.get("num_key_value_heads") or heads
    hidden = cfg.get("hidden_size")
    head_dim = cfg.get("head_dim") or (hidden // heads if hidden and heads else None)
    ctx = cfg.get("max_position_embeddings")
    dtype = (weight_dtype or cfg.get("torch_dtype") or cfg.get("dtype") or "bf16").lower()
    dtype = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(dtype, dtype)
    files = sorted(path.parent.glob("*.safetensors"))
    n_params = _estimate_params(cfg)
    if files and weight_dtype is None:
        wb = sum(f.stat().st_size for f in files)
        src = f"{len(files)} safetensors file(s) beside config.json"
    elif n_params:
        if dtype not in WEIGHT_BYTES:
            raise AssayError(f"unknown weight dtype {dtype!r} in {path}: pass --weight-dtype")
        wb = int(n_params * WEIGHT_BYTES[dtype])
        src = f"≈{n_params:,} params (estimated from config.json) × {WEIGHT_BYTES[dtype]:g} B ({dtype})"
    else:
        wb, src = None, "unknown"
    return ModelFacts(name=cfg.get("_name_or_path") or path.parent.name, n_layers=layers, n_kv_heads=kv,
                      head_dim=head_dim, context=ctx, n_params=n_params, weight_bytes=wb, weight_dtype=dtype,
                      weight_source=src, arch_source=f"config.json ({path})")


def _estimate_params(cfg: dict) -> int | None:
    """Dense decoder estimate: embeddings (+ untied LM head) + per layer attention and gated MLP."""
    try:
        h, v, L = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
        heads = cfg["num_attention_heads"]
        kv = cfg.get("num_key_value_heads") or heads
        hd = cfg.get("head_dim") or h // heads
        inter = cfg["intermediate_size"]
    except KeyError:
        return None
    emb = v * h * (1 if cfg.get("tie_word_embeddings", False) else 2)
    attn = h * heads * hd + 2 * h * kv * hd + heads * hd * h
    mlp = 3 * h * inter
    return int(emb + L * (attn + mlp + 2 * h) + h)


def fit(facts: ModelFacts, memory: int, *, kv_dtype: str = "bf16", context: int | None = None,
        concurrency: int = 1, utilization: float = DEFAULT_UTILIZATION, headroom: int = DEFAULT_HEADROOM,
        usable_fraction: float = 1.0) -> dict:
    """The arithmetic for one model on one memory size. All byte figures are exact integers/floats (no rounding)."""
    if facts.weight_bytes is None:
        raise AssayError(f"{facts.name}: weight bytes unknown ({facts.weight_source})")
    if not 0 < utilization <= 1:
        raise AssayError("--utilization must be in (0, 1]")
    per_tok = facts.kv_bytes_per_token(kv_dtype)
    ctx = context or facts.context
    usable = memory * usable_fraction * utilization
    kv_mem = usable - facts.weight_bytes - headroom
    out = {"memory": memory, "usable": usable, "utilization": utilization, "usable_fraction": usable_fraction,
           "weight_bytes": facts.weight_bytes, "headroom": headroom, "kv_dtype": kv_dtype,
           "kv_bytes_per_token": per_tok, "kv_memory": max(0.0, kv_mem), "context": ctx, "concurrency": concurrency,
           "kv_needed": per_tok * ctx * concurrency if ctx else None}
    if kv_mem <= 0:
        out.update(max_context=0, sequences=0, fits=False, short="no: weights + headroom exceed memory",
                   verdict=f"no: weights {gib(facts.weight_bytes)} + headroom {gib(headroom)} exceed the usable "
                           f"{gib(usable)}")
        return out
    max_ctx = int(kv_mem // per_tok)
    out["max_context"] = min(max_ctx, facts.context) if facts.context else max_ctx
    out["max_context_uncapped"] = max_ctx
    if ctx:
        seqs = int(kv_mem // (per_tok * ctx))
        out["sequences"] = seqs
        out["fits"] = seqs >= concurrency
        need = per_tok * ctx * concurrency
        out["short"] = (f"yes ({seqs} × {ctx:,})" if out["fits"]
                        else f"no: KV {gib(need)} > {gib(kv_mem)} free")
        if out["fits"]:
            out["verdict"] = (f"yes: {concurrency} × {ctx:,} tokens need {gib(need)} of KV cache, "
                              f"{gib(kv_mem)} free; {seqs} sequence(s) of {ctx:,} fit")
        else:
            out["verdict"] = (f"no: {concurrency} × {ctx:,} tokens need {gib(need)} of KV cache, only "
                              f"{gib(kv_mem)} free; largest context {max_ctx:,}")
    return out


def gib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / GiB:.2f} GiB"


# The seeds' hardware-fit rows (model, weight dtype, KV dtype, context, hardware) and our verdict for each.
SEED_ROWS = (
    ("qwen3-4b-instruct-2507", "bf16", "bf16", 262_144, "h100"),
    ("qwen3-4b-instruct-2507", "bf16", "bf16", 262_144, "h200"),
    ("qwen3-4b-instruct-2507", "bf16", "bf16", 262_144, "a100-40"),
    ("qwen3-4b-instruct-2507", "bf16", "fp8", 262_144, "a100-40"),
    ("qwen3-4b-instruct-2507", "bf16", "bf16", 131_072, "rtx4090"),
    ("qwen3-4b-instruct-2507", "bf16", "fp8", 131_072, "rtx4090"),
    ("qwen3-4b-instruct-2507", "bf16", "bf16", 32_768, "rtx4090"),
    ("qwen3-4b-instruct-2507", "bf16", "bf16", 32_768, "l4"),
    ("qwen3-4b-instruct-2507", "fp16", "fp16", 32_768, "t4"),
    ("qwen3-4b-instruct-2507", "bf16", "bf16", 8_192, "rtx4060"),
    ("qwen3-4b-instruct-2507", "int4", "fp8", 32_768, "rtx4060"),
    ("qwen3-4b-instruct-2507", "bf16", "bf16", 32_768, "m-16"),
    ("smollm2-135m", None, "f16", 8_192, "rtx4060"),
)


def seed_rows(*, utilization: float = DEFAULT_UTILIZATION, headroom: int = DEFAULT_HEADROOM) -> list[dict]:
    rows = []
    for model, wd, kvd, ctx, hw in SEED_ROWS:
        g = GPUS[hw]
        facts = load_model(model, wd)
        r = fit(facts, g.memory, kv_dtype=kvd, context=ctx, utilization=utilization, headroom=headroom,
                usable_fraction=g.usable_fraction)
        note = "" if g.bf16 or kvd not in ("bf16",) else " (this GPU has no native bf16: use fp16)"
        rows.append({"model": model, "weights": facts.weight_dtype, "kv_dtype": kvd, "context": ctx, "gpu": g.name,
                     "weight_bytes": facts.weight_bytes, "kv_needed": r["kv_needed"], "max_context": r["max_context"],
                     "sequences": r.get("sequences", 0), "fits": r.get("fits", False),
                     "verdict": r["verdict"] + note, "short": r.get("short", r["verdict"]) + note})
    return rows


def gpu_table(facts: ModelFacts, *, kv_dtype: str, context: int | None, concurrency: int = 1,
              utilization: float = DEFAULT_UTILIZATION, headroom: int = DEFAULT_HEADROOM) -> list[dict]:
    rows = []
    for g in GPUS.values():
        r = fit(facts, g.memory, kv_dtype=kv_dtype, context=context, concurrency=concurrency,
                utilization=utilization, headroom=headroom, usable_fraction=g.usable_fraction)
        rows.append({"gpu": g.name, "key": g.key, **r})
    return rows


def resolve_memory(gpu: str | None, gpu_mem: str | None) -> tuple[int, str, float]:
    """(bytes, label, usable_fraction) from --gpu NAME or --gpu-mem SIZE."""
    if gpu_mem:
        return parse_bytes(gpu_mem), gpu_mem, 1.0
    if gpu:
        g = lookup(gpu)
        if g is None:
            raise AssayError(f"unknown GPU {gpu!r}: use one of {', '.join(GPUS)} or --gpu-mem 24GiB")
        return g.memory, g.name, g.usable_fraction
    raise AssayError("pass --gpu NAME or --gpu-mem SIZE")


def sequences_at(facts: ModelFacts, memory: int, context: int, kv_dtype: str = "bf16", **kw) -> int:
    return fit(facts, memory, kv_dtype=kv_dtype, context=context, **kw).get("sequences", 0)


__all__ = ["ModelFacts", "load_model", "fit", "seed_rows", "gpu_table", "parse_bytes", "kv_bytes", "resolve_memory",
           "SEED_ROWS"]


def plan_report(model: str | None, *, gpu: str | None = None, gpu_mem: str | None = None, kv_dtype: str = "bf16",
                weight_dtype: str | None = None, context: int | None = None, concurrency: int = 1,
                utilization: float = 0.9, headroom: str | None = None, seeds: bool = False) -> dict:
    """``assay plan`` as data: the model's facts (``facts``, a ModelFacts), KV bytes per token, the context planned,
    and either ``fit`` (one GPU or memory size: its verdict) or ``gpus`` (the table of known GPUs); ``seed_rows`` (the
    seeds' hardware-fit rows with our verdict) when asked or when no GPU was named. The JSON line is this without
    ``facts`` and ``gpus``."""
    hr = parse_bytes(headroom) if headroom else DEFAULT_HEADROOM
    facts = load_model(model, weight_dtype)
    per_tok = facts.kv_bytes_per_token(kv_dtype)
    ctx = context or facts.context
    out: dict = {"kind": "plan", "facts": facts, "model": facts.to_dict(), "kv_dtype": kv_dtype,
                 "kv_bytes_per_token": per_tok, "context": ctx, "utilization": utilization, "headroom": hr}
    if gpu or gpu_mem:
        mem, label, frac = resolve_memory(gpu, gpu_mem)
        r = fit(facts, mem, kv_dtype=kv_dtype, context=ctx, concurrency=concurrency, utilization=utilization,
                headroom=hr, usable_fraction=frac)
        out["fit"] = {"gpu": label, **r}
    else:
        out["gpus"] = gpu_table(facts, kv_dtype=kv_dtype, context=ctx, concurrency=concurrency,
                                utilization=utilization, headroom=hr)
    if seeds or not (gpu or gpu_mem):
        out["seed_rows"] = seed_rows(utilization=utilization, headroom=hr)
    return out
