"""The layering of src/assay, read from the source with ``ast`` (no import is executed): ``assay.stats`` is the bottom
layer for statistics, and the top-level packages ``assay.judge`` and ``assay.report`` do not import each other both
ways. Imports anywhere in a file count, module-level and inside functions alike."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "assay"
STATS_MAY_IMPORT = {"stats", "common", "errors"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def assay_imports(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of assay in the file, relative imports resolved against ``package``
    (by default the file's own package under src/assay)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name == "assay" or a.name.startswith("assay.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "assay":  # from assay import stats, errors: each name is a module
                out += [(node.lineno, f"assay.{a.name}") for a in node.names]
            elif mod.startswith("assay."):
                out.append((node.lineno, mod))
    return out


def top_package(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


def package_edges(src: str, dst: str) -> list[str]:
    """'file:line -> module' for each import from package ``src`` into package ``dst``."""
    return [f"{f.relative_to(SRC.parent)}:{line} -> {mod}" for f in sorted((SRC / src).rglob("*.py"))
            for line, mod in assay_imports(f) if top_package(mod) == dst]


def test_stats_imports_nothing_above_common():
    files = sorted((SRC / "stats").rglob("*.py"))
    assert files, "src/assay/stats/ is missing"
    bad = [f"{f.relative_to(SRC.parent)}:{line} imports {mod}" for f in files for line, mod in assay_imports(f)
           if top_package(mod) not in STATS_MAY_IMPORT]
    assert not bad, "assay.stats must import nothing from assay but stats, common, errors:\n" + "\n".join(bad)


def test_the_import_walker_sees_function_level_and_relative_imports(tmp_path):
    f = tmp_path / "probe.py"
    f.write_text("import json\n\ndef g():\n    from assay.report import runs\n    from .. import judge\n"
                 "    import assay.chat.votes\n    from assay import errors, stats\n")
    mods = sorted(m for _, m in assay_imports(f, package="assay.stats"))
    assert mods == ["assay.chat.votes", "assay.errors", "assay.judge", "assay.report", "assay.stats"]


def test_no_copies_of_the_old_statistics_modules():
    old = [p for p in ("evals/stats.py", "report/paired.py", "judge/stats.py") if (SRC / p).exists()]
    assert not old, f"statistics live in assay.stats only; remove {old}"


def test_no_import_cycle_between_judge_and_report():
    judge_to_report, report_to_judge = package_edges("judge", "report"), package_edges("report", "judge")
    assert not (judge_to_report and report_to_judge), (
        "import cycle between assay.judge and assay.report:\n" + "\n".join(judge_to_report + report_to_judge))


def test_statistics_are_not_a_cause_of_the_judge_report_cycle():
    """Whatever else links them, no edge between judge and report is about statistics any more."""
    edges = package_edges("judge", "report") + package_edges("report", "judge")
    assert not [e for e in edges if "paired" in e or "stats" in e], edges


# An engine's name, aliases and engine-specific keys appear only in src/assay/engines/ (the registry dispatches):
# anything else reaches an engine through ``assay.engines`` (capabilities, facts, probes), never by comparing its
# name or reading its keys. "remote" (the generic fallback, also an identity format) and "llama" (a GGUF
# architecture) are too generic to check.
ENGINE_WORDS = {"llama.cpp", "llamacpp", "vllm", "llama_amx", "vllm_metrics", "llama-server", "llamaserver",
                "llama.cpp-server", "llama_server_metrics", "llama_server_timings"}
# (file under src/assay, word): why the string may stay there
ENGINE_WORDS_ALLOWED = {
    # the --llama-amx option's parameter name: the CLI declares the option and hands the value on, unread
    ("cli/common.py", "llama_amx"): "the --llama-amx option",
    # the command module cli/vllm.py (``assay vllm-install``), not an engine comparison
    ("cli/__init__.py", "vllm"): "the command module cli/vllm.py",
    ("cli/__init__.py", "llamaserver"): "the command module cli/llamaserver.py (assay llama-server-build)",
    # to go: the bench command prints the vLLM probe's group key; engines.check_lines(summary) replaces it
}


def engine_words(path: Path) -> list[tuple[int, str]]:
    """(line, word) for every string constant in the file that is an engine's name or key, except a model preset's
    ``default_engine`` (data: resolved through the registry)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    data = {id(kw.value) for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords
            if kw.arg == "default_engine"}
    data |= {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.AnnAssign) and node.value is not None
             and isinstance(node.target, ast.Name) and node.target.id == "default_engine"}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.lower() in ENGINE_WORDS and id(node) not in data]


def test_no_engine_names_outside_engines():
    bad = [f"{f.relative_to(SRC)}:{line} {word!r}" for f in sorted(SRC.rglob("*.py"))
           if not f.is_relative_to(SRC / "engines")
           for line, word in engine_words(f) if (str(f.relative_to(SRC)), word.lower()) not in ENGINE_WORDS_ALLOWED]
    assert not bad, ("an engine's name or key outside src/assay/engines/ (ask assay.engines instead: capabilities, "
                     "Endpoint.facts, fact_lines, group_probe / request_probe, check_lines):\n" + "\n".join(bad))


def test_the_engine_word_check_sees_comparisons_and_keys_but_not_preset_data(tmp_path):
    f = tmp_path / "probe.py"
    f.write_text('def f(ep, spec):\n    """Works on llama.cpp and vllm."""\n    if ep.engine == "vllm":\n'
                 '        return ep.extra["llama_amx"]\n    return ModelSpec(name="x", default_engine="llama.cpp")\n\n'
                 'class ModelSpec:\n    default_engine: str = "llama.cpp"\n')
    assert engine_words(f) == [(3, "vllm"), (4, "llama_amx")]


def test_every_startable_engine_is_checked():
    from assay import engines

    names = {n.lower() for e in engines.registered() if e.startable for n in (e.name, *e.aliases)}
    assert names - {"llama"} <= ENGINE_WORDS, "add the new engine's name to ENGINE_WORDS"


# The packages of src/assay from the bottom up (docs/architecture.md, "Layers"): a module may import its own package
# and anything in a lower layer, never a package of its own layer or above. So there is no import cycle between
# packages either.
LAYERS = [
    {"errors"},
    {"common"},
    {"stats", "sandbox", "store", "models", "gguf_meta"},
    {"engines"},
    {"answers", "stub"},
    {"client"},
    {"evals", "doc"},
    {"bench", "judge"},
    {"report", "chat"},
    {"flows"},
    {"cli"},
]
LAYER_OF = {p: i for i, ps in enumerate(LAYERS) for p in ps}


def _top_packages() -> set[str]:
    return {p.stem if p.suffix == ".py" else p.name for p in SRC.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}


def test_every_package_has_a_layer():
    missing = sorted(_top_packages() - set(LAYER_OF))
    assert not missing, f"give these packages a layer in LAYERS (and in docs/architecture.md): {missing}"


def test_no_package_imports_its_own_layer_or_above():
    bad = []
    for f in sorted(SRC.rglob("*.py")):
        mod = _module_name(f)
        src = top_package(mod)
        if src not in LAYER_OF:
            continue
        for line, m in assay_imports(f):
            dst = top_package(m)
            if dst and dst != src and LAYER_OF.get(dst, -1) >= LAYER_OF[src]:
                bad.append(f"{f.relative_to(SRC.parent)}:{line} ({src}, layer {LAYER_OF[src]}) imports {m} "
                           f"(layer {LAYER_OF.get(dst)})")
    assert not bad, "imports up or across the layers of docs/architecture.md:\n" + "\n".join(bad)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    f = tmp_path / "probe.py"
    f.write_text("def g():\n    from assay.report import views\n")
    mods = [m for _, m in assay_imports(f, package="assay.evals")]
    assert mods == ["assay.report"] and LAYER_OF[top_package(mods[0])] >= LAYER_OF["evals"]
