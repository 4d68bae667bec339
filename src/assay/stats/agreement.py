"""Agreement of two raters (judge vs judge, judge vs human): Cohen's kappa with a percentile bootstrap interval.
Pure and seeded; checked against hand-computed small cases in tests/test_judge.py.

Example:
    >>> round(cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]).value, 3)
    0.5
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Hashable, Sequence

import numpy as np


# ---- Cohen's kappa ---------------------------------------------------------------------------------------------------
@dataclass
class Kappa:
    value: float | None  # None when undefined (no items, or both raters always gave one and the same label)
    low: float | None
    high: float | None
    n: int
    observed: float | None  # raw agreement p_o
    expected: float | None  # chance agreement p_e
    interval: str = "bootstrap"
    labels: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _kappa(a: np.ndarray, b: np.ndarray, k: int) -> tuple[float, float, float]:
    n = a.size
    table = np.zeros((k, k))
    np.add.at(table, (a, b), 1)
    po = float(np.trace(table)) / n
    pe = float((table.sum(1) @ table.sum(0))) / (n * n)
    kappa = (po - pe) / (1 - pe) if pe < 1 else float("nan")
    return kappa, po, pe


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable], *, n_boot: int = 2000, seed: int = 0,
                alpha: float = 0.05) -> Kappa:
    """Agreement of two raters on the same items beyond chance, (p_o - p_e) / (1 - p_e), with a percentile bootstrap
    interval over items (resamples where kappa is undefined are left out)."""
    if len(a) != len(b):
        raise ValueError(f"kappa needs paired labels, got {len(a)} and {len(b)}")
    labels = sorted(set(a) | set(b), key=str)
    if not labels:
        return Kappa(None, None, None, 0, None, None, labels=[])
    idx = {v: i for i, v in enumerate(labels)}
    x = np.array([idx[v] for v in a])
    y = np.array([idx[v] for v in b])
    kappa, po, pe = _kappa(x, y, len(labels))
    value = None if math.isnan(kappa) else kappa
    lo = hi = value
    if value is not None and x.size > 1:
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(n_boot):
            i = rng.integers(0, x.size, size=x.size)
            kb = _kappa(x[i], y[i], len(labels))[0]
            if not math.isnan(kb):
                boots.append(kb)
        if boots:
            lo, hi = (float(q) for q in np.quantile(boots, [alpha / 2, 1 - alpha / 2]))
    return Kappa(value, lo, hi, int(x.size), po, pe, labels=labels)
