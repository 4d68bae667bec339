"""IFEval-style verifiable instructions: text helpers, one checker per instruction id, and their registry.

The instruction ids and keyword arguments are those of the official IFEval data (google-research
``instruction_following_eval``, Apache-2.0; data CC BY 4.0), so the published ``ifeval_input_data.jsonl`` is checked by
the same functions as the items assay composes itself. ``check``/``check_loose`` take ``rules``: "reference" (the
default) gives the reference implementation's verdicts (``assay.evals.ifeval_reference``: NLTK punkt, regex keywords,
its quirks); "assay" uses the checkers below, written from the published intent with no NLTK (markdown-aware counting,
no "undetectable language counts as a pass"). docs/suites-ifeval.md lists every difference.

Example:
    >>> from assay.evals.ifeval_checks import check, check_loose
    >>> check("punctuation:no_comma", "No commas here.", {})
    True
    >>> check("detectable_format:title", "**<<Ode to Tea>>**\\nSteam rises.", {})
    True
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Callable

# --------------------------------------------------------------------------------------------------------------------
# Text helpers (our own splitting: no NLTK data downloads)

# A word: letters/digits, joined through internal apostrophes or hyphens ("don't", "well-known" are one word each);
# a number keeps its decimal point or thousands comma ("3.14", "1,000" are one word each).
_WORD_RE = re.compile(r"[^\W_]+(?:(?:['’\-]|(?<=\d)[.,](?=\d))[^\W_]+)*")

# Tokens that end with "." without ending a sentence. Compared lower-case, without the final dot.
_ABBREVIATIONS = frozenset("""
mr mrs ms dr prof sr jr st vs etc e.g i.e inc ltd co no fig approx dept est gov mt jan feb mar apr jun jul aug sep
sept oct nov dec u.s u.k a.m p.m ph.d cf al
""".split())

# Western stops need whitespace after them; CJK full stops do not (those scripts put no space between sentences).
_SENTENCE_END_RE = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s|$)|[。！？]+[」』”）]*")
_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t]*\n")


def words(text: str) -> list[str]:
    """Words of ``text`` (unicode-aware; hyphenated and apostrophe words count once; punctuation never counts)."""
    return _WORD_RE.findall(text)


def count_words(text: str) -> int:
    return len(words(text))


def split_sentences(text: str) -> list[str]:
    """Split into sentences: a run of . ! ? … (plus closing quotes/brackets) followed by whitespace ends a sentence,
    except after a known abbreviation ("Dr.", "e.g.") or a single-letter initial ("J. K. Rowling"), or an ellipsis
    followed by a lower-case word ("It rained... and rained."); a blank line also
    ends one. Decimals ("3.14") and URLs never split because no whitespace follows their dots. Pieces without a letter
    or digit (a lone "***", "- ") are not sentences."""
    out: list[str] = []
    for block in _PARAGRAPH_BREAK_RE.split(text):
        start = 0
        for m in _SENTENCE_END_RE.finditer(block):
            if m.group(0).rstrip("\"'”’)]") == ".":
                # The token right before a single dot: an abbreviation or an initial does not end the sentence.
                before = re.search(r"([\w.]+)$", block[start:m.start()])
                token = before.group(1).lower() if before else ""
                if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
                    continue
            elif m.group(0).startswith(("..", "…")) and re.match(r"\s+[a-z]", block[m.end():]):
                continue  # "It rained... and rained." is one sentence: an ellipsis before lower case trails off
            out.append(block[start:m.end()])
            start = m.end()
        out.append(block[start:])
    return [s.strip() for s in out if re.search(r"[^\W_]", s)]


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs separated by one or more blank lines (a line holding only spaces counts as blank)."""
    return [p for p in _PARAGRAPH_BREAK_RE.split(text.strip()) if p.strip()]


# --------------------------------------------------------------------------------------------------------------------
# Language detection (langdetect, made deterministic)

_LANGDETECT_READY = False


def detect_language(text: str) -> str | None:
    """ISO 639-1 code from langdetect (seeded, so the same text always gives the same answer); None when undetectable.

    Raises PrerequisiteError when langdetect is not installed."""
    global _LANGDETECT_READY
    try:
        from langdetect import DetectorFactory, detect
        from langdetect.lang_detect_exception import LangDetectException
    except ImportError as exc:  # pragma: no cover - langdetect is a declared dependency
        from assay.errors import PrerequisiteError

        raise PrerequisiteError("the ifeval language checks need langdetect: pip install langdetect") from exc
    if not _LANGDETECT_READY:
        DetectorFactory.seed = 0
        _LANGDETECT_READY = True
    try:
        return detect(text)
    except LangDetectException:
        return None


# ISO 639-1 code -> name, as used by IFEval's response_language prompts (plus a few more for generation/description).
LANGUAGES = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi", "fr": "French",
    "ru": "Russian", "de": "German", "ja": "Japanese", "it": "Italian", "bn": "Bengali", "uk": "Ukrainian",
    "th": "Thai", "ur": "Urdu", "ta": "Tamil", "te": "Telugu", "bg": "Bulgarian", "ko": "Korean", "pl": "Polish",
    "he": "Hebrew", "fa": "Persian", "vi": "Vietnamese", "ne": "Nepali", "sw": "Swahili", "kn": "Kannada",
    "mr": "Marathi", "gu": "Gujarati", "pa": "Punjabi", "ml": "Malayalam", "fi": "Finnish", "nl": "Dutch",
}

# --------------------------------------------------------------------------------------------------------------------
# Relations

RELATIONS: dict[str, Callable[[int, int], bool]] = {
    "less than": lambda n, k: n < k,
    "at least": lambda n, k: n >= k,
    "at most": lambda n, k: n <= k,
    "more than": lambda n, k: n > k,
    "exactly": lambda n, k: n == k,
}


def _compare(n: int, relation: str, k: int) -> bool:
    try:
        return RELATIONS[relation](n, int(k))
    except KeyError:
        raise ValueError(f"relation must be one of {', '.join(RELATIONS)}, got {relation!r}") from None


# --------------------------------------------------------------------------------------------------------------------
# Checkers: check(response, **kwargs) -> bool. Each is pure and never raises on odd text.


def _lang_is(text: str, code: str) -> bool:
    got = detect_language(text)
    # langdetect reports Chinese as zh-cn / zh-tw; accept "zh" for either.
    return got is not None and (got == code or got.split("-")[0] == code)


def check_response_language(r: str, *, language: str) -> bool:
    # Deviation: the reference counts an undetectable text (no letters at all) as a pass; here it fails.
    return _lang_is(r, language)


def check_number_sentences(r: str, *, num_sentences: int, relation: str) -> bool:
    return _compare(count_sentences(r), relation, num_sentences)


def check_number_placeholders(r: str, *, num_placeholders: int) -> bool:
    # [name] counts; "[]" and markdown links "[text](url)" do not.
    return len(re.findall(r"\[[^\[\]\n]*[^\s\[\]][^\[\]\n]*\](?!\()", r)) >= int(num_placeholders)


_BULLET_RE = re.compile(r"^[ \t]*[*\-+•][ \t]+\S", re.MULTILINE)


def check_number_bullet_lists(r: str, *, num_bullets: int) -> bool:
    # Markdown bullets: "* x", "- x", "+ x", "• x". A rule line ("---", "***") or "**bold**" at line start is no bullet.
    return len(_BULLET_RE.findall(r)) == int(num_bullets)


_CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def check_constrained_response(r: str) -> bool:
    return any(opt in r.strip() for opt in _CONSTRAINED_OPTIONS)


_DOUBLE_HL_RE = re.compile(r"(?<!\*)\*\*(?=\S)([^\n*]+?)(?<=\S)\*\*(?!\*)")
_SINGLE_HL_RE = re.compile(r"(?<!\*)\*(?=[^\s*])([^\n*]+?)(?<=[^\s*])\*(?!\*)")


def highlights(r: str) -> list[str]:
    """Markdown emphasis spans, *x* or **x**, on one line; "2 * 3 * 4" and bullet stars are not emphasis."""
    found = _DOUBLE_HL_RE.findall(r)
    found += _SINGLE_HL_RE.findall(_DOUBLE_HL_RE.sub(" ", r))
    return [h for h in found if h.strip()]


def check_number_highlighted_sections(r: str, *, num_highlights: int) -> bool:
    return len(highlights(r)) >= int(num_highlights)


def check_multiple_sections(r: str, *, num_sections: int, section_spliter: str = "SECTION") -> bool:
    # A section starts a line with the marker and a number ("SECTION 1", "## Section 2", "**SECTION 3**").
    # The marker is case-sensitive as in the reference ("SECTION" asks for capitals).
    marker = re.escape(section_spliter.strip())
    found = re.findall(rf"^[ \t#*_>]*{marker}[ \t]*\d+", r, flags=re.MULTILINE)
    return len(found) >= int(num_sections)


_DIVIDER_RE = re.compile(r"^[ \t]*\*[ \t]*\*[ \t]*\*[ \t*]*$", re.MULTILINE)


def check_number_paragraphs(r: str, *, num_paragraphs: int) -> bool:
    # Paragraphs separated by a markdown divider line "***"; an empty paragraph between two dividers fails.
    parts = _DIVIDER_RE.split(r)
    if parts and not parts[0].strip():
        parts = parts[1:]
    if parts and not parts[-1].strip():
        parts = parts[:-1]
    if any(not p.strip() for p in parts):
        return False
    return len(parts) == int(num_paragraphs)


def _first_word(paragraph: str) -> str:
    m = _WORD_RE.search(paragraph)
    return m.group(0).lower() if m else ""


def check_nth_paragraph_first_word(r: str, *, num_paragraphs: int, nth_paragraph: int, first_word: str) -> bool:
    paras = split_paragraphs(r)
    n = int(nth_paragraph)
    if len(paras) != int(num_paragraphs) or not 1 <= n <= len(paras):
        return False
    return _first_word(paras[n - 1]) == first_word.strip().lower()


_POSTSCRIPT_PATTERNS = {
    "P.S.": r"^[ \t*_]*p\.[ \t]?s\.",
    "P.P.S": r"^[ \t*_]*p\.[ \t]?p\.[ \t]?s\b",
}


def check_postscript(r: str, *, postscript_marker: str = "P.S.") -> bool:
    marker = postscript_marker.strip()
    pattern = _POSTSCRIPT_PATTERNS.get(marker, r"^[ \t*_]*" + re.escape(marker.lower()))
    return re.search(pattern, r.lower(), flags=re.MULTILINE) is not None


def check_keywords_existence(r: str, *, keywords: list[str]) -> bool:
    # Substring, case-insensitive, as the reference does ("hive" is found in "hives").
    low = r.lower()
    return all(k.strip().lower() in low for k in keywords)


def check_keyword_frequency(r: str, *, keyword: str, frequency: int, relation: str) -> bool:
    n = len(re.findall(re.escape(keyword.strip()), r, flags=re.IGNORECASE))
    return _compare(n, relation, frequency)


def check_forbidden_words(r: str, *, forbidden_words: list[str]) -> bool:
    # Whole words only: forbidding "cat" does not forbid "category".
    return not any(re.search(rf"(?<!\w){re.escape(w.strip())}(?!\w)", r, flags=re.IGNORECASE)
                   for w in forbidden_words)


def check_letter_frequency(r: str, *, letter: str, let_frequency: int, let_relation: str) -> bool:
    return _compare(r.lower().count(letter.strip().lower()), let_relation, let_frequency)


def check_number_words(r: str, *, num_words: int, relation: str) -> bool:
    return _compare(count_words(r), relation, num_words)


_FENCE_RE = re.compile(r"^```[ \t]*(?:json)?[ \t]*\n?(.*?)\n?```$", re.DOTALL | re.IGNORECASE)


def check_json_format(r: str) -> bool:
    text = r.strip()
    m = _FENCE_RE.match(text)
    if m:
        text = m.group(1).strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def check_two_responses(r: str) -> bool:
    parts = r.split("******")
    kept = []
    for i, p in enumerate(parts):
        if not p.strip():
            if 0 < i < len(parts) - 1:
                return False
        else:
            kept.append(p.strip())
    return len(kept) == 2 and kept[0] != kept[1]


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def check_repeat_prompt(r: str, *, prompt_to_repeat: str) -> bool:
    # Case- and whitespace-insensitive (a re-wrapped line is still a word-for-word repeat).
    return _squash(r).startswith(_squash(prompt_to_repeat))


def check_end_phrase(r: str, *, end_phrase: str) -> bool:
    return r.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def check_start_phrase(r: str, *, start_phrase: str) -> bool:
    body = r.strip().lstrip("\"'“*_# ").lower()
    return body.startswith(start_phrase.strip().lower())


def check_title(r: str) -> bool:
    return any(t.strip() for t in re.findall(r"<<([^\n<>]+)>>", r))


def check_english_capital(r: str) -> bool:
    return r.isupper() and _lang_is(r, "en")


def check_english_lowercase(r: str) -> bool:
    return r.islower() and _lang_is(r, "en")


def check_no_comma(r: str) -> bool:
    return "," not in r and "，" not in r


def check_capital_word_frequency(r: str, *, capital_frequency: int, capital_relation: str) -> bool:
    return _compare(sum(1 for w in words(r) if w.isupper()), capital_relation, capital_frequency)


def check_quotation(r: str) -> bool:
    s = r.strip()
    return len(s) > 1 and ((s[0] == '"' and s[-1] == '"') or (s[0] == "“" and s[-1] == "”"))


_NUMBERED_RE = re.compile(r"^[ \t]*\d+[.)][ \t]+\S", re.MULTILINE)


def check_numbered_list(r: str, *, num_items: int) -> bool:
    return len(_NUMBERED_RE.findall(r)) == int(num_items)


def check_number_characters(r: str, *, num_chars: int, relation: str) -> bool:
    return _compare(len(r.strip()), relation, num_chars)


def check_no_digits(r: str) -> bool:
    return not re.search(r"\d", r)


# --------------------------------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class Instruction:
    id: str  # official IFEval id, e.g. "length_constraints:number_words"
    check: Callable[..., bool]
    describe: Callable[..., str]  # kwargs -> the sentence put in a composed prompt
    sample: Callable[..., dict]  # (rng, topic, used_words) -> kwargs, for composed items
    required: tuple[str, ...] = ()  # kwargs the checker needs
    optional: tuple[str, ...] = ()  # kwargs it accepts
    official: bool = True  # False: an assay addition, not in the published IFEval registry
    kwarg_types: dict = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.id.split(":", 1)[0]


def _pick_words(rng: random.Random, topic: dict, used: set, k: int) -> list[str]:
    pool = [w for w in topic.get("words", []) if w not in used] or [w for w in _SPARE_WORDS if w not in used]
    chosen = rng.sample(pool, min(k, len(pool)))
    used.update(chosen)
    return sorted(chosen)


_SPARE_WORDS = ["window", "river", "lantern", "garden", "morning", "bridge", "pocket", "silver"]
_FIRST_WORDS = ["today", "however", "first", "finally", "imagine", "overall", "sometimes", "next"]
_END_PHRASES = ["Any other questions?", "Is there anything else I can help with?", "That is all for now.",
                "Let me know if you have additional questions.", "Thanks for reading!"]
_START_PHRASES = ["In short", "Here is my answer", "To begin with", "Dear reader"]
_GEN_LANGUAGES = ["es", "fr", "de", "it", "pt", "nl"]


def _rel(rng: random.Random) -> str:
    return rng.choice(["less than", "at least"])


def _words_kwargs(rng, topic, used):
    rel = _rel(rng)
    return {"relation": rel, "num_words": rng.choice([40, 60, 80, 100] if rel == "at least" else [50, 80, 120, 150])}


def _sentences_kwargs(rng, topic, used):
    rel = _rel(rng)
    return {"relation": rel, "num_sentences": rng.randint(2, 6) if rel == "at least" else rng.randint(3, 8)}


def _letter_kwargs(rng, topic, used):
    rel = _rel(rng)
    # "less than" uses rare letters so that it can hold together with a length instruction.
    if rel == "less than":
        return {"letter": rng.choice("qxzj"), "let_frequency": rng.randint(2, 4), "let_relation": rel}
    return {"letter": rng.choice("aeinorst"), "let_frequency": rng.randint(5, 15), "let_relation": rel}


def _capital_kwargs(rng, topic, used):
    rel = _rel(rng)
    return {"capital_relation": rel,
            "capital_frequency": rng.randint(2, 8) if rel == "at least" else rng.randint(2, 5)}


def _freq_kwargs(rng, topic, used):
    rel = _rel(rng)
    return {"keyword": _pick_words(rng, topic, used, 1)[0], "relation": rel,
            "frequency": rng.randint(2, 4) if rel == "at least" else rng.randint(2, 3)}


def _nth_kwargs(rng, topic, used):
    n = rng.randint(2, 4)
    return {"num_paragraphs": n, "nth_paragraph": rng.randint(1, n), "first_word": rng.choice(_FIRST_WORDS)}


def _none(rng, topic, used):
    return {}


def _pl(n, one: str, many: str) -> str:
    return f"{n} {one if int(n) == 1 else many}"


REGISTRY: dict[str, Instruction] = {}


def _register(inst: Instruction) -> None:
    REGISTRY[inst.id] = inst


_register(Instruction(
    "keywords:existence", check_keywords_existence,
    lambda keywords: f"Include the keywords {', '.join(repr(k) for k in keywords)} in your response.",
    lambda rng, topic, used: {"keywords": _pick_words(rng, topic, used, 2)}, required=("keywords",)))
_register(Instruction(
    "keywords:frequency", check_keyword_frequency,
    lambda keyword, frequency, relation: f"In your response, the word '{keyword}' should appear {relation} "
                                         f"{_pl(frequency, 'time', 'times')}.",
    _freq_kwargs, required=("keyword", "frequency", "relation")))
_register(Instruction(
    "keywords:forbidden_words", check_forbidden_words,
    lambda forbidden_words: "Do not use the words " + " or ".join(repr(w) for w in forbidden_words)
                            + " anywhere in your response.",
    lambda rng, topic, used: {"forbidden_words": _pick_words(rng, topic, used, 2)}, required=("forbidden_words",)))
_register(Instruction(
    "keywords:letter_frequency", check_letter_frequency,
    lambda letter, let_frequency, let_relation: f"In your response, the letter '{letter}' should appear "
                                                f"{let_relation} {_pl(let_frequency, 'time', 'times')}.",
    _letter_kwargs, required=("letter", "let_frequency", "let_relation")))
_register(Instruction(
    "language:response_language", check_response_language,
    lambda language: f"Your ENTIRE response must be in {LANGUAGES.get(language, language)} and no other language.",
    lambda rng, topic, used: {"language": rng.choice(_GEN_LANGUAGES)}, required=("language",)))
_register(Instruction(
    "length_constraints:number_sentences", check_number_sentences,
    lambda num_sentences, relation: f"Your response should contain {relation} "
                                    f"{_pl(num_sentences, 'sentence', 'sentences')}.",
    _sentences_kwargs, required=("num_sentences", "relation")))
_register(Instruction(
    "length_constraints:number_paragraphs", check_number_paragraphs,
    lambda num_paragraphs: f"Write exactly {_pl(num_paragraphs, 'paragraph', 'paragraphs')}, separated from each "
                           "other by the markdown divider *** on its own line.",
    lambda rng, topic, used: {"num_paragraphs": rng.randint(2, 4)}, required=("num_paragraphs",)))
_register(Instruction(
    "length_constraints:number_words", check_number_words,
    lambda num_words, relation: f"Answer with {relation} {_pl(num_words, 'word', 'words')}.",
    _words_kwargs, required=("num_words", "relation")))
_register(Instruction(
    "length_constraints:nth_paragraph_first_word", check_nth_paragraph_first_word,
    lambda num_paragraphs, nth_paragraph, first_word:
        f"Write exactly {_pl(num_paragraphs, 'paragraph', 'paragraphs')} separated by blank lines (and only "
        f"paragraphs are separated by blank lines). Paragraph {nth_paragraph} must start with the word '{first_word}'.",
    _nth_kwargs, required=("num_paragraphs", "nth_paragraph", "first_word")))
_register(Instruction(
    "detectable_content:number_placeholders", check_number_placeholders,
    lambda num_placeholders: f"Include at least {_pl(num_placeholders, 'placeholder', 'placeholders')} in square "
                             "brackets, such as [address].",
    lambda rng, topic, used: {"num_placeholders": rng.randint(1, 4)}, required=("num_placeholders",)))
_register(Instruction(
    "detectable_content:postscript", check_postscript,
    lambda postscript_marker: f"At the end of your response add a postscript that starts with \"{postscript_marker}\".",
    lambda rng, topic, used: {"postscript_marker": rng.choice(["P.S.", "P.P.S"])}, required=("postscript_marker",)))
_register(Instruction(
    "detectable_format:number_bullet_lists", check_number_bullet_lists,
    lambda num_bullets: f"Your answer must contain exactly {_pl(num_bullets, 'bullet point', 'bullet points')} "
                        "in markdown, each line starting with '* '.",
    lambda rng, topic, used: {"num_bullets": rng.randint(2, 5)}, required=("num_bullets",)))
_register(Instruction(
    "detectable_format:constrained_response", check_constrained_response,
    lambda: "Answer with one of the following options: My answer is yes. / My answer is no. / My answer is maybe.",
    _none))
_register(Instruction(
    "detectable_format:number_highlighted_sections", check_number_highlighted_sections,
    lambda num_highlights: f"Highlight at least {_pl(num_highlights, 'section', 'sections')} of your answer with "
                           "markdown, i.e. *highlighted section*.",
    lambda rng, topic, used: {"num_highlights": rng.randint(1, 4)}, required=("num_highlights",)))
_register(Instruction(
    "detectable_format:multiple_sections", check_multiple_sections,
    lambda num_sections, section_spliter: f"Your response must have {num_sections} sections. Begin each section "
                                          f"on its own line with {section_spliter} X, such as {section_spliter} 1.",
    lambda rng, topic, used: {"num_sections": rng.randint(2, 4), "section_spliter": rng.choice(["SECTION", "Section"])},
    required=("num_sections", "section_spliter")))
_register(Instruction(
    "detectable_format:json_format", check_json_format,
    lambda: "Wrap your entire output in JSON format; you may use markdown ticks such as ```.", _none))
_register(Instruction(
    "detectable_format:title", check_title,
    lambda: "Your answer must contain a title wrapped in double angular brackets, such as <<poem of joy>>.", _none))
_register(Instruction(
    "combination:two_responses", check_two_responses,
    lambda: "Give two different responses. Responses and only responses should be separated by 6 asterisk "
            "symbols: ******.", _none))
_register(Instruction(
    "combination:repeat_prompt", check_repeat_prompt,
    lambda prompt_to_repeat: "First repeat the request above word for word without change, then give your answer "
                             "(do not say anything before repeating the request; the request to repeat does not "
                             "include this sentence).",
    _none, required=("prompt_to_repeat",)))
_register(Instruction(
    "startend:end_checker", check_end_phrase,
    lambda end_phrase: f"Finish your response with this exact phrase: {end_phrase} No other words should follow it.",
    lambda rng, topic, used: {"end_phrase": rng.choice(_END_PHRASES)}, required=("end_phrase",)))
_register(Instruction(
    "startend:quotation", check_quotation,
    lambda: "Wrap your entire response with double quotation marks.", _none))
_register(Instruction(
    "change_case:capital_word_frequency", check_capital_word_frequency,
    lambda capital_frequency, capital_relation: "In your response, words written in ALL CAPITAL letters should "
                                                f"appear {capital_relation} {capital_frequency} times.",
    _capital_kwargs, required=("capital_frequency", "capital_relation")))
_register(Instruction(
    "change_case:english_capital", check_english_capital,
    lambda: "Your entire response should be in English and in all capital letters.", _none))
_register(Instruction(
    "change_case:english_lowercase", check_english_lowercase,
    lambda: "Your entire response should be in English and in all lowercase letters. No capital letters are allowed.",
    _none))
_register(Instruction(
    "punctuation:no_comma", check_no_comma,
    lambda: "Do not use any commas in your entire response.", _none))
# assay additions (not in the published IFEval registry; never present in the official data)
_register(Instruction(
    "startend:start_checker", check_start_phrase,
    lambda start_phrase: f"Begin your response with the exact words '{start_phrase}'.",
    lambda rng, topic, used: {"start_phrase": rng.choice(_START_PHRASES)}, required=("start_phrase",), official=False))
_register(Instruction(
    "detectable_format:numbered_list", check_numbered_list,
    lambda num_items: f"Include a numbered list with exactly {_pl(num_items, 'item', 'items')} (1. 2. ...).",
    lambda rng, topic, used: {"num_items": rng.randint(2, 5)}, required=("num_items",), official=False))
_register(Instruction(
    "length_constraints:number_characters", check_number_characters,
    lambda num_chars, relation: f"Your response should be {relation} {num_chars} characters long.",
    lambda rng, topic, used: (lambda rel: {"relation": rel, "num_chars": rng.choice(
        [200, 300, 400] if rel == "at least" else [300, 500, 800])})(_rel(rng)),
    required=("num_chars", "relation"), official=False))
_register(Instruction(
    "detectable_content:no_digits", check_no_digits,
    lambda: "Do not use any digits (0-9) in your response; write numbers out in words.", _none, official=False))


# --------------------------------------------------------------------------------------------------------------------
# Kwargs validation, strict and loose checking


class UnsupportedInstruction(ValueError):
    pass


# How the official ids are checked. "reference" (default): the verdicts of the reference implementation, quirks
# included (``assay.evals.ifeval_reference``), so numbers compare with published IFEval numbers. "assay": the stricter,
# markdown-aware rules of this module (differences listed in docs/suites-ifeval.md). The four assay additions
# (``official=False``) have no reference and use this module's checkers under both.
RULES = ("reference", "assay")
DEFAULT_RULES = "reference"


def check_rules(rules: str) -> str:
    if rules not in RULES:
        raise ValueError(f"ifeval rules={rules!r} is not one of {', '.join(RULES)}: pass --suite-opt rules=reference "
                         "(published IFEval verdicts, the default) or --suite-opt rules=assay (assay's stricter rules)")
    return rules


def _reference(instruction_id: str, rules: str) -> bool:
    return check_rules(rules) == "reference" and REGISTRY[instruction_id].official


def clean_kwargs(instruction_id: str, kwargs: dict | None, rules: str = DEFAULT_RULES) -> dict:
    """Drop None values (the HF copy of IFEval pads every item with all keys set to null) and check the remaining
    keys against what the checker takes; under reference rules, also that the reference would build the checker
    without raising or drawing a random value. Raises UnsupportedInstruction / ValueError with a clear message."""
    inst = REGISTRY.get(instruction_id)
    if inst is None:
        raise UnsupportedInstruction(f"unsupported instruction id {instruction_id!r}")
    kw = {k: v for k, v in (kwargs or {}).items() if v is not None}
    allowed = set(inst.required) | set(inst.optional)
    extra = set(kw) - allowed
    missing = set(inst.required) - set(kw)
    if extra or missing:
        raise ValueError(f"{instruction_id}: kwargs {sorted(kw)} do not fit the checker "
                         f"(missing {sorted(missing)}, unexpected {sorted(extra)})")
    for name in ("relation", "let_relation", "capital_relation"):
        if name in kw and kw[name] not in RELATIONS:
            raise ValueError(f"{instruction_id}: {name} must be one of {', '.join(RELATIONS)}, got {kw[name]!r}")
    if _reference(instruction_id, rules):
        from assay.evals import ifeval_reference

        ifeval_reference.build(instruction_id, kw)
    return kw


def check(instruction_id: str, response: str, kwargs: dict | None = None, rules: str = DEFAULT_RULES) -> bool:
    """Strict check: the response as given. An empty (or whitespace) response follows no instruction."""
    if not response or not response.strip():
        return False
    kw = clean_kwargs(instruction_id, kwargs, rules)
    if _reference(instruction_id, rules):
        from assay.evals import ifeval_reference

        return ifeval_reference.check(instruction_id, response, kw)
    return bool(REGISTRY[instruction_id].check(response, **kw))


def loose_variants(response: str) -> list[str]:
    """assay's loose variants (IFEval's idea): the response, with markdown '*' removed, and each of those with the
    first line, the last line, or both removed (models often add a preamble like "Sure, here it is:" or a closing
    line). Reference rules use the reference's exact eight (``ifeval_reference.loose_variants``)."""
    out = []
    for base in (response, response.replace("*", "")):
        lines = base.split("\n")
        out += [base, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return out


def check_loose(instruction_id: str, response: str, kwargs: dict | None = None, rules: str = DEFAULT_RULES) -> bool:
    if _reference(instruction_id, rules):
        from assay.evals import ifeval_reference

        return ifeval_reference.check_loose(instruction_id, response, clean_kwargs(instruction_id, kwargs, rules))
    return any(check(instruction_id, v, kwargs, rules) for v in loose_variants(response))
