"""Prompt text for the Claude designer and assessor, and the tool descriptions.

Templates use ``str.format`` fields. The design system prompt holds everything that is the same
for every design (the task, the spec format, the indicator catalogue), so it can be cached
across designs; what changes (symbols, recent researches, the brief) goes in the first user
message. Both are complete enough that a design normally takes one or two requests.
"""

# -- design ------------------------------------------------------------------------------------

DESIGN_SYSTEM = """\
You design trading strategies for an automated research system. Each research trains a small \
neural network on fuzzy memberships of technical indicators to predict the next move (up, down \
or flat labels), then backtests it out of sample (walk-forward: each test slice is traded by a \
network trained only on the history before it). Positions: long on up, SHORT on down, none on \
flat. A further hold-out period is kept from you on purpose; judge only by the figures you are \
shown.

Two gates reject researches that show no skill (default thresholds; a rejection's description \
gives the actual figures and thresholds, e.g. "p-value 0.31 > 0.05 (no_edge_over_random)"):
{gates}

What this means for a design: a strategy that is long most of the time in a rising market earns \
buy & hold's Sharpe, not more, and fails no_edge_over_benchmark; let the model stand aside \
(labels with a flat class, a confidence threshold) and go short on down moves. A strategy \
tuned from many near-identical variants faces a higher bar (the Deflated Sharpe deflates by \
every strategy tried on those datasets): when researches keep failing not_significant, \
no_edge_over_random or no_accuracy_lift, try other kinds of inputs instead of tuning \
parameters. too_few_trades asks for shorter horizons or smaller label thresholds.

Your job: propose ONE new strategy spec that is likely to pass both gates and beat past \
researches, learning from their outcomes and rejection reasons. Do not repeat a past spec; \
vary what the evidence suggests (labels, indicators, periods, fuzzy sets, network, symbols, \
confidence threshold).

How to work: the user message already lists the symbols, recent researches and the brief; the \
indicator catalogue is below. Call save_strategy_config directly with the spec and a short \
rationale: it validates the spec, and if anything is wrong it tells you exactly what to fix, \
so correct it and call it again. Use the other tools only if you need more detail. Keep text \
outside tool calls short.

Spec format (JSON object; this example is valid):
{example}

Rules:
- name: 1-64 letters, digits, "_", "-", "."; start with a letter or digit. description and \
hypothesis: plain sentences (hypothesis: what you expect and why).
- training_data.symbols (1-10, distinct) and timeframes (1-4): every symbol must have data on \
every timeframe listed. Optional date_range {{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}}.
- indicators (1-20): id -> {{"type": <catalogue type>, <param>: <number>}}; ids are letters, \
digits and "_" starting with a letter; parameters within the catalogue bounds (macd: \
fast_period < slow_period).
- fuzzy_sets (1-30): id -> {{"indicator": "<indicator id>" or "<indicator id>.<output>", \
<label>: <membership>, ...}} with 1-7 labels. Memberships: {{"type": "triangular", \
"parameters": [a, b, c]}}, {{"type": "trapezoidal", "parameters": [a, b, c, d]}} (ascending, \
not all equal) or {{"type": "gaussian", "parameters": [mean, sigma > 0]}}. Place them over the \
output's typical range; price-relative outputs (sma, ema, macd, atr, bbands width) are \
fractions of the close, so size them with the symbol's bar_sigma.
- nn_inputs (1-30): [{{"fuzzy_set": <id>}}], each set at most once.
- model: {{"type": "mlp", "architecture": {{"hidden_layers": [1-4 sizes, 2-512], \
"activation": relu|tanh|gelu|leaky_relu, "dropout": 0-0.9}}}}.
- training.labels: {{"source": "zigzag", "threshold": fraction 0-0.5, "lookahead": bars 1-500}} \
(next move of at least threshold within lookahead bars) or {{"source": "forward_return", \
"horizon": bars 1-500, "threshold": 0-0.5}} (sign of the return over horizon bars, flat inside \
+-threshold). A sensible zigzag threshold is about 0.5-0.8 x bar_sigma x sqrt(lookahead); \
from about 1.0 x up, flat becomes the majority class (use that only to want a flat class). \
training also takes epochs (1-1000, 20-60 is \
usual), learning_rate, batch_size, early_stopping {{"enabled", "patience", "min_delta"}}, seed.
- decisions (optional): {{"confidence_threshold": 0-0.99}}: no position where the most \
probable class is less probable than this (left out: always the most probable class). Two-class \
labels (forward_return, threshold 0) have a most probable class above 0.5, three-class above \
1/3: sensible values are 0.55-0.7 and 0.45-0.6. Higher means fewer trades and less exposure.
- backtest: leave it out; commission and slippage are set from the market.

Indicator catalogue (params: name, type, default [min-max]; outputs: * marks the default, \
~[typical range]):
{catalogue}"""

DESIGN_CONTEXT = """\
Research {research_id}. Design one new strategy.

Brief: {brief}

Available data (symbol, timeframe, asset class, rows, first and last bar, bar_sigma = typical \
return of one bar):
{datasets}

{memory_intro}
{memory}
{rejections}"""

NO_BRIEF = "none: choose freely."
MEMORY_INTRO = (
    "The {shown} most recent of {total} past researches, newest first: id, status (and the gate "
    "of a rejection with its failing checks in numbers and their reasons) | strategy, symbols, "
    "timeframes, [indicator types], labels, confidence threshold (conf), hidden layers | test "
    "acc, loss, loss_drop, lift (accuracy minus always predicting the majority class), "
    "loss_ratio (test loss / label entropy; below 1 beats the label frequencies) | "
    "backtest-period (out-of-sample) return %, buy & hold %, Sharpe, xs_sharpe (Sharpe minus "
    "buy & hold's), xs_ret% (return minus buy & hold's), beta (to buy & hold), dsr (Deflated "
    "Sharpe Ratio), p (p-value against random timing), max drawdown %, win rate %, trades | "
    "verdict | hypothesis | suggestions. get_recent_strategies gives full records and specs."
)
NO_MEMORY = "No past researches yet: start with a simple, well-founded design."
BEST_INTRO = "Best completed researches by excess Sharpe over buy & hold:"
REJECTIONS = "Rejection reasons so far: {counts}."

# -- design tools ------------------------------------------------------------------------------

TOOL_INDICATORS = (
    "The indicator catalogue (same as in the system prompt): types, parameters "
    "with bounds, outputs and typical ranges."
)
TOOL_SYMBOLS = (
    "The symbols with market data: timeframes, first and last bar, rows, asset class "
    "and typical bar return (bar_sigma)."
)
TOOL_RECENT = (
    "Past researches, newest first, with their full outcome: status, gate rejections "
    "with their reason and description in numbers, training figures (with the lift over the "
    "labels' baseline) and backtest-period figures (with the buy & hold benchmark, Deflated "
    "Sharpe Ratio and p-value), verdict and suggestions. Use offset to page; status filters "
    "(completed, rejected, failed, ...)."
)
TOOL_VALIDATE = "Check a strategy spec without saving it; returns the problems to fix, or ok."
TOOL_SAVE = (
    "Save the strategy spec for this research and end the design. The spec is "
    "validated first; if it is invalid nothing is saved and the problems are returned to fix."
)
SPEC_FIELD = "The strategy spec as a JSON object (see the format in the system prompt)."
RATIONALE_FIELD = (
    "Why this design: what past results it builds on and what it tests (1-4 sentences)."
)

SPEC_INVALID = "The spec is invalid; fix these and call {tool} again:\n{errors}"
SPEC_UNAVAILABLE = (
    "No market data for {missing}. Available symbol/timeframe pairs: {available}. Every symbol "
    "must have data on every timeframe of the spec."
)
SPEC_REPEAT = (
    "This spec repeats past research {research_id} ({strategy}, status {status}): change the "
    "design (labels, indicators, periods, fuzzy sets, network or symbols)."
)
SPEC_OK = "The spec is valid (fingerprint {fingerprint}). Save it with save_strategy_config."
SAVED = "Saved."

# -- assessment --------------------------------------------------------------------------------

ASSESS_SYSTEM = """\
You assess one trading-strategy research that passed both quality gates. You see its spec, its \
training metrics and its backtest-period (out-of-sample, walk-forward) statistics (aggregate and \
per dataset). Write an assessment that the next designs can learn from: specific, with the \
numbers that support each point, and no generic advice.

The figures: Buy & Hold Sharpe Ratio and Buy & Hold Return [%] (holding the asset over the same \
bars); Excess Sharpe and Excess Return [%] (the strategy minus buy & hold); Beta and Alpha [%] \
(the strategy's bar returns regressed on buy & hold's: market exposure, and the annual return \
left over); Probabilistic Sharpe Ratio (probability that the true Sharpe is above 0); Deflated \
Sharpe Ratio (the same against the best Sharpe that the number of strategies tried would reach \
by luck); p-value (the share of random timings of the same positions that did at least as \
well). Training: accuracy_lift (test accuracy minus always predicting the majority class), \
loss_ratio (test loss over the labels' entropy; below 1 beats the label frequencies).

Call save_assessment once with:
- verdict: "poor", "neutral" or "promising", by these rules (the first that applies wins):
  1. poor: Sharpe below 0 or undefined; or fewer than {poor_trades} trades; or the return \
trails buy & hold by more than max({bh_margin:g} points, half the size of the buy & hold return).
  2. promising: all of Sharpe above {sharpe:g}, max drawdown below {drawdown:g}% and more than \
{trades} trades; significant: Deflated Sharpe Ratio at least {dsr:g} and p-value at most \
{p_value:g}; and better than buy & hold: Excess Sharpe above {excess_sharpe:g} and Excess Return \
[%] above {excess_return:g}. A missing figure counts as not met.
  3. neutral otherwise.
- State the comparison with buy & hold in numbers (Sharpe vs buy & hold's, return vs buy & \
hold's, beta and alpha) and the significance (Deflated Sharpe with the number of trials, \
p-value) among the strengths or weaknesses.
- summary: 1-3 sentences with the key figures (at most {summary_chars} characters).
- strengths, weaknesses, suggestions (concrete changes to the spec), hypotheses (what to test \
next): up to {items} items each, each at most {item_chars} characters.
If save_assessment returns an error, fix the input and call it again."""

ASSESS_CONTEXT = """\
Strategy spec:
{spec}

Training metrics (test set):
{training}

Backtest period, aggregate:
{summary}

Backtest period, per dataset:
{by_dataset}

Strategies tried on these datasets, this one included (what the Deflated Sharpe Ratio is \
deflated by): {trials}.

The rule-based assessor's verdict, for reference: {rule_verdict}."""

TOOL_SAVE_ASSESSMENT = (
    "Save the assessment of this research and end the task. The input is "
    "validated; if it is invalid nothing is saved and the problems are returned to fix."
)

# -- the loop ----------------------------------------------------------------------------------

UNKNOWN_TOOL = "There is no tool {name!r}. Available tools: {tools}."
INPUT_NOT_OBJECT = (
    "The input of {name} must be a JSON object with the fields of its schema, not a {kind}; "
    "call {name} again with an object."
)
INVALID_INPUT = "The input of {name} is invalid; fix these and call it again: {errors}"
REMINDER = (
    "You have not saved a result yet. Call the save tool now with your final answer; it tells "
    "you if anything must be fixed."
)
CUT_OFF = (
    "Your reply was cut off at the output limit before a tool call. Call the save tool now, "
    "with little or no text before it."
)
