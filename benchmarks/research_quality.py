"""Research quality: does the lab find skill where it exists, and only there?

For each kind of market data, N researches (``--researches``, default 24) run with the offline
designer and the default gates through the queued path, exactly as a user runs them:
``research run --count N --seed S --json`` (cli.py: a fresh DAGSTER_HOME with the repo's
``dagster_home/dagster.yaml``, a ``LocalDaemon``, the intake sensor, the run queue), one fresh
instance per kind, because trials (what the Deflated Sharpe Ratio deflates by) are counted per
instance. The kinds (``core/synthetic.py``, four daily symbols of 4,000 bars each, seeded by
``--data-seed``):

- ``noise``: random walks. Nothing can be predicted.
- ``drift``: random walks with an upward drift. Only market exposure earns; no timing skill.
- ``signal``: a planted trend (regimes of +/- drift) that a 10/40 EMA crossover trades at an
  annualised Sharpe ratio of about 2 before costs, while buy & hold earns about 0.
- ``bundled``: the sample data shipped with the package.

Each research's outcome is read back from its instance (``state/records.load_statuses``, the
gated assets' ``gate_description``, the run records). Per kind (figures of the researches that
passed both gates unless said otherwise):

- ``researches``, ``outcomes`` (by final status), ``rejections`` (by reason),
  ``passed_both_gates``, ``promising`` (the assessment's verdict),
  ``lockbox_beats_buy_and_hold`` (lockbox return above buy & hold's, mean over datasets:
  ``core/overfitting.lockbox_outcome``, as `research metrics` counts it),
- ``mean_oos_sharpe`` (backtest-period, i.e. out-of-sample, summary Sharpe Ratio),
  ``mean_lockbox_sharpe``, ``mean_lockbox_excess_return_pct``,
- ``rank_corr_oos_lockbox``: Spearman's rank correlation of the two Sharpe ratios
  (``core/overfitting.overfitting_report``; null when undefined: fewer than two, or constant),
- ``research_wall_s_p50``: median time a research's runs took from start to end (what one
  research costs; its wait in the run queue is not counted, ``research_wall_incl_queue_s_p50``
  counts it),
- ``designs``: label sources and indicator types the designer proposed,
- ``reference``: the planted rule (EMA 10/40, long/short) and buy & hold, backtested on each
  symbol (``synthetic.planted_rule_check``), before costs, on all bars and on the last 15%
  (where the lockbox lies): the signal's presence or absence, measured without the lab,
- ``reference_spec`` (synthetic kinds; ``--no-reference-spec`` skips it): a hand-written spec
  that gives the network what the planted signal needs (the 10/40 MACD line, i.e. the EMA
  crossover scaled by the close, and the distance from a 20-bar EMA, as two-set fuzzy inputs;
  two-class 10-bar forward-return labels), researched once through the same queued path after
  the designer's researches (so it is deflated by their trials too; it is not counted in the
  kind's figures). It tells the pipeline's limits (gates, training, positions) apart from the
  designer's.

The last line of stdout is one JSON object ``{"noise": {...}, "drift": {...}, "signal": {...},
"bundled": {...}}``; with ``--json`` nothing else is printed on stdout (the tables go to
stderr). ``--details FILE`` writes every research's design, gate outcome in numbers and
figures. The environment's ``GATE_*`` variables are dropped (default gates); the
``RESEARCH_*`` ones (e.g. ``RESEARCH_WALK_FORWARD_FOLDS``) are kept.

``--diagnose`` answers why, in seconds per research and without Dagster: it designs
``--researches`` specs with the offline designer from an empty memory (exploration only, seeds
``--seed``, ``--seed`` + 1...), trains and backtests each in-process (``core/pipeline.py``), each
deflated by the trials before it as an instance would count them (``pipeline.TrialHistory``: every
earlier spec, the Sharpe ratios of those that passed the training gate), and evaluates both gates
at their defaults (``core/gates.py``), recording every check that fails, not only the first. Per
kind: how many pass each gate, how often each check fails, and how often it is the only one that
fails (what alone stands between a spec and passing); a spec that passes training and then never
trades counts as ``no_trades`` alone. On the synthetic kinds it also trains
variants of the reference spec (labels, confidence thresholds, symbols, inputs), deflated by all
the designer's specs before them. Its last line is one JSON object by kind, as well.

Usage::

    .venv/bin/python benchmarks/research_quality.py [--json] [--researches 24]
        [--kinds noise,drift,signal,bundled] [--seed 0] [--data-seed 0] [--timeout 7200]
        [--details FILE] [--keep] [--no-reference-spec] [--diagnose]

On 2 cores a research takes a few seconds of run time (about 10 s from trigger to end with the
queue); 24 per kind, all four kinds, took 7 minutes (the README's "Research quality").
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The checkout this script is in, before any installed copy: the researches' processes get the
# same through PYTHONPATH, so that reading and running use one version of the code.
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

import yaml  # noqa: E402
from orchestration import DAGSTER_YAML, DROP_ENV, percentile  # noqa: E402

from research_assets.core.data import BUNDLED_DATA_DIR, load_bars  # noqa: E402
from research_assets.core.overfitting import lockbox_outcome, overfitting_report  # noqa: E402
from research_assets.core.synthetic import (  # noqa: E402
    DEFAULT_SYMBOLS,
    KINDS,
    SyntheticMarket,
    planted_rule_check,
    write_market_data,
)

warnings.filterwarnings("ignore")

ALL_KINDS = (*KINDS, "bundled")
# Where the lockbox starts (the default RESEARCH_LOCKBOX_FRACTION is 0.15).
LOCKBOX_START = 0.85
BENCH_ENV = {"RESEARCH_DESIGNER": "offline"}
OOS_KEYS = (
    "Sharpe Ratio",
    "Excess Sharpe",
    "Buy & Hold Sharpe Ratio",
    "Excess Return [%]",
    "# Trades",
    "Win Rate [%]",
    "Max. Drawdown [%]",
    "Exposure Time [%]",
    "Deflated Sharpe Ratio",
    "p-value",
)
TRAINING_KEYS = (
    "test_accuracy",
    "baseline_accuracy",
    "accuracy_lift",
    "test_loss",
    "label_entropy",
    "loss_ratio",
    "loss_decrease",
)

# What the planted signal needs, written by hand (see the module docstring). Costs are what the
# offline designer charges a stock (designer.market_costs), so the two are comparable.
REFERENCE_SPEC: dict[str, Any] = {
    "name": "planted_ema_crossover",
    "description": "The 10/40 EMA crossover and the distance from a 20-bar EMA, long or short.",
    "hypothesis": "Trend regimes persist: the sign of the 10/40 EMA spread predicts the next "
    "10 bars.",
    "training_data": {"symbols": list(DEFAULT_SYMBOLS), "timeframes": ["1d"]},
    "indicators": {
        "macd_10_40": {"type": "macd", "fast_period": 10, "slow_period": 40, "signal_period": 9},
        "ema_20": {"type": "ema", "period": 20},
    },
    "fuzzy_sets": {
        "cross": {
            "indicator": "macd_10_40.macd",
            "below": {"type": "trapezoidal", "parameters": [-1, -1, -0.03, 0]},
            "above": {"type": "trapezoidal", "parameters": [0, 0.03, 1, 1]},
        },
        "dist": {
            "indicator": "ema_20",
            "below": {"type": "trapezoidal", "parameters": [-1, -1, -0.05, 0]},
            "above": {"type": "trapezoidal", "parameters": [0, 0.05, 1, 1]},
        },
    },
    "nn_inputs": [{"fuzzy_set": "cross"}, {"fuzzy_set": "dist"}],
    "model": {
        "type": "mlp",
        "architecture": {"hidden_layers": [16], "activation": "relu", "dropout": 0.0},
    },
    "training": {
        "labels": {"source": "forward_return", "horizon": 10, "threshold": 0.0},
        "epochs": 30,
        "learning_rate": 0.003,
        "batch_size": 256,
        "early_stopping": {"enabled": True, "patience": 5},
        "seed": 1,
    },
    "backtest": {"commission": 0.0005, "slippage": 0.0002},
}


def _log(message: str) -> None:
    sys.stderr.write(f"[research_quality] {message}\n")
    sys.stderr.flush()


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _mean(values: list[float | None], digits: int = 3) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return round(statistics.fmean(kept), digits) if kept else None


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


# -- data and the signal measured without the lab ---------------------------------------------


def prepare_data(kind: str, root: Path, data_seed: int) -> Path:
    if kind == "bundled":
        return BUNDLED_DATA_DIR
    directory = root / "data" / kind
    write_market_data(directory, kind, seed=data_seed)
    return directory


def reference(kind: str, data_dir: Path) -> dict[str, Any] | None:
    """The planted rule and buy & hold on each symbol, before costs: all bars and the last 15%."""
    if kind == "bundled":
        return None
    full, last = [], []
    for symbol in DEFAULT_SYMBOLS:
        bars = load_bars(symbol, SyntheticMarket().timeframe, data_dir)
        full.append(planted_rule_check(bars))
        last.append(planted_rule_check(bars, start=LOCKBOX_START))

    def mean(rows: list[dict[str, float]], key: str) -> float | None:
        return _mean([r[key] for r in rows], 2)

    return {
        "rule": "EMA 10/40 crossover, long above, short below, before costs",
        "rule_sharpe": mean(full, "rule_sharpe"),
        "buy_and_hold_sharpe": mean(full, "buy_and_hold_sharpe"),
        "excess_sharpe": mean(full, "excess_sharpe"),
        "rule_sharpe_last_15pct": mean(last, "rule_sharpe"),
        "excess_sharpe_last_15pct": mean(last, "excess_sharpe"),
    }


# -- researches through the queued path ------------------------------------------------------


def _env(home: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_") and k not in DROP_ENV}
    env.update(BENCH_ENV)
    env["DAGSTER_HOME"] = str(home)
    env["MARKET_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def research_run(home: Path, data_dir: Path, args: list[str], timeout: float) -> list[str]:
    """``research run ARGS --json`` on ``home``; the ids of its researches. Its progress goes to
    stderr as it comes."""
    cmd = [
        sys.executable,
        "-m",
        "research_assets.cli",
        "run",
        *args,
        "--json",
        "--timeout",
        str(int(timeout)),
    ]
    proc = subprocess.run(
        cmd, env=_env(home, data_dir), stdout=subprocess.PIPE, text=True, cwd=str(REPO), check=False
    )
    lines = proc.stdout.strip().splitlines()
    try:
        payload = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(
            f"`research run` exited {proc.returncode} without its JSON line; "
            f"its messages are above (stdout: {proc.stdout[-500:]!r})"
        ) from None
    if proc.returncode not in (0,) and not payload.get("researches"):
        raise RuntimeError(f"`research run` exited {proc.returncode}: {payload}")
    return [r["id"] for r in payload.get("researches", [])]


def _design(spec: Any) -> dict[str, Any]:
    if spec is None:
        return {}
    labels = spec.training.labels.model_dump()
    return {
        "symbols": list(spec.training_data.symbols),
        "timeframes": list(spec.training_data.timeframes),
        "indicators": sorted(spec.indicators),
        "inputs": len(spec.nn_inputs),
        "labels": labels,
        "hidden_layers": list(spec.model.architecture.hidden_layers),
        "confidence_threshold": _confidence_threshold(spec),
    }


def _confidence_threshold(spec: Any) -> float | None:
    decisions = getattr(spec, "decisions", None)
    return getattr(decisions, "confidence_threshold", None) if decisions is not None else None


def _label_text(labels: dict[str, Any]) -> str:
    if not labels:
        return "-"
    if labels.get("source") == "zigzag":
        return f"zigzag {labels.get('threshold')}/{labels.get('lookahead')}"
    return f"fwd {labels.get('threshold')}/{labels.get('horizon')}"


def read_outcomes(home: Path, ids: list[str]) -> list[dict[str, Any]]:
    """Each research's outcome from its instance, in trigger order."""
    import dagster as dg

    from research_assets.defs.tags import GATE_DESCRIPTION, PARTITION_TAG
    from research_assets.state.records import latest_metadata, load_statuses

    rows = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        statuses = {s.id: s for s in load_statuses(instance, ids, with_specs=True)}
        records = instance.get_run_records(dg.RunsFilter(tags={PARTITION_TAG: ids}))
        runs: dict[str, list[Any]] = {}
        for rec in records:
            runs.setdefault(rec.dagster_run.tags.get(PARTITION_TAG), []).append(rec)
        for research_id in ids:
            s = statuses.get(research_id)
            if s is None:
                continue
            gates = {}
            for asset, gate in (
                ("trained_model", "training_gate"),
                ("backtest_report", "backtest_gate"),
            ):
                md = latest_metadata(instance, asset, research_id)
                if GATE_DESCRIPTION in md:
                    gates[gate] = md[GATE_DESCRIPTION]
            mine = runs.get(research_id, [])
            ran = [r.end_time - r.start_time for r in mine if r.start_time and r.end_time]
            ends = [r.end_time for r in mine if r.end_time]
            lockbox = lockbox_outcome(s.lockbox)
            rows.append(
                {
                    "id": s.id,
                    "status": s.status,
                    "reason": s.reason,
                    "gates": dict(s.gates),
                    "gate_description": gates,
                    "verdict": s.verdict,
                    "strategy": s.strategy,
                    "design": _design(s.spec),
                    "training": {
                        k: _r(_finite(s.training.get(k)), 4)
                        for k in TRAINING_KEYS
                        if k in s.training
                    },
                    "oos": {
                        k: _r(_finite(s.backtest_summary.get(k)), 4)
                        for k in OOS_KEYS
                        if k in s.backtest_summary
                    },
                    "lockbox_sharpe": _r(lockbox[0], 4) if lockbox else None,
                    "lockbox_excess_return_pct": _r(lockbox[1], 4) if lockbox else None,
                    "wall_s": _r(sum(ran), 2) if ran else None,
                    "wall_incl_queue_s": _r(max(ends) - s.created_at, 2) if ends else None,
                }
            )
    return rows


def summarize_kind(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one kind (see the module docstring)."""
    passed = [
        r
        for r in rows
        if r["gates"].get("training_gate") == "passed"
        and r["gates"].get("backtest_gate") == "passed"
    ]
    with_lockbox = [r for r in passed if r["lockbox_sharpe"] is not None]
    outcomes = [
        (r["oos"].get("Sharpe Ratio"), r["lockbox_sharpe"], r["lockbox_excess_return_pct"])
        for r in with_lockbox
    ]
    outcomes = [(o, lb, math.nan if ex is None else ex) for o, lb, ex in outcomes if o is not None]
    overfit = overfitting_report(outcomes, trials=len(rows))
    labels = Counter(r["design"].get("labels", {}).get("source") for r in rows if r["design"])
    indicators = Counter(i.split("_")[0] for r in rows for i in r["design"].get("indicators", ()))
    rejections = Counter(r["reason"] or "-" for r in rows if r["status"] == "rejected")
    failures = Counter((r["reason"] or "-")[:80] for r in rows if r["status"] == "failed")
    return {
        "researches": len(rows),
        "passed_both_gates": len(passed),
        "promising": sum(1 for r in rows if r["verdict"] == "promising"),
        "lockbox_beats_buy_and_hold": sum(
            1 for r in with_lockbox if (r["lockbox_excess_return_pct"] or 0) > 0
        ),
        "mean_oos_sharpe": _mean([r["oos"].get("Sharpe Ratio") for r in passed]),
        "mean_lockbox_sharpe": _mean([r["lockbox_sharpe"] for r in passed]),
        "mean_lockbox_excess_return_pct": _mean(
            [r["lockbox_excess_return_pct"] for r in passed], 2
        ),
        "rank_corr_oos_lockbox": overfit["rank_corr_oos_lockbox"],
        "research_wall_s_p50": _r(percentile([r["wall_s"] for r in rows if r["wall_s"]], 50), 1),
        "research_wall_incl_queue_s_p50": _r(
            percentile([r["wall_incl_queue_s"] for r in rows if r["wall_incl_queue_s"]], 50), 1
        ),
        "outcomes": dict(Counter(r["status"] for r in rows)),
        "rejections": dict(rejections.most_common()),
        **({"failures": dict(failures.most_common())} if failures else {}),
        # over every research that reached the backtest, passed or not: how far from passing
        "all_mean_oos_sharpe": _mean([r["oos"].get("Sharpe Ratio") for r in rows]),
        "all_mean_oos_excess_sharpe": _mean([r["oos"].get("Excess Sharpe") for r in rows]),
        "all_mean_accuracy_lift": _mean([r["training"].get("accuracy_lift") for r in rows], 4),
        "designs": {
            "labels": dict(labels.most_common()),
            "indicators": dict(indicators.most_common()),
        },
    }


def run_kind(
    kind: str, n: int, seed: int, data_dir: Path, root: Path, timeout: float, reference_spec: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    home = root / kind / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
    _log(f"{kind}: {n} researches (seeds {seed}..{seed + n - 1}) on {data_dir}, home {home}")
    started = time.monotonic()
    ids = research_run(home, data_dir, ["--count", str(n), "--seed", str(seed)], timeout)
    rows = read_outcomes(home, ids)
    summary = summarize_kind(rows)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    for row in rows:
        row["kind"] = kind
    if reference_spec and kind != "bundled":
        spec_file = root / "reference_spec.yaml"
        spec_file.write_text(yaml.safe_dump(REFERENCE_SPEC, sort_keys=False))
        _log(f"{kind}: the hand-written reference spec, once, after the designer's researches")
        ref_ids = research_run(home, data_dir, ["--count", "1", "--spec", str(spec_file)], timeout)
        ref_rows = read_outcomes(home, ref_ids)
        if ref_rows:
            ref = ref_rows[0]
            ref["kind"] = f"{kind}:reference_spec"
            summary["reference_spec"] = {
                k: ref[k]
                for k in (
                    "status",
                    "reason",
                    "gate_description",
                    "verdict",
                    "training",
                    "oos",
                    "lockbox_sharpe",
                    "lockbox_excess_return_pct",
                    "wall_s",
                )
            }
            rows.append(ref)
    return summary, rows


# -- diagnosis: the designer's specs in-process, every failing check -------------------------


# (name, change to REFERENCE_SPEC): what the planted signal needs, varied one thing at a time.
def _labels(**labels: Any) -> Any:
    return lambda d: d["training"].update(labels=labels)


def _threshold(x: float) -> Any:
    return lambda d: d.update(decisions={"confidence_threshold": x})


def _inputs(*ids: str) -> Any:
    return lambda d: d.update(nn_inputs=[{"fuzzy_set": i} for i in ids])


def _macd_hist(d: dict[str, Any]) -> None:
    cross = d["fuzzy_sets"]["cross"]
    cross["indicator"] = "macd_10_40.hist"
    cross["below"]["parameters"] = [-1, -1, -0.005, 0]
    cross["above"]["parameters"] = [0, 0.005, 1, 1]
    d["nn_inputs"] = [{"fuzzy_set": "cross"}]


VARIANTS: tuple[tuple[str, Any], ...] = (
    ("reference: fwd 0/10, 4 symbols", lambda d: None),
    ("labels fwd 0/5", _labels(source="forward_return", horizon=5, threshold=0.0)),
    ("labels fwd 0/20", _labels(source="forward_return", horizon=20, threshold=0.0)),
    (
        "labels fwd 0.01/10 (dead zone)",
        _labels(source="forward_return", horizon=10, threshold=0.01),
    ),
    ("labels zigzag 0.03/10", _labels(source="zigzag", threshold=0.03, lookahead=10)),
    ("confidence threshold 0.55", _threshold(0.55)),
    ("confidence threshold 0.65", _threshold(0.65)),
    ("1 symbol", lambda d: d["training_data"].update(symbols=list(DEFAULT_SYMBOLS[:1]))),
    ("input: crossover only", _inputs("cross")),
    ("input: ema_20 distance only", _inputs("dist")),
    ("input: macd 10/40 hist only", _macd_hist),
)


def _failing(result: Any) -> list[str]:
    return [c.reason for c in result.checks if not c.passed]


def evaluate_spec(spec: Any, data_dir: Path, history: Any) -> dict[str, Any]:
    """Train, backtest (deflated by ``history``) and gate one spec in-process: its design, the
    figures the gates read, every failing check, and the lockbox (never used to decide)."""
    from research_assets.core import pipeline
    from research_assets.core.errors import ResearchError
    from research_assets.core.gates import (
        GateThresholds,
        evaluate_backtest_gate,
        evaluate_training_gate,
    )

    row: dict[str, Any] = {"strategy": spec.name, "design": _design(spec)}
    started = time.monotonic()
    try:
        model = pipeline.train(spec, data_dir)
        metrics = model.metrics.as_dict()
        report = pipeline.backtest(model, data_dir, "backtest", history)
        lockbox = pipeline.backtest(model, data_dir, "lockbox", report.trials)
    except ResearchError as e:
        return {**row, "error": str(e)[:200], "training_fails": ["error"], "backtest_fails": []}
    thresholds = GateThresholds()
    training = evaluate_training_gate(metrics, thresholds)
    backtest = evaluate_backtest_gate(report.summary, thresholds)
    outcome = lockbox_outcome(lockbox.stats)
    return {
        **row,
        "training": {k: _r(_finite(metrics.get(k)), 4) for k in TRAINING_KEYS if k in metrics},
        "oos": {k: _r(_finite(report.summary.get(k)), 4) for k in OOS_KEYS},
        "oos_sharpe_by_dataset": {
            k: _r(_finite(v.get("Sharpe Ratio")), 3) for k, v in report.stats.items()
        },
        "trials": report.trials.count,
        "training_fails": _failing(training),
        "backtest_fails": _failing(backtest),
        "lockbox_sharpe": _r(outcome[0], 4) if outcome else None,
        "lockbox_excess_return_pct": _r(outcome[1], 4) if outcome else None,
        "wall_s": round(time.monotonic() - started, 2),
    }


def _diagnosis_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    trained = [r for r in rows if not r["training_fails"]]
    passed = [r for r in trained if not r["backtest_fails"]]
    any_fail: Counter[str] = Counter()
    only_fail: Counter[str] = Counter()
    for r in rows:
        fails = r["training_fails"] + (r["backtest_fails"] if not r["training_fails"] else [])
        if not r["training_fails"] and not r["oos"].get("# Trades"):
            fails = ["no_trades"]  # it fails every backtest check: that says nothing more
        any_fail.update(fails)
        if len(fails) == 1:
            only_fail.update(fails)
    return {
        "specs": len(rows),
        "passed_training_gate": len(trained),
        "passed_both_gates": len(passed),
        "no_trades_after_training": sum(1 for r in trained if not r["oos"].get("# Trades")),
        # Backtest checks count only where the training gate passed, as in a research.
        "check_fails": dict(any_fail.most_common()),
        "only_failing_check": dict(only_fail.most_common()),
        "mean_oos_sharpe_passed_training": _mean([r["oos"].get("Sharpe Ratio") for r in trained]),
        "mean_lockbox_sharpe_passed_both": _mean([r["lockbox_sharpe"] for r in passed]),
    }


def diagnose(
    kind: str, data_dir: Path, n: int, seed: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from research_assets.core.data import list_datasets
    from research_assets.core.designer import DesignRequest, OfflineDesigner
    from research_assets.core.memory import ResearchMemory
    from research_assets.core.pipeline import TrialHistory
    from research_assets.core.spec import StrategySpec

    datasets = list_datasets(data_dir)
    rows: list[dict[str, Any]] = []
    sharpes: list[float] = []
    for i in range(n):
        design = OfflineDesigner().design(
            DesignRequest(f"diagnose-{seed + i}", seed + i), ResearchMemory([]), datasets
        )
        row = evaluate_spec(design.spec, data_dir, TrialHistory(i, tuple(sharpes)))
        row.update(kind=kind, id=f"seed {seed + i}")
        sharpe = row.get("oos", {}).get("Sharpe Ratio")
        if not row["training_fails"] and sharpe is not None:
            sharpes.append(sharpe)
        rows.append(row)
        _log(f"{kind} {row['id']}: {_diagnosis_line(row)}")
    summary = _diagnosis_summary(rows)
    if kind != "bundled":
        variants = []
        for name, change in VARIANTS:
            data = json.loads(json.dumps(REFERENCE_SPEC))
            change(data)
            row = evaluate_spec(
                StrategySpec.from_dict(data), data_dir, TrialHistory(n, tuple(sharpes))
            )
            row.update(kind=f"{kind}:variant", id=name)
            variants.append(row)
            _log(f"{kind} {name}: {_diagnosis_line(row)}")
        summary["reference_variants"] = {
            r["id"]: {
                "oos_sharpe": r.get("oos", {}).get("Sharpe Ratio"),
                "fails": r["training_fails"] + r["backtest_fails"],
                "lockbox_sharpe": r.get("lockbox_sharpe"),
            }
            for r in variants
        }
        rows.extend(variants)
    return summary, rows


def _diagnosis_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"error: {r['error']}"
    o, t = r["oos"], r["training"]
    fails = r["training_fails"] + (r["backtest_fails"] if not r["training_fails"] else [])
    return (
        f"{','.join(r['design'].get('indicators', []))} x{len(r['design']['symbols'])} "
        f"{_label_text(r['design']['labels'])} ct {r['design']['confidence_threshold']}: "
        f"lift {_fmt(t.get('accuracy_lift'), 3)}, loss ratio {_fmt(t.get('loss_ratio'), 3)}, "
        f"sharpe {_fmt(o.get('Sharpe Ratio'))} by dataset "
        f"{[v for v in r['oos_sharpe_by_dataset'].values()]}, excess "
        f"{_fmt(o.get('Excess Sharpe'))}, trades {_fmt(o.get('# Trades'), 0)}, win "
        f"{_fmt(o.get('Win Rate [%]'), 0)}%, dd {_fmt(o.get('Max. Drawdown [%]'), 0)}%, "
        f"p {_fmt(o.get('p-value'), 3)}, DSR {_fmt(o.get('Deflated Sharpe Ratio'))} over "
        f"{r['trials']} trials; lockbox {_fmt(r['lockbox_sharpe'])}: "
        f"{', '.join(fails) or 'passes both gates'}"
    )


def render_diagnosis(result: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    out = [
        _reference_table(result),
        "Offline-designer specs from an empty memory, in-process, default gates (every "
        "failing check; backtest checks where training passed):\n",
    ]
    out.append(
        _table(
            [
                "data",
                "specs",
                "pass training",
                "pass both",
                "no trades",
                "check fails (any)",
                "only failing check",
            ],
            [
                [
                    k,
                    str(v["specs"]),
                    str(v["passed_training_gate"]),
                    str(v["passed_both_gates"]),
                    str(v["no_trades_after_training"]),
                    ", ".join(f"{n} {c}" for c, n in v["check_fails"].items()) or "-",
                    ", ".join(f"{n} {c}" for c, n in v["only_failing_check"].items()) or "-",
                ]
                for k, v in result.items()
            ],
        )
    )
    out.append("\nEvery spec:\n")
    out.extend(f"  {r['kind']} {r['id']}: {_diagnosis_line(r)}\n" for r in rows)
    return "".join(out)


# -- output ----------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return (
        "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in [header, *rows]
        )
        + "\n"
    )


def _reference_table(result: dict[str, dict[str, Any]]) -> str:
    refs = [
        [
            k,
            _fmt(v["reference"]["rule_sharpe"]),
            _fmt(v["reference"]["buy_and_hold_sharpe"]),
            _fmt(v["reference"]["excess_sharpe"]),
            _fmt(v["reference"]["rule_sharpe_last_15pct"]),
            _fmt(v["reference"]["excess_sharpe_last_15pct"]),
        ]
        for k, v in result.items()
        if v.get("reference")
    ]
    if not refs:
        return ""
    return (
        "The planted rule (EMA 10/40 crossover, long/short, before costs), mean over the "
        "symbols:\n"
        + _table(
            [
                "data",
                "rule sharpe",
                "buy&hold sharpe",
                "excess sharpe",
                "last 15%: rule",
                "last 15%: excess",
            ],
            refs,
        )
        + "\n"
    )


def render(result: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    out = [_reference_table(result)]
    header = [
        "data",
        "researches",
        "passed both",
        "promising",
        "lockbox > b&h",
        "mean oos sharpe",
        "mean lockbox sharpe",
        "mean lockbox excess %",
        "rank corr",
        "wall s p50",
    ]
    out.append(
        _table(
            header,
            [
                [
                    k,
                    str(v["researches"]),
                    str(v["passed_both_gates"]),
                    str(v["promising"]),
                    f"{v['lockbox_beats_buy_and_hold']} of {v['passed_both_gates']}",
                    _fmt(v["mean_oos_sharpe"]),
                    _fmt(v["mean_lockbox_sharpe"]),
                    _fmt(v["mean_lockbox_excess_return_pct"]),
                    _fmt(v["rank_corr_oos_lockbox"]),
                    _fmt(v["research_wall_s_p50"], 1),
                ]
                for k, v in result.items()
            ],
        )
    )
    out.append("\nRejections by reason:\n")
    for k, v in result.items():
        reasons = ", ".join(f"{n} {r}" for r, n in v["rejections"].items()) or "none"
        failures = ", ".join(f"{n} {r}" for r, n in v.get("failures", {}).items())
        out.append(f"  {k}: {reasons}" + (f"; failed: {failures}" if failures else "") + "\n")
    refs_spec = [(k, v["reference_spec"]) for k, v in result.items() if v.get("reference_spec")]
    if refs_spec:
        out.append("\nThe hand-written reference spec (what the planted signal needs):\n")
        for k, ref in refs_spec:
            oos = ref["oos"]
            out.append(
                f"  {k}: {ref['status']}"
                + (f" ({ref['reason']})" if ref["reason"] else "")
                + f"; oos sharpe {_fmt(oos.get('Sharpe Ratio'))}, excess sharpe "
                f"{_fmt(oos.get('Excess Sharpe'))}, trades {_fmt(oos.get('# Trades'), 0)}, "
                f"DSR {_fmt(oos.get('Deflated Sharpe Ratio'))}, p {_fmt(oos.get('p-value'), 3)}; "
                f"lockbox sharpe {_fmt(ref['lockbox_sharpe'])}\n"
            )
            for gate, text in ref["gate_description"].items():
                out.append(f"      {gate}: {text}\n")
    out.append("\nEvery research:\n")
    out.append(
        _table(
            [
                "data",
                "research",
                "status",
                "design",
                "labels",
                "lift",
                "loss ratio",
                "oos sharpe",
                "excess",
                "trades",
                "win%",
                "dsr",
                "p",
                "lockbox",
                "s",
                "why",
            ],
            [
                [
                    r["kind"],
                    r["id"],
                    r["status"],
                    ",".join(r["design"].get("indicators", []))
                    + f" x{len(r['design'].get('symbols', []))}",
                    _label_text(r["design"].get("labels", {})),
                    _fmt(r["training"].get("accuracy_lift"), 3),
                    _fmt(r["training"].get("loss_ratio"), 3),
                    _fmt(r["oos"].get("Sharpe Ratio")),
                    _fmt(r["oos"].get("Excess Sharpe")),
                    _fmt(r["oos"].get("# Trades"), 0),
                    _fmt(r["oos"].get("Win Rate [%]"), 0),
                    _fmt(r["oos"].get("Deflated Sharpe Ratio")),
                    _fmt(r["oos"].get("p-value"), 3),
                    _fmt(r["lockbox_sharpe"]),
                    _fmt(r["wall_s"], 0),
                    _why(r),
                ]
                for r in rows
            ],
        )
    )
    return "".join(out)


def _why(row: dict[str, Any]) -> str:
    failed = [g for g, v in row["gates"].items() if v == "failed"]
    if failed and failed[0] in row["gate_description"]:
        return row["gate_description"][failed[0]]
    if row["status"] == "completed":
        return row["verdict"] or ""
    return row["reason"] or ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json",
        action="store_true",
        help="print only the JSON line on stdout (the tables go to stderr)",
    )
    parser.add_argument("--researches", type=int, default=24, help="researches per kind")
    parser.add_argument(
        "--kinds", default=",".join(ALL_KINDS), help=f"comma-separated, of {', '.join(ALL_KINDS)}"
    )
    parser.add_argument("--seed", type=int, default=0, help="designer seed of the first research")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic series")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per kind")
    parser.add_argument(
        "--details",
        type=Path,
        default=None,
        help="write every research's design and figures to this JSON file",
    )
    parser.add_argument("--keep", action="store_true", help="keep the instances and data")
    parser.add_argument(
        "--no-reference-spec", action="store_true", help="skip the hand-written reference spec"
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="in-process: the designer's specs and every failing gate check",
    )
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in ALL_KINDS]
    if unknown or not kinds:
        parser.error(
            f"--kinds: {', '.join(unknown) or 'none given'}; choose from {', '.join(ALL_KINDS)}"
        )
    if args.researches < 1:
        parser.error("--researches must be at least 1")

    root = Path(tempfile.mkdtemp(prefix="research-quality-"))
    result: dict[str, dict[str, Any]] = {}
    every: list[dict[str, Any]] = []
    try:
        for kind in kinds:
            data_dir = prepare_data(kind, root, args.data_seed)
            if args.diagnose:
                summary, rows = diagnose(kind, data_dir, args.researches, args.seed)
            else:
                summary, rows = run_kind(
                    kind,
                    args.researches,
                    args.seed,
                    data_dir,
                    root,
                    args.timeout,
                    not args.no_reference_spec,
                )
            summary["reference"] = reference(kind, data_dir)
            result[kind] = summary
            every.extend(rows)
            _log(f"{kind}: {json.dumps({k: summary[k] for k in list(summary)[:10]})}")
    finally:
        if args.keep:
            _log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.details:
        args.details.write_text(json.dumps(every, indent=1, default=str) + "\n")
        _log(f"details of {len(every)} researches in {args.details}")
    folds = os.environ.get("RESEARCH_WALK_FORWARD_FOLDS", "default")
    rendered = render_diagnosis(result, every) if args.diagnose else render(result, every)
    text = rendered + f"\n(walk-forward folds: {folds}; load {os.getloadavg()[0]:.1f})\n"
    (sys.stderr if args.json else sys.stdout).write(text)
    sys.stdout.write(json.dumps(result, allow_nan=False, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
