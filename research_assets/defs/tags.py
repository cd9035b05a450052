"""Run tags and metadata keys shared by the definitions, the CLI and the status views."""

RESEARCH_ID_TAG = "research/id"
WORKER_TAG = "research/worker"
DEFAULT_WORKER = "cpu"
# Dagster's own tag on every partitioned run, including `dagster asset materialize --partition`.
PARTITION_TAG = "dagster/partition"
# Dagster's per-run override of run_retries.max_retries.
MAX_RETRIES_TAG = "dagster/max_retries"
# Set by Dagster on a failed run that run retries will start again.
WILL_RETRY_TAG = "dagster/will_retry"

# Metadata written by the gated assets, read back to derive a research's outcome.
GATE_PASSED = "gate_passed"
GATE_REASON = "gate_reason"
# The gate outcome in numbers: "win rate 0.42 < 0.45 (win_rate_too_low)".
GATE_DESCRIPTION = "gate_description"

# LLM usage metadata on strategy_spec and assessment (and on the observations of failed calls).
USAGE_PREFIX = "usage/"
TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
