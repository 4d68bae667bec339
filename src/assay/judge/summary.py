"""Judge verdicts as numbers with n and intervals: rubric means and distributions, pairwise win / tie / loss with a
paired interval, position consistency, the judge's agreement with itself across orders (Cohen's kappa), and the
length difference of the answers (judges favour longer ones).

Example:
    from assay.judge.run import judgements
    from assay.judge.summary import pairwise_summary
    print(pairwise_summary(judgements("runs/A", "ab12cd34ef56"))["verdict"])
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable

from assay.stats import bootstrap_ci, cohen_kappa, compare_scores, mean_summary, proportion_summary


def _finite(d: dict) -> dict:
    """NaN (no value to bootstrap) becomes None: the JSON line must stay valid JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def rubric_summary(records: Iterable, scale: tuple[int, int] = (1, 5), seed: int = 0) -> dict:
    """{suite: {...}, "all": {...}}: mean rating with a bootstrap interval over parsed ratings, the distribution,
    unparsed and error counts (both left out of the mean, never scored)."""
    by: dict[str, list] = {}
    for r in records:
        by.setdefault(r.suite, []).append(r)
        by.setdefault("all", []).append(r)
    out = {}
    for suite, recs in by.items():
        vals = [r.value for r in recs if r.status == "ok" and r.value is not None]
        s = _finite(mean_summary(vals, seed=seed))
        dist = Counter(int(v) if float(v).is_integer() else v for v in vals)
        s.update(distribution={str(k): dist.get(k, 0) for k in range(scale[0], scale[1] + 1)},
                 unparsed=sum(r.status == "unparsed" for r in recs), errors=sum(r.status == "error" for r in recs),
                 judged=len(recs))
        out[suite] = s
    return out


def _pairs(records: Iterable) -> dict[tuple[str, str], dict[str, object]]:
    pairs: dict[tuple[str, str], dict[str, object]] = {}
    for r in records:
        pairs.setdefault((r.suite, r.sample_id), {})[r.order] = r
    return pairs


def pairwise_summary(records: Iterable, names: tuple[str, str] = ("A", "B"), *, seed: int = 0,
                     alpha: float = 0.05) -> dict:
    """Both orders per sample -> one outcome: the same winner in both orders wins; a flip (or a win in one order
    and a tie in the other) is a tie; a sample with an order unparsed or failed is left out and counted.

    The paired test runs on per-sample outcomes (A win = 1/0, B win = 0/1, tie = 0/0): the difference is
    (wins - losses) / n with a paired bootstrap interval, and McNemar's exact test on wins vs losses (a sign test)
    gives the verdict."""
    pairs = _pairs(records)
    outcomes, ab, ba, first_pos = [], [], [], []
    len_diff, longer_won, unparsed, errors = [], [], 0, 0
    by_sample = []
    for (suite, sid), d in sorted(pairs.items()):
        x, y = d.get("AB"), d.get("BA")
        if x is None or y is None or "error" in (x.status, y.status):
            errors += 1
            continue
        if "unparsed" in (x.status, y.status):
            unparsed += 1
            continue
        consistent = x.winner == y.winner
        final = x.winner if consistent else "tie"
        outcomes.append(final)
        ab.append(x.winner)
        ba.append(y.winner)
        first_pos += [c for c in (x.choice, y.choice) if c in ("A", "B")]
        chars = x.answer_chars or [0, 0]
        len_diff.append(chars[0] - chars[1])
        if final != "tie" and chars[0] != chars[1]:
            longer_won.append((final == "a") == (chars[0] > chars[1]))
        by_sample.append({"suite": suite, "sample_id": sid, "AB": x.winner, "BA": y.winner, "outcome": final,
                          "consistent": consistent, "len_a": chars[0], "len_b": chars[1]})
    n = len(outcomes)
    wins, losses = outcomes.count("a"), outcomes.count("b")
    res = compare_scores([1.0 if o == "a" else 0.0 for o in outcomes], [1.0 if o == "b" else 0.0 for o in outcomes],
                         binary=True, seed=seed, alpha=alpha, names=names)
    win_rate = [1.0 if o == "a" else 0.5 if o == "tie" else 0.0 for o in outcomes]
    wr = _finite(mean_summary(win_rate, seed=seed))
    cons = sum(1 for a, b in zip(ab, ba) if a == b)
    ld_lo, ld_hi = bootstrap_ci(len_diff, seed=seed) if len_diff else (None, None)
    kappa = cohen_kappa(ab, ba, seed=seed)
    verdict_text = res.verdict if n or not (unparsed or errors) else \
        f"no verdict: {unparsed} sample(s) unparsed, {errors} failed in an order"
    return {
        "n": n, "wins": wins, "ties": n - wins - losses, "losses": losses,
        "unparsed": unparsed, "errors": errors,
        **_finite({"diff": res.diff, "low": res.low, "high": res.high, "p": res.p}), "test": "sign test (exact McNemar)",
        "verdict": verdict_text, "names": list(names),
        "win_rate": wr,  # (wins + ties / 2) / n, bootstrap interval
        "position_consistency": proportion_summary(cons, n),
        "first_position_rate": proportion_summary(first_pos.count("A"), len(first_pos)),  # 0.5 = no position bias
        "self_kappa": kappa.to_dict(),  # order AB vs order BA, labels a / b / tie
        "length_diff_chars": {"value": (sum(len_diff) / len(len_diff)) if len_diff else None, "low": ld_lo,
                              "high": ld_hi, "n": len(len_diff), "interval": "bootstrap"},
        "longer_won": proportion_summary(sum(longer_won), len(longer_won)),
        "samples": by_sample,
    }


def people_agreement(votes: list[dict], records: Iterable, *, seed: int = 0) -> dict:
    """Cohen's kappa between people's arena votes (a / b / tie; "both bad" is a tie) and the judge's two-order
    outcome on the same pairs (a flip is a tie), over the votes the judge answered parsably in both orders."""
    outcome = {s["sample_id"]: s["outcome"] for s in pairwise_summary(records, seed=seed)["samples"]}
    people, judge = [], []
    for v in votes:
        if v["id"] in outcome:
            people.append({"a": "a", "b": "b"}.get(v["vote"], "tie"))
            judge.append(outcome[v["id"]])
    k = cohen_kappa(people, judge, seed=seed)
    agree = sum(p == j for p, j in zip(people, judge))
    return {"kappa": k.to_dict(), "agreement": proportion_summary(agree, len(people)), "n": len(people),
            "votes": len(votes)}
