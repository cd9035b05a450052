"""Claude as designer and assessor, through the official ``anthropic`` SDK.

- ``config``: ``LLMSettings`` and ``choose_designer_kind`` (which designer runs).
- ``pricing``: prices per model, ``cost_usd`` and the usage totals of one design.
- ``client``: one Messages API request with bounded retries and clear errors.
- ``loop``: the tool-use loop (validated tool inputs, turn limit, thinking blocks echoed).
- ``designer`` / ``assessor``: ``ClaudeDesigner`` and ``ClaudeAssessor``.
- ``errors``: ``LLMError`` (``reason``: llm_unavailable, llm_bad_response, llm_gave_up) and
  ``LLMConfigError``.

Nothing here imports Dagster; the resources and assets wire these in.
"""
