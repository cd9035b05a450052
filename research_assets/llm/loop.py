"""The tool-use loop shared by the designer and the assessor.

Each turn sends the conversation so far; the assistant's content is appended exactly as received
(thinking and redacted_thinking blocks included, which the API requires back unchanged while a
tool call is being answered), then one user message with a ``tool_result`` for every
``tool_use``. The loop ends when a *finishing* tool (``save_strategy_config``,
``save_assessment``) accepts its input.

Every tool input is checked before use: the SDK does not validate tool input, so a model can send
a string, a list or an object of the wrong shape. A bad input, an unknown tool or a handler that
rejects the input becomes a ``tool_result`` with ``is_error: true`` whose text says what to fix,
and the model gets another turn. ``max_turns`` requests at most; a model that keeps going, ends
its turn twice without finishing, or refuses, fails with ``llm_gave_up``.
"""

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from research_assets.llm import prompts
from research_assets.llm.client import ClaudeClient
from research_assets.llm.errors import LLM_GAVE_UP, LLMConfigError, LLMError
from research_assets.llm.pricing import UsageTotals

log = logging.getLogger(__name__)

MAX_TOOL_RESULT_CHARS = 20_000  # a tool result never floods the context


@dataclass
class ToolResult:
    """What a tool handler returns: text for the model, and the final value when it finishes."""

    text: str
    is_error: bool = False
    done: bool = False
    value: Any = None


@dataclass(frozen=True)
class Tool:
    """A tool the model may call: its definition, its input model and its handler."""

    name: str
    description: str
    input_model: type[BaseModel]
    handler: Callable[[Any], ToolResult]
    input_schema: Mapping[str, Any] | None = None  # default: the input model's JSON schema

    def definition(self) -> dict[str, Any]:
        schema = _untitled(self.input_schema or self.input_model.model_json_schema())
        return {"name": self.name, "description": self.description, "input_schema": schema}


def _untitled(schema: Any) -> Any:
    """A JSON schema without pydantic's ``title`` entries (tokens that tell the model nothing)."""
    if isinstance(schema, Mapping):
        return {
            k: _untitled(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_untitled(v) for v in schema]
    return schema


def as_json(data: Any) -> str:
    """Compact JSON for prompts and tool results (fewer tokens than indented JSON)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def format_errors(e: ValidationError) -> str:
    """One line per problem, naming the field."""
    lines = []
    for err in e.errors()[:10]:
        where = ".".join(str(p) for p in err["loc"]) or "input"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def _run_tool(tools: Mapping[str, Tool], name: Any, raw_input: Any) -> ToolResult:
    tool = tools.get(name) if isinstance(name, str) else None
    if tool is None:
        return ToolResult(
            prompts.UNKNOWN_TOOL.format(name=str(name)[:80], tools=", ".join(tools)), is_error=True
        )
    if not isinstance(raw_input, dict):
        return ToolResult(
            prompts.INPUT_NOT_OBJECT.format(name=tool.name, kind=type(raw_input).__name__),
            is_error=True,
        )
    try:
        parsed = tool.input_model.model_validate(raw_input)
    except ValidationError as e:
        return ToolResult(
            prompts.INVALID_INPUT.format(name=tool.name, errors=format_errors(e)), is_error=True
        )
    return tool.handler(parsed)


def run_tool_loop(
    client: ClaudeClient,
    *,
    task: str,
    system: Sequence[Mapping[str, Any]],
    tools: Sequence[Tool],
    first_message: str,
    usage: UsageTotals,
) -> Any:
    """Run the conversation until a finishing tool accepts its input; returns its ``value``.

    ``usage`` is updated after every turn, so a caller still knows the cost when this raises;
    every ``LLMError`` / ``LLMConfigError`` raised here carries ``usage`` too.
    """
    by_name = {t.name: t for t in tools}
    definitions = [t.definition() for t in tools]
    messages: list[dict[str, Any]] = [{"role": "user", "content": first_message}]
    reminded = False
    max_turns = client.settings.max_turns
    for turn in range(1, max_turns + 1):
        try:
            reply = client.create(system=system, tools=definitions, messages=messages)
        except (LLMError, LLMConfigError) as e:
            e.usage = usage.to_dict()
            raise
        usage.add(reply.usage)
        if reply.content:  # an empty turn is left out: the API rejects empty assistant content
            messages.append({"role": "assistant", "content": reply.content})
        if reply.stop_reason == "refusal":
            raise LLMError(
                LLM_GAVE_UP, f"Claude declined the {task} (stop_reason refusal)", usage.to_dict()
            )
        calls = [b for b in reply.content if b.get("type") == "tool_use"]
        if not calls:
            if reminded:
                raise LLMError(
                    LLM_GAVE_UP,
                    f"Claude ended the {task} without saving a result, twice "
                    f"(stop_reason {reply.stop_reason})",
                    usage.to_dict(),
                )
            reminded = True
            note = prompts.CUT_OFF if reply.stop_reason == "max_tokens" else prompts.REMINDER
            messages.append({"role": "user", "content": note})
            continue
        results: list[dict[str, Any]] = []
        for call in calls:
            outcome = _run_tool(by_name, call.get("name"), call.get("input"))
            log.info(
                "%s turn %d: tool %s -> %s",
                task,
                turn,
                call.get("name"),
                "error" if outcome.is_error else ("done" if outcome.done else "ok"),
            )
            if outcome.done:
                return outcome.value
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": call["id"],
                    "content": outcome.text[:MAX_TOOL_RESULT_CHARS],
                    "is_error": outcome.is_error,
                }
            )
        messages.append({"role": "user", "content": results})
    raise LLMError(
        LLM_GAVE_UP,
        f"Claude did not finish the {task} within {max_turns} turns (RESEARCH_LLM_MAX_TURNS)",
        usage.to_dict(),
    )
