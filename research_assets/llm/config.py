"""Settings of the Claude designer and assessor, read from the environment.

- ``ANTHROPIC_API_KEY``: the key. Without it the offline designer runs (``auto``).
- ``ANTHROPIC_BASE_URL``: the API's address, e.g. a gateway; default https://api.anthropic.com.
  It is passed to the SDK explicitly.
- ``RESEARCH_DESIGNER``: ``auto`` (default: Claude when a key is set), ``claude`` or ``offline``.
- ``RESEARCH_LLM_MODEL``: the model, default ``pricing.DEFAULT_MODEL`` (Claude Haiku 5.5).
- ``RESEARCH_LLM_MAX_TURNS``: requests one design or assessment may make (default 8).
- ``RESEARCH_LLM_MAX_RETRIES``: retries of one request after 408/409/429/5xx/529, a timeout or
  a connection error (default 2).
- ``RESEARCH_LLM_TIMEOUT_S``: the timeout of one request: connecting, sending, and waiting
  for the answer, which comes whole (no streaming) (default 60).
- ``RESEARCH_LLM_MAX_RETRY_WAIT_S``: the longest wait before a retry, whatever a
  ``retry-after`` header asks (default 10).
- ``RESEARCH_LLM_MAX_TOKENS``: output tokens per request, thinking included (default 4096).

One request therefore takes at most ``(max_retries + 1) * timeout_s + max_retries *
max_retry_wait_s`` seconds (200 s with the defaults), and one design at most ``max_turns`` times
that.
"""

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from research_assets.core.config import env_float, env_int
from research_assets.core.errors import ConfigError
from research_assets.llm.errors import LLMConfigError
from research_assets.llm.pricing import DEFAULT_MODEL

DEFAULT_BASE_URL = "https://api.anthropic.com"
DESIGNER_KINDS = ("auto", "claude", "offline")

ENV_KEY = "ANTHROPIC_API_KEY"
ENV_BASE_URL = "ANTHROPIC_BASE_URL"
ENV_DESIGNER = "RESEARCH_DESIGNER"
ENV_MODEL = "RESEARCH_LLM_MODEL"
ENV_MAX_TURNS = "RESEARCH_LLM_MAX_TURNS"
ENV_MAX_RETRIES = "RESEARCH_LLM_MAX_RETRIES"
ENV_TIMEOUT = "RESEARCH_LLM_TIMEOUT_S"
ENV_MAX_RETRY_WAIT = "RESEARCH_LLM_MAX_RETRY_WAIT_S"
ENV_MAX_TOKENS = "RESEARCH_LLM_MAX_TOKENS"


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is out of range: use a value from {low:g} to {high:g}")


@dataclass(frozen=True)
class LLMSettings:
    """How to reach Claude and how long to try; ``repr`` never shows the key."""

    api_key: str | None = field(repr=False)
    base_url: str | None
    model: str = DEFAULT_MODEL
    max_retries: int = 2
    timeout_s: float = 60.0
    max_retry_wait_s: float = 10.0
    max_turns: int = 8
    max_tokens: int = 4096

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip() or " " in self.model:
            raise ConfigError(
                f"{ENV_MODEL}={self.model!r} is not a model name; use e.g. {DEFAULT_MODEL}"
            )
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{ENV_BASE_URL}={self.base_url!r} is not an http(s) URL; set it to e.g. "
                f"{DEFAULT_BASE_URL}, or unset it"
            )
        _check_range(ENV_MAX_RETRIES, self.max_retries, 0, 10)
        _check_range(ENV_TIMEOUT, self.timeout_s, 0.01, 600)
        _check_range(ENV_MAX_RETRY_WAIT, self.max_retry_wait_s, 0, 600)
        _check_range(ENV_MAX_TURNS, self.max_turns, 1, 50)
        _check_range(ENV_MAX_TOKENS, self.max_tokens, 256, 64_000)

    @property
    def has_key(self) -> bool:
        return bool(self.api_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "LLMSettings":
        """Read the settings (see the module docstring); a bad value is a ``ConfigError``
        naming the variable."""
        e = _env(env)
        key = e.get(ENV_KEY, "").strip() or None
        base_url = e.get(ENV_BASE_URL, "").strip() or None
        return cls(
            api_key=key,
            base_url=base_url,
            model=e.get(ENV_MODEL, "").strip() or DEFAULT_MODEL,
            max_retries=env_int(ENV_MAX_RETRIES, 2, e),
            timeout_s=env_float(ENV_TIMEOUT, 60.0, e),
            max_retry_wait_s=env_float(ENV_MAX_RETRY_WAIT, 10.0, e),
            max_turns=env_int(ENV_MAX_TURNS, 8, e),
            max_tokens=env_int(ENV_MAX_TOKENS, 4096, e),
        )


def choose_designer_kind(env: Mapping[str, str] | None = None) -> str:
    """``"claude"`` or ``"offline"``, from ``RESEARCH_DESIGNER`` and whether a key is set."""
    e = _env(env)
    raw = e.get(ENV_DESIGNER, "").strip().lower() or "auto"
    has_key = bool(e.get(ENV_KEY, "").strip())
    if raw not in DESIGNER_KINDS:
        raise ConfigError(
            f"{ENV_DESIGNER}={raw!r} is not one of {', '.join(DESIGNER_KINDS)}: use auto (Claude "
            f"when {ENV_KEY} is set), claude or offline"
        )
    if raw == "claude" and not has_key:
        raise LLMConfigError(
            f"{ENV_DESIGNER}=claude needs an Anthropic API key: set {ENV_KEY}, or set "
            f"{ENV_DESIGNER}=offline to use the offline designer"
        )
    if raw == "auto":
        return "claude" if has_key else "offline"
    return raw
