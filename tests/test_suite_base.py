"""The Suite base class: typed options (one-line errors), misspelt hooks refused, and a suite from another package
(an ``assay.suites`` entry point) that runs, resumes, rescores and reports with no assay file touched."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from assay.errors import AssayError
from assay.evals.base import Sample, Score, Suite
from assay.evals.suites import _plugins, get_suite

DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_bad_suite_options_are_one_line_naming_the_valid_ones():
    with pytest.raises(AssayError) as e:
        get_suite("code", n="abc")
    msg = str(e.value)
    assert "\n" not in msg and "option n='abc'" in msg and "valid options: n (int, default 1)" in msg
    with pytest.raises(AssayError, match=r"suite 'math' has no option 'n_generatd'; valid options: source"):
        get_suite("math", n_generatd=5)
    assert get_suite("code", n="3").n == 3  # a number given as text (--suite-opt n=3) is coerced, not refused


def test_every_builtin_suite_is_one_class_with_its_options_declared_once():
    """One way to write a suite: the module's Suite subclass with an ``Options`` model, no ``make()``; the registry
    validates options from that model and builds that class."""
    import importlib

    from assay.errors import DataError
    from assay.evals.base import SuiteOptions, options_model
    from assay.evals.suites import _builtin, factory

    need_data = {"mbpp", "flores"}  # refuse to build without --data (one line naming it)
    for name in _builtin():
        module = importlib.import_module(f"assay.evals.suites.{name}")
        cls = factory(name)
        assert not hasattr(module, "make"), name
        assert issubclass(cls, Suite) and cls.__module__ == module.__name__ and cls.name == name, name
        assert cls.Options is not SuiteOptions and options_model(cls) is cls.Options, name
        if name in need_data:
            with pytest.raises(DataError, match="--data"):
                get_suite(name)
        else:
            assert type(get_suite(name)) is cls, name


def test_cli_bad_suite_opt_is_one_line_and_starts_no_engine():
    from typer.testing import CliRunner

    from assay.cli import app

    res = CliRunner().invoke(app, ["eval", "--suite", "code", "--suite-opt", "n=abc", "--endpoint",
                                   "http://127.0.0.1:9/v1"], env={"COLUMNS": "200"})
    assert res.exit_code != 0
    assert "option n='abc'" in res.output and "Traceback" not in res.output and "ValueError" not in res.output


def test_misspelt_hook_is_refused_at_class_definition():
    with pytest.raises(AssayError, match="'request_param' is not a suite hook; did you mean 'request_params'"):
        class Bad(Suite):  # noqa: F841
            name = "bad"

            def request_param(self, sample):
                return {"max_tokens": 5}

    from assay.evals.base import as_suite

    class Duck:
        name, version = "duck", "1"

        def samples(self, seed, limit):
            return []

        def messages(self, s):
            return []

        def score(self, c, s):
            return Score(0.0)

        def agregate(self, records):
            return []

    with pytest.raises(AssayError, match="did you mean 'aggregate'"):
        as_suite(Duck())


@pytest.fixture
def sums_plugin(tmp_path, monkeypatch):
    """The docs' 25-line example suite, installed as another package's entry point (a dist-info on sys.path)."""
    code = re.search(r"## A suite in 25 lines.*?```python\n(.*?)```", DOCS.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 30
    site = tmp_path / "site"
    (site / "sums_pkg").mkdir(parents=True)
    (site / "sums_pkg" / "__init__.py").write_text(code)
    dist = site / "sums_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sums-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[assay.suites]\nsums = sums_pkg:Sums\n")
    monkeypatch.syspath_prepend(str(site))
    _plugins.cache_clear()
    yield
    _plugins.cache_clear()
    sys.modules.pop("sums_pkg", None)


def test_plugin_suite_runs_resumes_rescores_and_reports(sums_plugin, stub, tmp_path):
    from assay.evals.runner import rescore, run
    from assay.evals.suites import available
    from assay.report.runs import load_eval_run

    assert "sums" in available()
    suite = get_suite("sums", n=6)
    answers = {f"What is {s.input['a']} + {s.input['b']}?": s.target for s in suite.samples(0, None)}

    calls = []

    def counted(req):  # right for the first three questions asked (concurrency 1), no number after that
        calls.append(req)
        q = req["messages"][-1]["content"].split(" Just")[0]
        return f"It is {answers[q]}." if len(calls) <= 3 else "No idea"

    st = stub(reply=counted)
    eps = [st.endpoint()]
    out = tmp_path / "runs"
    r1 = run(["sums"], eps, out_dir=out, suite_options={"sums": {"n": 6}}, concurrency=1)
    s1 = r1.summary["suites"]["sums"]
    assert s1["n"] == 6 and s1["unparsed"] >= 1 and 0 < s1["value"] < 1
    assert r1.manifest.suite_options == {"sums": {"n": 6}}
    r2 = run(["sums"], eps, out_dir=out, suite_options={"sums": {"n": 6}}, concurrency=1)
    assert r2.resumed and r2.run_dir == r1.run_dir and r2.samples_this_session == 0
    again = rescore(r1.run_dir)  # rebuilt from the entry point with the stored options
    assert again["changed"] == 0 and again["summary"]["suites"]["sums"]["value"] == s1["value"]
    rep = load_eval_run(r1.run_dir)
    assert rep.suites["sums"]["n"] == 6 and rep.scores("sums")


class Shout:
    """A duck-typed suite object from outside the registry (no base class, no entry point)."""

    name, version = "shout", "1"

    def samples(self, seed, limit):
        for i in range(4):
            yield Sample(id=f"x{i}", input={"w": f"w{i}"}, target=f"w{i}")

    def messages(self, s):
        return [{"role": "user", "content": f"[[reply:{s.input['w'] if s.id != 'x3' else 'no'}]]"}]

    def score(self, completion, s):
        return Score(float(completion.strip() == s.target), extracted=completion.strip())


def test_suite_object_from_outside_can_be_rescored(stub, tmp_path):
    from assay.evals.runner import rescore, run

    st = stub()
    res = run([Shout()], [st.endpoint()], out_dir=tmp_path, concurrency=2)
    assert res.manifest.suite_refs == {"shout": "test_suite_base:Shout"}
    again = rescore(res.run_dir)  # no suites passed: rebuilt from the class the manifest names
    assert again["summary"]["suites"]["shout"]["value"] == pytest.approx(0.75) and again["changed"] == 0


@pytest.fixture
def sums_module(tmp_path, monkeypatch):
    """The docs' 25-line example dropped into the built-in suites package as ``sums.py``, as docs/architecture.md
    tells a user to (the package's search path gets a temp folder holding the file; the source tree is untouched)."""
    import assay.evals.suites as reg

    code = re.search(r"## A suite in 25 lines.*?```python\n(.*?)```", DOCS.read_text(), re.S).group(1)
    folder = tmp_path / "dropped"
    folder.mkdir()
    (folder / "sums.py").write_text(code)
    monkeypatch.setattr(reg, "__path__", [*reg.__path__, str(folder)])
    sys.modules.pop("assay.evals.suites.sums", None)
    yield
    sys.modules.pop("assay.evals.suites.sums", None)


def test_docs_suite_dropped_into_the_package_runs_resumes_rescores_and_reports(sums_module, stub, tmp_path):
    """A module with no ``make()``: its ``Suite`` subclass is the suite (``assay eval --suite sums`` as documented)."""
    from typer.testing import CliRunner

    from assay.cli import app
    from assay.evals.suites import available
    from assay.report.runs import load_eval_run

    assert "sums" in available() and type(get_suite("sums", n=3)).__name__ == "Sums"
    with pytest.raises(AssayError, match="suite 'sums' has no option 'digit'; valid options: n .*digits"):
        get_suite("sums", digit=3)
    answers = {f"What is {s.input['a']} + {s.input['b']}?": s.target for s in get_suite("sums", n=5).samples(0, None)}
    st = stub(reply=lambda req: f"{answers[req['messages'][-1]['content'].split(' Just')[0]]}")
    out = tmp_path / "runs"
    cli = CliRunner()
    args = ["eval", "--endpoint", st.base_url, "--suite", "sums", "--suite-opt", "n=5", "--out", str(out)]
    first = cli.invoke(app, args)
    assert first.exit_code == 0, first.output
    run_dir = next(out.iterdir())
    assert load_eval_run(run_dir).suites["sums"]["value"] == 1.0 and load_eval_run(run_dir).suites["sums"]["n"] == 5
    n_calls = len(st.requests)
    again = cli.invoke(app, args)  # the same command resumes: nothing asked twice
    assert again.exit_code == 0 and len(st.requests) == n_calls
    res = cli.invoke(app, ["eval", "--rescore", str(run_dir)])
    assert res.exit_code == 0, res.output
    res = cli.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output


def test_a_suite_module_with_two_unnamed_suites_is_one_line(tmp_path, monkeypatch):
    import assay.evals.suites as reg

    (tmp_path / "twice.py").write_text(
        "from assay.evals.base import Suite\nclass A(Suite):\n    name = 'a'\nclass B(Suite):\n    name = 'b'\n")
    monkeypatch.setattr(reg, "__path__", [*reg.__path__, str(tmp_path)])
    with pytest.raises(AssayError, match=r"defines 2 Suite subclasses \(A, B\): give exactly one the name 'twice'"):
        get_suite("twice")
    sys.modules.pop("assay.evals.suites.twice", None)
