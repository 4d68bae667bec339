"""Anytime-valid confidence sequences for a mean paired difference: look after every batch, stop when decided.

A fixed-n interval is valid once, at the n fixed in advance. Re-computing it after every batch and stopping as soon
as it clears the margin ("peeking") raises the false-decision rate well above alpha (benchmarks/sequential_sim.py
measures it: docs/gate.md). A *confidence sequence* (CS) is a sequence of intervals C_1, C_2, ... with

    P(for all t >= 1: mu in C_t) >= 1 - alpha,

so the guarantee holds at any data-dependent stopping time: look after every sample, stop whenever you like.

Method: the hedged-capital betting CS of Waudby-Smith & Ramdas, "Estimating means of bounded random variables by
betting", JRSS-B 86(1), 2024, section 4 (Theorem 3 with the predictable-mixture bets of eq. (26), "predmix-EB"), as
implemented by ``confseq.betting.hedged_cs`` in the authors' own package ``confseq`` 0.0.11 (Howard, Waudby-Smith,
Ramdas; MIT licence), re-implemented here in numpy with the same defaults and the same numbers (identical paths on
every sequence checked, benchmarks/confseq_crosscheck.py):

- observations x_t in [0, 1] (a paired difference d in [lower, upper] is mapped to (d - lower) / (upper - lower));
- for each candidate mean m on a grid of ``breaks`` + 1 points in [0, 1] two capital processes are run,
  K+_t(m) = prod_{i<=t} (1 + l+_i(m) (x_i - m)),  K-_t(m) = prod_{i<=t} (1 - l-_i(m) (x_i - m)),
  with predictable bets l_i = sqrt(2 log(1 / (alpha theta)) / (sigma2_{i-1} i log(1 + i))) from the regularised
  running mean and variance of x_1..x_{i-1} (prior mean 1/2, prior variance 1/4, one fake observation), truncated at
  1/2 / m (resp. 1/2 / (1 - m)) so every factor stays >= 1/2 > 0;
- K_t(m) = max(theta K+_t(m), (1 - theta) K-_t(m)), theta = 1/2; m is excluded at time t when K_t(m) > 1 / alpha;
- C_t = [first kept grid point - 1/breaks, last kept grid point + 1/breaks], then the running intersection over t.

Why it is valid for paired binary and bounded scores. Under the hypothesis mean = m, and with pairs that arrive
i.i.d. (questions visited in a random order fixed before looking; see below), each factor has conditional mean 1
because the bet l_i depends only on the past: K+(m) and K-(m) are non-negative martingales, so their hedged maximum
is bounded by a non-negative supermartingale theta K+ + (1 - theta) K- starting at 1, and Ville's inequality gives
P(exists t: K_t(m) >= 1/alpha) <= alpha. Nothing is assumed about the distribution beyond boundedness: a paired
*binary* difference d = candidate - base takes the values -1, 0, 1 (x = 0, 1/2, 1) and a paired difference of scores
bounded in [0, 1] lies in [-1, 1], so both map into [0, 1] exactly. The bets adapt to the observed variance (the
empirical-Bernstein flavour), which matters here: models that agree on 85 % of questions have differences that are
mostly 0, and the CS shrinks like the standard deviation of d, not like the range.

Sampling order. i.i.d. from the population of questions the suite stands for is what makes the martingale argument
go through: if the suite is itself a sample of such questions and is visited in a seeded random order, the first t
paired differences are an i.i.d. sample of that population. Visiting questions sorted by difficulty, or in the
suite's file order when that correlates with difficulty, breaks the guarantee.

Why not the ``confseq`` package itself: it does not install on any Python assay supports (>= 3.11). Its sdist
(0.0.11, the latest) has no wheels, builds a C++ extension with CMake + Boost headers, and pins
``pybind11~=2.6.0`` in its build requirements, which does not compile against Python 3.11's headers (``invalid use
of incomplete type 'PyFrameObject'``, checked here with Boost installed); its pure-Python modules also use
``np.float_``, removed in NumPy 2. The betting CS itself is pure numpy, so it is reproduced here; docs/gate.md and
tests/test_gate_stats.py pin it to numbers produced by confseq 0.0.11's ``hedged_cs`` (built by hand with a newer
pybind11 and NumPy 1.26).

- ``HedgedCS``            the incremental CS: ``update(batch)`` after each batch; state is O(breaks).
- ``hedged_cs(x)``        the whole path (l_t, u_t) for x in [0, 1], same signature/defaults as confseq's.
- ``paired_diff_cs(d)``   the path for differences in [lower, upper] (default [-1, 1]).
- ``sequential_decision`` non_inferior / worse / undecided from the differences so far, valid under peeking.
- ``sequential_gate``     the same from paired base / candidate scores, with an absolute or relative margin.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from assay.stats.gate import (EXIT_CODES, NON_INFERIOR, UNDECIDED, WORSE, Margin, decision_values)
from assay.stats.paired import ALPHA

METHOD = "hedged-capital betting CS (Waudby-Smith & Ramdas 2024; confseq hedged_cs defaults)"


class HedgedCS:
    """The hedged-capital betting confidence sequence for the mean of x in [0, 1], updated batch by batch.

    ``update(x)`` consumes new observations and returns (l, u): the running-intersection interval after each of them.
    ``low`` / ``high`` hold the current interval. Feeding the data in one batch or in many gives the same numbers.

    With the running intersection (the default) only the grid points inside the current interval are updated: K+(m)
    falls and K-(m) rises with m, so the set of kept m is an interval, and points outside the running intersection
    can never move it again. The one difference from confseq: where no grid point of the window is kept at some t (the
    CS has missed; confseq then reports a crossed interval l > u), the interval is left as it was.
    """

    def __init__(self, alpha: float = ALPHA, *, breaks: int = 1000, theta: float = 0.5, trunc_scale: float = 0.5,
                 prior_mean: float = 0.5, prior_variance: float = 0.25, fake_obs: int = 1,
                 running_intersection: bool = True):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if not 0 < theta < 1:
            raise ValueError(f"theta must be in (0, 1), got {theta}")
        if not 0 < trunc_scale <= 1:
            raise ValueError(f"trunc_scale must be in (0, 1], got {trunc_scale}")
        self.alpha, self.breaks, self.theta, self.trunc_scale = alpha, breaks, theta, trunc_scale
        self.prior_mean, self.prior_variance, self.fake_obs = prior_mean, prior_variance, fake_obs
        self.running_intersection = running_intersection
        self.grid = np.arange(0, 1 + 1 / breaks, step=1 / breaks)  # confseq's grid, to the last float
        with np.errstate(divide="ignore"):
            self._cap_pos = trunc_scale / self.grid  # bet caps: every factor 1 + l (x - m) stays >= 1 - trunc_scale
            self._cap_neg = trunc_scale / (1 - self.grid)
        self._log_pos = np.zeros(self.grid.size)  # log K+_t(m), log K-_t(m)
        self._log_neg = np.zeros(self.grid.size)
        self._log_thr = math.log(1 / alpha)
        self.t = 0
        self._sum = 0.0  # sum of x
        self._sq = 0.0  # sum of (x_i - mu_hat_i)^2
        self._sigma2_prev = prior_variance
        self.low, self.high = 0.0, 1.0
        self._first, self._last = -1, self.grid.size  # running first / last kept grid index (none yet)
        self._win = (0, self.grid.size - 1)  # grid indices still updated

    def _bets(self, x: np.ndarray, alpha_side: float) -> np.ndarray:
        t = self.t + np.arange(1, x.size + 1)
        mu_hat = np.minimum((self.fake_obs * self.prior_mean + self._sum + np.cumsum(x)) / (t + self.fake_obs), 1)
        sigma2 = (self.fake_obs * self.prior_variance + self._sq + np.cumsum((x - mu_hat) ** 2)) / (t + self.fake_obs)
        sigma2_prev = np.concatenate(([self._sigma2_prev], sigma2[:-1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.sqrt(2 * math.log(1 / alpha_side) / (t * np.log(1 + t) * sigma2_prev))
        lam[np.isnan(lam)] = 0
        return lam, mu_hat, sigma2

    def update(self, x: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float).ravel()
        if x.size == 0:
            return np.empty(0), np.empty(0)
        if np.any(~np.isfinite(x)) or x.min() < 0 or x.max() > 1:
            raise ValueError("HedgedCS needs observations in [0, 1]; rescale bounded scores first")
        # confseq computes the bets for each side with alpha * theta and alpha * (1 - theta): equal at theta = 1/2.
        lam_p, mu_hat, sigma2 = self._bets(x, self.alpha * self.theta)
        lam_n = lam_p if self.theta == 0.5 else self._bets(x, self.alpha * (1 - self.theta))[0]
        i0, i1 = self._win
        g = self.grid[i0:i1 + 1, None]
        dev = x[None, :] - g  # (window, batch)
        with np.errstate(invalid="ignore"):
            fp = np.minimum(lam_p[None, :], self._cap_pos[i0:i1 + 1, None]) * dev
            fn = np.minimum(lam_n[None, :], self._cap_neg[i0:i1 + 1, None]) * dev
        fp[np.isnan(fp)] = 0  # inf * 0 at m = 0 with x = 0 (or m = 1, x = 1): confseq's convention is a factor of 1
        fn[np.isnan(fn)] = 0
        log_pos = self._log_pos[i0:i1 + 1, None] + np.cumsum(np.log1p(fp), axis=1)
        log_neg = self._log_neg[i0:i1 + 1, None] + np.cumsum(np.log1p(-fn), axis=1)
        keep = np.maximum(math.log(self.theta) + log_pos, math.log(1 - self.theta) + log_neg) <= self._log_thr
        any_kept = keep.any(axis=0)
        first = np.where(any_kept, i0 + np.argmax(keep, axis=0), -1)  # grid indices; -1 / big = nothing kept
        last = np.where(any_kept, i1 - np.argmax(keep[::-1], axis=0), self.grid.size)
        if self.running_intersection:
            first = np.maximum.accumulate(np.concatenate(([self._first], first)))[1:]
            last = np.minimum.accumulate(np.concatenate(([self._last], last)))[1:]
        lo = np.where(first >= 0, np.maximum(0.0, self.grid[np.clip(first, 0, None)] - 1 / self.breaks), 0.0)
        hi = np.where(last < self.grid.size,
                      np.minimum(1.0, self.grid[np.clip(last, None, self.grid.size - 1)] + 1 / self.breaks), 1.0)
        # carry the state
        self._log_pos[i0:i1 + 1], self._log_neg[i0:i1 + 1] = log_pos[:, -1], log_neg[:, -1]
        self.t += x.size
        self._sum += float(x.sum())
        self._sq += float(np.sum((x - mu_hat) ** 2))
        self._sigma2_prev = float(sigma2[-1])
        self.low, self.high = float(lo[-1]), float(hi[-1])
        if self.running_intersection:
            self._first, self._last = int(first[-1]), int(last[-1])
            # Grid points outside [first, last] can never move the running intersection again: K+(m) only falls and
            # K-(m) only rises as m grows, so the kept set is an interval and anything it adds outside the current
            # one is cut by the intersection. Only the window is updated from here on (the CS costs O(window)).
            if 0 <= self._first <= self._last < self.grid.size:
                self._win = (self._first, self._last)
        return lo, hi


def hedged_cs(x: Sequence[float], alpha: float = ALPHA, *, breaks: int = 1000, running_intersection: bool = True,
              theta: float = 0.5, trunc_scale: float = 0.5, prior_mean: float = 0.5, prior_variance: float = 0.25,
              fake_obs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(l, u): the CS after each observation of x in [0, 1]; confseq.betting.hedged_cs's arguments and defaults."""
    cs = HedgedCS(alpha, breaks=breaks, theta=theta, trunc_scale=trunc_scale, prior_mean=prior_mean,
                  prior_variance=prior_variance, fake_obs=fake_obs, running_intersection=running_intersection)
    x = np.asarray(x, dtype=float).ravel()
    parts = [cs.update(x[i:i + 128]) for i in range(0, x.size, 128)]  # chunks: the grid window shrinks between them
    if not parts:
        return np.empty(0), np.empty(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _check_bounds(lower: float, upper: float) -> float:
    if not (math.isfinite(lower) and math.isfinite(upper) and upper > lower):
        raise ValueError(f"need finite bounds lower < upper, got [{lower}, {upper}]")
    return upper - lower


def to_unit(d: Sequence[float], lower: float = -1.0, upper: float = 1.0) -> np.ndarray:
    """Map values in [lower, upper] to [0, 1] (a paired difference in [-1, 1] becomes (d + 1) / 2)."""
    width = _check_bounds(lower, upper)
    x = (np.asarray(d, dtype=float) - lower) / width
    tol = 1e-9
    if x.size and (np.any(~np.isfinite(x)) or x.min() < -tol or x.max() > 1 + tol):
        raise ValueError(f"values outside [{lower}, {upper}]: a confidence sequence needs known bounds")
    return np.clip(x, 0.0, 1.0)


def paired_diff_cs(diffs: Sequence[float], alpha: float = ALPHA, *, lower: float = -1.0, upper: float = 1.0,
                   breaks: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(l, u) path of the CS for the mean of ``diffs`` (each in [lower, upper]), on the scale of the diffs."""
    width = _check_bounds(lower, upper)
    lo, hi = hedged_cs(to_unit(diffs, lower, upper), alpha, breaks=breaks)
    return lower + width * lo, lower + width * hi


@dataclass
class SequentialResult:
    verdict: str  # non_inferior | worse | undecided
    exit_code: int  # 0 | 1 | 2
    n: int  # paired samples seen
    diff: float  # mean(candidate - base) so far
    low: float  # the CS at n, on the candidate - base scale (running intersection)
    high: float
    threshold: float  # -margin in score units (relative margins: -r * mean(base) so far)
    margin: float
    relative: bool
    alpha: float
    decided_at: int | None  # the first n at which the CS cleared the threshold (None: not yet)
    method: str = METHOD
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _decide(lo: np.ndarray, hi: np.ndarray, thr: float = 0.0) -> tuple[str, int | None]:
    """Verdict from the CS path against the threshold: the first time the CS leaves the threshold decides. With the
    running intersection the CS only shrinks, so a decision once reached stays."""
    above, below = lo > thr, hi < thr
    hit = np.flatnonzero(above | below)
    if hit.size == 0:
        return UNDECIDED, None
    i = int(hit[0])
    return (NON_INFERIOR if above[i] else WORSE), i + 1


def sequential_decision(diffs_so_far: Sequence[float], margin: float, alpha: float = ALPHA, *,
                        lower: float = -1.0, upper: float = 1.0, breaks: int = 1000) -> SequentialResult:
    """Non-inferiority verdict from the paired differences candidate - base seen so far (in sampling order),
    valid however often it is called: P(any false verdict, ever) <= alpha.

    ``margin`` is absolute, in score units (0.02 = two points of accuracy); the candidate is ``non_inferior`` once the
    CS lies above -margin, ``worse`` once it lies below, ``undecided`` before. ``lower`` / ``upper`` bound each
    difference ([-1, 1] for binary or [0, 1]-bounded scores; [-(hi - lo), hi - lo] for scores in [lo, hi]).
    """
    if margin < 0 or not math.isfinite(margin):
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")
    d = np.asarray(diffs_so_far, dtype=float)
    if d.size == 0:
        return SequentialResult(UNDECIDED, EXIT_CODES[UNDECIDED], 0, float("nan"), lower, upper, -margin, margin,
                                False, alpha, None, notes=["no paired samples yet"])
    lo, hi = paired_diff_cs(d, alpha, lower=lower, upper=upper, breaks=breaks)
    verdict, at = _decide(lo, hi, -margin)
    return SequentialResult(verdict, EXIT_CODES[verdict], int(d.size), float(d.mean()), float(lo[-1]), float(hi[-1]),
                            -margin, margin, False, alpha, at)


def sequential_gate(base: Sequence[float], candidate: Sequence[float], margin: Margin | float,
                    alpha: float = ALPHA, *, score_range: tuple[float, float] = (0.0, 1.0),
                    breaks: int = 1000) -> SequentialResult:
    """``sequential_decision`` from paired per-sample scores (same order = the sampling order), with an absolute or a
    relative margin (``Margin``; a float is absolute). A relative margin r asks whether mean(candidate) >
    (1 - r) mean(base): the CS is run on e_i = candidate_i - (1 - r) base_i, bounded because the scores are, and
    compared with 0, so no plug-in estimate of mean(base) enters the guarantee. low/high are reported on the
    candidate - base scale by subtracting r * mean(base) (so they compare with ``threshold`` = -r * mean(base))."""
    m = margin if isinstance(margin, Margin) else Margin(float(margin))
    vals = decision_values(base, candidate, m, score_range=score_range)
    if vals.n == 0:
        return SequentialResult(UNDECIDED, EXIT_CODES[UNDECIDED], 0, float("nan"), float("nan"), float("nan"),
                                float("nan"), m.value, m.relative, alpha, None, notes=["no paired samples yet"])
    lo, hi = paired_diff_cs(vals.values, alpha, lower=vals.lower, upper=vals.upper, breaks=breaks)
    verdict, at = _decide(lo, hi, 0.0)
    return SequentialResult(verdict, EXIT_CODES[verdict], vals.n, vals.diff, float(lo[-1]) + vals.shift,
                            float(hi[-1]) + vals.shift, vals.shift, m.value, m.relative, alpha, at)
