"""Optional dependencies: imported when a feature first needs them, with one clear error when missing."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, feature: str, install: str | None = None) -> ModuleType:
    """Import ``module`` for ``feature`` or raise an ``ImportError`` saying what to install.

    ``install`` is the pip requirement to name (default: the module's name), e.g. ``"'hf_w2v2[lm]'"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{feature} needs {module}: pip install {install or module}") from err
