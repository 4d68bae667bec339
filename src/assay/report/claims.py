"""Check published claims ("math 95 % (20 Q)") against measured 95 % intervals.

A claims file is YAML:

    model: qwen3-4b-instruct-2507        # which runs the claims are about (matched on the model id's last part)
    source: where the numbers come from
    claims:
      - text: "math 95 % (20 Q)"          # shown as written
        suite: math                       # the assay suite that measures it
        value: 0.95                       # the claimed score (0..1; "95 %" is also accepted)
        n: 20                             # the claim's own sample size, if stated
        category: algebra                 # optional: a category of the suite
        metric: prompt_strict             # optional: a corpus metric of the suite instead of the headline score

Verdicts:
- **consistent**: the claimed value lies inside our 95 % interval for that suite (or category / metric);
- **inconsistent**: it lies outside;
- **not testable**: no run measured that suite (or the category / metric), the measured n is 0, or the claim has no
  number. The claim's own interval (Wilson, when it states n) is shown beside, so a claim on 20 questions reads as
  the ±10-point statement it is.

Example:
    assay compare runs/qwen runs/smol --against-claims src/assay/report/claims/qwen3-4b-instruct-2507.yaml
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assay.errors import DataError
from assay.stats import wilson

CONSISTENT, INCONSISTENT, NOT_TESTABLE = "consistent", "inconsistent", "not testable"


@dataclass
class Claim:
    text: str
    suite: str | None
    value: float | None
    n: int | None = None
    category: str | None = None
    metric: str | None = None


@dataclass
class ClaimCheck:
    claim: Claim
    run: str | None  # label of the run it was checked against
    verdict: str
    measured: float | None = None
    low: float | None = None
    high: float | None = None
    measured_n: int | None = None
    claim_low: float | None = None  # the claim's own Wilson interval when it states n
    claim_high: float | None = None
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _number(v: Any) -> float | None:
    """0.95, 95, "95 %", "95%" -> 0.95; None for anything without a number."""
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        x = float(v)
    else:
        m = re.search(r"-?\d+(?:\.\d+)?", str(v))
        if not m:
            return None
        x = float(m.group())
        if "%" in str(v):
            return x / 100
    return x / 100 if x > 1 else x


def load_claims(path: str | Path) -> tuple[dict, list[Claim]]:
    import yaml

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"claims file {p} not found: pass a YAML file (see docs/report.md)") from None
    except yaml.YAMLError as e:
        raise DataError(f"claims file {p} is not valid YAML: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list):
        raise DataError(f"claims file {p} needs a top-level 'claims:' list (see docs/report.md)")
    claims = []
    for i, c in enumerate(doc["claims"]):
        if not isinstance(c, dict):
            raise DataError(f"claims file {p}: claim {i + 1} is not a mapping")
        unknown = set(c) - {"text", "suite", "value", "n", "category", "metric"}
        if unknown:
            raise DataError(f"claims file {p}: claim {i + 1} has unknown keys {sorted(unknown)}")
        claims.append(Claim(text=str(c.get("text") or f"{c.get('suite')} {c.get('value')}"), suite=c.get("suite"),
                            value=_number(c.get("value")), n=int(c["n"]) if c.get("n") is not None else None,
                            category=c.get("category"), metric=c.get("metric")))
    return {k: v for k, v in doc.items() if k != "claims"}, claims


def check_claim(claim: Claim, card: dict, label: str | None = None) -> ClaimCheck:
    """Check one claim against one run's scorecard (assay.evals.scorecard.summarize output)."""
    cl = cw = None
    if claim.value is not None and claim.n:
        k = min(max(int(round(claim.value * claim.n)), 0), claim.n)
        cl, cw = wilson(k, claim.n)
    out = ClaimCheck(claim=claim, run=label, verdict=NOT_TESTABLE, claim_low=cl, claim_high=cw)
    if claim.value is None:
        out.reason = "the claim states no number"
        return out
    suite = (card.get("suites") or {}).get(claim.suite or "")
    if suite is None:
        out.reason = f"no run measured suite {claim.suite!r}"
        return out
    where = suite
    if claim.category:
        where = (suite.get("categories") or {}).get(claim.category)
        if where is None:
            out.reason = f"suite {claim.suite!r} has no category {claim.category!r}"
            return out
    if claim.metric and claim.metric != suite.get("metric"):
        where = (suite.get("metrics") or {}).get(claim.metric)
        if not isinstance(where, dict):
            out.reason = f"suite {claim.suite!r} has no metric {claim.metric!r}"
            return out
    out.measured, out.low, out.high = where.get("value"), where.get("low"), where.get("high")
    out.measured_n = where.get("n")
    if out.measured is None or out.low is None or out.high is None or not out.measured_n:
        out.reason = "nothing scored (n = 0)"
        return out
    if out.low - 1e-12 <= claim.value <= out.high + 1e-12:
        out.verdict = CONSISTENT
        out.reason = f"{claim.value:.1%} is inside the measured [{out.low:.1%}, {out.high:.1%}] (n = {out.measured_n})"
    else:
        out.verdict = INCONSISTENT
        side = "above" if claim.value > out.high else "below"
        out.reason = (f"{claim.value:.1%} is {side} the measured [{out.low:.1%}, {out.high:.1%}] "
                      f"(n = {out.measured_n})")
    return out


def check_claims(claims: list[Claim], runs: list, meta: dict) -> tuple[list[ClaimCheck], list[str]]:
    """Check every claim against the runs of the claimed model (all runs, with a warning, when none matches)."""
    from assay.common import short_model

    warnings = []
    model = meta.get("model")
    targets = [r for r in runs if model and short_model(model).lower() in r.model.lower()] if model else list(runs)
    if model and not targets:
        warnings.append(f"the claims are about {model!r} but no run is of that model; checking them against every "
                        "run anyway")
        targets = list(runs)
    out = []
    for c in claims:
        for r in targets:
            out.append(check_claim(c, r.card, r.label))
    return out, warnings
