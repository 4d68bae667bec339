"""Shared math-suite parts: answer extraction, Math-Verify equivalence, verify-by-computation, a seeded problem generator.

Used by the suites ``math`` (our own problems), ``gsm8k``, ``math500`` and ``aime2025`` (public files loaded from a path).

Extraction reads the *last* ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces, markdown bold around it), else the last
"final answer: ..." / "the answer is ..." / "#### ..." phrase. Equivalence is Math-Verify (``23`` = ``23.0``,
``\\frac{1}{2}`` = ``0.5``, ``16-4\\pi`` = ``16 - 4π``). Math-Verify's own timeouts use SIGALRM, which fails off the main
thread, so they are switched off here (``parsing_timeout=None``, ``timeout_seconds=None``); the suites set
``slow_scoring = True`` and the runner enforces a timeout by scoring in a worker process.

Example:
    >>> score_math("so the total is **\\\\boxed{\\\\dfrac{1}{2}}**.", "0.5").value
    1.0
"""

from __future__ import annotations

import logging
import random
import re
from fractions import Fraction
from functools import lru_cache
from math import comb, perm
from pathlib import Path

from assay.errors import DataError
from assay.common import file_digest, find_boxed, read_jsonl, split_think  # noqa: F401 - find_boxed re-exported
from assay.evals.base import Sample, Score, Suite, SuiteOptions, stable_hash

PROMPT_TEMPLATE = (
    "Solve the following math problem. Reason step by step, then give the final answer on its own line "
    "as \\boxed{{answer}}.\n\nProblem: {question}"
)

# ----------------------------------------------------------------------------------------------------- extraction

# "The final answer is: 42." / "Answer: 42" / "the answer is $42$" - the last one wins
# the connector is required: "to answer this: 5 apples" is not an answer
_ANSWER_PHRASE = re.compile(
    r"\banswer\s*\**\s*(?:is\b\s*:?|:|=)\s*\**\s*(?P<ans>[^\n]+)", re.I)
_GSM_HASH = re.compile(r"####\s*(?P<ans>[^\n]+)")




def extract_answer(text: str | None) -> tuple[str | None, str]:
    """(answer string or None, how it was found: "boxed" | "phrase" | "hash" | why nothing was found)."""
    if not text or not text.strip():
        return None, "empty completion"
    body, _, unclosed = split_think(text)
    if unclosed:
        return None, "unclosed <think>: no answer after the reasoning"
    boxes = [b for b in find_boxed(body) if b.strip()]
    if boxes:
        return clean_answer(boxes[-1]), "boxed"
    hashes = list(_GSM_HASH.finditer(body))
    if hashes:
        ans = clean_answer(hashes[-1].group("ans"))
        if ans:
            return ans, "hash"
    phrases = list(_ANSWER_PHRASE.finditer(body))
    for m in reversed(phrases):
        ans = clean_answer(_cut_sentence(m.group("ans")))
        if ans and re.search(r"[\d\\π√]", ans):  # "the answer is below" is not an answer
            return ans, "phrase"
    return None, "no \\boxed{} and no 'answer is' phrase"


def _cut_sentence(s: str) -> str:
    """Keep the answer, drop trailing prose: '42. So we are done' -> '42'. Decimals and $...$ survive."""
    s = s.strip()
    m = re.match(r"\$\$?(.+?)\$\$?", s)  # the answer in $...$ after the phrase
    if m:
        return m.group(1)
    m = re.match(r"\\\((.+?)\\\)|\\\[(.+?)\\\]", s)
    if m:
        return m.group(1) or m.group(2)
    return re.split(r"(?<!\d)\.(?!\d)|\.\s|,\s(?=[A-Za-z])|;|\s(?:because|since|which|so|as)\s", s, maxsplit=1)[0]


_NUM_THEN_WORDS = re.compile(r"^((?:\\?\$)?[-+]?\d[\d,]*(?:\.\d+)?(?:\\?%)?)\s+[A-Za-z][A-Za-z .\-/]*$")
# \text{ cm}^2: the unit and its power go together
_UNIT_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox|mathbf)\s*\{([^{}]*)\}(?:\^\{?\d\}?)?")


def clean_answer(s: str) -> str:
    """Strip what is not the answer: markdown bold, $ delimiters, \\text{units}, trailing punctuation."""
    s = s.strip()
    s = re.sub(r"^(\*\*|__)+|(\*\*|__)+$", "", s).strip()
    s = s.replace("**", "")
    if s.startswith("\\(") and s.endswith("\\)") or s.startswith("\\[") and s.endswith("\\]"):
        s = s[2:-2]
    s = s.strip().strip("$").strip()
    s = re.sub(r"\\[dt]frac", r"\\frac", s)

    def unit(m: re.Match) -> str:
        inner = m.group(1).strip()
        # a word-only \text{} is a unit or a label ("cm", "dollars", "cows"): drop it; otherwise keep its content
        return "" if re.fullmatch(r"[A-Za-z][A-Za-z .\-/]*", inner) else inner

    dropped = _UNIT_TEXT.sub(unit, s)
    # "\text{Evelyn}" alone is the answer itself, not a unit
    s = dropped if dropped.strip() else _UNIT_TEXT.sub(lambda m: m.group(1).strip(), s)
    s = re.sub(r"(?<!\\)\\[,;!: ]", "", s)  # thin spaces (15\,600), but not a matrix row break "\\\\ "
    s = s.replace("{,}", ",")
    s = s.rstrip(" .;:")
    # "7 cows", "24.5 litres", "$12 dollars": a number followed only by words keeps the number
    m = _NUM_THEN_WORDS.match(s)
    if m:
        s = m.group(1)
    return s.strip()


# ----------------------------------------------------------------------------------------------------- equivalence

logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns once that its timeout is disabled: we know


def _mv():
    try:
        import math_verify
    except ImportError as exc:  # pragma: no cover - declared dependency
        from assay.errors import PrerequisiteError

        raise PrerequisiteError("the math suites need Math-Verify: pip install 'math-verify'") from exc
    return math_verify


@lru_cache(maxsize=4096)
def _parse(expr: str):
    mv = _mv()
    # wrapping in $...$ makes Math-Verify read the whole string as one LaTeX answer; ExprExtractionConfig catches
    # plain forms like "1/2" or "3.5"
    text = expr if "$" in expr else f"${expr}$"
    cfg = [mv.LatexExtractionConfig(boxed_match_priority=0), mv.ExprExtractionConfig()]
    return tuple(mv.parse(text, extraction_config=cfg, parsing_timeout=None))


_NUM = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$|^-?\d+(\.\d+)?$")


def _plain_number(s: str) -> Fraction | None:
    t = s.replace(" ", "")
    if t.endswith("\\%") or t.endswith("%"):
        t = t.rstrip("%").rstrip("\\")
    if t.startswith("\\$") or t.startswith("$"):
        t = t.lstrip("\\$")
    if not _NUM.match(t):
        return None
    return Fraction(t.replace(",", ""))


def equivalent(gold: str, pred: str) -> bool:
    """Is ``pred`` the same answer as ``gold``? Exact for plain numbers, Math-Verify for everything else."""
    g, p = _plain_number(clean_answer(gold)), _plain_number(pred)
    if g is not None and p is not None:
        return g == p  # fast path: 1,234 = 1234 = 1234.0, no sympy
    gp, pp = _parse(gold), _parse(pred)
    if not gp or not pp:
        return clean_answer(gold).replace(" ", "") == clean_answer(pred).replace(" ", "")
    return bool(_mv().verify(list(gp), list(pp), timeout_seconds=None))


def score_math(completion: str | None, gold: str) -> Score:
    """The pure scorer shared by every math suite."""
    ans, how = extract_answer(completion)
    if ans is None:
        return Score(0.0, extracted=None, reason=how, parsed=False)
    ok = equivalent(gold, ans)
    return Score(1.0 if ok else 0.0, extracted=ans, reason=f"{how}: {'matches' if ok else 'differs from'} {gold}",
                 extra={"how": how})


class BoxedMathSuite(Suite):
    """Base of the math suites: messages ask for \\boxed{}, score with ``score_math``; subclasses give ``samples``."""

    name = "math"
    version = "1"
    prompt_template = PROMPT_TEMPLATE
    slow_scoring = True  # sympy can take seconds on odd input; the runner scores in a process with a timeout
    scoring_timeout_s = 20.0
    metric = "accuracy"
    binary = True

    def messages(self, sample: Sample) -> list[dict]:
        return [{"role": "user", "content": self.prompt_template.format(question=sample.input["question"])}]

    def score(self, completion: str, sample: Sample) -> Score:
        return score_math(completion, str(sample.target))


# ----------------------------------------------------------------------------------------------------- verification

def verify_namespace() -> dict:
    """Names a shipped item's ``verify`` expression may use: sympy, real symbols, and itertools/functools helpers."""
    import itertools
    from functools import reduce

    import sympy

    ns = {k: getattr(sympy, k) for k in dir(sympy) if not k.startswith("_")}
    for name in "a c d k n w x y z".split():
        ns[name] = sympy.Symbol(name, real=True)
    ns.update(permutations=itertools.permutations, combinations=itertools.combinations, product=itertools.product,
              reduce=reduce, comb=comb, perm=perm, sum=sum, len=len, range=range, abs=abs, set=set, list=list)
    return ns


def compute(expr: str):
    """Evaluate a shipped ``verify`` expression (trusted: it is our own data file) to a sympy value."""
    import sympy

    return sympy.nsimplify(sympy.sympify(eval(expr, verify_namespace())), rational=False)  # noqa: S307


# ----------------------------------------------------------------------------------------------------- data

def interleave(items: list, key) -> list:
    """Round-robin over categories (stable order within each) so ``--limit N`` gets a balanced mix."""
    groups: dict = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    out, lists = [], list(groups.values())
    for i in range(max((len(g) for g in lists), default=0)):
        out.extend(g[i] for g in lists if i < len(g))
    return out


# ----------------------------------------------------------------------------------------------------- generator

def _frac_tex(q: Fraction) -> str:
    if q.denominator == 1:
        return str(q.numerator)
    sign = "-" if q < 0 else ""
    return f"{sign}\\frac{{{abs(q.numerator)}}}{{{q.denominator}}}"


def _gen_linear(r: random.Random) -> tuple[str, str, str, dict]:
    a = r.choice([2, 3, 4, 5, 6, 7, 8, 9, -2, -3, -4, -5])
    sol = r.randint(-12, 15)
    b = r.randint(-30, 30)
    c = a * sol + b
    bs = f"+ {b}" if b >= 0 else f"- {-b}"
    q = f"Solve for $x$: ${a}x {bs} = {c}$."
    return "algebra", q, str(sol), {"verify": f"solve(Eq({a}*x + ({b}), {c}), x)[0]", "a": a, "b": b, "c": c}


def _gen_quadratic(r: random.Random) -> tuple[str, str, str, dict]:
    p, q_ = r.sample([j for j in range(-9, 10) if j != 0], 2)
    b, c = -(p + q_), p * q_
    bs = f"+ {b}x" if b > 0 else (f"- {-b}x" if b < 0 else "")
    cs = f"+ {c}" if c > 0 else f"- {-c}"
    ask = r.choice(["larger", "smaller", "sum"])
    eq = f"$x^2 {bs} {cs} = 0$".replace("  ", " ")
    if ask == "sum":
        return ("algebra", f"What is the sum of the two solutions of {eq}?", str(p + q_),
                {"verify": f"Add(*solve(x**2 + ({b})*x + ({c}), x))"})
    fn = "Max" if ask == "larger" else "Min"
    return ("algebra", f"What is the {ask} solution of {eq}?", str(max(p, q_) if fn == "Max" else min(p, q_)),
            {"verify": f"{fn}(*solve(x**2 + ({b})*x + ({c}), x))"})


def _gen_fraction(r: random.Random) -> tuple[str, str, str, dict]:
    a, c = r.randint(1, 9), r.randint(1, 9)
    b, d = r.randint(2, 12), r.randint(2, 12)
    op = r.choice(["+", "-", "\\times"])
    x, y = Fraction(a, b), Fraction(c, d)
    val = x + y if op == "+" else (x - y if op == "-" else x * y)
    pyop = {"+": "+", "-": "-", "\\times": "*"}[op]
    q = (f"Compute $\\frac{{{a}}}{{{b}}} {op} \\frac{{{c}}}{{{d}}}$. Express your answer as a fraction in lowest "
         "terms.")
    return "fractions", q, _frac_tex(val), {"verify": f"Rational({a}, {b}) {pyop} Rational({c}, {d})"}


def _gen_counting(r: random.Random) -> tuple[str, str, str, dict]:
    kind = r.choice(["choose", "arrange", "handshakes"])
    if kind == "choose":
        n, k = r.randint(5, 15), r.randint(2, 4)
        q = f"In how many ways can a team of {k} be chosen from {n} people?"
        return "probability_combinatorics", q, str(comb(n, k)), {"verify": f"binomial({n}, {k})"}
    if kind == "arrange":
        n, k = r.randint(5, 10), r.randint(2, 4)
        q = (f"{n} runners race. In how many ways can the first {k} places be filled (no ties)?")
        return "probability_combinatorics", q, str(perm(n, k)), {"verify": f"ff({n}, {k})"}
    n = r.randint(6, 30)
    q = f"{n} people meet and every pair shakes hands exactly once. How many handshakes are there?"
    return "probability_combinatorics", q, str(comb(n, 2)), {"verify": f"binomial({n}, 2)"}


def _gen_arith_seq(r: random.Random) -> tuple[str, str, str, dict]:
    a, d, n = r.randint(-10, 20), r.choice([j for j in range(-7, 10) if j != 0]), r.randint(8, 40)
    terms = ", ".join(str(a + j * d) for j in range(4))
    if r.random() < 0.5:
        q = f"What is the {_ordinal(n)} term of the arithmetic sequence ${terms}, \\ldots$?"
        return "sequences_functions", q, str(a + (n - 1) * d), {"verify": f"{a} + ({n} - 1)*({d})"}
    q = f"What is the sum of the first {n} terms of the arithmetic sequence ${terms}, \\ldots$?"
    return "sequences_functions", q, str(n * (2 * a + (n - 1) * d) // 2), {
        "verify": f"sum({a} + j*({d}) for j in range({n}))"}


def _gen_geom_seq(r: random.Random) -> tuple[str, str, str, dict]:
    a, ratio, n = r.randint(1, 9), r.choice([2, 3, -2, 4]), r.randint(5, 9)
    terms = ", ".join(str(a * ratio**j) for j in range(4))
    if r.random() < 0.5:
        q = f"What is the {_ordinal(n)} term of the geometric sequence ${terms}, \\ldots$?"
        return "sequences_functions", q, str(a * ratio ** (n - 1)), {"verify": f"{a}*({ratio})**({n} - 1)"}
    q = f"What is the sum of the first {n} terms of the geometric sequence ${terms}, \\ldots$?"
    return "sequences_functions", q, str(sum(a * ratio**j for j in range(n))), {
        "verify": f"sum({a}*({ratio})**j for j in range({n}))"}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


GENERATORS = {"linear": _gen_linear, "quadratic": _gen_quadratic, "fraction": _gen_fraction,
              "counting": _gen_counting, "arithmetic": _gen_arith_seq, "geometric": _gen_geom_seq}


def generate(seed: int, n: int) -> list[dict]:
    """``n`` fresh problems, the same for the same seed. Ids hash the problem text, so an item keeps its id whatever
    seed or position produced it (pairing in compare works across runs)."""
    r = random.Random(f"assay-math-gen-{seed}")
    kinds = list(GENERATORS)
    out, seen = [], set()
    attempts = 0
    while len(out) < n and attempts < n * 20:
        attempts += 1
        kind = kinds[len(out) % len(kinds)]
        category, question, answer, extra = GENERATORS[kind](r)
        if question in seen:
            continue
        seen.add(question)
        out.append({"id": f"gen-{kind}-{stable_hash(question)[:10]}", "category": category, "kind": kind,
                     "question": question, "answer": answer, "verify": extra["verify"]})
    return out


# ----------------------------------------------------------------------------------------------------- public files

def cache_dir() -> Path:
    import os

    home = os.environ.get("ASSAY_HOME")
    if not home:
        from platformdirs import user_data_dir

        home = user_data_dir("assay")
    return Path(home) / "datasets"


class PublicMathSuite(BoxedMathSuite):
    """A public benchmark read from a local JSONL file (``data=PATH``), a cached copy, or - with ``download=True`` - a
    single bounded HTTP GET into the cache. Without any of these it raises a one-line DataError; it never hangs."""

    filename = ""  # cache file name
    url = ""  # direct JSONL download
    page = ""  # where a person gets the file

    class Options(SuiteOptions):
        data: str | None = None  # the JSONL file (--data PATH)
        download: bool = False  # else fetch it into the cache (one bounded GET)

    def __init__(self, **options):
        super().__init__(**options)
        self.data = self.options.data
        self.download = self.options.download
        self.download_timeout_s = 20.0
        self._rows: list[dict] | None = None
        self._path: Path | None = None

    def item(self, i: int, row: dict) -> dict:  # -> {"id", "question", "answer", "category"}
        raise NotImplementedError

    def field(self, row: dict, i: int, *names: str):
        for n in names:
            if row.get(n) not in (None, ""):
                return row[n]
        raise DataError(f"{self.name}: record {i} of {self.path()} has no {' / '.join(names)} field "
                        f"(it has {', '.join(sorted(row)) or 'nothing'}): is this the {self.name} file?")

    def path(self) -> Path:
        if self._path is None:
            self._path = self._locate()
        return self._path

    def _locate(self) -> Path:
        if self.data:
            p = Path(self.data).expanduser()
            if not p.is_file():
                raise DataError(f"{self.name}: data file {p} does not exist (download it from {self.page})")
            return p
        cached = cache_dir() / self.filename
        if cached.is_file():
            return cached
        if not self.download:
            raise DataError(f"{self.name}: no data file: pass --data PATH (download from {self.page}), "
                            f"or put it at {cached}")
        return self._fetch(cached)

    def _fetch(self, dest: Path) -> Path:
        import httpx

        try:
            with httpx.Client(timeout=httpx.Timeout(self.download_timeout_s, connect=5.0),
                              follow_redirects=True) as c:
                r = c.get(self.url)
                r.raise_for_status()
        except httpx.HTTPError as exc:
            raise DataError(f"{self.name}: could not download {self.url} ({type(exc).__name__}: {exc}): "
                            f"pass --data PATH (download from {self.page})") from exc
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        tmp.write_bytes(r.content)
        tmp.replace(dest)
        return dest

    def items(self) -> list[dict]:
        if self._rows is None:
            self._rows = [self.item(i, row) for i, row in enumerate(read_jsonl(self.path()))]
        return self._rows

    def scored_items(self) -> list[dict]:
        """The items that are scored (all of them; a few-shot suite keeps its exemplars out)."""
        return self.items()

    def samples(self, seed: int, limit: int | None):
        # file order: the public benchmarks are fixed sets; --limit N takes the first N, the same on every run
        for it in self.scored_items()[:limit]:
            yield Sample(id=it["id"], input={"question": it["question"]}, target=it["answer"],
                         category=it.get("category", "all"), meta=it.get("meta", {}))

    def data_hash(self) -> str:
        return file_digest(self.path())
