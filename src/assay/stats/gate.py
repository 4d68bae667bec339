"""Non-inferiority at a fixed n, paired by sample: may the candidate replace the base?

Question: is mean(candidate) - mean(base) above -margin (the candidate is at most ``margin`` worse)? From per-sample
paired scores (same samples, same order) and an interval of candidate - base at level 1 - alpha:

- ``non_inferior`` (exit 0): the whole interval lies above -margin;
- ``worse``        (exit 1): the whole interval lies below -margin;
- ``undecided``    (exit 2): it straddles -margin; ``more_samples`` says how many more pairs would likely decide.

Each verdict is a one-sided test at level alpha / 2 (the two-sided interval's tail), so the chance of either false
verdict is at most alpha / 2 at the boundary mean = -margin. This holds for ONE look at an n fixed in advance: for
looking after every batch use ``assay.stats.sequential`` (a confidence sequence), not this function in a loop.

Margins (``Margin``): absolute, in score units (``Margin(0.02)``: two points of accuracy), or relative to the base
(``Margin(0.05, relative=True)``: the candidate keeps at least 95 % of the base's score). A relative margin r is tested
as mean(candidate - (1 - r) base) > 0, an interval for one paired mean, so the base's estimated mean is not plugged
into the margin as if it were known.

Intervals (``method`` in the result says which was used):
- binary scores, absolute margin: the Bonett-Price adjusted Wald interval for a difference of paired proportions
  (Bonett & Price, "Adjusted Wald confidence interval for a difference of binomial proportions based on paired data",
  J. Educ. Behav. Stat. 37(4), 2012): add one pseudo-pair to each discordant cell, p10 = (n10 + 1) / (n + 2),
  p01 = (n01 + 1) / (n + 2), d = p01 - p10, se = sqrt((p10 + p01 - d^2) / (n + 2)), d +- z se. Chosen over the
  percentile bootstrap because with few discordant pairs the bootstrap collapses (no discordant pair gives the
  zero-width interval [0, 0], a "non-inferior" from five samples), and over Newcombe's hybrid score interval for
  simplicity at near-equal coverage (Bonett & Price report coverage close to nominal from n = 10).
- everything else (scores bounded in [0, 1] or continuous; binary with a relative margin): the paired percentile
  bootstrap of ``assay.stats.paired`` on the per-sample decision values (pairs resampled, seeded), as the
  statistics rules prescribe for continuous metrics. A note warns under 30 pairs, where percentile intervals run
  narrow.

More samples: with sd the standard deviation of the per-sample decision values e (e = candidate - base + margin, or
candidate - (1 - r) base; for binary scores the Bonett-Price adjusted sd) and e_bar their mean, the usual sample size
of a one-sided paired z-test at level alpha / 2 with the given power (Chow, Shao & Wang, "Sample Size Calculations in
Clinical Research", 2nd ed., section 3.1 non-inferiority, one-sample/paired form):

    n_needed = ceil(((z_{1 - alpha/2} + z_{power}) * sd / |e_bar|)^2),   more_samples = max(0, n_needed - n)

i.e. the n at which, if the observed mean difference and spread are the truth, the interval would clear the margin on
the side the point estimate is on with probability ``power`` (80 % by default). A point estimate exactly on the margin
gives None (no n would likely decide). It is a planning figure from noisy estimates, not a promise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Sequence

import numpy as np

from assay.stats.paired import ALPHA, POWER, paired_bootstrap

NON_INFERIOR, WORSE, UNDECIDED = "non_inferior", "worse", "undecided"
EXIT_CODES = {NON_INFERIOR: 0, WORSE: 1, UNDECIDED: 2}
BONETT_PRICE = "Bonett-Price adjusted Wald (paired proportions)"
BOOTSTRAP = "paired percentile bootstrap"


@dataclass(frozen=True)
class Margin:
    """How much worse the candidate may be: ``value`` in score units, or a fraction of the base's mean when
    ``relative`` (0.05 = the candidate keeps >= 95 % of the base's score)."""
    value: float
    relative: bool = False

    def __post_init__(self):
        if not math.isfinite(self.value) or self.value < 0:
            raise ValueError(f"margin must be a finite number >= 0, got {self.value}")
        if self.relative and self.value >= 1:
            raise ValueError(f"a relative margin is a fraction of the base's score in [0, 1), got {self.value}")

    def describe(self) -> str:
        return f"{self.value:.0%} of the base's score" if self.relative else f"{self.value:g} (absolute)"


@dataclass
class DecisionValues:
    """Per-sample values e_i whose mean is > 0 exactly when the candidate is non-inferior, with their bounds."""
    values: np.ndarray
    lower: float  # bounds of each e_i (from the score range)
    upper: float
    shift: float  # e + shift reads on the candidate - base scale: -margin, or -r * mean(base)
    diff: float  # mean(candidate - base)
    mean_base: float
    mean_candidate: float
    n: int


def decision_values(base: Sequence[float], candidate: Sequence[float], margin: Margin, *,
                    score_range: tuple[float, float] = (0.0, 1.0)) -> DecisionValues:
    """e_i = candidate_i - base_i + margin (absolute) or candidate_i - (1 - r) base_i (relative), bounded by
    ``score_range`` (the range each score can take)."""
    if len(base) != len(candidate):
        raise ValueError(f"paired scores need equal lengths, got {len(base)} and {len(candidate)}")
    b, c = np.asarray(base, dtype=float), np.asarray(candidate, dtype=float)
    lo, hi = score_range
    if b.size and (np.any(~np.isfinite(b)) or np.any(~np.isfinite(c))):
        raise ValueError("scores must be finite numbers (count errors separately, never as a score)")
    n = int(b.size)
    mb = float(b.mean()) if n else float("nan")
    mc = float(c.mean()) if n else float("nan")
    if margin.relative:
        k = 1 - margin.value
        e = c - k * b
        return DecisionValues(e, lo - k * hi, hi - k * lo, -margin.value * mb, mc - mb, mb, mc, n)
    w = hi - lo
    e = c - b + margin.value
    return DecisionValues(e, -w + margin.value, w + margin.value, -margin.value, mc - mb, mb, mc, n)


def is_binary(*scores: Sequence[float]) -> bool:
    return all(np.all((np.asarray(s, dtype=float) == 0) | (np.asarray(s, dtype=float) == 1)) for s in scores)


def bonett_price(n10: int, n01: int, n: int, alpha: float = ALPHA) -> tuple[float, float, float, float]:
    """(estimate, low, high, sd) for p01 - p10 of paired proportions: n10 = pairs only the first is right, n01 = only
    the second (so the difference is second - first), n pairs in all. Bonett & Price (2012) adjusted Wald; sd is the
    adjusted per-pair standard deviation sqrt(p10 + p01 - d^2). The interval is clipped to [-1, 1]."""
    if n <= 0:
        return (float("nan"), -1.0, 1.0, float("nan"))
    if not (0 <= n10 and 0 <= n01 and n10 + n01 <= n):
        raise ValueError(f"need 0 <= n10, n01 and n10 + n01 <= n, got {n10}, {n01}, {n}")
    p10, p01 = (n10 + 1) / (n + 2), (n01 + 1) / (n + 2)
    d = p01 - p10
    sd = math.sqrt(max(p10 + p01 - d * d, 0.0))
    z = NormalDist().inv_cdf(1 - alpha / 2)
    half = z * sd / math.sqrt(n + 2)
    return ((n01 - n10) / n, max(-1.0, d - half), min(1.0, d + half), sd)


def samples_needed(mean: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """ceil(((z_{1-alpha/2} + z_power) * sd / |mean|)^2): the paired n at which a one-sided z-test at level alpha / 2
    tells a mean ``mean`` from 0 with probability ``power``, given per-pair spread ``sd``. None when mean == 0
    or sd is not finite."""
    if not (math.isfinite(mean) and math.isfinite(sd)) or mean == 0:
        return None
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return max(1, math.ceil((z * sd / abs(mean)) ** 2))


@dataclass
class GateResult:
    verdict: str  # non_inferior | worse | undecided
    exit_code: int  # 0 | 1 | 2
    n: int  # paired samples
    mean_base: float
    mean_candidate: float
    diff: float  # mean(candidate - base)
    low: float  # interval of candidate - base at level 1 - alpha (relative margins: see decide's docstring)
    high: float
    threshold: float  # -margin in score units; relative margins: -r * mean(base)
    margin: float
    relative: bool
    alpha: float
    method: str  # BONETT_PRICE | BOOTSTRAP
    sd: float  # per-sample sd of the decision values (binary absolute: Bonett-Price adjusted)
    n_needed: int | None  # total pairs that would likely decide (undecided only; None when decided or unknowable)
    more_samples: int | None  # n_needed - n, >= 0
    power: float = POWER
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def decide(low: float, high: float, threshold: float) -> str:
    """non_inferior when the interval lies above the threshold (-margin), worse when below, undecided otherwise.
    An interval touching the threshold is undecided."""
    if low > threshold:
        return NON_INFERIOR
    if high < threshold:
        return WORSE
    return UNDECIDED


def gate_decision(base: Sequence[float], candidate: Sequence[float], margin: Margin | float, *, alpha: float = ALPHA,
                  power: float = POWER, binary: bool | None = None, score_range: tuple[float, float] = (0.0, 1.0),
                  n_boot: int = 10000, seed: int = 0) -> GateResult:
    """Fixed-n non-inferiority verdict for paired per-sample scores (same samples, same order).

    ``margin``: a ``Margin`` or a float (absolute, score units). ``binary``: None detects 0/1 scores. ``score_range``
    bounds the scores (for the reported bounds; the fixed-n intervals do not need it). For a relative margin r the
    interval is that of mean(candidate - (1 - r) base) shifted by -r * mean(base), so low/high read on the
    candidate - base scale against ``threshold`` = -r * mean(base); the verdict is exactly "the interval of
    mean(candidate - (1 - r) base) lies above / below 0".
    """
    m = margin if isinstance(margin, Margin) else Margin(float(margin))
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    vals = decision_values(base, candidate, m, score_range=score_range)
    n = vals.n
    if n == 0:
        nan = float("nan")
        return GateResult(UNDECIDED, EXIT_CODES[UNDECIDED], 0, nan, nan, nan, nan, nan, nan, m.value, m.relative,
                          alpha, "none", nan, None, None, power, ["no paired samples"])
    if binary is None:
        binary = is_binary(base, candidate)
    notes: list[str] = []
    b, c = np.asarray(base, dtype=float), np.asarray(candidate, dtype=float)
    if binary and not m.relative:
        n10 = int(np.sum((b == 1) & (c == 0)))  # only the base right
        n01 = int(np.sum((b == 0) & (c == 1)))  # only the candidate right
        _, lo, hi, sd = bonett_price(n10, n01, n, alpha)
        method = BONETT_PRICE
        e_mean = (n01 + 1) / (n + 2) - (n10 + 1) / (n + 2) + m.value  # the adjusted centre, as the interval uses
        low, high = lo, hi
    else:
        _, lo_e, hi_e = paired_bootstrap(vals.values, np.zeros(n), n_boot=n_boot, seed=seed, alpha=alpha)
        method = BOOTSTRAP
        sd = float(np.std(vals.values, ddof=1)) if n > 1 else float("nan")
        e_mean = float(vals.values.mean())
        low, high = lo_e + vals.shift, hi_e + vals.shift
        if n < 30:
            notes.append(f"n = {n} < 30: percentile bootstrap intervals run narrow on few pairs")
        if n > 1 and sd == 0:
            notes.append("every pair has the same difference: the bootstrap interval has zero width")
    verdict = decide(low, high, vals.shift)
    n_needed = more = None
    if verdict == UNDECIDED:
        n_needed = samples_needed(e_mean, sd, alpha, power)
        if n_needed is not None:
            more = max(0, n_needed - n)
        else:
            notes.append("the estimate sits on the margin: no sample size is likely to decide")
    return GateResult(verdict, EXIT_CODES[verdict], n, vals.mean_base, vals.mean_candidate, vals.diff, float(low),
                      float(high), float(vals.shift), m.value, m.relative, alpha, method, float(sd), n_needed, more,
                      power, notes)
