"""Suite registry: one module per built-in suite in this package, plus suites from other packages.

A built-in suite is written one way: a module ``evals/suites/<name>.py`` whose ``Suite`` subclass declares its options
once, as a ``class Options(SuiteOptions)`` pydantic model (docs/architecture.md, "A suite in 25 lines"). When a module
defines several ``Suite`` subclasses, the suite is the one whose ``name`` is the module's name (a variant subclass that
keeps its parent's name, as math's tool variant does, is not: the parent it derives from is).
``get_suite("math", n_generated=50)`` imports ``assay.evals.suites.math``, checks the options against that model
first (a wrong name or type is one line naming the valid options) and builds the class with them.

Another package adds a suite with an entry point in the group ``assay.suites``, pointing at a ``Suite`` subclass (or
a factory whose signature is its options)::

    [project.entry-points."assay.suites"]
    haiku = "mypkg.haiku:Haiku"

Such suites run, resume, rescore and report exactly like built-in ones (the registry is what rescore rebuilds from).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from assay.errors import AssayError

GROUP = "assay.suites"


def _builtin() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


@lru_cache(maxsize=1)
def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    return sorted(set(_builtin()) | set(_plugins()))


def factory(name: str) -> Any:
    """What builds suite ``name``: its module's ``Suite`` subclass, or an entry point's object."""
    if name in _builtin():
        return _module_suite(name, importlib.import_module(f"{__name__}.{name}"))
    ep = _plugins().get(name)
    if ep is None:
        raise AssayError(f"unknown suite {name!r}: choose from {', '.join(available())}")
    try:
        return ep.load()
    except Exception as e:  # noqa: BLE001 - a broken plugin is its own one-line error
        raise AssayError(f"suite {name!r} (entry point {ep.value}) failed to load: {type(e).__name__}: {e}") from None


def _module_suite(name: str, module: Any) -> type:
    """The ``Suite`` subclass a built-in module defines: the only one, else the one named ``name`` (of several so
    named, the one the others derive from)."""
    from assay.evals.base import Suite

    classes = [c for c in vars(module).values()
               if inspect.isclass(c) and issubclass(c, Suite) and c is not Suite and c.__module__ == module.__name__]
    if len(classes) > 1:
        named = [c for c in classes if c.name == name]
        classes = [c for c in named if not any(b is not c and issubclass(c, b) for b in named)] or classes
    if len(classes) != 1:
        found = ", ".join(c.__name__ for c in classes) or "none"
        raise AssayError(f"suite module {module.__name__} defines {len(classes)} Suite subclasses ({found}): "
                         f"give exactly one the name {name!r}")
    return classes[0]


def _build(name: str, build: Any, options: dict):
    from assay.evals.base import as_suite, validate_options

    opts = validate_options(name, build, options)
    try:
        return as_suite(build(**opts))
    except (TypeError, ValueError) as e:
        raise AssayError(f"suite {name!r}: {e}") from None


def get_suite(name: str, **options):
    return _build(name, factory(name), options)


def build_ref(ref: str, options: dict):
    """A suite from a ``module:qualname`` reference (a suite object passed to the runner from outside)."""
    mod, _, qual = ref.partition(":")
    obj: Any = importlib.import_module(mod)
    for part in qual.split("."):
        obj = getattr(obj, part)
    if inspect.isclass(obj) or callable(obj):
        return _build(qual, obj, options)
    raise AssayError(f"{ref} is not a suite class or factory")
