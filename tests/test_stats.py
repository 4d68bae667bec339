"""assay.stats.intervals against known values (Wilson from the closed form as published, e.g. Newcombe 1998 / R's
binom::binom.wilson) and bootstrap reproducibility."""

import math

import numpy as np
import pytest

from assay import stats


@pytest.mark.parametrize("k,n,lo,hi", [
    (19, 20, 0.763869, 0.991119),
    (0, 20, 0.0, 0.161130),
    (20, 20, 0.838870, 1.0),
    (10, 20, 0.299298, 0.700702),
    (1, 1, 0.206549, 1.0),
])
def test_wilson_known_values(k, n, lo, hi):
    got = stats.wilson(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-5)
    assert got[1] == pytest.approx(hi, abs=1e-5)


def test_wilson_symmetry_and_edges():
    lo, hi = stats.wilson(3, 17)
    lo2, hi2 = stats.wilson(14, 17)
    assert lo == pytest.approx(1 - hi2) and hi == pytest.approx(1 - lo2)
    assert stats.wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        stats.wilson(5, 4)


def test_wilson_narrows_with_n():
    w = [stats.wilson(n // 2, n) for n in (10, 100, 1000)]
    widths = [b - a for a, b in w]
    assert widths[0] > widths[1] > widths[2]
    # large-n limit: half-width ~ z * sqrt(p(1-p)/n)
    assert widths[2] / 2 == pytest.approx(stats.Z95 * math.sqrt(0.25 / 1000), rel=0.01)


def test_bootstrap_reproducible_with_seed_and_sane():
    rng = np.random.default_rng(1)
    x = rng.normal(10.0, 2.0, size=200)
    a = stats.bootstrap_ci(x, seed=7)
    b = stats.bootstrap_ci(x, seed=7)
    c = stats.bootstrap_ci(x, seed=8)
    assert a == b
    assert a != c
    assert a[0] < x.mean() < a[1]
    # the percentile interval of a mean is close to the normal one: mean ± 1.96 s/sqrt(n)
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert a[0] == pytest.approx(x.mean() - 1.96 * se, abs=0.1)
    assert a[1] == pytest.approx(x.mean() + 1.96 * se, abs=0.1)


def test_bootstrap_degenerate_inputs():
    assert math.isnan(stats.bootstrap_ci([])[0])
    assert stats.bootstrap_ci([3.0]) == (3.0, 3.0)
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)


def test_bootstrap_custom_stat_and_corpus():
    x = [1, 2, 3, 4, 100]
    lo, hi = stats.bootstrap_ci(x, stat=np.median, seed=0)
    assert 1 <= lo <= hi <= 100
    items = [(1, 2), (3, 4), (5, 6), (7, 8)]
    ratio = lambda its: sum(a for a, _ in its) / sum(b for _, b in its)  # noqa: E731 - a corpus-level statistic
    r1 = stats.bootstrap_corpus_ci(items, ratio, seed=3)
    assert r1 == stats.bootstrap_corpus_ci(items, ratio, seed=3)
    assert r1[0] <= ratio(items) <= r1[1]


def test_summaries():
    p = stats.proportion_summary(19, 20)
    assert p["value"] == 0.95 and p["n"] == 20 and p["interval"] == "wilson"
    assert p["low"] == pytest.approx(0.763869, abs=1e-5)
    assert stats.proportion_summary(0, 0)["value"] is None
    m = stats.mean_summary([0.2, 0.4, 0.6], seed=0)
    assert m["value"] == pytest.approx(0.4) and m["n"] == 3 and m["low"] <= 0.4 <= m["high"]
    assert m == stats.mean_summary([0.2, 0.4, 0.6], seed=0)
