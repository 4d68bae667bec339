"""translate: English <-> French, Spanish, Arabic, Swahili, Chinese; corpus BLEU-4 and chrF per direction (sacrebleu).

Data: ``evals/data/translate/sentences.jsonl`` — 60 sentences (everyday, science, news-like, travel/health) written
for this project, each with French, Spanish, Arabic, Swahili and Chinese translations by the project (see
SOURCES.md). It is a multi-way parallel set, so every direction has the same 60 items. With ``data=PATH`` the same
suite reads FLORES-200 instead (see ``flores.py``; ``assay eval --suite flores --data PATH`` is the same thing).

Prompt: translate only, no commentary. Scoring strips what small models add anyway (a "Translation:" label, a
"Here is the translation:" line, surrounding quotes, trailing notes) and keeps the first line of the reply.

Per sample: ``Score.value`` = sentence chrF / 100 (continuous, so the runner's mean is meaningful). Per direction, the
``aggregate`` hook computes corpus BLEU-4 (sacrebleu default 13a tokenizer; ``zh`` tokenizer for Chinese targets) and
corpus chrF, each with a bootstrap interval over sentences — metrics ``bleu:en-fr``, ``chrf:en-fr``, ... . Those are
the seed-style table (pair x BLEU-4 x chrF); ``write_artifacts`` also writes it as ``translate_table.md``.

Example:
    assay eval --suite translate --limit 100
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from assay.errors import AssayError, DataError
from assay.common import atomic_file, data_path, file_digest, read_jsonl, strip_fence_markers
from assay.evals.base import Metric, as_records, Record, Sample, Score, Suite, SuiteOptions, stable_hash

LANGS = {"en": "English", "fr": "French", "es": "Spanish", "ar": "Arabic", "sw": "Swahili",
         "zh": "Chinese (Simplified)"}
DEFAULT_DIRECTIONS = ("en-fr", "fr-en", "en-es", "es-en", "en-ar", "ar-en", "en-sw", "sw-en", "en-zh", "zh-en")
DATA = data_path("translate/sentences.jsonl")

PROMPT = ("Translate the following {src_name} text into {tgt_name}. Reply with the {tgt_name} translation only: "
          "no notes, no explanations, no quotation marks.\n\n{text}")


# ---- pure helpers ----------------------------------------------------------------------------------------------------
def parse_directions(spec: str | Sequence[str] | None) -> list[tuple[str, str]]:
    """``"en-fr,fr-en"`` or ``["en-fr"]`` -> ``[("en", "fr"), ...]``; ``None`` -> the ten default directions."""
    if spec is None:
        spec = DEFAULT_DIRECTIONS
    if isinstance(spec, str):
        spec = [s for s in re.split(r"[,\s]+", spec) if s]
    out = []
    for d in spec:
        parts = d.lower().split("-")
        if len(parts) != 2 or parts[0] not in LANGS or parts[1] not in LANGS or parts[0] == parts[1]:
            raise AssayError(f"translate: bad direction {d!r}: use pairs like en-fr of {', '.join(LANGS)}")
        out.append((parts[0], parts[1]))
    if len(set(out)) != len(out):
        raise AssayError("translate: a direction is listed twice")
    return out


def tokenizer_for(tgt: str) -> str:
    """sacrebleu tokenizer for BLEU on this target language: 'zh' for Chinese, else the default '13a'."""
    return "zh" if tgt == "zh" else "13a"


_LABEL = re.compile(
    r"^\s*\**\s*(?:here(?:'s|\s+is)\b[^:：\n]{0,60}|[^:：\n]{0,30}\btranslat\w*[^:：\n]{0,30}|"
    + "|".join(n.split()[0] for n in LANGS.values())
    + r"|traduction|traducción|tafsiri|翻译|译文|الترجمة)\s*\**\s*[:：]\s*\**\s*", re.IGNORECASE)
_QUOTES = [('"', '"'), ("“", "”"), ("«", "»"), ("「", "」"), ("『", "』"), ("'", "'"), ("‘", "’"), ("„", "“"),
           ("*", "*"), ("`", "`")]


def clean_translation(text: str | None) -> str:
    """The translation inside a reply: drop code fences, label lines / prefixes, notes, and surrounding quotes."""
    if not text:
        return ""
    t = strip_fence_markers(text).strip()
    lines = [ln.strip() for ln in t.splitlines() if ln.strip()]
    out = ""
    for ln in lines:
        m = _LABEL.match(ln)
        if m:
            ln = ln[m.end():].strip()
            if not ln:  # "Here is the translation:" alone on its line: the translation is on the next one
                continue
        out = ln
        break
    out = out.strip()
    changed = True
    while changed and len(out) >= 2:
        changed = False
        for a, b in _QUOTES:
            if out.startswith(a) and out.endswith(b) and len(out) > len(a) + len(b):
                out = out[len(a):-len(b)].strip()
                changed = True
    # a trailing parenthetical note: 'Bonjour. (Note: formal register)'
    out = re.sub(r"\s*\((?:note|literally|lit\.)[^)]*\)\s*$", "", out, flags=re.IGNORECASE)
    return out.strip()


def sentence_chrf(hyp: str, ref: str) -> float:
    import sacrebleu

    return float(sacrebleu.sentence_chrf(hyp, [ref]).score)


def corpus_scores(hyps: list[str], refs: list[str], tgt: str, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """Corpus BLEU-4 and chrF with bootstrap 95 % intervals over sentences: {"bleu": {...}, "chrf": {...}}.

    Bootstrapping a corpus metric resamples sentences and recomputes the corpus score. Summing each sentence's
    sufficient statistics (n-gram matches and totals) gives exactly the corpus score without re-tokenising the corpus
    a thousand times; sacrebleu's own paired bootstrap works the same way."""
    import numpy as np
    from sacrebleu.metrics import BLEU, CHRF

    from assay.stats import bootstrap_corpus_ci

    out = {}
    tok = tokenizer_for(tgt)
    for key, metric in (("bleu", BLEU(tokenize=tok)), ("chrf", CHRF())):
        if hyps:
            stats = np.asarray(metric._extract_corpus_statistics(hyps, [refs]), dtype=float)

            def corpus(idx, stats=stats, metric=metric):
                summed = stats[np.asarray(idx, dtype=int)].sum(axis=0)
                return float(metric._compute_score_from_stats([int(round(v)) for v in summed]).score)

            idx = list(range(len(hyps)))
            value = corpus(idx)
            lo, hi = bootstrap_corpus_ci(idx, corpus, n_boot=n_boot, seed=seed)
        else:
            value, lo, hi = None, float("nan"), float("nan")
        entry = {"value": value, "low": lo, "high": hi, "n": len(hyps), "interval": "bootstrap"}
        if key == "bleu":
            entry["tokenize"] = tok
        out[key] = entry
    return out


# ---- data ----------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_shipped() -> tuple[dict, ...]:
    return tuple(read_jsonl(DATA))


# ---- the suite -----------------------------------------------------------------------------------------------------
class Translate(Suite):
    """The shipped set, or FLORES-200 from ``data`` (a folder of ``eng_Latn.devtest``-style files)."""

    name = "translate"
    version = "1"
    binary = False
    metric = "chrF"
    prompt_template = PROMPT
    _shipped = True  # data=None reads the shipped sentences (flores: it is an error)

    class Options(SuiteOptions):
        data: str | Path | None = None  # a FLORES-200 folder; None: the shipped sentences
        directions: str | Sequence[str] | None = None  # "en-fr,fr-en" or a list; None: all ten
        split: str = "devtest"  # FLORES-200 split (dev | devtest)

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        directions = parse_directions(o.directions)
        if o.data is None and self._shipped:
            items, self.source, digest = load_shipped(), "shipped", file_digest(DATA)
        else:  # FLORES-200 (the loader says what to pass when data is missing)
            from assay.evals.suites.flores import load_flores

            items, digest = load_flores(o.data, split=o.split, langs={lang for d in directions for lang in d})
            self.source = f"flores200-{o.split}"
        self.items = list(items)
        self.directions = directions
        self._digest = digest
        missing = {lang for d in directions for lang in d} - set(self.items[0] if self.items else ())
        if missing:
            raise DataError(f"{self.name}: the data has no {', '.join(sorted(missing))} column")

    def data_hash(self) -> str:
        return stable_hash([self._digest, ["-".join(d) for d in self.directions]])

    def samples(self, seed: int, limit: int | None) -> Iterable[Sample]:
        # Sentence-major, directions interleaved: a --limit spreads over every direction. With a limit the sentence
        # order is shuffled by the seed (a different subset per seed); ids never depend on the seed.
        items = list(self.items)
        if limit is not None:
            random.Random(seed).shuffle(items)
        n = 0
        for it in items:
            for src, tgt in self.directions:
                if limit is not None and n >= limit:
                    return
                n += 1
                yield Sample(id=f"{it['id']}:{src}-{tgt}", input={"src": src, "tgt": tgt, "text": it[src]},
                             target=it[tgt], category=f"{src}-{tgt}",
                             meta={"domain": it.get("domain"), "source": self.source})

    def messages(self, sample: Sample) -> list[dict]:
        i = sample.input
        return [{"role": "user", "content": PROMPT.format(src_name=LANGS[i["src"]], tgt_name=LANGS[i["tgt"]],
                                                           text=i["text"])}]

    def request_params(self, sample: Sample) -> dict:
        # a sentence is short; a generous cap that still stops a rambling model quickly
        return {"max_tokens": max(64, 4 * len(sample.input["text"]) // 3)}

    def score(self, completion: str, sample: Sample) -> Score:
        hyp = clean_translation(completion)
        if not hyp:
            return Score(0.0, extracted="", reason="empty translation")
        c = sentence_chrf(hyp, sample.target)
        return Score(c / 100.0, extracted=hyp, reason=f"sentence chrF {c:.1f}")

    def _pairs(self, records: list[Record]) -> dict[str, tuple[list[str], list[str], int]]:
        records = as_records(records)
        by: dict[str, tuple[list[str], list[str], int]] = {}
        for r in records:
            cat = r.category or ""
            hyps, refs, errors = by.setdefault(cat, ([], [], 0))
            if r.status == "error" or r.completion is None:
                by[cat] = (hyps, refs, errors + 1)
                continue
            hyp = r.score.extracted if r.score is not None else None
            hyps.append(hyp if hyp is not None else clean_translation(r.completion))
            refs.append(r.target or "")
        return by

    def aggregate(self, records: list[Record]) -> list[Metric]:
        """Corpus BLEU-4 and chrF per direction ("bleu:en-fr", "chrf:en-fr"), bootstrap 95 % intervals.
        Failed requests (status error) are left out and counted as ``errors``; empty replies count as translations."""
        out: list[Metric] = []
        order = {f"{s}-{t}": i for i, (s, t) in enumerate(self.directions)}
        for cat, (hyps, refs, errors) in sorted(self._pairs(records).items(), key=lambda kv: order.get(kv[0], 99)):
            tgt = cat.split("-")[-1]
            res = corpus_scores(hyps, refs, tgt)
            for key in ("bleu", "chrf"):
                out.append(Metric.of(key, res[key], category=cat, errors=errors))
        return out

    def write_artifacts(self, records: list[Record], run_dir: Path) -> list[Path]:
        metrics = {m.key: m.model_dump() for m in self.aggregate(records)}
        path = Path(run_dir) / f"{self.name}_table.md"
        with atomic_file(path) as f:  # every file in a run folder is replaced atomically
            f.write(format_table(metrics))
        return [path]


def format_table(metrics: dict) -> str:
    """The seed-style table: pair x BLEU-4 x chrF (with 95 % bootstrap intervals and n)."""
    def cell(m):
        if m is None or m.get("value") is None:
            return "–"
        return f"{m['value']:.1f} [{m['low']:.1f}, {m['high']:.1f}]"

    pairs = [k.split(":", 1)[1] for k in metrics if k.startswith("bleu:")]
    lines = ["| pair | n | BLEU-4 [95% CI] | chrF [95% CI] |", "|---|---|---|---|"]
    for p in pairs:
        b, c = metrics.get(f"bleu:{p}"), metrics.get(f"chrf:{p}")
        lines.append(f"| {p} | {b['n']} | {cell(b)} | {cell(c)} |")
    return "\n".join(lines) + "\n"
