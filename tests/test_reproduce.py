"""benchmarks/reproduce.py's GSM8K readings against lm-eval's own filters and metric (registry package).

The benchmark reports, beside assay's math scorer, lm-eval's ``strict-match`` and ``flexible-extract`` verdicts for
the same replies (lm_eval/tasks/gsm8k/gsm8k.yaml: a regex filter, take_first, then exact_match with its
regexes_to_ignore and ignore_case). These must be lm-eval's verdicts exactly, on replies chosen to hit the rules'
corners: several "####" lines, commas and dollars, a trailing period, negatives, decimals, no number at all.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

REPLIES = [
    "Janet has 16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\n#### 18",
    "#### 18\nQuestion: how many? Answer: #### 20",  # a continued exemplar: strict takes the first
    "so the total is $1,234.",
    "#### 1,234",
    "The answer is 18.",
    "It costs $18.00 in all",
    "#### -5",
    "She lost 5 dollars, so -5",
    "#### 18.",
    "no digits here",
    "",
    "#### 0.5",
    "about .5 of it",
    "Answer: 7 apples and 3 pears",
    "18\n\n18\n#### 18 dollars",
    "#### $18",
]
GOLDS = ["18", "1234", "-5", "0.5", "7", "3"]


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "benchmarks" / "reproduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _lm_eval_verdicts(reply: str, gold_answer: str) -> tuple[bool, bool]:
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter
    from lm_eval.filters.selection import TakeFirstFilter

    ignore = [",", "\\$", "(?s).*#### ", "\\.$"]
    out = []
    for pattern, group in (("#### (\\-?[0-9\\.\\,]+)", 0), ("(-?[$0-9.,]{2,})|(-?[0-9]+)", -1)):
        filtered = list(TakeFirstFilter().apply(RegexFilter(pattern, group).apply([[reply]], [{}]), [{}]))
        em = exact_match_hf_evaluate(predictions=filtered, references=[gold_answer], regexes_to_ignore=ignore,
                                     ignore_case=True)["exact_match"]
        out.append(bool(em == 1.0))
    return out[0], out[1]


def test_gsm8k_readings_are_lm_evals_verdicts(reproduce, lm_eval_readers):
    checked = hits = 0
    for reply in REPLIES:
        for gold in GOLDS:
            # lm-eval's gold is the worked answer; assay stores the number after "####" (commas removed)
            ours = reproduce.lm_eval_gsm8k(reply, gold)
            theirs = _lm_eval_verdicts(reply, f"some working\n#### {gold}")
            assert ours == theirs, (reply, gold, ours, theirs)
            checked += 1
            hits += sum(ours)
    assert checked == len(REPLIES) * len(GOLDS) and hits >= 15  # the cases do match as well as miss
