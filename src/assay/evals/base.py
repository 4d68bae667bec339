"""The Suite and Record contracts (see DESIGN.md).

A suite is three parts: where samples come from, how a sample becomes chat messages, and a *pure* scoring function.
The runner knows nothing else about a suite, so a new suite is one file in ``evals/suites/`` and no runner change.

Example suite (a whole one):

    class Echo:
        name, version = "echo", "1"
        def samples(self, seed, limit):
            yield Sample(id="e1", input={"word": "kiwi"}, target="kiwi")
        def messages(self, sample):
            return [{"role": "user", "content": f"Say {sample.input['word']}"}]
        def score(self, completion, sample):
            ok = sample.target in completion.lower()
            return Score(1.0 if ok else 0.0, extracted=completion.strip()[:40])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol, runtime_checkable


@dataclass(frozen=True)
class Sample:
    id: str  # stable across runs and seeds where the item is the same (pairing in compare relies on it)
    input: Any  # suite-specific payload (JSON-serialisable)
    target: Any = None  # reference answer (JSON-serialisable)
    category: str = "all"  # per-category breakdown in the scorecard
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    value: float  # 0/1 for binary suites, any float for continuous ones
    extracted: str | None = None  # the answer the scorer read out of the completion
    reason: str = ""  # why this value (shown in reports)
    parsed: bool = True  # False -> record status "unparsed": counted beside the score, never silently a 0
    extra: dict = field(default_factory=dict)  # suite-specific detail (per-instruction results, cell accuracy, ...)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Score":
        return cls(**{k: d[k] for k in ("value", "extracted", "reason", "parsed", "extra") if k in d})


@runtime_checkable
class Suite(Protocol):
    name: str
    version: str  # bump when prompts, data or scoring change: it is part of the run fingerprint

    def samples(self, seed: int, limit: int | None) -> Iterable[Sample]: ...

    def messages(self, sample: Sample) -> list[dict]: ...

    def score(self, completion: str, sample: Sample) -> Score: ...


# Optional suite hooks the runner looks for with getattr (all optional):
#   binary: bool = True                     -> Wilson interval + McNemar; False -> bootstrap + paired bootstrap
#   request_params(sample) -> dict          -> per-sample overrides (e.g. response_format for constrained JSON)
#   aggregate(records: list[dict]) -> dict  -> corpus-level metrics (BLEU, pass@k) from stored records:
#                                              {metric_name: {"value": v, "low": lo, "high": hi, "n": n}}
#   data_hash() -> str                      -> hash of the data the samples come from (else: hash of the samples)
#   prompt_template: str                    -> included in the fingerprint
#   slow_scoring: bool                      -> score in a worker process with a timeout (sympy, sandbox)
#   scoring_timeout_s: float                -> that timeout (default 30 s); a timeout is Score(parsed=False)
#   metric: str                             -> name of the headline score in the scorecard ("accuracy", "chrF")
#   write_artifacts(records: list[dict], run_dir: Path) -> list[Path]
#                                           -> extra files drawn into the run folder (longctx heatmap PNG)
#   async prepare(client: assay.client.Client) -> None
#                                           -> called once, before samples() and the fingerprint scan, with the
#                                              run's client: longctx learns the served context window and measures
#                                              chars/token with the server's tokenizer (without it: a stated estimate)


STATUSES = ("ok", "error", "truncated", "unparsed")


@dataclass
class Record:
    """One sample of one run, as stored (one JSON line in records.jsonl). Reports read only these."""

    run_id: str
    suite: str
    sample_id: str
    category: str
    messages: list[dict]
    target: Any
    completion: str | None  # answer text after stripping a leading <think> block; None when the request failed
    reasoning: str | None = None  # the stripped <think> text, if any
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    e2e_s: float | None = None
    score: dict | None = None  # Score.to_dict()
    status: str = "ok"  # one of STATUSES
    error: str | None = None
    params: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    endpoint: str | None = None
    finished_at: float | None = None
    input: Any = None  # Sample.input, stored so --rescore can score again from records alone

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, default=str)

    @classmethod
    def from_dict(cls, d: dict) -> "Record":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def status_for(finish_reason: str | None, score: Score | None, error: str | None) -> str:
    """error beats truncated beats unparsed beats ok."""
    if error is not None:
        return "error"
    if finish_reason == "length":
        return "truncated"
    if score is not None and not score.parsed:
        return "unparsed"
    return "ok"


def stable_hash(obj: Any) -> str:
    """sha256 of a canonical JSON dump, first 16 hex digits."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
