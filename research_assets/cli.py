"""The ``research`` command: run researches, trigger one, and show where they stand.

    research run --count 3 --seed 1        # three researches through the run queue, then a
                                           # leaderboard (starts a daemon if none is running)
    research trigger --brief "BTC trend"   # add a research; the intake sensor launches it
    research cancel ID                     # stop one research, queued or running
    research status [ID] [--json]          # researches: phase, status, worker, age, gates, cost
    research metrics [--json]              # outcomes, durations, queue, utilization, spend

User errors print one line to stderr and exit 1; usage errors exit 2. With ``--json`` the last
line of stdout is one JSON object.
"""

import argparse
import gc
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from research_assets.core.names import BACKTEST_GATE, FINAL_STATUSES, TRAINING_GATE, Status

EXIT_OK, EXIT_USER_ERROR, EXIT_USAGE = 0, 1, 2
# A trigger that is refused: each reason has its own exit code.
EXIT_BUDGET_EXHAUSTED, EXIT_AT_CAPACITY, EXIT_QUEUE_FULL = 3, 4, 5
REFUSAL_EXIT_CODES = {
    "budget_exhausted": EXIT_BUDGET_EXHAUSTED,
    "at_capacity": EXIT_AT_CAPACITY,
    "queue_full": EXIT_QUEUE_FULL,
}
# Commands that read, print and exit within seconds. They allocate much (Dagster's imports, a
# status per research) and leave little garbage in cycles: they run without the cyclic
# collector, whose passes cost them a tenth to a sixth of their time and free nothing that exit
# would not, and they exit without the interpreter's teardown (see entry()).
_SHORT_COMMANDS = {"trigger", "cancel", "status", "metrics"}


class CliError(Exception):
    """A problem the user can fix; the message says how."""


class Refused(Exception):
    """A trigger that is refused for a reason the system reports (e.g. ``budget_exhausted``)."""

    def __init__(self, reason: str, message: str, exit_code: int, **details: Any):
        super().__init__(message)
        self.reason, self.exit_code, self.details = reason, exit_code, details


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    collecting = gc.isenabled()
    if args.command in _SHORT_COMMANDS:
        gc.disable()
    _quiet_dagster()
    from research_assets.core.errors import ResearchError

    try:
        return int(args.func(args) or EXIT_OK)
    except (CliError, ResearchError) as e:
        sys.stderr.write(f"research: {e}\n")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("research: interrupted\n")
        return 130
    finally:
        if collecting:  # main() may be called in a longer-lived process
            gc.enable()


def entry() -> None:
    """The ``research`` executable: :func:`main`, then exit.

    A short command exits without the interpreter's teardown: freeing every object its imports
    and statuses made (a full garbage collection, then module by module) takes longer than the
    command itself at 10,000 researches. Nothing is left to finish then: what it wrote is
    committed and its output is flushed here. Longer commands (``run``) exit normally, so their
    cleanup (the daemon they started) runs.
    """
    argv = sys.argv[1:]
    try:
        code = main(argv)
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        # The reader went away (`research status | head`): it has read all it wanted. Exit as a
        # process killed by SIGPIPE would, without Python's complaint about the unflushed rest.
        os._exit(128 + 13)
    if argv and argv[0] in _SHORT_COMMANDS:
        os._exit(code)
    raise SystemExit(code)


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end is closed (poll reports an error on it)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll here, or stdout is not a file
        return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="research", description="Autonomous trading-strategy research on Dagster."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run N researches to the end and print a leaderboard")
    run.add_argument("--count", type=_positive_int, default=3, help="researches to run (default 3)")
    run.add_argument(
        "--seed",
        type=_non_negative_int,
        default=None,
        help="seed of the first research; the next ones use seed+1, seed+2, ...",
    )
    run.add_argument("--brief", default=None, help="a research brief passed to the designer")
    run.add_argument(
        "--spec",
        default=None,
        metavar="FILE",
        help="research this strategy spec (YAML) instead of designing one",
    )
    run.add_argument(
        "--worker",
        choices=["cpu", "gpu"],
        default="cpu",
        help="worker class of these researches (default cpu)",
    )
    run.add_argument(
        "--timeout",
        type=_positive_int,
        default=None,
        metavar="SECONDS",
        help="give up waiting after this long (researches stay queued)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    run.set_defaults(func=cmd_run)

    trigger = sub.add_parser("trigger", help="add a research partition and print its id")
    trigger.add_argument("--brief", default=None, help="a research brief passed to the designer")
    trigger.add_argument("--seed", type=_non_negative_int, default=None, help="designer seed")
    trigger.add_argument(
        "--spec",
        default=None,
        metavar="FILE",
        help="research this strategy spec (YAML) instead of designing one",
    )
    trigger.add_argument(
        "--worker",
        choices=["cpu", "gpu"],
        default="cpu",
        help="worker class whose run limit this research counts against",
    )
    trigger.add_argument("--json", action="store_true", help="print one JSON object")
    trigger.set_defaults(func=cmd_trigger)

    cancel = sub.add_parser("cancel", help="cancel a research: its queued or running run stops")
    cancel.add_argument("id", help="a research id")
    cancel.add_argument("--json", action="store_true", help="print one JSON object")
    cancel.set_defaults(func=cmd_cancel)

    status = sub.add_parser("status", help="show researches (all, or one by id)")
    status.add_argument("id", nargs="?", default=None, help="a research id")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=cmd_status)

    metrics = sub.add_parser("metrics", help="outcomes, cycle times, queue, utilization, spend")
    metrics.add_argument("--json", action="store_true", help="print one JSON object")
    metrics.set_defaults(func=cmd_metrics)
    return parser


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value


# -- commands --------------------------------------------------------------------------------


def _admit(instance: Any) -> None:
    """Refuse a new research when today's LLM budget is spent, when researches in flight are
    at capacity, or when the queue is full. Checked at trigger only: running ones finish."""
    from research_assets.state.capacity import admit

    admission = admit(instance)
    if not admission.allowed:
        reason = admission.reason or "refused"
        raise Refused(
            reason,
            admission.message,
            REFUSAL_EXIT_CODES.get(reason, EXIT_USER_ERROR),
            **(admission.details or {}),
        )


def _refusal(args: argparse.Namespace, refused: Refused) -> int:
    if getattr(args, "json", False):
        _emit_json(
            {
                "triggered": False,
                "reason": refused.reason,
                "message": str(refused),
                **refused.details,
            }
        )
    sys.stderr.write(f"research: refused ({refused.reason}): {refused}\n")
    return refused.exit_code


def cmd_trigger(args: argparse.Namespace) -> int:
    from research_assets.state.records import new_research_id, record_request

    spec = _read_spec(args.spec)
    instance = _instance()
    try:
        _admit(instance)
    except Refused as refused:
        return _refusal(args, refused)
    request = record_request(
        instance,
        new_research_id(),
        seed=args.seed,
        brief=args.brief,
        spec=spec,
        worker=args.worker,
    )
    if args.json:
        _emit_json({"triggered": True, "id": request.research_id, "seed": request.seed})
    else:
        sys.stdout.write(f"{request.research_id}\n")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from research_assets.local_daemon import LocalDaemon
    from research_assets.state.records import new_research_id, record_request

    spec = _read_spec(args.spec)
    _check_settings()
    instance = _instance()
    _check_market_data(instance)
    home = Path(os.environ["DAGSTER_HOME"])
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    ids: list[str] = []
    refused: Refused | None = None
    with LocalDaemon(instance, home) as daemon:
        _log(
            "daemon: "
            + (
                "started for this run"
                if daemon.started_here
                else "using the one already running on this instance"
            )
        )
        watcher = _Watcher(instance, args.count)
        for i in range(args.count):
            seed = None if args.seed is None else args.seed + i
            try:
                _wait_for_admission(instance, daemon, watcher, deadline)
            except Refused as r:
                refused = r
                _log(f"not started {args.count - i} of {args.count}: {r.reason}: {r}")
                break
            request = record_request(
                instance,
                new_research_id(),
                seed=seed,
                brief=args.brief,
                spec=spec,
                worker=args.worker,
            )
            ids.append(request.research_id)
            watcher.add(request.research_id)
            _log(f"[{i + 1}/{args.count}] {request.research_id}: triggered (seed {request.seed})")
        while not watcher.all_final():
            if deadline is not None and time.monotonic() > deadline:
                raise CliError(
                    f"gave up waiting after {args.timeout} s; the unfinished researches stay "
                    "queued and run when a daemon runs (`make ui`); `research status` shows them"
                )
            daemon.check_alive()
            time.sleep(1.0)
            watcher.poll()
    statuses = watcher.statuses()
    if args.json:
        payload: dict[str, Any] = {"researches": [s.to_json() for s in statuses]}
        if refused is not None:
            payload["refused"] = {"reason": refused.reason, "message": str(refused)}
        _emit_json(payload)
    else:
        sys.stdout.write(leaderboard(statuses))
    return refused.exit_code if refused is not None else EXIT_OK


class _Watcher:
    """Follows the researches of one `research run` and logs each as it ends."""

    def __init__(self, instance: Any, total: int):
        self.instance, self.total = instance, total
        self.ids: list[str] = []
        self.final: dict[str, Any] = {}
        self.started: dict[str, float] = {}

    def add(self, research_id: str) -> None:
        self.ids.append(research_id)
        self.started[research_id] = time.monotonic()

    def poll(self) -> None:
        from research_assets.state.records import load_statuses

        pending = [i for i in self.ids if i not in self.final]
        if not pending:
            return
        for status in load_statuses(self.instance, pending):
            # Final only once its run has finished too: the daemon is stopped after the last
            # one, and a run worker stopped before it records its end would stay "started".
            if status.status in FINAL_STATUSES and (
                status.run_id is None or self._run_finished(status.run_id)
            ):
                self.final[status.id] = status
                n = self.ids.index(status.id) + 1
                took = time.monotonic() - self.started[status.id]
                why = status.reason_detail or status.reason
                _log(
                    f"[{n}/{self.total}] {status.id}: {status.status} after {took:.1f} s, "
                    f"{status.strategy or '-'}" + (f": {why}" if why else "")
                )

    def _run_finished(self, run_id: str) -> bool:
        run = self.instance.get_run_by_id(run_id)
        return run is None or run.is_finished

    def all_final(self) -> bool:
        return all(i in self.final for i in self.ids)

    def statuses(self) -> list[Any]:
        return [self.final[i] for i in self.ids]


def _wait_for_admission(
    instance: Any, daemon: Any, watcher: _Watcher, deadline: float | None
) -> None:
    """Trigger as soon as capacity allows; only a spent budget stops `research run`."""
    while True:
        try:
            _admit(instance)
            return
        except Refused as r:
            if r.reason == "budget_exhausted":
                raise
            if deadline is not None and time.monotonic() > deadline:
                raise
        daemon.check_alive()
        time.sleep(1.0)
        watcher.poll()


def _check_settings() -> None:
    """The split and gate settings the runs will read (RESEARCH_*_FRACTION,
    RESEARCH_WALK_FORWARD_FOLDS, GATE_*), checked before any research is triggered: a bad one
    is a ConfigError that names the variable, not a failed research."""
    from research_assets.core.gates import GateThresholds
    from research_assets.core.splits import SplitConfig

    SplitConfig.from_env()
    GateThresholds.from_env()


def _check_market_data(instance: Any) -> None:
    """Validate every dataset once, before any research is triggered."""
    _log(f"market data: validating datasets in {_data_dir_label()}")
    result = (
        _definitions()
        .resolve_job_def("market_data_job")
        .execute_in_process(instance=instance, raise_on_error=False, run_config=_QUIET_RUN)
    )
    if not result.success:
        raise CliError(_first_failure(result) or "market data did not validate")


def cmd_cancel(args: argparse.Namespace) -> int:
    from research_assets.state.cancel import cancel_research

    instance = _instance()
    result = cancel_research(instance, args.id)
    if args.json:
        _emit_json(result.to_json())
    else:
        sys.stdout.write(f"{result.message}\n")
    return EXIT_OK


def cmd_metrics(args: argparse.Namespace) -> int:
    from research_assets.state.metrics import compute_metrics, format_metrics

    instance = _instance()
    metrics = compute_metrics(instance)
    if args.json:
        _emit_json(metrics)
    else:
        sys.stdout.write(format_metrics(metrics))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from research_assets.defs.partitions import research_partitions
    from research_assets.state.status_view import read_statuses, status_json_pieces

    instance = _instance()
    if args.id is not None:
        if not instance.has_dynamic_partition(research_partitions.name, args.id):
            raise CliError(
                f"no research with id {args.id!r} in {os.environ['DAGSTER_HOME']}; "
                "`research status` lists them"
            )
        statuses = read_statuses(instance, [args.id])
    elif args.json:
        # As the last read of every research printed it while the instance has not moved since.
        # 150 MB at 100,000 researches: written piece by piece, never joined or encoded whole.
        for piece in status_json_pieces(instance):
            sys.stdout.write(piece)
        sys.stdout.write("\n")
        return EXIT_OK
    else:
        statuses = read_statuses(instance)
    if args.json:
        # Each status is kept encoded (status_view.py): the object is assembled, not re-encoded.
        sys.stdout.write('{"researches": [' + ", ".join(s.document for s in statuses) + "]}\n")
    elif not statuses:
        sys.stdout.write("no researches yet; start one with `research run` or `research trigger`\n")
    else:
        sys.stdout.write(status_table(statuses))
    return EXIT_OK


# -- output ----------------------------------------------------------------------------------


def status_table(statuses: Sequence[Any], now: float | None = None) -> str:
    """One line per research (status_view.RenderedStatus), newest last: where it is and how it
    went."""
    now = time.time() if now is None else now
    header = [
        "research",
        "status",
        "phase",
        "worker",
        "age",
        "strategy",
        "training",
        "backtest",
        "sharpe",
        "excess%",
        "dsr",
        "cost $",
        "reason",
    ]
    rows = []
    for s in statuses:
        d = s.data
        rows.append(
            [
                d["id"],
                d["status"],
                d["phase"],
                d["worker"] or "-",
                _age(now - d["created_at"]) if d["created_at"] else "-",
                d["strategy"] or "-",
                d["gates"][TRAINING_GATE] or "-",
                d["gates"][BACKTEST_GATE] or "-",
                _fmt(s.sharpe),
                _fmt(s.excess_return),
                _fmt(s.deflated_sharpe),
                f"{d['cost_usd']:.4f}",
                d.get("reason_detail") or d["reason"] or "",
            ]
        )
    return _table(header, rows)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    return "\n".join(lines) + "\n"


def leaderboard(statuses: Sequence[Any]) -> str:
    """Researches ranked by backtest-period Sharpe; lockbox figures shown beside, never used.
    A research rejected at the backtest gate shows its backtest-period figures too (no lockbox:
    it is never evaluated for a rejected research); every rejection says why, in numbers."""

    def sharpe(s: Any) -> float:
        value = s.backtest_summary.get("Sharpe Ratio")
        return value if isinstance(value, float) and math.isfinite(value) else -math.inf

    ranked = sorted(
        statuses, key=lambda s: (s.status != Status.COMPLETED, -sharpe(s), s.created_at)
    )
    header = [
        "#",
        "research",
        "status",
        "strategy",
        "sharpe",
        "return%",
        "excess%",
        "maxdd%",
        "win%",
        "trades",
        "dsr",
        "lockbox sharpe",
        "lockbox ret%",
        "lockbox excess%",
        "cost $",
        "reason",
    ]
    rows = []
    for rank, s in enumerate(ranked, 1):
        b = s.backtest_summary
        lock = _lockbox_mean(s.lockbox)
        rows.append(
            [
                str(rank),
                s.id,
                s.status,
                s.strategy or "-",
                _fmt(b.get("Sharpe Ratio")),
                _fmt(b.get("Return [%]")),
                _fmt(b.get("Excess Return [%]")),
                _fmt(b.get("Max. Drawdown [%]")),
                _fmt(b.get("Win Rate [%]")),
                _fmt(b.get("# Trades"), 0),
                _fmt(b.get("Deflated Sharpe Ratio")),
                _fmt(lock.get("Sharpe Ratio")),
                _fmt(lock.get("Return [%]")),
                _fmt(lock.get("Excess Return [%]")),
                f"{s.cost_usd:.4f}",
                s.reason_detail or s.reason or "",
            ]
        )
    return _table(header, rows)


def _lockbox_mean(lockbox: dict[str, dict[str, Any]] | None) -> dict[str, float]:
    if not lockbox:
        return {}
    out = {}
    for key in ("Sharpe Ratio", "Return [%]", "Excess Return [%]"):
        values = [v[key] for v in lockbox.values() if isinstance(v.get(key), int | float)]
        if values:
            out[key] = sum(values) / len(values)
    return out


def _fmt(value: Any, digits: int = 2) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def _emit_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, allow_nan=False, default=str) + "\n")


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


# -- Dagster plumbing ------------------------------------------------------------------------

# Outcomes are summarised by the CLI; full logs stay in the instance and the UI.
_QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _instance():
    """The instance in ``$DAGSTER_HOME``, or in ``./dagster_home`` (created if needed)."""
    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    if home:
        path = Path(home)
        if not path.is_dir():
            raise CliError(
                f"DAGSTER_HOME={home} is not a directory; create it, or unset DAGSTER_HOME to use "
                "./dagster_home"
            )
    else:
        path = Path.cwd() / "dagster_home"
        path.mkdir(exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(path)
    try:
        return dg.DagsterInstance.get()
    except Exception as e:  # a broken dagster.yaml or an unreachable storage server
        raise CliError(
            f"cannot open the Dagster instance in {path}: {str(e).strip().splitlines()[0]}; "
            f"check {path / 'dagster.yaml'}"
        ) from None


def _definitions():
    from research_assets.definitions import defs

    return defs


def _read_spec(path: str | None):
    if path is None:
        return None
    from research_assets.core.spec import StrategySpec

    return StrategySpec.from_file(path)


def _data_dir_label() -> str:
    return os.environ.get("MARKET_DATA_DIR") or "the bundled sample"


def _first_failure(result: Any) -> str | None:
    """The message of the first failed step, alone (no exception class name)."""
    from research_assets.state.instance_reads import step_failure_message

    for event in result.all_events:
        if event.is_step_failure:
            message = step_failure_message(event.step_failure_data)
            if message:
                return message
    return None


def _quiet_dagster() -> None:
    # Dagster's preview/beta warnings and its own loggers are for developers, not CLI users.
    warnings.filterwarnings("ignore")
    logging.getLogger("dagster").setLevel(logging.ERROR)


if __name__ == "__main__":
    entry()
