"""Package namespaces whose names are imported on first use (PEP 562).

A package ``__init__`` lists ``name -> module`` and hands the mapping to :func:`lazy_namespace`;
importing the package then costs nothing, so the ``hf-w2v2`` command can print its help
without loading torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_namespace(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` that import ``names[name]`` when ``name`` is first read."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
