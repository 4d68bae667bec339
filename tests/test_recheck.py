"""``assay eval --recheck K``: stored answers asked again at concurrency 1 and at the run's concurrency.

The stub answers as a function of how often it has seen a prompt, so which re-asked answers change (and which of those
flip the verdict) is known exactly: the identical shares and flip counts below are exact, not ranges."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.client import Client, SamplingParams
from assay.engines import Endpoint
from assay.errors import AssayError, EndpointUnreachable
from assay.evals.base import Sample, Score, Suite
from assay.evals.recheck import RECHECK, RECHECK_INDEX, choose, read_index, recheck, rechecks
from assay.evals.runner import run
from assay.store import RunStore, iter_records

cli = CliRunner()

# which items answer differently on their 2nd ask (the c=1 pass) and on their 3rd (the pass at the run's concurrency):
# "no" flips the verdict, "yes indeed" changes the text but not the verdict
C1_FLIP, C1_REWORD = {1, 4}, {2}
RUN_FLIP, RUN_REWORD = {5}, {0, 6, 7}
DELAY_S = 0.2  # every reply waits this long: requests that overlap are seen overlapping


class Flip(Suite):
    """Items 0..n-1: the stub says "yes" (score 1) unless the ask count says otherwise. Odd items ask for fewer
    tokens (``request_params``); ids in ``bad`` get HTTP 400 (error records)."""

    name, version = "flip", "1"

    def __init__(self, n: int = 10, bad: tuple = ()):
        super().__init__()
        self.n, self.bad = n, set(bad)

    def samples(self, seed, limit):
        for i in range(self.n if limit is None else min(limit, self.n)):
            yield Sample(id=f"f{i}", input={"i": i}, target="yes", category="odd" if i % 2 else "even")

    def messages(self, sample):
        bad = " [[status:400]]" if sample.input["i"] in self.bad else ""
        return [{"role": "user", "content": f"Is item {sample.input['i']} fine?{bad}"}]

    def request_params(self, sample):
        return {"max_tokens": 5} if sample.input["i"] % 2 else None

    def score(self, completion, sample):
        return Score(float("yes" in completion.lower()), extracted=completion.strip()[:20])


class Chat2(Suite):
    """A conversational suite (one ask through ``converse``): never rechecked."""

    name, version = "chat2", "1"

    def samples(self, seed, limit):
        for i in range(2):
            yield Sample(id=f"c{i}", input=i, target="hi")

    def messages(self, sample):
        return [{"role": "user", "content": f"Talk {sample.input}"}]

    async def converse(self, sample, chat):
        await chat.ask()

    def score(self, completion, sample):
        return Score(float("hi" in completion), extracted=completion)


class Replies:
    """The stub's ``reply``: counts asks per prompt and notes when each arrived."""

    def __init__(self):
        self.asks: Counter = Counter()
        self.arrivals: dict[int, list[float]] = defaultdict(list)  # ask number -> arrival times
        self.lock = threading.Lock()

    def __call__(self, req: dict) -> str:
        user = next(m["content"] for m in reversed(req["messages"]) if m["role"] == "user")
        with self.lock:
            self.asks[user] += 1
            n = self.asks[user]
            self.arrivals[n].append(time.monotonic())
        m = re.search(r"item (\d+)", user)
        if not m:
            return "hi"
        i = int(m.group(1))
        if n == 2 and i in C1_FLIP or n == 3 and i in RUN_FLIP:
            return "no"
        if n == 2 and i in C1_REWORD or n == 3 and i in RUN_REWORD:
            return "yes indeed"
        return "yes"


def expected(items: set[int]) -> dict:
    """identical count and flips per pass for re-asked ``items`` (the first re-ask is the c=1 pass)."""
    return {"c1": (len(items - C1_FLIP - C1_REWORD), len(items & C1_FLIP)),
            "run": (len(items - RUN_FLIP - RUN_REWORD), len(items & RUN_FLIP))}


def items_of(lines) -> set[int]:
    return {int(r.sample_id[1:]) for r in lines}


def body_key(req: dict) -> str:
    return next(m["content"] for m in reversed(req["messages"]) if m["role"] == "user")


# ---- through the runner API -----------------------------------------------------------------------------------------
def test_recheck_after_runner_counts_identical_and_flips_exactly(stub, tmp_path):
    rep = Replies()
    st = stub(reply=rep, first_delay_s=DELAY_S)
    eps = [st.endpoint()]
    suites = {"flip": Flip(bad=(9,)), "chat2": Chat2()}
    res = run(list(suites.values()), eps, out_dir=tmp_path, params=SamplingParams(max_tokens=16), seed=3,
              concurrency=4, system_prompt="Be brief.")
    assert res.manifest.status == "finished"
    before = {n: (res.run_dir / n).read_bytes() for n in ("records.jsonl", "summary.json", "manifest.json")}
    asked_in_run = st.count

    entry = recheck(res.run_dir, eps, k=50, suites=suites)

    # eligible: the 9 answered flip items; the error (f9) and the conversation (chat2) are counted, not asked
    assert (entry["eligible"], entry["asked"], entry["k"]) == (9, 9, 50)
    assert entry["skipped"] == {"conversational": 2, "status": 1} and entry["conversational_suites"] == ["chat2"]
    assert entry["concurrency"] == {"c1": 1, "run": 4} and entry["status"] == "finished"
    assert any("only 9 answers are eligible" in n for n in entry["notes"])
    assert st.count == asked_in_run + 2 * 9

    items = set(range(9))
    for name, (same, flips) in expected(items).items():
        p = entry["passes"][name]
        assert p["concurrency"] == entry["concurrency"][name]
        f = p["all"]
        assert (f["identical"]["k"], f["identical"]["n"], f["flips"]["k"], f["errors"]) == (same, 9, flips, 0)
        assert f["identical"]["value"] == pytest.approx(same / 9)
        assert f["identical"]["low"] < same / 9 < f["identical"]["high"]  # a Wilson interval around it
        assert f["scorer_drift"] == 0 and set(p["suites"]) == {"flip"}
    assert (expected(items)["c1"], expected(items)["run"]) == ((6, 2), (5, 1))  # the two passes differ

    # recheck.jsonl: one line per sample and pass, the new completion and both verdicts
    lines = rechecks(res.run_dir, entry["recheck_id"])
    assert len(lines) == 18 and Counter(r.pass_name for r in lines) == {"c1": 9, "run": 9}
    f1 = next(r for r in lines if r.sample_id == "f1" and r.pass_name == "c1")
    assert (f1.completion, f1.identical, f1.stored_value, f1.new_value, f1.flipped, f1.concurrency) == (
        "no", False, 1.0, 0.0, True, 1)
    f0 = next(r for r in lines if r.sample_id == "f0" and r.pass_name == "run")
    assert (f0.completion, f0.identical, f0.flipped, f0.concurrency) == ("yes indeed", False, False, 4)
    assert read_index(res.run_dir)["latest"] == entry["recheck_id"]
    stored = json.loads((res.run_dir / RECHECK_INDEX).read_text())["rechecks"][entry["recheck_id"]]
    assert stored["passes"] == json.loads(json.dumps(entry["passes"]))

    # exactly the request the runner sent: same body (system prompt, per-sample max_tokens, sampling) every time
    by_prompt = defaultdict(list)
    for req in st.requests:
        by_prompt[body_key(req)].append(req)
    for i in range(9):
        bodies = by_prompt[f"Is item {i} fine?"]
        assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2], i
        assert bodies[0]["messages"][0] == {"role": "system", "content": "Be brief."}
        assert bodies[0]["max_tokens"] == (5 if i % 2 else 16)

    # concurrency: one request at a time in the c=1 pass, several in flight in the pass at the run's concurrency
    c1, at_run = sorted(rep.arrivals[2]), sorted(rep.arrivals[3])
    assert len(c1) == len(at_run) == 9
    assert min(b - a for a, b in zip(c1, c1[1:])) >= DELAY_S * 0.9
    assert min(b - a for a, b in zip(at_run, at_run[1:])) < DELAY_S / 2

    # the run itself is untouched
    assert {n: (res.run_dir / n).read_bytes() for n in before} == before


def test_recheck_choice_is_seeded_and_new_each_time(stub, tmp_path):
    rep = Replies()
    st = stub(reply=rep)
    eps = [st.endpoint()]
    suites = {"flip": Flip(n=10)}
    res = run(list(suites.values()), eps, out_dir=tmp_path, params=SamplingParams(max_tokens=16), seed=7,
              concurrency=3)
    first = recheck(res.run_dir, eps, k=4, suites=suites)
    assert (first["eligible"], first["asked"], first["notes"]) == (10, 4, [])
    lines = rechecks(res.run_dir, first["recheck_id"])
    chosen = items_of(lines)
    assert len(chosen) == 4 and len(lines) == 8
    for name, (same, flips) in expected(chosen).items():  # 2nd and 3rd asks of these 4 items: known exactly
        f = first["passes"][name]["all"]
        assert (f["identical"]["k"], f["identical"]["n"], f["flips"]["k"]) == (same, 4, flips)

    again = recheck(res.run_dir, eps, k=4, suites=suites)
    assert again["recheck_id"] != first["recheck_id"]
    assert items_of(rechecks(res.run_dir, again["recheck_id"])) == chosen  # same seed, same choice
    # 4th and 5th asks: the stub says "yes" again, so now every answer is identical
    assert [again["passes"][n]["all"]["identical"]["value"] for n in ("c1", "run")] == [1.0, 1.0]
    bigger = recheck(res.run_dir, eps, k=6, suites=suites)
    assert chosen < items_of(rechecks(res.run_dir, bigger["recheck_id"]))  # a smaller K is a prefix of a larger
    idx = read_index(res.run_dir)
    assert list(idx["rechecks"]) == [first["recheck_id"], again["recheck_id"], bigger["recheck_id"]]
    assert len(list(iter_records(res.run_dir / RECHECK))) == 8 + 8 + 12

    # another seed picks another 4 (the choice is the seed's, not the file order's)
    assert {c for c in choose(list(range(10)), 4, 7)} != {c for c in choose(list(range(10)), 4, 8)}


def test_recheck_rebuilds_registered_suites_and_skips_a_changed_request(stub, tmp_path):
    st = stub()  # one fixed reply: every re-ask is identical
    eps = [st.endpoint()]
    res = run(["json"], eps, out_dir=tmp_path, params=SamplingParams(max_tokens=16), limit=3, concurrency=2)
    store = RunStore(res.run_dir)
    edited = sorted(r.sample_id for r in store.records())[0]

    def edit(r):  # as if the suite's prompt had changed since the run
        if r.sample_id == edited:
            r.messages = [{"role": "user", "content": "another prompt"}]
        return r

    store.rewrite(edit)
    entry = recheck(res.run_dir, eps, k=5)  # suites rebuilt from the manifest, as --rescore does
    assert (entry["eligible"], entry["asked"], entry["skipped"]) == (2, 2, {"request_changed": 1})
    assert any("another request than the one stored" in n for n in entry["notes"])
    lines = rechecks(res.run_dir, entry["recheck_id"])
    assert edited not in {r.sample_id for r in lines} and len(lines) == 4
    for p in entry["passes"].values():
        assert (p["all"]["identical"]["k"], p["all"]["identical"]["n"], p["all"]["flips"]["k"]) == (2, 2, 0)
        assert p["all"]["identical"]["low"] < 1.0 == p["all"]["identical"]["high"]


def test_recheck_errors_are_counted_not_scored(stub, tmp_path):
    st = stub(reply=Replies())
    eps = [st.endpoint()]
    suites = {"flip": Flip(n=4)}
    res = run(list(suites.values()), eps, out_dir=tmp_path, params=SamplingParams(max_tokens=16), concurrency=2)
    st.status = 400  # every re-ask fails (4xx: not retried)
    entry = recheck(res.run_dir, eps, k=4, suites=suites)
    for p in entry["passes"].values():
        assert (p["all"]["errors"], p["all"]["asked"], p["all"]["identical"]["n"]) == (4, 4, 0)
        assert p["all"]["identical"]["value"] is None and p["all"]["flips"]["k"] == 0
    assert all(r.status == "error" and r.identical is None and r.error for r in rechecks(res.run_dir))


def test_recheck_refuses_bad_input_and_keeps_an_interrupted_recheck(stub, tmp_path):
    st = stub(reply=Replies())
    eps = [st.endpoint()]
    suites = {"flip": Flip(n=4)}
    res = run(list(suites.values()), eps, out_dir=tmp_path, params=SamplingParams(max_tokens=16), concurrency=2)
    for k in (0, -1):
        with pytest.raises(AssayError, match=r"--recheck .*1 or more"):
            recheck(res.run_dir, eps, k=k, suites=suites)
    with pytest.raises(AssayError, match="serves 'other' .* same model"):
        recheck(res.run_dir, [st.endpoint("other")], k=2, suites=suites)
    with pytest.raises(AssayError, match="no answer to ask again.*conversational suites are not rechecked: chat2"):
        r2 = run([Chat2()], eps, out_dir=tmp_path / "conv", concurrency=1)
        recheck(r2.run_dir, eps, k=2, suites={"chat2": Chat2()})

    # the server gone mid-recheck: the error propagates, what was asked is kept, the index says interrupted
    dead = Client([Endpoint("http://127.0.0.1:9/v1", st.model)], max_retries=0)
    with pytest.raises(EndpointUnreachable):
        recheck(res.run_dir, client=dead, k=2, suites=suites)
    idx = read_index(res.run_dir)
    e = idx["rechecks"][idx["latest"]]
    assert e["status"] == "interrupted" and "unreachable" in e["ended_by"] and e["finished_at"] is None

    # an unfinished run is not rechecked
    store = RunStore(res.run_dir)
    m = store.manifest
    m.status = "interrupted"
    store.write_manifest(m)
    with pytest.raises(AssayError, match="interrupted: finish it first"):
        recheck(res.run_dir, eps, k=2, suites=suites)


# ---- through the CLI ------------------------------------------------------------------------------------------------
@pytest.fixture
def flip_registry(monkeypatch):
    import assay.evals.suites as reg

    real_get, real_available = reg.get_suite, reg.available
    made = {"flip": lambda **o: Flip(**o), "chat2": lambda **o: Chat2()}

    def get_suite(name, **opts):
        return made[name](**opts) if name in made else real_get(name, **opts)

    monkeypatch.setattr(reg, "get_suite", get_suite)
    monkeypatch.setattr(reg, "available", lambda: sorted([*real_available(), *made]))


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_cli_recheck_table_json_line_and_resume(stub, tmp_path, flip_registry):
    st = stub(reply=Replies())
    out = tmp_path / "runs"
    args = ["eval", "--endpoint", st.base_url, "--suite", "flip,chat2", "--suite-opt", "flip.n=8", "--out", str(out),
            "--concurrency", "3", "--max-tokens", "16", "--system-prompt", "Be brief.", "--recheck", "20"]
    res = cli.invoke(app, args)
    assert res.exit_code == 0, res.output
    head = last_json(res.stdout)
    rc = head["recheck"]
    assert (rc["k"], rc["eligible"], rc["asked"], rc["status"]) == (20, 8, 8, "finished")
    assert rc["skipped"] == {"conversational": 2}
    for name, (same, flips) in expected(set(range(8))).items():
        p = rc[name]
        assert p["concurrency"] == (1 if name == "c1" else 3)
        assert (p["n"], p["flips"], p["errors"]) == (8, flips, 0) and p["identical"] == pytest.approx(same / 8)
        assert p["low"] < p["identical"] < p["high"] and p["suites"]["flip"]["n"] == 8
    assert "only 8 answers are eligible; all 8 were asked again" in res.stderr
    assert "recheck " + rc["recheck_id"] in res.stderr and "scorecard" in res.stderr
    run_dir = Path(head["run_dir"])
    assert st.count == 8 + 2 + 2 * 8
    assert len(list(iter_records(run_dir / RECHECK))) == 16

    # the same command: the finished run asks nothing new, the recheck is a new measurement
    res2 = cli.invoke(app, args)
    assert res2.exit_code == 0, res2.output
    h2 = last_json(res2.stdout)
    assert h2["run_id"] == head["run_id"] and h2["recheck"]["recheck_id"] != rc["recheck_id"]
    assert st.count == 8 + 2 + 2 * 8 + 2 * 8
    assert h2["recheck"]["c1"]["identical"] == 1.0  # 4th and 5th asks all say "yes" again
    assert len(read_index(run_dir)["rechecks"]) == 2

    # assay report still reads the run
    rep = cli.invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "report")])
    assert rep.exit_code == 0, rep.output


@pytest.mark.parametrize("value", ["0", "-2"])
def test_cli_recheck_bad_values_are_one_line(stub, tmp_path, flip_registry, value):
    st = stub(reply=Replies())
    res = cli.invoke(app, ["eval", "--endpoint", st.base_url, "--suite", "flip", "--out", str(tmp_path),
                           "--recheck", value])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines() == [f"error: --recheck {value}: give how many answered samples to ask "
                                               "again, 1 or more (e.g. --recheck 20)"]
    assert st.count == 0


def test_cli_recheck_conflicts(stub, tmp_path, flip_registry):
    st = stub(reply=Replies())
    res = cli.invoke(app, ["eval", "--rescore", "latest", "--out", str(tmp_path), "--recheck", "3"])
    assert res.exit_code == 1 and "use one or the other" in res.stderr
    res = cli.invoke(app, ["eval", "--endpoint", st.base_url, "--suite", "chat2", "--out", str(tmp_path),
                           "--recheck", "3"])
    assert res.exit_code == 1 and "only single-call suites can be rechecked" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and st.count == 0


# ---- the real embedded model ----------------------------------------------------------------------------------------
@pytest.mark.engine
def test_cli_recheck_on_embedded_model(embedded, tmp_path):
    args = ["eval", "--endpoint", embedded.base_url, "--suite", "json", "--limit", "4", "--max-tokens", "64",
            "--concurrency", "2", "--out", str(tmp_path), "--recheck", "4"]
    res = cli.invoke(app, args)
    assert res.exit_code == 0, res.output
    head = last_json(res.stdout)
    rc = head["recheck"]
    answered = head["suites"]["json"]["n"]
    assert rc["eligible"] == answered and rc["asked"] == min(4, answered) and rc["status"] == "finished"
    lines = rechecks(head["run_dir"], rc["recheck_id"])
    assert len(lines) == 2 * rc["asked"]
    for name, c in (("c1", 1), ("run", 2)):
        p = rc[name]
        assert p["concurrency"] == c and p["n"] + p["errors"] == rc["asked"]
        if p["n"]:
            assert 0.0 <= p["low"] <= p["identical"] <= p["high"] <= 1.0 and 0 <= p["flips"] <= p["n"]
        mine = [r for r in lines if r.pass_name == name]
        assert {r.concurrency for r in mine} == {c} and all(r.stored_status in ("ok", "truncated", "unparsed")
                                                            for r in mine)
        stored = {r["sample_id"]: r["completion"] for r in iter_records(Path(head["run_dir"]) / "records.jsonl")}
        assert all(r.identical == (r.completion == stored[r.sample_id]) for r in mine if r.status != "error")
