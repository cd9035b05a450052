"""Every environment setting the research code reads, in one list.

The Docker run launcher (``research_assets.docker_launcher``) forwards exactly these from the
daemon's environment into each run's container, so a run sees the same split fractions, gates,
LLM limits and data directory as the code server. ``tests/deploy/test_run_settings.py`` fails when
the code reads a ``RESEARCH_*``, ``GATE_*``, ``ANTHROPIC_*`` or ``MARKET_DATA_DIR`` name that is
not listed here. Each is optional: an unset one is not forwarded and the run uses its default.
"""

from research_assets.core.gates import env_names

# The designer and assessor (research_assets/llm/config.py, defs/resources.py).
LLM_SETTINGS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "RESEARCH_DESIGNER",
    "RESEARCH_LLM_MODEL",
    "RESEARCH_LLM_MAX_TURNS",
    "RESEARCH_LLM_MAX_RETRIES",
    "RESEARCH_LLM_TIMEOUT_S",
    "RESEARCH_LLM_MAX_RETRY_WAIT_S",
    "RESEARCH_LLM_MAX_TOKENS",
    "RESEARCH_DAILY_BUDGET_USD",
)
# The data and its split (core/data.py, core/splits.py).
DATA_SETTINGS = (
    "MARKET_DATA_DIR",
    "RESEARCH_WALK_FORWARD_FOLDS",
    "RESEARCH_VALIDATION_FRACTION",
    "RESEARCH_BACKTEST_FRACTION",
    "RESEARCH_LOCKBOX_FRACTION",
)
# Capacity and the autopilot (state/capacity.py, defs/sensors.py): read by the sensors and the
# CLI, forwarded too so that every process of a deployment agrees.
CAPACITY_SETTINGS = (
    "RESEARCH_MAX_CONCURRENT",
    "RESEARCH_CONCURRENCY_BUFFER",
    "RESEARCH_MAX_QUEUE_DEPTH",
    "RESEARCH_AUTOPILOT_BRIEF",
)
# The quality gates (core/gates.py): one per threshold, from the gates' own table.
GATE_SETTINGS = tuple(env_names().values())

RUN_SETTINGS: tuple[str, ...] = LLM_SETTINGS + DATA_SETTINGS + CAPACITY_SETTINGS + GATE_SETTINGS
