"""Stopping when the answer is known: does looking after every batch keep the error rate, and what does it save?

Simulates paired binary comparisons (base vs candidate on the same questions) with a known true difference and
realistic agreement (the two models disagree on ``--discordant`` of the questions, 16 % by default: a quantised or
fine-tuned variant answers most questions like its base). For each comparison, samples arrive in batches of
``--batch`` and three rules decide non-inferiority at margin ``--margin`` (alpha = 0.05):

- ``cs``        the anytime-valid confidence sequence (assay.stats.sequential: hedged-capital betting CS), checked
                after every batch, stop when it clears -margin either way or the budget ``--budget`` ends;
- ``peek``      the fixed-n 95 % interval (Bonett-Price, assay.stats.gate) re-tested after every batch, stop when it
                clears: what people do by hand, and not valid;
- ``fixed``     the fixed-n interval once, at the n a power calculation gives.

(a) At the boundary (true difference = -margin) every verdict is false, so "decided at all" is the false-decision
rate: the CS must stay <= alpha, peeking goes above. At a true difference of 0 only "worse" is false.
(b) Samples: for each true difference, the CS's power (correct verdict within the budget) and mean samples used, next
to the n of a fixed design with the same power at that difference (normal formula, power checked by simulation), and
next to the fixed design one would plan without knowing the difference (80 % power at a true difference of 0).

Deterministic: every scenario has its own seed. Prints a Markdown table. About 2-3 minutes on one core.

Example:
    python benchmarks/sequential_sim.py
    python benchmarks/sequential_sim.py --reps 500 --budget 1500
"""

from __future__ import annotations

import argparse
import json
import math
import time
from statistics import NormalDist

import numpy as np

from assay.stats.gate import bonett_price, samples_needed
from assay.stats.sequential import HedgedCS

Z = NormalDist().inv_cdf


def draw(rng: np.random.Generator, reps: int, n: int, q: float, delta: float) -> np.ndarray:
    """(reps, n) paired differences candidate - base in {-1, 0, 1}: P(-1) = p10, P(+1) = p01, p01 - p10 = delta,
    p10 + p01 = q (the discordant share). Base accuracy does not enter the difference's law."""
    p10, p01 = (q - delta) / 2, (q + delta) / 2
    if p10 < 0 or p01 < 0:
        raise ValueError(f"discordant share {q} too small for a difference of {delta}")
    u = rng.random((reps, n))
    return np.where(u < p10, -1.0, np.where(u < q, 1.0, 0.0))


def bp_bounds(n10: np.ndarray, n01: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised bonett_price (same formula; checked against it below)."""
    p10, p01 = (n10 + 1) / (n + 2), (n01 + 1) / (n + 2)
    d = p01 - p10
    half = Z(1 - alpha / 2) * np.sqrt(np.maximum(p10 + p01 - d * d, 0)) / math.sqrt(n + 2)
    return np.maximum(-1, d - half), np.minimum(1, d + half)


def run_cs(d: np.ndarray, margin: float, alpha: float, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(verdict, samples used) per replicate: verdict +1 non-inferior, -1 worse, 0 undecided at the budget."""
    reps, budget = d.shape
    verdict, used = np.zeros(reps, int), np.full(reps, budget)
    for r in range(reps):
        cs = HedgedCS(alpha)
        for start in range(0, budget, batch):
            cs.update((d[r, start:start + batch] + 1) / 2)
            lo, hi = 2 * cs.low - 1, 2 * cs.high - 1
            if lo > -margin or hi < -margin:
                verdict[r], used[r] = (1 if lo > -margin else -1), cs.t
                break
    return verdict, used


def run_peek(d: np.ndarray, margin: float, alpha: float, batch: int) -> tuple[np.ndarray, np.ndarray]:
    reps, budget = d.shape
    n10, n01 = np.cumsum(d == -1, axis=1), np.cumsum(d == 1, axis=1)
    verdict, used = np.zeros(reps, int), np.full(reps, budget)
    open_ = np.ones(reps, bool)
    for n in range(batch, budget + 1, batch):
        lo, hi = bp_bounds(n10[:, n - 1], n01[:, n - 1], n, alpha)
        ni, wo = open_ & (lo > -margin), open_ & (hi < -margin)
        verdict[ni], verdict[wo], used[ni | wo] = 1, -1, n
        open_ &= ~(ni | wo)
    return verdict, used


def fixed_power(rng: np.random.Generator, reps: int, n: int, q: float, delta: float, margin: float,
                alpha: float) -> tuple[float, float]:
    """(P(non-inferior), P(worse)) of one Bonett-Price look at n, by simulation (multinomial counts)."""
    p10, p01 = (q - delta) / 2, (q + delta) / 2
    cnt = rng.multinomial(n, [p10, p01, 1 - q], size=reps)
    lo, hi = bp_bounds(cnt[:, 0], cnt[:, 1], n, alpha)
    return float(np.mean(lo > -margin)), float(np.mean(hi < -margin))


def n_for_power(power: float, delta: float, q: float, margin: float, alpha: float) -> int | None:
    """Fixed n with ``power`` at true difference delta: samples_needed with the true per-pair sd."""
    if power <= 0.5:
        return None
    sd = math.sqrt(q - delta * delta)
    return samples_needed(delta + margin, sd, alpha, min(power, 0.9999))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=1000, help="comparisons per scenario (boundary scenario: 2x)")
    ap.add_argument("--budget", type=int, default=2000, help="most paired samples a sequential run may use")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--discordant", type=float, default=0.16, help="share of questions the two models disagree on")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=28)
    args = ap.parse_args()
    m, a, q, B = args.margin, args.alpha, args.discordant, args.budget
    # the vectorised interval is the library's interval
    assert np.allclose(np.ravel(bp_bounds(np.array([3]), np.array([7]), 50, a)), bonett_price(3, 7, 50, a)[1:3])
    t0 = time.time()
    deltas = [-m, 0.0, -2 * m, -3 * m, m]
    n_plan = n_for_power(0.8, 0.0, q, m, a)  # the design one plans without knowing the truth: 80 % at delta = 0
    rows, out = [], []
    for i, delta in enumerate(deltas):
        reps = 2 * args.reps if delta == -m else args.reps
        rng = np.random.default_rng([args.seed, i])
        d = draw(rng, reps, B, q, delta)
        v_cs, n_cs = run_cs(d, m, a, args.batch)
        v_pk, n_pk = run_peek(d, m, a, args.batch)
        f_ni, f_wo = fixed_power(rng, 20000, n_plan, q, delta, m, a)
        r = dict(delta=delta, reps=reps,
                 cs_ni=float(np.mean(v_cs == 1)), cs_worse=float(np.mean(v_cs == -1)), cs_n=float(n_cs.mean()),
                 cs_n_median=float(np.median(n_cs)),
                 peek_ni=float(np.mean(v_pk == 1)), peek_worse=float(np.mean(v_pk == -1)), peek_n=float(n_pk.mean()),
                 plan_n=n_plan, plan_ni=f_ni, plan_worse=f_wo)
        if delta != -m:  # a right answer exists: power, and the fixed n with the same power
            power = r["cs_ni"] if delta > -m else r["cs_worse"]
            # a power of 100 % in `reps` runs is read as 1 - 1/reps (what the runs can show), not as certainty
            n_same = n_for_power(min(power, 1 - 1 / reps), delta, q, m, a)
            r["cs_power"] = power
            r["fixed_same_power_n"] = n_same
            if n_same:
                s_ni, s_wo = fixed_power(rng, 20000, n_same, q, delta, m, a)
                r["fixed_same_power_check"] = s_ni if delta > -m else s_wo
        out.append(r)
        print(f"# delta={delta:+.2f} done ({time.time() - t0:.0f} s)", flush=True)

    print(f"\nPaired binary scores, {q:.0%} discordant, margin {m:g}, alpha {a:g}, batches of {args.batch}, "
          f"budget {B}; fixed design planned for 80 % power at a true difference of 0: n = {n_plan}.\n")
    print("(a) False decisions (at delta = -margin every verdict is false; at delta = 0 only 'worse' is)\n")
    print("| true diff | comparisons | CS, checked every batch | fixed-n interval re-tested every batch "
          "| fixed-n interval once (n = %d) |" % n_plan)
    print("|---|---|---|---|---|")
    for r in out:
        if r["delta"] in (-m, 0.0):
            if r["delta"] == -m:
                cs, pk, fx = r["cs_ni"] + r["cs_worse"], r["peek_ni"] + r["peek_worse"], r["plan_ni"] + r["plan_worse"]
            else:
                cs, pk, fx = r["cs_worse"], r["peek_worse"], r["plan_worse"]
            print(f"| {r['delta']:+.2f} | {r['reps']} | {cs:.2%} | {pk:.2%} | {fx:.2%} |")
    print("\n(b) Samples: CS (budget %d) against a fixed design of the same power, and against the planned design\n" % B)
    print("| true diff | right verdict | CS power | CS mean n (median) | fixed n, same power (checked power) "
          "| saved | planned fixed n = %d: power |" % n_plan)
    print("|---|---|---|---|---|---|---|")
    for r in out:
        if r["delta"] == -m:
            continue
        right = "non_inferior" if r["delta"] > -m else "worse"
        ns = r.get("fixed_same_power_n")
        saved = f"{1 - r['cs_n'] / ns:+.0%}" if ns else "n/a"
        chk = f"{ns} ({r['fixed_same_power_check']:.1%})" if ns else "n/a"
        plan_pow = r["plan_ni"] if r["delta"] > -m else r["plan_worse"]
        print(f"| {r['delta']:+.2f} | {right} | {r['cs_power']:.1%} | {r['cs_n']:.0f} ({r['cs_n_median']:.0f}) "
              f"| {chk} | {saved} | {plan_pow:.1%} |")
    print(f"\n{time.time() - t0:.0f} s")
    print(json.dumps({"args": vars(args), "rows": out}))


if __name__ == "__main__":
    main()
