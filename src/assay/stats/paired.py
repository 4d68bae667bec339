"""Paired comparison of two runs on the same samples: is A better than B, or is the difference noise?

Everything here is pure and deterministic (bootstrap and permutation take a seed). Inputs are two equal-length
sequences of per-sample scores, already paired by sample id (``pair_scores`` does the pairing).

- ``mcnemar_exact(b, c)``   two-sided exact McNemar p: a binomial(b + c, 1/2) test on the discordant pairs only
                            (b = A right / B wrong, c = A wrong / B right). Concordant pairs carry no information.
- ``paired_bootstrap(a, b)`` mean difference A − B with a percentile bootstrap interval that resamples *pairs*, so the
                            correlation between the two models on the same question is kept.
- ``sign_flip_p(a, b)``     paired permutation p for continuous scores (randomly swap A/B within each pair).
- ``min_detectable_diff``   the smallest difference this n could call significant (see its docstring).
- ``compare_scores``        all of the above plus win/tie/loss and the verdict, as one ``PairedResult``.
- ``holm(ps)``              Holm's step-down adjustment of several p-values (family-wise error at alpha).

Example:
    >>> mcnemar_exact(6, 0)          # 6 discordant pairs, all for A
    0.03125
    >>> r = compare_scores([1, 1, 0, 1], [1, 0, 0, 1], binary=True)
    >>> r.verdict
    'tied (p = 1)'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Sequence

import numpy as np

from assay.stats.intervals import resampled_means

ALPHA = 0.05
POWER = 0.80


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs: 2 * P(X <= min(b, c)), X ~ Bin(b + c, 1/2),
    capped at 1. No discordant pairs gives 1.0 (no evidence either way)."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    # Exact integer arithmetic: the tail sum over 2**n, so large n does not underflow term by term.
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def discordant(a: Sequence[float], b: Sequence[float]) -> tuple[int, int]:
    """(b, c) for binary scores: pairs where only A is right, and pairs where only B is right."""
    only_a = sum(1 for x, y in zip(a, b) if x >= 0.5 > y)
    only_b = sum(1 for x, y in zip(a, b) if y >= 0.5 > x)
    return only_a, only_b


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_boot: int = 10000, seed: int = 0,
                     alpha: float = ALPHA) -> tuple[float, float, float]:
    """(mean(A − B), low, high): percentile bootstrap over pairs. The same seed gives the same interval."""
    x = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    d = float(x.mean())
    if x.size == 1 or np.all(x == x[0]):
        return (d, d, d)
    boots = resampled_means(x, n_boot, np.random.default_rng(seed))
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return (d, float(lo), float(hi))


def sign_flip_p(a: Sequence[float], b: Sequence[float], *, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided paired permutation p for mean(A − B): under H0 each pair's sign is a coin flip. Exact enumeration
    up to 16 non-zero differences, Monte Carlo (seeded, with the +1 correction) above."""
    x = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    x = x[x != 0]
    if x.size == 0:
        return 1.0
    obs = abs(x.sum())
    tol = 1e-12 * max(1.0, obs)
    if x.size <= 16:
        signs = ((np.arange(2**x.size)[:, None] >> np.arange(x.size)) & 1) * 2 - 1
        sums = np.abs(signs @ x)
        return float(np.mean(sums >= obs - tol))
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, x.size))
    sums = np.abs(signs @ x)
    return float((np.sum(sums >= obs - tol) + 1) / (n_perm + 1))


def min_discordant_for_significance(alpha: float = ALPHA) -> int:
    """The fewest discordant pairs (all one way) for which exact McNemar can reach p < alpha: 6 at alpha = 0.05."""
    k = 1
    while mcnemar_exact(k, 0) >= alpha:
        k += 1
    return k


def min_detectable_diff(n: int, sd_diff: float | None = None, *, binary: bool = True, alpha: float = ALPHA,
                        power: float = POWER) -> float | None:
    """The smallest A − B difference that n paired samples could show as significant.

    Two bounds, and the larger one is returned:
    - power bound: (z_{1-alpha/2} + z_power) * sd_diff / sqrt(n), the difference a paired test detects with the given
      power when the per-sample differences have spread ``sd_diff`` (the observed one);
    - for binary scores, the exact-test floor: McNemar needs at least 6 discordant pairs all in one direction, so no
      difference below 6 / n can ever reach p < 0.05. On 20 questions that is 30 points: "95 % vs 88 %" is noise.
    None when n == 0.
    """
    if n <= 0:
        return None
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    bound = z * (sd_diff or 0.0) / math.sqrt(n)
    if binary:
        bound = max(bound, min(1.0, min_discordant_for_significance(alpha) / n))
    return float(bound)


def verdict(diff: float, p: float, alpha: float = ALPHA, names: tuple[str, str] = ("A", "B")) -> str:
    """'A better' / 'B better' when p < alpha, else 'tied (p = …)'. The sign of diff picks the winner."""
    if p is None or math.isnan(p) or math.isnan(diff):
        return "no shared samples"
    if p < alpha and diff != 0:
        return f"{names[0] if diff > 0 else names[1]} better"
    return f"tied (p = {format_p(p)})"


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order: sort ascending, multiply the i-th smallest (0-based) by
    (m − i), carry the running maximum, cap at 1. A comparison is significant at family-wise level alpha when its
    adjusted p < alpha — uniformly more powerful than Bonferroni, valid under any dependence.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def format_p(p: float) -> str:
    if p >= 0.995:
        return "1"
    if p >= 0.01:
        return f"{p:.2f}"
    if p >= 0.001:
        return f"{p:.3f}"
    return f"{p:.1e}"


@dataclass
class PairedResult:
    n: int  # shared samples with a score in both runs
    mean_a: float
    mean_b: float
    diff: float  # mean_a - mean_b
    low: float  # paired bootstrap interval of diff
    high: float
    p: float
    test: str  # "mcnemar-exact" | "sign-flip permutation"
    wins: int  # A scored higher
    ties: int
    losses: int
    mdd: float | None
    verdict: str
    binary: bool
    discordant: tuple[int, int] | None = None  # (only A right, only B right) for binary scores
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def compare_scores(a: Sequence[float], b: Sequence[float], *, binary: bool, seed: int = 0, n_boot: int = 10000,
                   alpha: float = ALPHA, names: tuple[str, str] = ("A", "B")) -> PairedResult:
    """Compare paired per-sample scores of A and B (same order, same samples)."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        nan = float("nan")
        return PairedResult(0, nan, nan, nan, nan, nan, nan, "none", 0, 0, 0, None, "no shared samples", binary)
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d, lo, hi = paired_bootstrap(xa, xb, n_boot=n_boot, seed=seed, alpha=alpha)
    wins, losses = int(np.sum(xa > xb)), int(np.sum(xa < xb))
    ties = n - wins - losses
    sd = float(np.std(xa - xb, ddof=1)) if n > 1 else 0.0
    disc = None
    if binary:
        disc = discordant(xa, xb)
        p, test = mcnemar_exact(*disc), "mcnemar-exact"
    else:
        p, test = sign_flip_p(xa, xb, seed=seed), "sign-flip permutation"
    res = PairedResult(n=n, mean_a=float(xa.mean()), mean_b=float(xb.mean()), diff=d, low=lo, high=hi, p=p,
                       test=test, wins=wins, ties=ties, losses=losses,
                       mdd=min_detectable_diff(n, sd, binary=binary, alpha=alpha), verdict=verdict(d, p, alpha, names),
                       binary=binary, discordant=disc)
    k = min_discordant_for_significance(alpha)
    if binary and n < k:
        res.notes.append(f"n = {n} < {k}: exact McNemar cannot reach p < {alpha} whatever the answers")
    return res
