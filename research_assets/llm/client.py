"""One Messages API request, with bounded retries and errors that say what to do.

Built on the official ``anthropic`` SDK (2.x). Design choices:

- **Retries are ours, not the SDK's.** The client is built with ``max_retries=0`` and
  ``ClaudeClient.create`` retries itself, up to ``settings.max_retries`` times, on what the SDK
  would retry (408, 409, 429, 5xx including 529 ``overloaded_error``, timeouts and connection
  errors; not after ``x-should-retry: false``). The SDK sleeps for whatever
  ``retry-after`` asks, uncapped (``_calculate_retry_timeout`` in ``_base_client.py``): an
  overloaded API answering ``retry-after: 3600`` would hold a research for an hour. Our wait is
  ``min(retry-after or exponential backoff, settings.max_retry_wait_s)``. This uses only the
  SDK's public API (exception types, ``response.headers``), so an SDK upgrade cannot silently
  undo the cap, as overriding a private method could.
- **Timeouts** are set on the client (``settings.timeout_s`` per request), so one request takes
  at most ``(max_retries + 1) * timeout_s + max_retries * max_retry_wait_s`` seconds.
- **The raw response is parsed here** (``messages.with_raw_response``): the assistant content is
  kept as the JSON objects received, so thinking blocks (with their signatures) and tool calls go
  back to the API exactly as they came, and a body that is not a Messages API response (an HTML
  error page from a proxy, a truncated body, JSON of another shape) is an ``llm_bad_response``
  rather than a ``str`` or a half-empty model that fails later.
- **The key** is passed explicitly (the SDK then reads no credentials from the environment or
  profiles) and never appears in logs, messages or ``repr``; text taken from responses is
  redacted in case a proxy echoes it.
"""

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from research_assets.llm.config import (
    DEFAULT_BASE_URL,
    ENV_BASE_URL,
    ENV_KEY,
    ENV_MODEL,
    LLMSettings,
)
from research_assets.llm.errors import (
    LLM_BAD_RESPONSE,
    LLM_UNAVAILABLE,
    LLMConfigError,
    LLMError,
    redact,
)
from research_assets.llm.pricing import known_models

if TYPE_CHECKING:  # the SDK takes about a second to import: only a Claude run pays for it
    import anthropic

log = logging.getLogger(__name__)

INITIAL_RETRY_WAIT_S = 0.5  # exponential backoff without retry-after: 0.5, 1, 2, ... seconds
_RETRY_STATUSES = (408, 409, 429)


def retry_after_seconds(
    headers: Mapping[str, str] | None, now: float | None = None
) -> float | None:
    """What ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date) ask for, or None."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            pass
        if name == "retry-after":
            parsed = email.utils.parsedate_tz(raw)
            if parsed is not None:
                now = time.time() if now is None else now
                return max(0.0, email.utils.mktime_tz(parsed) - now)
    return None


def retry_wait(headers: Mapping[str, str] | None, retry: int, cap: float) -> float:
    """Seconds to wait before retry number ``retry`` (0-based): what the server asks, else
    exponential backoff with jitter, never more than ``cap``."""
    asked = retry_after_seconds(headers)
    if asked is None:
        asked = INITIAL_RETRY_WAIT_S * 2**retry * (1 - 0.25 * random.random())
    return min(asked, cap)


def _retry_allowed(headers: Mapping[str, str]) -> bool:
    """False when the server says a retry will not help (``x-should-retry: false``)."""
    return (headers.get("x-should-retry") or "").lower() != "false"


class _Usage(BaseModel):
    model_config = ConfigDict(extra="allow")
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cache_creation_input_tokens: int | None = Field(default=None, ge=0)
    cache_read_input_tokens: int | None = Field(default=None, ge=0)


class _Response(BaseModel):
    """The parts of a Messages API response the tool loop relies on."""

    model_config = ConfigDict(extra="allow")
    content: list[dict[str, Any]]
    stop_reason: str | None = None
    usage: _Usage

    @field_validator("content")
    @classmethod
    def _blocks(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, block in enumerate(v):
            if not isinstance(block.get("type"), str):
                raise ValueError(f"content[{i}] has no type")
            if block["type"] == "tool_use" and not (
                isinstance(block.get("id"), str)
                and isinstance(block.get("name"), str)
                and "input" in block
            ):
                raise ValueError(f"content[{i}] is a tool_use without id, name or input")
        return v


@dataclass(frozen=True)
class Reply:
    """One model turn: ``content`` is the assistant content exactly as received."""

    content: list[dict[str, Any]]
    stop_reason: str | None
    usage: dict[str, int]
    request_id: str | None = None


def _api_message(e: "anthropic.APIStatusError") -> tuple[str, str]:
    """The error type and message from an API error body (``{"error": {"type", "message"}}``)."""
    body = e.body
    kind, message = "", ""
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            kind = str(err.get("type") or "")
            message = str(err.get("message") or "")
    elif isinstance(body, str):
        message = body
    return kind, " ".join(message.split())[:300]


def _snippet(raw: bytes) -> str:
    text = raw[:120].decode("utf-8", errors="replace")
    return " ".join(text.split())


class ClaudeClient:
    """Sends Messages API requests for one model; see the module docstring for retries."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not settings.api_key:
            raise LLMConfigError(
                f"{ENV_KEY} is not set: set it to use Claude, or set RESEARCH_DESIGNER=offline"
            )
        self.settings = settings
        self._sleep = sleep
        self._key = settings.api_key
        self._base_url = settings.base_url or DEFAULT_BASE_URL
        import anthropic

        self._client = anthropic.Anthropic(
            api_key=settings.api_key,
            base_url=self._base_url,
            max_retries=0,  # retries are ours: see the module docstring
            timeout=settings.timeout_s,
        )

    def __repr__(self) -> str:
        return f"ClaudeClient(model={self.settings.model!r}, base_url={self._base_url!r})"

    __str__ = __repr__

    def close(self) -> None:
        self._client.close()

    # -- one request ---------------------------------------------------------------------------

    def create(
        self,
        *,
        system: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
    ) -> Reply:
        """One model turn, retried on transient failures; raises ``LLMError`` or
        ``LLMConfigError``."""
        import anthropic

        s = self.settings
        attempts = s.max_retries + 1
        last = ""
        attempt = 0
        for attempt in range(attempts):  # noqa: B007 - the count is reported after the loop
            headers: Mapping[str, str] = {}
            try:
                # plain dicts, as the API documents them: the SDK's TypedDicts are not needed
                raw = self._client.messages.with_raw_response.create(  # type: ignore[call-overload]
                    model=s.model,
                    max_tokens=s.max_tokens,
                    system=list(system),
                    tools=list(tools),
                    messages=list(messages),
                    # caches the whole prefix up to the last block: later turns read it
                    cache_control={"type": "ephemeral"},
                )
            except anthropic.APIStatusError as e:
                headers = e.response.headers
                kind, message = _api_message(e)
                transient = e.status_code in _RETRY_STATUSES or e.status_code >= 500
                if not transient:
                    raise self._config_error(e.status_code, kind, message) from None
                last = f"HTTP {e.status_code} {kind or 'error'}: {redact(message, self._key)}"
                if not _retry_allowed(headers):
                    break  # the server says a retry will not help (x-should-retry: false)
            except anthropic.APIConnectionError as e:
                is_timeout = isinstance(e, anthropic.APITimeoutError)
                last = (
                    f"no answer within {s.timeout_s:g} s"
                    if is_timeout
                    else (f"cannot connect to {self._base_url} ({type(e.__cause__ or e).__name__})")
                )
            except anthropic.AnthropicError as e:  # e.g. a response the SDK itself rejects
                raise LLMError(
                    LLM_BAD_RESPONSE, f"the Anthropic SDK failed: {type(e).__name__}"
                ) from None
            else:
                return self._parse(raw)
            if attempt + 1 < attempts:
                wait = retry_wait(headers, attempt, s.max_retry_wait_s)
                log.warning(
                    "Claude request failed (%s); retry %d of %d in %.1f s",
                    last,
                    attempt + 1,
                    s.max_retries,
                    wait,
                )
                self._sleep(wait)
        tries = attempt + 1
        raise LLMError(
            LLM_UNAVAILABLE,
            f"the Claude API is unavailable: {last} (after {tries} attempt"
            f"{'s' if tries > 1 else ''}); the research can be retried later",
        )

    def _parse(self, raw: Any) -> Reply:
        request_id = raw.request_id
        content_type = raw.http_response.headers.get("content-type", "none")
        data = raw.http_response.content
        try:
            body = json.loads(data)
        except ValueError:
            raise LLMError(
                LLM_BAD_RESPONSE,
                f"the Claude API answered with a body that is not JSON (content-type "
                f"{content_type}, {len(data)} bytes, starting {redact(_snippet(data), self._key)!r}"
                f"); check {ENV_BASE_URL} if a proxy is in between",
            ) from None
        if not isinstance(body, dict):
            raise LLMError(
                LLM_BAD_RESPONSE,
                f"the Claude API answered with JSON {type(body).__name__}, not a message object",
            )
        try:
            parsed = _Response.model_validate(body)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                for err in e.errors()[:3]
            )
            raise LLMError(
                LLM_BAD_RESPONSE,
                f"the Claude API response is not a Messages API message: {problems}",
            ) from None
        usage = {
            "input_tokens": parsed.usage.input_tokens,
            "output_tokens": parsed.usage.output_tokens,
            "cache_creation_input_tokens": parsed.usage.cache_creation_input_tokens or 0,
            "cache_read_input_tokens": parsed.usage.cache_read_input_tokens or 0,
        }
        log.info(
            "Claude %s replied (stop_reason=%s, input=%d, output=%d, cache write=%d, "
            "cache read=%d tokens, request-id %s)",
            self.settings.model,
            parsed.stop_reason,
            usage["input_tokens"],
            usage["output_tokens"],
            usage["cache_creation_input_tokens"],
            usage["cache_read_input_tokens"],
            request_id,
        )
        # body["content"], not parsed.content: the blocks go back to the API as received
        return Reply(list(body["content"]), parsed.stop_reason, usage, request_id)

    def _config_error(self, status: int, kind: str, message: str) -> LLMConfigError:
        """A non-retryable HTTP error as a message that says what to fix."""
        s = self.settings
        detail = f"{status} {kind}: {redact(message, self._key)}" if message else str(status)
        proxy = f" and {ENV_BASE_URL}={self._base_url!r}" if s.base_url else ""
        if status == 401:
            return LLMConfigError(f"{ENV_KEY} was rejected ({detail}): check the key{proxy}")
        if status == 403:
            return LLMConfigError(
                f"{ENV_KEY} is not allowed to do this ({detail}): check the key's workspace and "
                f"permissions, or set {ENV_MODEL} to a model the key may use"
            )
        if status == 404:
            where = (
                f"; if the model is right, check that {ENV_BASE_URL}={self._base_url!r} points at "
                "the Anthropic API"
                if s.base_url
                else ""
            )
            return LLMConfigError(
                f"model {s.model!r} not found ({detail}): set {ENV_MODEL} to one of "
                f"{', '.join(known_models())}{where}"
            )
        if status == 402:
            return LLMConfigError(
                f"the Anthropic account cannot pay for this ({detail}): add "
                "credits or check billing"
            )
        return LLMConfigError(
            f"the Claude API rejected the request ({detail}): check {ENV_MODEL}={s.model!r} "
            "(it must support tool use) and the RESEARCH_LLM_* settings"
        )
