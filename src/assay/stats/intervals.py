"""Single-run statistics: Wilson intervals for proportions, bootstrap intervals for continuous scores.

All functions are pure and deterministic (bootstrap takes a seed). Paired comparisons live in
assay.stats.paired; its paired bootstrap resamples through ``resampled_means`` here.

Example:
    >>> wilson(19, 20)
    (0.7638..., 0.9911...)
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials. n == 0 gives (0, 1): nothing is known."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends: no 5e-17 float residue at 0/n and n/n
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def resampled_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of ``x``: the one bootstrap core for means, single-run and
    paired. Drawn in chunks so 10,000 resamples of a 10,000-item run do not allocate 800 MB at once; the chunks draw
    the same stream as one call would, so the numbers do not depend on the chunk size."""
    means = []
    chunk = max(1, 4_000_000 // x.size)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        means.append(x[rng.integers(0, x.size, size=(m, x.size))].mean(axis=1))
    return np.concatenate(means)


def bootstrap_ci(values: Sequence[float], stat: Callable[[np.ndarray], float] = np.mean, *, n_boot: int = 2000,
                 seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over ``values`` (resampling items with replacement)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    if x.size == 1:
        v = float(stat(x))
        return (v, v)
    rng = np.random.default_rng(seed)
    if stat is np.mean:
        boots = resampled_means(x, n_boot, rng)
    else:
        boots = np.array([stat(x[i]) for i in rng.integers(0, x.size, size=(n_boot, x.size))])
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def bootstrap_corpus_ci(items: Sequence, corpus_stat: Callable[[list], float], *, n_boot: int = 1000, seed: int = 0,
                        alpha: float = 0.05) -> tuple[float, float]:
    """Bootstrap for corpus-level metrics (BLEU, chrF): resample items, recompute the corpus statistic each time."""
    items = list(items)
    if len(items) < 2:
        v = corpus_stat(items) if items else float("nan")
        return (v, v)
    rng = np.random.default_rng(seed)
    boots = [corpus_stat([items[i] for i in rng.integers(0, len(items), size=len(items))]) for _ in range(n_boot)]
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def proportion_summary(k: int, n: int) -> dict:
    lo, hi = wilson(k, n)
    return {"value": (k / n) if n else None, "low": lo, "high": hi, "n": n, "k": k, "interval": "wilson"}


def mean_summary(values: Sequence[float], seed: int = 0) -> dict:
    vals = [float(v) for v in values]
    lo, hi = bootstrap_ci(vals, seed=seed)
    return {"value": (sum(vals) / len(vals)) if vals else None, "low": lo, "high": hi, "n": len(vals),
            "interval": "bootstrap"}
