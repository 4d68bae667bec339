"""Suite registry: one module per built-in suite in this package, plus suites from other packages.

``get_suite("math", n_generated=50)`` imports ``assay.evals.suites.math`` and calls its ``make()`` with the options
checked first (a wrong name or type is one line naming the valid options). Another package adds a suite with an
entry point in the group ``assay.suites``, pointing at a ``Suite`` subclass or a ``make``-style factory::

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
    """What builds suite ``name``: a module's ``make`` or an entry point's object."""
    if name in _builtin():
        return importlib.import_module(f"{__name__}.{name}").make
    ep = _plugins().get(name)
    if ep is None:
        raise AssayError(f"unknown suite {name!r}: choose from {', '.join(available())}")
    try:
        return ep.load()
    except Exception as e:  # noqa: BLE001 - a broken plugin is its own one-line error
        raise AssayError(f"suite {name!r} (entry point {ep.value}) failed to load: {type(e).__name__}: {e}") from None


def _build(name: str, make: Any, options: dict):
    from assay.evals.base import as_suite, validate_options

    opts = validate_options(name, make, options)
    try:
        return as_suite(make(**opts))
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
