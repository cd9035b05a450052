"""Errors of the Claude designer and assessor.

Two kinds, both ``ResearchError`` so that the CLI and the assets show their message as is:

- ``LLMError``: the call did not produce a result (the API was unavailable, answered something
  that is not a Messages API response, or the model never finished). ``reason`` is one of
  ``LLM_UNAVAILABLE``, ``LLM_BAD_RESPONSE``, ``LLM_GAVE_UP`` and is meant for a research's
  failure reason.
- ``LLMConfigError``: something the user must fix (a missing or rejected key, an unknown model,
  a request the API refuses). Retrying does not help.

Both carry ``usage``: the tokens and dollars already spent before the failure (turns that
succeeded are billed even when the design fails), so the daily budget can count them. Messages
never contain the API key: ``redact`` removes it from any text taken from a response.
"""

from typing import Any

from research_assets.core.errors import ConfigError, ResearchError

LLM_UNAVAILABLE = "llm_unavailable"
LLM_BAD_RESPONSE = "llm_bad_response"
LLM_GAVE_UP = "llm_gave_up"
REASONS = (LLM_UNAVAILABLE, LLM_BAD_RESPONSE, LLM_GAVE_UP)


class LLMError(ResearchError):
    """The model produced no usable result; ``reason`` says why (see ``REASONS``)."""

    def __init__(self, reason: str, message: str, usage: dict[str, Any] | None = None):
        if reason not in REASONS:
            raise ValueError(f"unknown LLMError reason {reason!r}; use one of {REASONS}")
        super().__init__(message)
        self.reason = reason
        self.usage = usage

    def __repr__(self) -> str:
        return f"LLMError(reason={self.reason!r}, message={str(self)!r})"


class LLMConfigError(ConfigError):
    """A setting is wrong (key, model, base URL or request): the message says what to fix."""

    def __init__(self, message: str, usage: dict[str, Any] | None = None):
        super().__init__(message)
        self.usage = usage


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced, for text that came from outside."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return text
