"""Suite registry: one module per suite in this package, each exposing ``make(**options) -> Suite``.

``get_suite("math")`` imports ``assay.evals.suites.math`` and calls its ``make()``. Adding a suite is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil

from assay.errors import AssayError


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get_suite(name: str, **options):
    names = available()
    if name not in names:
        raise AssayError(f"unknown suite {name!r}: choose from {', '.join(names)}")
    mod = importlib.import_module(f"{__name__}.{name}")
    return mod.make(**options)
