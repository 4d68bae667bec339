"""Common accelerators: memory (bytes, as the vendor sells it) and peak memory bandwidth (GB/s, datasheet).

Memory sizes are marketing sizes: "80 GB" H100 is 80 GiB of HBM of which ~79.6 GiB is visible; the planner uses the
nominal figure times the engine's utilisation fraction, which absorbs that difference. Apple M-series entries are
unified memory shared with the OS (Metal's default limit is ≈ 75 % of it, applied through ``usable_fraction``).
"""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1 << 30


@dataclass(frozen=True)
class GPU:
    key: str
    name: str
    memory: int  # bytes
    bandwidth_gbs: float  # datasheet peak, GB/s
    bf16: bool = True  # native bf16 (T4 / V100 are fp16 only)
    usable_fraction: float = 1.0  # share of memory an engine may take (unified memory: OS keeps the rest)


GPUS: dict[str, GPU] = {g.key: g for g in (
    GPU("h200", "NVIDIA H200 141GB", 141 * GiB, 4800),
    GPU("h100-pcie", "NVIDIA H100 80GB (PCIe)", 80 * GiB, 2000),
    GPU("h100", "NVIDIA H100 80GB (SXM)", 80 * GiB, 3350),
    GPU("a100-80", "NVIDIA A100 80GB", 80 * GiB, 2039),
    GPU("a100-40", "NVIDIA A100 40GB", 40 * GiB, 1555),
    GPU("l40s", "NVIDIA L40S 48GB", 48 * GiB, 864),
    GPU("a10g", "NVIDIA A10G 24GB", 24 * GiB, 600),
    GPU("l4", "NVIDIA L4 24GB", 24 * GiB, 300),
    GPU("rtx4090", "NVIDIA RTX 4090 24GB", 24 * GiB, 1008),
    GPU("rtx3090", "NVIDIA RTX 3090 24GB", 24 * GiB, 936),
    GPU("t4", "NVIDIA T4 16GB", 16 * GiB, 320, bf16=False),
    GPU("rtx4060", "NVIDIA RTX 4060 8GB", 8 * GiB, 272),
    GPU("m-16", "Apple M-series 16GB unified", 16 * GiB, 120, usable_fraction=0.75),
    GPU("m-32", "Apple M-series Pro 32GB unified", 32 * GiB, 200, usable_fraction=0.75),
    GPU("m-64", "Apple M-series Max 64GB unified", 64 * GiB, 400, usable_fraction=0.75),
    GPU("m-128", "Apple M-series Max 128GB unified", 128 * GiB, 546, usable_fraction=0.75),
)}

ALIASES = {"h100-sxm": "h100", "a100": "a100-80", "4090": "rtx4090", "3090": "rtx3090", "4060": "rtx4060",
           "l40": "l40s", "a10": "a10g"}


def lookup(key: str) -> GPU | None:
    k = key.strip().lower().replace("_", "-").replace(" ", "")
    k = ALIASES.get(k, k)
    return GPUS.get(k)


def match_name(nvml_name: str) -> GPU | None:
    """Best table entry for an NVML device name such as "NVIDIA H100 80GB HBM3"."""
    n = nvml_name.lower().replace(" ", "")
    for g in GPUS.values():
        short = g.key.split("-")[0]
        if short in n and (g.key == short or g.key.split("-")[1] in n):
            return g
    for g in GPUS.values():
        if g.key.split("-")[0] in n:
            return g
    return None
