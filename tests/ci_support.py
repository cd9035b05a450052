"""What a test does when something it needs is missing: skip with the reason on a user's machine,
fail in CI (CI=true), where every test dependency must be present and nothing skips silently."""

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def skip_or_fail_in_ci(message: str, module_level: bool = False) -> None:
    """Skip (the test, or with ``module_level`` the whole module) or, in CI, fail."""
    if in_ci():
        pytest.fail(f"{message} (CI must not skip this test)", pytrace=False)
    pytest.skip(message, allow_module_level=module_level)


def require_module(name: str, install_hint: str) -> ModuleType:
    """``pytest.importorskip`` that fails in CI: called at a test module's top, it skips that
    module where ``name`` is missing, and in CI fails its collection with the reason."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        skip_or_fail_in_ci(f"{name} is not importable ({e}); {install_hint}", module_level=True)
        raise  # unreachable: skip_or_fail_in_ci always raises
