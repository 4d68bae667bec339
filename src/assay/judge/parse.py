"""Reading a verdict out of a judge's reply. Pure functions, tested on strings (tests/test_judge.py).

The templates ask for ``Rating: [[N]]`` and ``[[A]]`` / ``[[B]]`` / ``[[C]]`` (MT-Bench's formats). Small judges do
not always comply, so a few plain-prose forms are read too ("Rating: 4", "4/5", "I would give it a 4"), but only when
they name **one** value: a reply with two different ratings, or both letters as verdicts, is ambiguous and comes back
unparsed, never as a guess or a default score. A refusal is unparsed with the reason "refusal".

Example:
    >>> parse_rating("Clear and fluent. Rating: [[4]]").value
    4.0
    >>> parse_choice("Both are fine, but [[B]] is more precise.").choice
    'B'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assay.common import split_think


@dataclass(frozen=True)
class Parsed:
    parsed: bool
    value: float | None = None  # rubric rating
    choice: str | None = None  # pairwise: "A" | "B" | "tie" (positions as shown to the judge)
    reason: str = ""  # why unparsed, or which form was read

    def to_dict(self) -> dict:
        return {"parsed": self.parsed, "value": self.value, "choice": self.choice, "reason": self.reason}


_REFUSAL = re.compile(r"\b(i\s*(?:can(?:no|')t|am (?:not able|unable)|won't|will not)|as an ai\b|i'm sorry|"
                      r"i apologi[sz]e|unable to (?:rate|evaluate|judge|determine))", re.I)
_NUM = r"(\d+(?:\.\d+)?)"


def _clean(reply: str | None) -> str:
    text = split_think(reply).answer if reply else ""
    # markdown emphasis around the verdict ("**Rating: [[4]]**", "__[[A]]__") must not hide it
    return re.sub(r"[*_`]+", "", text)


def _one(values: list) -> tuple[object | None, str]:
    distinct = list(dict.fromkeys(values))
    if not distinct:
        return None, "none"
    if len(distinct) > 1:
        return None, "several"
    return distinct[0], "one"


def parse_rating(reply: str | None, scale: tuple[int, int] = (1, 5)) -> Parsed:
    """A 1-5 (or ``scale``) rating: ``[[N]]`` first; else one prose form; out of range or ambiguous: unparsed."""
    text = _clean(reply)
    if not text.strip():
        return Parsed(False, reason="empty reply")
    lo, hi = scale

    def judged(values: list[str], form: str) -> Parsed | None:
        v, how = _one([float(x) for x in values])
        if how == "none":
            return None
        if how == "several":
            return Parsed(False, reason=f"several different ratings ({form}): ambiguous")
        if not lo <= v <= hi:
            return Parsed(False, reason=f"rating {v:g} outside {lo}-{hi}")
        return Parsed(True, value=float(v), reason=form)

    # 1. the asked-for form; "[[4/5]]" and "[[ 4 ]]" count too; "[[rating]]" / "[[N]]" echoed from the prompt do not
    got = judged(re.findall(r"\[\[\s*" + _NUM + r"\s*(?:/\s*\d+)?\s*\]\]", text), "[[N]]")
    if got is not None:
        return got
    # 2. "Rating: 4", "score of 4", "rated 4", "Rating: [4]"
    got = judged(re.findall(r"\b(?:rating|score|grade|rated|rate it)\s*(?:is|of|:|=|-)?\s*\[?\s*" + _NUM
                            + r"(?!\s*(?:%|\d))", text, re.I), "Rating: N")
    if got is not None:
        return got
    # 3. "4/5", "4 out of 5" (only with the scale's own top, so "3/10 of the words" is not read as a rating)
    got = judged(re.findall(_NUM + r"\s*(?:/|out of)\s*" + str(hi) + r"\b", text, re.I), "N/5")
    if got is not None:
        return got
    # 4. "I would give it a 4", "I give this response 3"
    got = judged(re.findall(r"\bgive (?:it|this|the (?:reply|response|answer|translation|code)|this \w+)?\s*"
                            r"(?:a |an )?" + _NUM + r"\b", text, re.I), "give it a N")
    if got is not None:
        return got
    # 5. the whole reply is a number
    m = re.fullmatch(r"\s*" + _NUM + r"\s*\.?\s*", text)
    if m:
        return judged([m.group(1)], "bare number")
    if _REFUSAL.search(text):
        return Parsed(False, reason="refusal")
    return Parsed(False, reason="no rating in the reply")


_LETTER = {"A": "A", "B": "B", "C": "tie", "TIE": "tie"}


def parse_choice(reply: str | None) -> Parsed:
    """A pairwise verdict: ``[[A]]``, ``[[B]]``, ``[[C]]`` / ``[[tie]]``; else one plain form ("Verdict: B",
    "Assistant A is better", "it's a tie"). Two different verdicts: unparsed."""
    text = _clean(reply)
    if not text.strip():
        return Parsed(False, reason="empty reply")

    def judged(letters: list[str], form: str) -> Parsed | None:
        v, how = _one([_LETTER[x.upper()] for x in letters])
        if how == "none":
            return None
        if how == "several":
            return Parsed(False, reason=f"several different verdicts ({form}): ambiguous")
        return Parsed(True, choice=v, reason=form)

    got = judged(re.findall(r"\[\[\s*(A|B|C|tie)\s*\]\]", text, re.I), "[[X]]")
    if got is not None:
        return got
    got = judged(re.findall(r"\b(?:final verdict|verdict|winner|better (?:reply|answer|response))\s*(?:is|:|=)?\s*"
                            r"\[?(?:assistant\s+)?\b(A|B|C|tie)\b\]?", text, re.I), "Verdict: X")
    if got is not None:
        return got
    better = re.findall(r"\bassistant\s+(A|B)(?:'s (?:reply|answer|response))?\s+is\s+(?:clearly\s+|slightly\s+|much\s+)?"
                        r"better\b", text, re.I)
    ties = re.findall(r"\b(it(?:'s| is) a tie|both (?:are|replies are|answers are) (?:equally|equal)|tie)\b", text, re.I)
    got = judged(better + (["tie"] if ties and not better else []), "Assistant X is better")
    if got is not None:
        return got
    if re.fullmatch(r"\s*\[?(A|B|C)\]?\s*\.?\s*", text):
        return judged([text.strip(" .[]")], "bare letter")  # type: ignore[return-value]
    if _REFUSAL.search(text):
        return Parsed(False, reason="refusal")
    return Parsed(False, reason="no verdict in the reply")


def parse(kind: str, reply: str | None, scale: tuple[int, int] | None = None) -> Parsed:
    return parse_rating(reply, scale or (1, 5)) if kind == "rubric" else parse_choice(reply)
