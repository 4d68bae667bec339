"""Seeded generators of long synthetic text: filler prose, key-value needles, fictional-company documents.

Everything here is written by the project (word lists and templates below), so it can be redistributed, and no model
has met it in training as a well-known essay. The same seed always gives the same text, on every machine.

- ``filler(n_chars, seed)``                      neutral prose with no digits (needles' numbers stay unambiguous)
- ``haystack(n_chars, needles, seed)``          filler with needle sentences inserted at given depths (0.0 … 1.0)
- ``make_needle(seed)``                          a ``Needle(key, value)``: "The special magic number for K is V."
- ``make_company(seed)`` / ``company_document`` / ``company_questions`` / ``company_summary``
                                                 records of a fictional company spread over many paragraphs,
                                                 questions whose answers are spans of the document, a reference
                                                 summary built from the same facts.

Example:
    >>> text = haystack(2000, [(0.5, make_needle(1).sentence)], seed=7)
    >>> abs(text.index(make_needle(1).sentence) / len(text) - 0.5) < 0.1
    True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterator, Sequence

# ---- filler prose --------------------------------------------------------------------------------------------------
_SUBJECTS = [
    "The old ferryman", "A group of students", "The river", "Most of the farmers", "The northern wind",
    "Her younger brother", "The town library", "A travelling musician", "The baker on the hill", "The geese",
    "The village choir", "An elderly painter", "The night watchman", "A quiet stranger", "The schoolteacher",
    "The fishing boats", "Our neighbour", "The mountain guide", "The postman", "A small fox", "The shepherd",
    "The carpenter's daughter", "The lighthouse keeper", "Two young cousins", "The market traders",
]
_VERBS = [
    "walked slowly along", "talked for hours about", "looked carefully at", "never forgot", "painted a picture of",
    "wrote a long letter about", "returned once more to", "thought quietly about", "sang an old song about",
    "carried a lantern past", "waited patiently beside", "told a strange story about", "dreamed of",
    "sketched the outline of", "followed the path towards", "listened to the sounds of", "cleaned and repaired",
    "remembered the days of", "argued cheerfully about", "rested for a while near",
]
_OBJECTS = [
    "the harbour at dawn", "the quiet orchards", "the stone bridge", "the lanterns in the square",
    "a map of the valley", "the abandoned mill", "the fields of barley", "the edge of the forest",
    "the copper roofs of the town", "the narrow streets", "the frozen pond", "the winding road to the coast",
    "the ruins of the chapel", "the tall pines", "the garden behind the inn", "the cliffs above the sea",
    "the clock tower", "the willow trees", "the busy railway station", "the salt marshes",
]
_TAILS = [
    "", "", "", " before the rain came", " while the bells rang", " as the light faded", " without saying a word",
    " during the long winter", " on a grey morning", " after the harvest", " long before anyone else woke",
    " with great care", " as the tide went out", " under a pale sky",
]
_ASIDES = [
    "Nobody could say exactly why.", "It was, by all accounts, an ordinary day.", "The air smelled of woodsmoke.",
    "Somewhere a dog barked twice and fell silent.", "The season was turning again.",
    "Clouds gathered slowly over the hills.", "Little had changed since the previous spring.",
    "Children ran laughing through the lanes.", "A cart rattled over the cobbles.", "The kettle began to sing.",
]


def filler_sentences(seed: int) -> Iterator[str]:
    """An endless stream of plain sentences (letters and punctuation only, no digits)."""
    rng = random.Random(f"filler:{seed}")
    while True:
        if rng.random() < 0.15:
            yield rng.choice(_ASIDES)
        else:
            yield f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_TAILS)}."


def _take_sentences(n_chars: int, seed: int) -> list[str]:
    """Whole sentences while they fit in ``n_chars`` (joined by spaces): never over, short by less than one."""
    out, total = [], -1
    for s in filler_sentences(seed):
        if total + len(s) + 1 > n_chars:
            break
        out.append(s)
        total += len(s) + 1
    return out


def filler(n_chars: int, seed: int = 0) -> str:
    """At most ``n_chars`` characters of filler, short by less than one sentence (whole sentences only)."""
    return " ".join(_take_sentences(n_chars, seed))


# ---- needles ---------------------------------------------------------------------------------------------------------
_KEY_ADJ = ["amber", "silver", "crimson", "hollow", "quiet", "northern", "velvet", "iron", "misty", "golden",
            "scarlet", "frozen", "hidden", "wandering", "bright", "ancient"]
_KEY_NOUN = ["falcon", "lantern", "harbour", "meadow", "compass", "orchard", "glacier", "violin", "comet", "anchor",
             "thistle", "beacon", "canyon", "pebble", "willow", "otter"]


@dataclass(frozen=True)
class Needle:
    key: str  # e.g. "amber-falcon"
    value: str  # a 7-digit number, e.g. "4829173"

    @property
    def sentence(self) -> str:
        return f"The special magic number for {self.key} is {self.value}."

    @property
    def question(self) -> str:
        return f"What is the special magic number for {self.key}?"


def make_needle(seed: int, exclude_keys: Sequence[str] = ()) -> Needle:
    rng = random.Random(f"needle:{seed}")
    while True:
        key = f"{rng.choice(_KEY_ADJ)}-{rng.choice(_KEY_NOUN)}"
        if key not in exclude_keys:
            break
    return Needle(key, str(rng.randint(1_000_000, 9_999_999)))


def haystack(n_chars: int, needles: Sequence[tuple[float, str]], seed: int = 0) -> str:
    """Filler of about ``n_chars`` characters (needles included) with each ``(depth, sentence)`` inserted at ``depth``.

    Depth is the fraction of the *filler* that comes before the needle: 0.0 puts it first, 1.0 last, 0.5 at the
    sentence boundary nearest the middle. Needles always sit between filler sentences, never inside one.
    """
    for d, _ in needles:
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"depth must be within 0..1, got {d}")
    budget = max(0, n_chars - sum(len(s) + 1 for _, s in needles))
    sents = _take_sentences(budget, seed)
    # cumulative character offsets of each sentence boundary (boundary k = before sentence k)
    offsets, pos = [0], 0
    for s in sents:
        pos += len(s) + 1
        offsets.append(pos)
    total = offsets[-1] or 1
    inserts: dict[int, list[str]] = {}
    for d, sentence in needles:
        k = min(range(len(offsets)), key=lambda i: abs(offsets[i] - d * total))
        inserts.setdefault(k, []).append(sentence)
    out: list[str] = []
    for k in range(len(sents) + 1):
        out.extend(inserts.get(k, []))
        if k < len(sents):
            out.append(sents[k])
    return " ".join(out)


# ---- fictional companies ----------------------------------------------------------------------------------------------
_NAME_A = ["Vel", "Mor", "Tal", "Quen", "Bri", "Cas", "Dor", "Fen", "Lum", "Nor", "Ost", "Pra", "Sel", "Tor", "Vin",
           "Zar", "Hal", "Kest", "Orv", "Ulm"]
_NAME_B = ["tra", "vik", "don", "ora", "ex", "ium", "aro", "ent", "ica", "une", "ford", "wick", "esse", "anta"]
_INDUSTRIES = [
    ("Systems", "logistics software"), ("Foods", "packaged foods"), ("Energy", "solar equipment"),
    ("Textiles", "technical textiles"), ("Robotics", "warehouse robots"), ("Pharma", "generic medicines"),
    ("Analytics", "weather forecasting services"), ("Marine", "ferry services"), ("Ceramics", "industrial ceramics"),
    ("Audio", "professional audio equipment"),
]
_FIRST = ["Marta", "Kwame", "Ingrid", "Rafael", "Aiko", "Tomasz", "Leila", "Samuel", "Priya", "Jonas", "Amara",
          "Dmitri", "Sofia", "Haruto", "Nadia", "Oluwaseun", "Elena", "Mateo", "Fatima", "Lars"]
_LAST = ["Ilunga", "Brennan", "Okafor", "Lindqvist", "Castellanos", "Nakamura", "Haddad", "Kowalczyk", "Mensah",
         "Varga", "Santoro", "Achterberg", "Moreau", "Ferreira", "Osei", "Petrova", "Yilmaz", "Duarte"]
_CITIES = ["Lisbon", "Nairobi", "Osaka", "Montreal", "Gdansk", "Valparaiso", "Tunis", "Tallinn", "Porto Alegre",
           "Rotterdam", "Accra", "Kaohsiung", "Bilbao", "Perth", "Izmir", "Aarhus"]
_PRODUCT_A = ["Nimbus", "Cedar", "Atlas", "Harbor", "Quill", "Ember", "Solace", "Tundra", "Beacon", "Orbit",
              "Juniper", "Meridian"]
_PRODUCT_B = ["One", "Pro", "Line", "Core", "Flow", "Max", "Edge", "Go"]
_TARGET_B = ["Labs", "Works", "Partners", "Instruments", "Dynamics", "Supply", "Studio", "Group"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_CURRENCIES = ["euros", "dollars", "pounds", "francs"]

_BIZ_SUBJ = ["The finance team", "The board", "A regional manager", "The logistics department", "Several customers",
             "The research group", "An internal audit", "The sales office", "The company's engineers",
             "A consultant", "The human resources team", "The quality department", "The legal team",
             "Industry analysts", "The procurement office"]
_BIZ_VERB = ["reviewed", "discussed", "reorganised", "praised", "questioned", "simplified", "documented",
             "updated", "evaluated", "criticised", "expanded", "monitored"]
_BIZ_OBJ = ["the supplier contracts", "the training programme", "the customer support process",
            "the travel policy", "the internal newsletter", "the office layout", "the safety procedures",
            "the product roadmap", "the pricing strategy", "the warehouse schedules", "the hiring process",
            "the data retention rules", "the partnership agreements", "the maintenance plans"]
_BIZ_TAIL = ["", "", " during the annual planning cycle", " after feedback from staff", " with outside help",
             " across all regional offices", " at the request of the board", " over several months"]


@dataclass(frozen=True)
class Company:
    name: str
    industry: str
    city: str
    founded: int
    founder: str
    ceo: str
    employees: str  # as written in the document, e.g. "1,240"
    currency: str
    revenue: dict[int, str] = field(default_factory=dict)  # year -> "41.2 million euros"
    product: str = ""
    acquisitions: list[tuple[str, str]] = field(default_factory=list)  # ("March 2015", "Corvid Labs")


def make_company(seed: int) -> Company:
    rng = random.Random(f"company:{seed}")
    suffix, industry = rng.choice(_INDUSTRIES)
    name = f"{rng.choice(_NAME_A)}{rng.choice(_NAME_B)} {suffix}"
    people = rng.sample([f"{f} {l}" for f in _FIRST for l in _LAST], 2)
    founded = rng.randint(1952, 2008)
    currency = rng.choice(_CURRENCIES)
    first_year = rng.randint(max(founded + 3, 2012), 2019)
    rev, value = {}, rng.uniform(8, 90)
    for y in range(first_year, first_year + 4):
        rev[y] = f"{value:.1f} million {currency}"
        value *= rng.uniform(0.85, 1.35)
    targets = rng.sample([f"{a}{b} {c}" for a in _NAME_A for b in ("ly", "en", "is") for c in _TARGET_B], 2)
    years = sorted(rng.sample(range(founded + 2, 2024), 2))
    acq = [(f"{rng.choice(_MONTHS)} {y}", t) for y, t in zip(years, targets)]
    return Company(name=name, industry=industry, city=rng.choice(_CITIES), founded=founded, founder=people[0],
                   ceo=people[1], employees=f"{rng.randint(120, 9800):,}", currency=currency, revenue=rev,
                   product=f"{rng.choice(_PRODUCT_A)} {rng.choice(_PRODUCT_B)}", acquisitions=acq)


def _fact_paragraphs(c: Company) -> list[str]:
    """One sentence per fact; each becomes the core of its own paragraph, spread through the document."""
    facts = [
        f"{c.name} was founded in {c.founded} by {c.founder}.",
        f"The company's headquarters are in {c.city}, where most of its management works.",
        f"Since taking over the day-to-day leadership, chief executive {c.ceo} has focused on steady growth.",
        f"According to the latest staff report, {c.name} employs {c.employees} people.",
        f"The best-known product of the company is the {c.product}, which accounts for a large share of sales.",
    ]
    facts += [f"In {y}, the company reported revenue of {r}." for y, r in c.revenue.items()]
    facts += [f"In {when}, {c.name} acquired {target}." for when, target in c.acquisitions]
    return facts


def _biz_sentences(rng: random.Random) -> Iterator[str]:
    while True:
        yield f"{rng.choice(_BIZ_SUBJ)} {rng.choice(_BIZ_VERB)} {rng.choice(_BIZ_OBJ)}{rng.choice(_BIZ_TAIL)}."


def company_document(c: Company, n_chars: int, seed: int = 0) -> str:
    """A report of at most ``n_chars`` characters (short by less than a sentence): a title, an opening paragraph, and the facts spread evenly over many
    paragraphs of routine business prose (which never contains digits, so figures and dates are unambiguous)."""
    rng = random.Random(f"doc:{c.name}:{seed}")
    facts = _fact_paragraphs(c)
    rng.shuffle(facts)
    head = f"Company profile: {c.name}\n\n{c.name} is a company working in {c.industry}."
    fact_chars = sum(len(f) + 1 for f in facts) + len(head) + 2
    gen = _biz_sentences(rng)
    sents: list[str] = []
    total = 0
    while True:  # routine sentences while they fit (paragraph breaks are counted below, by trimming)
        s = next(gen)
        if fact_chars + total + len(s) + 1 > n_chars and len(sents) >= len(facts):
            break
        sents.append(s)
        total += len(s) + 1

    def render(sents: list[str]) -> str:
        place = random.Random(f"place:{c.name}:{seed}")
        per = max(1, min(5, len(sents) // len(facts)))  # five sentences a paragraph, fewer in short documents
        paragraphs = [sents[i:i + per] for i in range(0, len(sents), per)]
        # fact i goes into paragraph (i + 0.5) * P / F: evenly spread, none at the very edge
        n_p, n_f = len(paragraphs), len(facts)
        for i, fact in enumerate(facts):
            k = min(n_p - 1, int((i + 0.5) * n_p / n_f))
            paragraphs[k].insert(place.randint(0, min(2, len(paragraphs[k]))), fact)
        return head + "\n\n" + "\n\n".join(" ".join(p) for p in paragraphs)

    text = render(sents)
    while len(text) > n_chars and len(sents) > len(facts):  # short by less than a sentence, never over
        sents.pop()
        text = render(sents)
    return text


def company_questions(c: Company) -> list[tuple[str, str]]:
    """(question, answer span) pairs; every answer appears verbatim in ``company_document(c, ...)``."""
    qs = [
        (f"In which city is {c.name} headquartered?", c.city),
        (f"Who founded {c.name}?", c.founder),
        (f"In which year was {c.name} founded?", str(c.founded)),
        (f"Who is the chief executive of {c.name}?", c.ceo),
        (f"How many people does {c.name} employ?", c.employees),
        (f"What is the best-known product of {c.name}?", c.product),
    ]
    years = list(c.revenue)
    y = years[len(years) // 2]
    qs.append((f"What revenue did {c.name} report in {y}?", c.revenue[y]))
    when, target = c.acquisitions[0]
    qs.append((f"Which company did {c.name} acquire in {when}?", target))
    return qs


def company_summary(c: Company) -> str:
    """A reference summary written from the facts (what a faithful summary of the document should say)."""
    years = list(c.revenue)
    acq = " and ".join(f"{t} in {w}" for w, t in c.acquisitions)
    article = "an" if c.industry[0] in "aeiou" else "a"
    return (f"{c.name} is {article} {c.industry} company founded in {c.founded} by {c.founder} and headquartered in "
            f"{c.city}. It is led by chief executive {c.ceo} and employs {c.employees} people. Its best-known "
            f"product is the {c.product}. Revenue went from {c.revenue[years[0]]} in {years[0]} to "
            f"{c.revenue[years[-1]]} in {years[-1]}. The company acquired {acq}.")
