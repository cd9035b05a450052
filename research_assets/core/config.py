"""Settings read from the environment, parsed once, with errors that name the variable."""

import os
from collections.abc import Mapping

from research_assets.core.errors import ConfigError


def env_float(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """Read a float from the environment; an unset or empty variable gives ``default``."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a number; set it to a number such as {default}"
        ) from None


def env_int(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    """Read an integer from the environment; an unset or empty variable gives ``default``."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a whole number; set it to a whole number such as {default}"
        ) from None


def env_fraction(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """Read a fraction in [0, 1) from the environment."""
    value = env_float(name, default, env)
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{name}={value} must be a fraction between 0 and 1, such as {default}")
    return value
