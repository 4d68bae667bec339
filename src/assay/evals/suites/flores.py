"""flores: the translate suite on FLORES-200 (dev or devtest split) read from a local folder.

Source: FLORES-200 (NLLB team, Meta AI), CC BY-SA 4.0 — https://github.com/facebookresearch/flores. The project does
not ship it: point ``--data`` at a folder holding ``eng_Latn.devtest``, ``fra_Latn.devtest``, ``spa_Latn.devtest``,
``arb_Arab.devtest``, ``swh_Latn.devtest``, ``zho_Hans.devtest`` (one sentence per line, line i of every file is the
same sentence). The folder of the official tarball (``flores200_dataset/``, with ``dev/`` and ``devtest/`` inside)
works too. Loading from the Hugging Face hub is not implemented: the FLORES+ dataset there is gated behind a login.

Scoring, prompt and metrics are exactly translate's (corpus BLEU-4 / chrF per direction with bootstrap intervals).

Example:
    assay eval --suite flores --data ../shared/benchmarks/flores200_devtest --limit 200
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from assay.errors import DataError
from assay.evals.suites.translate import Translate

CODES = {"en": "eng_Latn", "fr": "fra_Latn", "es": "spa_Latn", "ar": "arb_Arab", "sw": "swh_Latn", "zh": "zho_Hans"}


def _folder(path: Path, split: str) -> Path:
    """The folder that holds ``eng_Latn.<split>``: PATH itself, PATH/<split>, or PATH/flores200_dataset/<split>."""
    for cand in (path, path / split, path / "flores200_dataset" / split):
        if (cand / f"{CODES['en']}.{split}").is_file():
            return cand
    raise DataError(f"flores: no {CODES['en']}.{split} under {path}: pass --data PATH, the folder of the FLORES-200 "
                    f"*.{split} files (e.g. ../shared/benchmarks/flores200_devtest)")


def load_flores(data: str | Path | None, *, split: str = "devtest",
                langs: Iterable[str] = CODES) -> tuple[list[dict], str]:
    """Rows ``{"id": "flores-devtest-0001", "en": ..., "fr": ...}`` for ``langs``, and a digest of the files read."""
    if data is None:
        raise DataError("flores needs the FLORES-200 files: pass --data PATH (a folder with eng_Latn.devtest, ...)")
    if split not in ("dev", "devtest"):
        raise DataError(f"flores: split must be dev or devtest, not {split!r}")
    folder = _folder(Path(data).expanduser(), split)
    columns: dict[str, list[str]] = {}
    h = hashlib.sha256()
    for lang in sorted(set(langs)):
        if lang not in CODES:
            raise DataError(f"flores: no FLORES code known for {lang!r} (known: {', '.join(CODES)})")
        f = folder / f"{CODES[lang]}.{split}"
        if not f.is_file():
            raise DataError(f"flores: {f} is missing: the folder given with --data needs one file per language")
        raw = f.read_bytes()
        h.update(f.name.encode() + b"\0" + raw)
        # the published files keep a few trailing spaces (swh_Latn line 1): strip them, as sacrebleu does
        columns[lang] = [ln.strip() for ln in raw.decode("utf-8").rstrip("\n").split("\n")]
    sizes = {lang: len(v) for lang, v in columns.items()}
    if len(set(sizes.values())) != 1:
        raise DataError(f"flores: files under {folder} differ in line count {sizes}: they must be line-aligned")
    n = next(iter(sizes.values()))
    rows = [{"id": f"flores-{split}-{i + 1:04d}", **{lang: col[i] for lang, col in columns.items()}}
            for i in range(n)]
    return rows, h.hexdigest()[:16]


class Flores(Translate):
    """translate on FLORES-200: the same options, prompt and scoring; ``data`` is required."""

    name = "flores"
    _shipped = False
