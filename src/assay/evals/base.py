"""The Suite, Record and Metric contracts (docs/architecture.md in the repository).

A suite is three parts: where samples come from, how a sample becomes chat messages, and a *pure* scoring function.
Everything else is an optional hook with a typed default on the ``Suite`` base class below; the runner, rescore and
the reports call those hooks directly, so a new suite is one file in ``evals/suites/`` (or a Python entry point in
the group ``assay.suites`` from another package) and no other change.

A whole suite, with one option (``--suite-opt word=fig``):

    class Echo(Suite):
        name, version = "echo", "1"

        class Options(SuiteOptions):
            word: str = "kiwi"

        def samples(self, seed, limit):
            yield Sample(id="e1", input={"word": self.options.word}, target=self.options.word)

        def messages(self, sample):
            return [{"role": "user", "content": f"Say {sample.input['word']}"}]

        def score(self, completion, sample):
            ok = sample.target in completion.lower()
            return Score(1.0 if ok else 0.0, extracted=completion.strip()[:40])

Objects that do not subclass ``Suite`` (any class with ``name``, ``version``, ``samples``, ``messages``, ``score``)
are wrapped by ``as_suite``; a public attribute whose name is close to a hook's (``request_param``) is an error there
and at class definition, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from assay.client import ToolCall  # noqa: F401 - re-exported: a Turn's tool calls
from assay.common import stable_hash  # noqa: F401 - re-exported: suites hash their data with it
from assay.errors import AssayError
from assay.store import register_record

if TYPE_CHECKING:  # pragma: no cover
    from assay.client import Client
    from assay.evals.runner import Conversation


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


class ToolResult(BaseModel):
    """What assay answered to a tool call (a sandbox run's output), as put back into the conversation."""

    model_config = ConfigDict(extra="ignore")

    call_id: str | None = None
    name: str = ""
    content: str = ""
    status: str = "ok"  # the tool's own status: e.g. the sandbox's passed | failed | timeout | output_limit | error
    detail: dict = {}


class Turn(BaseModel):
    """One model call inside a multi-call sample (a conversation): what was sent and what came back."""

    model_config = ConfigDict(extra="ignore")

    sent: int = 0  # messages[:sent] of the record's conversation were sent for this call
    completion: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None
    think_unclosed: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_source: str | None = None  # Completion.prompt_tokens_source: "usage" | "local" | "tokenize" | None
    ttft_s: float | None = None
    e2e_s: float | None = None
    tool_calls: list[ToolCall] = []
    tool_results: list[ToolResult] = []
    params: dict = {}  # per-call overrides, when any (tools, tool_choice ...)
    label: str = ""  # what the suite calls this call ("turn 2", "tool round 1")
    cached: bool = False  # reused from the answer cache (assay.answers): no call, no timings


STATUSES = ("ok", "error", "truncated", "unparsed")
Status = Literal["ok", "error", "truncated", "unparsed"]


class Record(BaseModel):
    """One sample of one run, as stored (one JSON line in records.jsonl) and as every reader gets it back."""

    model_config = ConfigDict(extra="ignore", validate_assignment=False)

    run_id: str = ""
    suite: str = ""
    sample_id: str = ""
    category: str = "all"
    messages: list[dict] = []
    target: Any = None
    completion: str | None = None  # answer text (see assay.common.split_think); None when the request failed
    reasoning: str | None = None  # the think-block text, if any
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # where prompt_tokens came from (assay.client.Completion.prompt_tokens_source): "usage" (the server's figure),
    # "local" (counted in this process with the engine's template and tokenizer), "tokenize" (the server's tokenize
    # route), several joined with "+" for a conversation whose calls differ; None: not known, or a run from before
    prompt_tokens_source: str | None = None
    ttft_s: float | None = None
    e2e_s: float | None = None
    score: Score | None = None
    status: Status = "ok"
    error: str | None = None
    params: dict = {}
    meta: dict = {}
    endpoint: str | None = None
    finished_at: float | None = None
    input: Any = None  # Sample.input, stored so --rescore can score again from records alone
    # every model call of a conversation (suites with a ``converse`` hook); empty for one-call samples, and in runs
    # written before conversations existed. ``messages`` then holds the whole conversation, replies included.
    turns: list[Turn] = []
    # the answer (every call, for a conversation) was reused from the answer cache (assay.answers): no model call
    # was made for this record, so it has no timings and counts in the scorecard's "from cache"
    cached: bool = False

    @property
    def value(self) -> float | None:
        """The score counted in the scorecard: None for error records and records without a score."""
        if self.status == "error" or self.score is None:
            return None
        return float(self.score.value)

    def sample(self) -> Sample:
        return Sample(id=self.sample_id, input=self.input, target=self.target, category=self.category or "all",
                      meta=self.meta or {})

    def to_json(self) -> str:
        return self.model_dump_json()

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict) -> "Record":
        return cls.model_validate(d)


register_record("eval", Record)  # what assay.store reads an eval run's records.jsonl as


def as_records(records: Iterable[Record | dict]) -> list[Record]:
    """Records as given, or read from their stored dicts (hooks accept both)."""
    return [r if isinstance(r, Record) else Record.model_validate(r) for r in records]


class Metric(BaseModel):
    """A corpus-level number with its interval: BLEU over a direction, pass@k over problems, a mean score.

    ``category`` says which slice it covers (None: the whole suite); ``kind`` how the interval was made."""

    model_config = ConfigDict(extra="allow")  # suite-specific counts ride along (errors, per-cell n, ...)

    name: str
    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    category: str | None = None
    kind: Literal["proportion", "bootstrap", "corpus"] = "corpus"
    key: str = ""  # its key in summary.json; default ``name`` or, for one category, ``name:category``
    detail: bool | None = None  # left to the report, not the terminal scorecard; default: when it has a category

    def model_post_init(self, _ctx) -> None:
        if not self.key:
            self.key = self.name if self.category is None else f"{self.name}:{self.category}"
        if self.detail is None:
            self.detail = self.category is not None

    @classmethod
    def of(cls, name: str, summary: dict, *, category: str | None = None, kind: str = "bootstrap",
           **extra) -> "Metric":
        """From a ``stats`` summary dict ({value, low, high, n})."""
        known = {"value", "low", "high", "n"}
        more = {k: v for k, v in summary.items() if k not in known and k not in extra}
        return cls(name=name, value=summary.get("value"), low=summary.get("low"), high=summary.get("high"),
                   n=int(summary.get("n") or 0), category=category, kind=kind, **more, **extra)


def status_for(finish_reason: str | None, score: Score | None, error: str | None) -> str:
    """error beats truncated beats unparsed beats ok."""
    if error is not None:
        return "error"
    if finish_reason == "length":
        return "truncated"
    if score is not None and not score.parsed:
        return "unparsed"
    return "ok"


# ---- the Suite base class --------------------------------------------------------------------------------------------
class SuiteOptions(BaseModel):
    """A suite's ``--suite-opt`` options: typed, with defaults; an unknown name is an error naming the valid ones."""

    model_config = ConfigDict(extra="forbid")


class Suite:
    """Subclass and set ``name``, ``version``; implement ``samples``, ``messages``, ``score``; override any hook."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"  # bump when prompts, data or scoring change: it is part of the run fingerprint
    Options: ClassVar[type[SuiteOptions]] = SuiteOptions

    binary: bool = True  # Wilson interval + McNemar; False -> bootstrap + paired bootstrap
    metric: str | None = None  # name of the headline score ("accuracy", "chrF"); None: accuracy / mean score
    prompt_template: str | None = None  # part of the fingerprint
    slow_scoring: bool = False  # score in a killable worker process (sympy, the sandbox)
    scoring_timeout_s: float = 30.0  # that process's per-sample timeout; a timeout is Score(parsed=False)

    def __init__(self, **options: Any):
        self.options = self.Options(**options)

    # -- the three parts
    def samples(self, seed: int, limit: int | None) -> Iterable[Sample]:
        raise NotImplementedError

    def messages(self, sample: Sample) -> list[dict]:
        raise NotImplementedError

    def score(self, completion: str, sample: Sample) -> Score:
        raise NotImplementedError

    # -- optional hooks (typed defaults)
    def request_params(self, sample: Sample) -> dict | None:
        """Per-sample sampling overrides (e.g. response_format for constrained JSON)."""
        return None

    def aggregate(self, records: list[Record]) -> list[Metric]:
        """Corpus metrics from all of this suite's stored records (errors included; their status says so)."""
        return []

    def notes(self, records: list[Record]) -> dict[str, str]:
        """Named facts a report must show beside the numbers (which sandbox was in force), not numbers."""
        return {}

    def data_hash(self) -> str | None:
        """A hash of the data the samples come from; None: the runner hashes the samples themselves."""
        return None

    def write_artifacts(self, records: list[Record], run_dir: Path) -> list[Path]:
        """Extra files written into the run folder (a heatmap PNG)."""
        return []

    async def prepare(self, client: "Client") -> None:
        """Called once with the run's client before samples() is read (learn the served context window)."""
        return None

    # -- conversations: several model calls per sample (multi-turn, tool use)
    requires: tuple[str, ...] = ()  # what the served engine must do: ("tools",) -> launchers start it tool-ready

    async def converse(self, sample: Sample, chat: "Conversation") -> None:
        """Hold the sample's conversation through ``chat`` (``chat.messages`` is the history: append user and tool
        messages, ``await chat.ask()`` for each reply; every call is recorded as a ``Turn``). The runner uses this
        instead of the single call when a suite overrides it; the messages from ``messages(sample)`` start it."""
        raise NotImplementedError

    def score_turns(self, turns: list[Turn], sample: Sample) -> Score:
        """Score a conversation from its stored turns (pure: --rescore calls it on records alone). Default: the last
        reply through ``score``."""
        last = turns[-1] if turns else Turn()
        return self.score(last.completion or "", sample)

    def option_values(self) -> dict:
        """The options this suite was built with (stored in the manifest so rescore rebuilds the same suite)."""
        opts = getattr(self, "options", None)
        return opts.model_dump(mode="json", exclude_defaults=True) if isinstance(opts, SuiteOptions) else {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _check_hook_names(cls.__name__, [n for n in vars(cls) if not n.startswith("_")])


HOOKS = ("samples", "messages", "score", "request_params", "aggregate", "notes", "data_hash", "write_artifacts",
         "prepare", "binary", "metric", "prompt_template", "slow_scoring", "scoring_timeout_s", "converse",
         "score_turns", "requires")


def _check_hook_names(owner: str, names: Iterable[str]) -> None:
    known = set(HOOKS) | set(dir(Suite))
    for n in names:
        if n in known:
            continue
        close = difflib.get_close_matches(n, HOOKS, n=1, cutoff=0.85)
        if close:
            raise AssayError(f"suite {owner}: {n!r} is not a suite hook; did you mean {close[0]!r}? (a misspelt "
                             "hook would be silently ignored)")


class _Wrapped(Suite):
    """A duck-typed suite object behind the base class: its attributes where it has them, the defaults elsewhere."""

    def __init__(self, obj: Any):
        self.obj = obj
        self.options = SuiteOptions()
        self.name, self.version = obj.name, str(getattr(obj, "version", ""))  # type: ignore[misc]
        for hook in HOOKS:
            if hasattr(obj, hook):
                setattr(self, hook, getattr(obj, hook))

    def __getattr__(self, item):  # suite-specific attributes (``directions``, ``k``) stay reachable
        return getattr(self.__dict__["obj"], item)

    def __getstate__(self):
        return {"obj": self.obj}

    def __setstate__(self, state):
        self.__init__(state["obj"])

    def option_values(self) -> dict:
        return dict(getattr(self.obj, "assay_options", {}) or {})


def as_suite(obj: Any, *, to_run: bool = True) -> Suite:
    """``obj`` as a ``Suite``: itself when it subclasses the base, else wrapped (after the hook-name check).
    ``to_run=False`` (reports) needs only a ``name`` and whichever hooks the object has."""
    if isinstance(obj, Suite):
        return obj
    for attr in ("name", "version", "samples", "messages", "score") if to_run else ("name",):
        if not hasattr(obj, attr):
            raise AssayError(f"{type(obj).__name__} is not a suite: it has no {attr!r} (see assay.evals.base)")
    _check_hook_names(type(obj).__name__, [n for n in dir(type(obj)) if not n.startswith("_")])
    return _Wrapped(obj)


def conversational(suite: Suite) -> bool:
    """Whether the runner holds a conversation for each sample (the suite, or the object it wraps, has ``converse``)."""
    if isinstance(suite, _Wrapped):
        return "converse" in vars(suite)
    return type(suite).converse is not Suite.converse


def suite_ref(suite: Suite) -> str | None:
    """``module:qualname`` of the class (or the wrapped object's class) that built ``suite``, if importable."""
    cls = type(suite.obj) if isinstance(suite, _Wrapped) else type(suite)
    if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
        return None
    return f"{cls.__module__}:{cls.__qualname__}"


def options_model(factory: Any) -> type[SuiteOptions]:
    """The options a suite takes: a Suite subclass's ``Options`` (every built-in suite: its one declaration of them),
    else, for a class without one or an entry point's factory function, a model built from its signature
    (annotations and defaults), extra names forbidden."""
    if inspect.isclass(factory) and issubclass(factory, Suite) and factory.Options is not SuiteOptions:
        return factory.Options
    import typing

    from pydantic import create_model

    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:  # noqa: BLE001 - an annotation that cannot be resolved accepts anything
        hints = {}
    fields: dict[str, Any] = {}
    for p in inspect.signature(factory).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        fields[p.name] = (hints.get(p.name, Any), ... if p.default is inspect.Parameter.empty else p.default)
    return create_model(f"{getattr(factory, '__name__', 'Suite')}Options", __base__=SuiteOptions, **fields)


def validate_options(suite: str, factory: Any, options: dict) -> dict:
    """``options`` checked against the factory's options model: the validated values (only those given), or one
    AssayError line naming the bad option and the valid ones."""
    model = options_model(factory)
    try:
        got = model(**options)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ())) or "?"
        valid = ", ".join(f"{n} ({_type_name(f.annotation)}, default {f.default!r})" if not f.is_required()
                          else f"{n} ({_type_name(f.annotation)}, required)"
                          for n, f in model.model_fields.items())
        if err.get("type") == "extra_forbidden":
            msg = f"suite {suite!r} has no option {where!r}"
        else:
            msg = f"suite {suite!r} option {where}={err.get('input')!r}: {err.get('msg')}"
        raise AssayError(f"{msg}; valid options: {valid or 'none'}") from None
    return {k: getattr(got, k) for k in options}


def _type_name(ann: Any) -> str:
    s = getattr(ann, "__name__", None) or str(ann)
    return s.replace("typing.", "").replace("collections.abc.", "")
