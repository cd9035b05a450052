"""What a test does when something it needs is missing: skip with the reason on a user's machine,
fail in CI (CI=true), where every test dependency must be present and nothing skips silently."""

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def skip_or_fail_in_ci(message: str) -> None:
    if in_ci():
        pytest.fail(f"{message} (CI must not skip this test)", pytrace=False)
    pytest.skip(message)


def require_module(name: str, install_hint: str) -> ModuleType:
    """``pytest.importorskip`` that fails in CI."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        skip_or_fail_in_ci(f"{name} is not importable ({e}); {install_hint}")
        raise  # unreachable: skip_or_fail_in_ci always raises
