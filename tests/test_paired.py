"""Pure statistics of paired comparison, checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assay.stats import (compare_scores, discordant, format_p, mcnemar_exact, min_detectable_diff,
                         min_discordant_for_significance, paired_bootstrap, sign_flip_p, verdict)


def table_to_pairs(both: int, only_a: int, only_b: int, neither: int) -> tuple[list[int], list[int]]:
    """A 2×2 contingency table -> paired 0/1 vectors (A, B)."""
    a = [1] * both + [1] * only_a + [0] * only_b + [0] * neither
    b = [1] * both + [0] * only_a + [1] * only_b + [0] * neither
    return a, b


@pytest.mark.parametrize("b,c,expected", [
    (6, 0, 2 / 64),            # 2 * C(6,0) / 2^6
    (5, 0, 2 / 32),            # not significant: 0.0625
    (1, 9, 2 * 11 / 1024),     # 2 * (C(10,0) + C(10,1)) / 2^10 = 0.021484375
    (2, 8, 2 * 56 / 1024),     # 2 * (1 + 10 + 45) / 1024 = 0.109375
    (12, 2, 2 * 106 / 16384),  # 2 * (1 + 14 + 91) / 2^14 = 0.0129394...
    (3, 3, 1.0),               # symmetric: capped at 1
    (0, 0, 1.0),               # no discordant pairs: no evidence
    (0, 1, 1.0),
])
def test_mcnemar_exact_hand_computed(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_exact(c, b) == pytest.approx(expected, rel=1e-12)  # two-sided: symmetric


def test_mcnemar_exact_large_n_does_not_underflow():
    p = mcnemar_exact(600, 400)
    # normal approximation with continuity correction: z = (|600-400| - 1) / sqrt(1000) = 6.293 -> p ≈ 3.1e-10
    z = (200 - 1) / math.sqrt(1000)
    approx = math.erfc(z / math.sqrt(2))
    assert 0 < p < 1e-8
    assert p == pytest.approx(approx, rel=0.15)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_discordant_counts_from_table():
    a, b = table_to_pairs(both=10, only_a=4, only_b=1, neither=5)
    assert discordant(a, b) == (4, 1)
    r = compare_scores(a, b, binary=True)
    assert r.discordant == (4, 1)
    assert r.p == pytest.approx(2 * (1 + 5) / 32)  # 0.375
    assert (r.wins, r.ties, r.losses) == (4, 15, 1)
    assert r.diff == pytest.approx(3 / 20)
    assert r.test == "mcnemar-exact"


def test_paired_bootstrap_reproducible_with_seed():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, 200)
    b = rng.integers(0, 2, 200)
    first = paired_bootstrap(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7) == first
    # a different seed resamples differently (continuous scores, so quantiles do not land on the same grid value)
    x = rng.random(50)
    y = rng.random(50)
    assert paired_bootstrap(x, y, seed=1) == paired_bootstrap(x, y, seed=1) != paired_bootstrap(x, y, seed=2)
    d, lo, hi = first
    assert d == pytest.approx(float(np.mean(a - b)))
    assert lo < d < hi


def test_paired_bootstrap_matches_normal_interval_for_large_n():
    rng = np.random.default_rng(3)
    a = rng.normal(0.6, 0.2, 2000)
    b = a - rng.normal(0.05, 0.1, 2000)  # B correlated with A: pairing must keep that
    d, lo, hi = paired_bootstrap(a, b, seed=0, n_boot=4000)
    se = np.std(a - b, ddof=1) / math.sqrt(len(a))
    assert lo == pytest.approx(d - 1.96 * se, abs=0.25 * se)
    assert hi == pytest.approx(d + 1.96 * se, abs=0.25 * se)
    # an unpaired interval would be ~2x wider here; the paired one must be the narrow one
    assert hi - lo < 2 * 1.96 * math.sqrt(np.var(a) / len(a) + np.var(b) / len(b))


def test_paired_bootstrap_degenerate_inputs():
    assert paired_bootstrap([1, 1, 0], [1, 1, 0]) == (0.0, 0.0, 0.0)
    assert all(math.isnan(x) for x in paired_bootstrap([], []))


def test_sign_flip_exact_small_n():
    assert sign_flip_p([1, 1, 1], [0, 0, 0]) == pytest.approx(2 / 8)
    assert sign_flip_p([0.5] * 6, [0] * 6) == pytest.approx(2 / 64)
    assert sign_flip_p([0.2, 0.7], [0.2, 0.7]) == 1.0
    # zeros carry no information: they do not change p
    assert sign_flip_p([0.5] * 6 + [0.3] * 4, [0] * 6 + [0.3] * 4) == pytest.approx(2 / 64)
    # Monte Carlo path: reproducible with a seed, and close to the exact value for an obvious case
    a = [1.0] * 30
    assert sign_flip_p(a, [0.0] * 30, seed=1) == sign_flip_p(a, [0.0] * 30, seed=1) < 0.001


def test_min_detectable_difference_values():
    assert min_discordant_for_significance(0.05) == 6
    assert min_discordant_for_significance(0.01) == 8  # 2/2^8 = 0.0078 < 0.01 <= 2/2^7
    # 20 questions: exact floor 6/20 = 0.30 beats the power bound with a small spread
    assert min_detectable_diff(20, 0.3) == pytest.approx(0.30)
    # power bound: (1.95996 + 0.84162) * 0.5 / sqrt(20) = 0.31324
    assert min_detectable_diff(20, 0.5) == pytest.approx((1.959964 + 0.841621) * 0.5 / math.sqrt(20), rel=1e-5)
    # continuous scores have no exact floor
    assert min_detectable_diff(100, 0.2, binary=False) == pytest.approx(2.801585 * 0.02, rel=1e-5)
    assert min_detectable_diff(0, 0.5) is None
    assert min_detectable_diff(3, 0.0) == 1.0  # capped: with n < 6 no difference at all can be significant
    assert any("cannot reach" in n for n in compare_scores([1, 1, 1], [0, 0, 0], binary=True).notes)
    # more samples, smaller MDD
    assert min_detectable_diff(500, 0.4) < min_detectable_diff(50, 0.4)


def test_95_vs_85_on_20_questions_is_noise():
    # The seed-table situation: 19/20 vs 17/20, and the two models disagree on 2 questions.
    a, b = table_to_pairs(both=17, only_a=2, only_b=0, neither=1)
    r = compare_scores(a, b, binary=True)
    assert r.mean_a == 0.95 and r.mean_b == 0.85
    assert r.p == pytest.approx(0.5)
    assert r.verdict == "tied (p = 0.50)"
    assert r.mdd >= 0.30 > r.diff  # the observed 10 points is below what 20 questions can resolve
    assert r.low <= 0 <= r.high


def test_verdict_logic():
    assert verdict(0.1, 0.01) == "A better"
    assert verdict(-0.1, 0.01) == "B better"
    assert verdict(0.1, 0.0625) == "tied (p = 0.06)"
    assert verdict(0.1, 0.05) == "tied (p = 0.05)"  # p must be strictly below alpha
    assert verdict(0.0, 0.001) == "tied (p = 0.001)"
    assert verdict(0.3, 0.2, names=("smol", "qwen")) == "tied (p = 0.20)"
    assert verdict(-0.3, 0.001, names=("smol", "qwen")) == "qwen better"
    assert verdict(float("nan"), float("nan")) == "no shared samples"
    assert format_p(1.0) == "1" and format_p(3.1e-10) == "3.1e-10"


def test_compare_scores_significant_both_directions():
    a, b = table_to_pairs(both=150, only_a=30, only_b=5, neither=15)
    r = compare_scores(a, b, binary=True, seed=0)
    assert r.verdict == "A better" and r.p < 1e-4 and r.low > 0
    r2 = compare_scores(b, a, binary=True, seed=0)
    assert r2.verdict == "B better" and r2.p == r.p and r2.high < 0
    assert r2.diff == pytest.approx(-r.diff)


def test_compare_scores_continuous_uses_permutation():
    a = [0.9, 0.8, 0.85, 0.7, 0.95, 0.9, 0.8, 0.75]
    b = [0.5, 0.6, 0.55, 0.4, 0.6, 0.5, 0.45, 0.5]
    r = compare_scores(a, b, binary=False)
    assert r.test == "sign-flip permutation"
    assert r.p == pytest.approx(2 / 256)  # all 8 differences positive: exact enumeration
    assert r.verdict == "A better"
    assert r.discordant is None
    with pytest.raises(ValueError):
        compare_scores([1], [1, 0], binary=True)


def test_compare_scores_empty():
    r = compare_scores([], [], binary=True)
    assert r.n == 0 and r.verdict == "no shared samples"
