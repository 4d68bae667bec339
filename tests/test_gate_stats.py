"""Statistics of the regression gate (issue 28): the fixed-n non-inferiority verdict (assay.stats.gate) and the
anytime-valid confidence sequence (assay.stats.sequential), on constructed data whose answer is known."""

import math

import numpy as np
import pytest

from assay.stats.gate import (BONETT_PRICE, BOOTSTRAP, NON_INFERIOR, UNDECIDED, WORSE, Margin, bonett_price,
                              decision_values, gate_decision, samples_needed)
from assay.stats.sequential import HedgedCS, hedged_cs, paired_diff_cs, sequential_decision, sequential_gate

EXIT = {NON_INFERIOR: 0, WORSE: 1, UNDECIDED: 2}


def paired_binary(rng, n, base_acc=0.7, p10=0.08, p01=0.08):
    """Base / candidate 0-1 scores: only-base-right with p10, only-candidate-right with p01, both right otherwise with
    the right share so the base's accuracy is base_acc."""
    u = rng.random(n)
    both = base_acc - p10
    b = np.where(u < p10, 1, np.where(u < p10 + p01, 0, np.where(u < p10 + p01 + both, 1, 0)))
    c = np.where(u < p10, 0, np.where(u < p10 + p01, 1, np.where(u < p10 + p01 + both, 1, 0)))
    return b.astype(float), c.astype(float)


# ---------- fixed n ----------

def test_identical_runs_are_never_worse():
    rng = np.random.default_rng(1)
    for n in (3, 10, 40, 200, 1000):
        b = (rng.random(n) < 0.6).astype(float)
        r = gate_decision(b, b.copy(), 0.02)
        assert r.verdict in (NON_INFERIOR, UNDECIDED)
        assert r.exit_code == EXIT[r.verdict]
        assert r.low < 0 < r.high and r.diff == 0
    assert gate_decision(b, b.copy(), 0.02).verdict == NON_INFERIOR  # n = 1000, no discordant pair


def test_clearly_damaged_candidate_is_worse():
    b, c = paired_binary(np.random.default_rng(2), 400, p10=0.25, p01=0.03)  # candidate 22 points worse
    r = gate_decision(b, c, 0.05)
    assert r.verdict == WORSE and r.exit_code == 1
    assert r.high < -0.05 and r.method == BONETT_PRICE
    assert r.n_needed is None and r.more_samples is None


def test_tiny_n_is_undecided_with_a_sample_size():
    b = np.array([1, 1, 0, 1, 0], float)
    r = gate_decision(b, b.copy(), 0.05)
    assert r.verdict == UNDECIDED and r.exit_code == 2
    assert r.more_samples is not None and r.more_samples > 100
    assert r.n_needed == r.n + r.more_samples
    # the estimate is about right: at that n, identical runs (no discordant pair) are decided
    assert gate_decision(np.ones(r.n_needed), np.ones(r.n_needed), 0.05).verdict == NON_INFERIOR


def test_sample_size_estimate_decides_about_as_often_as_promised():
    """100 pairs, 8 won and 8 lost (a true difference of 0 looks like this), margin 0.04: undecided. Fresh runs at the
    suggested n from the same truth (8 % / 8 % discordant) should then decide non-inferior in about `power` (80 %)
    of cases. Loose bounds: the formula is a normal approximation with an estimated sd."""
    b = np.zeros(100)
    c = np.zeros(100)
    b[:8], c[8:16], b[16:70], c[16:70] = 1, 1, 1, 1
    r = gate_decision(b, c, 0.04)
    assert r.verdict == UNDECIDED and r.n_needed and r.n_needed > 100
    rng = np.random.default_rng(3)
    wins = sum(gate_decision(*paired_binary(rng, r.n_needed), 0.04).verdict == NON_INFERIOR for _ in range(300))
    assert 0.70 < wins / 300 < 0.93


def test_bonett_price_matches_hand_computation_and_nests():
    est, lo, hi, sd = bonett_price(3, 7, 50)
    p10, p01 = 4 / 52, 8 / 52
    d = p01 - p10
    half = 1.959963984540054 * math.sqrt(p10 + p01 - d * d) / math.sqrt(52)
    assert est == pytest.approx(4 / 50) and lo == pytest.approx(d - half) and hi == pytest.approx(d + half)
    assert bonett_price(3, 7, 50, alpha=0.01)[1] < lo  # 99 % interval is wider


def test_bonett_price_covers_at_nominal_rate():
    rng = np.random.default_rng(4)
    n, p10, p01, hits = 60, 0.10, 0.05, 0
    for _ in range(2000):
        k = rng.multinomial(n, [p10, p01, 1 - p10 - p01])
        _, lo, hi, _ = bonett_price(int(k[0]), int(k[1]), n)
        hits += lo <= p01 - p10 <= hi
    assert 0.93 <= hits / 2000 <= 0.975


def test_relative_and_absolute_margins():
    # base 0.80, candidate 0.77: 3 points worse = 3.75 % relative
    n = 4000
    b = np.zeros(n)
    b[:3200] = 1
    c = b.copy()
    c[:120] = 0  # 120 answers lost
    r_abs = gate_decision(b, c, Margin(0.05))
    r_rel = gate_decision(b, c, Margin(0.05, relative=True))  # 5 % of 0.80 = 4 points: allowed
    r_rel_tight = gate_decision(b, c, Margin(0.02, relative=True))  # 1.6 points: not allowed
    assert r_abs.verdict == NON_INFERIOR and r_abs.threshold == -0.05
    assert r_rel.verdict == NON_INFERIOR and r_rel.threshold == pytest.approx(-0.04) and r_rel.method == BOOTSTRAP
    assert r_rel_tight.verdict == WORSE and r_rel_tight.threshold == pytest.approx(-0.016)
    assert gate_decision(b, c, 0.016).verdict == WORSE  # float = absolute
    # a relative margin scales with the base: the same 3-point loss from a 0.40 base is 7.5 %
    b2, c2 = b.copy(), c.copy()
    b2[1600:3200], c2[1600:3200] = 0, 0
    assert gate_decision(b2, c2, Margin(0.05, relative=True)).verdict == WORSE
    assert gate_decision(b2, c2, Margin(0.05)).verdict == NON_INFERIOR


def test_decision_values_bounds_hold():
    rng = np.random.default_rng(5)
    b, c = rng.random(300), rng.random(300)
    for m in (Margin(0.1), Margin(0.2, relative=True)):
        v = decision_values(b, c, m)
        assert v.lower <= v.values.min() and v.values.max() <= v.upper
        if m.relative:
            assert v.values.mean() == pytest.approx(c.mean() - 0.8 * b.mean(), abs=1e-12)
        else:
            assert v.values.mean() + v.shift == pytest.approx(c.mean() - b.mean(), abs=1e-12)


def test_continuous_scores_use_the_bootstrap():
    rng = np.random.default_rng(6)
    b = rng.random(500)
    c = np.clip(b + rng.normal(0.0, 0.05, 500), 0, 1)
    r = gate_decision(b, c, 0.02)
    assert r.method == BOOTSTRAP and r.verdict == NON_INFERIOR
    assert gate_decision(b, c - 0.1, 0.02).verdict == WORSE


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        gate_decision([1, 0], [1], 0.05)
    with pytest.raises(ValueError):
        Margin(-0.1)
    with pytest.raises(ValueError):
        Margin(1.0, relative=True)
    with pytest.raises(ValueError):
        gate_decision([1, float("nan")], [1, 0], 0.05)
    r = gate_decision([], [], 0.05)
    assert r.verdict == UNDECIDED and r.n == 0


def test_samples_needed_formula():
    # (1.96 + 0.8416)^2 * 0.4^2 / 0.05^2 = 502.3 -> 503
    assert samples_needed(0.05, 0.4) == 503
    assert samples_needed(0.0, 0.4) is None
    assert samples_needed(-0.05, 0.4) == 503


# ---------- confidence sequence ----------

def test_hedged_cs_matches_confseq_reference():
    """Numbers produced by confseq 0.0.11's confseq.betting.hedged_cs(x, alpha=0.05) on this very sequence (built
    by hand with pybind11 2.13 and NumPy 1.26; benchmarks/confseq_crosscheck.py)."""
    r = np.random.default_rng(7).random(300)
    d = np.where(r < .08, -1.0, np.where(r < .12, 1.0, 0.0))
    lo, hi = hedged_cs((d + 1) / 2, 0.05)
    ref = {10: (0.221, 0.715), 50: (0.375, 0.534), 100: (0.419, 0.517), 200: (0.433, 0.498), 300: (0.441, 0.496)}
    for t, (l_ref, u_ref) in ref.items():
        assert lo[t - 1] == pytest.approx(l_ref, abs=1e-9) and hi[t - 1] == pytest.approx(u_ref, abs=1e-9), t


def test_confseq_itself_when_installed():
    confseq_betting = pytest.importorskip("confseq.betting")
    x = np.random.default_rng(8).beta(2, 5, 400)
    l0, u0 = confseq_betting.hedged_cs(x, alpha=0.05)
    l1, u1 = hedged_cs(x, 0.05)
    assert np.array_equal(l0, l1) and np.array_equal(u0, u1)


def test_batches_give_the_same_path_as_one_pass():
    x = np.random.default_rng(9).random(500)
    lo, hi = hedged_cs(x)
    cs = HedgedCS()
    parts = [cs.update(x[i:i + k]) for i, k in zip(range(0, 500, 37), [37] * 20)]
    assert np.array_equal(lo, np.concatenate([p[0] for p in parts]))
    assert np.array_equal(hi, np.concatenate([p[1] for p in parts]))
    assert np.all(np.diff(lo) >= 0) and np.all(np.diff(hi) <= 0)  # running intersection


def test_cs_covers_the_true_mean_at_all_times_at_the_advertised_rate():
    """Time-uniform coverage: the CS must contain the true mean at EVERY t <= 400, in >= 95 % of runs. The betting CS
    is conservative, so a much lower miss rate is expected; a bug that breaks validity shows as misses >> 5 %."""
    rng = np.random.default_rng(10)
    p10, p01, runs, missed = 0.12, 0.04, 300, 0
    mu = p01 - p10
    for _ in range(runs):
        u = rng.random(400)
        d = np.where(u < p10, -1.0, np.where(u < p10 + p01, 1.0, 0.0))
        lo, hi = paired_diff_cs(d, 0.05)
        missed += bool(np.any((lo > mu) | (hi < mu)))
    assert missed / runs <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)  # 7.5 %


def test_cs_is_never_narrower_than_the_fixed_n_interval():
    """Anytime validity costs width: at every checked n, the CS is at least as wide as the fixed-n 95 % interval
    on the same data (Bonett-Price). If it were narrower, peeking-free validity could not hold."""
    rng = np.random.default_rng(11)
    u = rng.random(1500)
    d = np.where(u < 0.09, -1.0, np.where(u < 0.16, 1.0, 0.0))
    lo, hi = paired_diff_cs(d, 0.05)
    for n in (20, 50, 100, 300, 1000, 1500):
        k10, k01 = int(np.sum(d[:n] == -1)), int(np.sum(d[:n] == 1))
        _, flo, fhi, _ = bonett_price(k10, k01, n)
        assert hi[n - 1] - lo[n - 1] >= fhi - flo, n


def test_sequential_verdicts():
    rng = np.random.default_rng(12)
    same = np.where(rng.random(3000) < 0.1, rng.choice([-1.0, 1.0], 3000), 0.0)  # identical quality
    r = sequential_decision(same, 0.05)
    assert r.verdict == NON_INFERIOR and r.exit_code == 0 and r.decided_at and r.decided_at < 3000
    assert r.low > -0.05
    damaged = np.where(rng.random(3000) < 0.3, -1.0, 0.0)  # 30 points worse
    r = sequential_decision(damaged, 0.05)
    assert r.verdict == WORSE and r.exit_code == 1 and r.decided_at < 200 and r.high < -0.05
    r = sequential_decision(same[:20], 0.05)
    assert r.verdict == UNDECIDED and r.exit_code == 2 and r.decided_at is None
    assert sequential_decision([], 0.05).verdict == UNDECIDED
    with pytest.raises(ValueError):
        sequential_decision([0.5, 2.0], 0.05)  # outside [-1, 1]: no bounded CS


def test_sequential_gate_margins():
    rng = np.random.default_rng(13)
    b, c = paired_binary(rng, 3000, base_acc=0.8, p10=0.08, p01=0.05)  # 3 points worse
    assert sequential_gate(b, c, Margin(0.10)).verdict == NON_INFERIOR
    assert sequential_gate(b, c, Margin(0.10, relative=True)).verdict == NON_INFERIOR  # 8 points allowed
    r = sequential_gate(b, c, 0.10)
    assert r.verdict == sequential_decision(c - b, 0.10).verdict
    assert r.low == pytest.approx(sequential_decision(c - b, 0.10).low)
    # the sequential verdict never contradicts the truth in an easy case, and needs more data than fixed-n would
    assert gate_decision(b[:r.decided_at], c[:r.decided_at], 0.10).verdict == NON_INFERIOR


def test_peeking_with_the_cs_keeps_the_error_rate():
    """At the boundary (true difference = -margin) any verdict is false. Checking the CS after every batch of 20 up
    to 600 samples: false verdicts <= alpha (plus simulation slack)."""
    rng = np.random.default_rng(14)
    m, runs, false = 0.05, 150, 0
    p10, p01 = (0.16 + m) / 2, (0.16 - m) / 2
    for _ in range(runs):
        u = rng.random(600)
        d = np.where(u < p10, -1.0, np.where(u < p10 + p01, 1.0, 0.0))
        cs = HedgedCS(0.05)
        for i in range(0, 600, 20):
            cs.update((d[i:i + 20] + 1) / 2)
            if 2 * cs.low - 1 > -m or 2 * cs.high - 1 < -m:
                false += 1
                break
    assert false / runs <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)
