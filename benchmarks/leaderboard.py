"""Time to materialize the leaderboard asset at scale.

Uses benchmarks/orchestration.py's scale instance (``--scale`` researches of every outcome, built
once and cached; see that file), copied to a temporary DAGSTER_HOME so the cached one stays as
built. Times ``dg.materialize([leaderboard])`` in this process (a real run adds the run worker's
launch, ~3 s here), ``--repeats`` times: the first on an instance whose status view
(status_view.py) has never been filled (as after an upgrade), then warm (every later rebuild,
when only the researches that changed are derived again). Alongside: the status view's first
fill alone (``read_statuses_cold_s``, on another copy), the parts of one warm
build (reading the statuses, the table, the picture) and the size of what one materialization
writes to the event log.

Usage::

    .venv/bin/python benchmarks/leaderboard.py [--scale 1000] [--repeats 3] [--cache-dir DIR]

The last line of stdout is one JSON object.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dagster as dg  # noqa: E402

warnings.filterwarnings("ignore")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()

    from orchestration import ensure_scale_home

    built, _ = ensure_scale_home(args.scale, args.cache_dir, rebuild=False)
    home = Path(tempfile.mkdtemp(prefix="leaderboard-bench-")) / "dagster_home"
    shutil.copytree(built, home)
    os.environ["DAGSTER_HOME"] = str(home)

    from research_assets.core.leaderboard import LeaderboardEntry, comparison_png, rows
    from research_assets.defs.leaderboard import leaderboard
    from research_assets.state.status_view import read_statuses

    out: dict = {"scale": args.scale, "load_avg": os.getloadavg()[0]}
    # The status view's first fill alone, on its own copy: what the cold build spends there.
    other = Path(tempfile.mkdtemp(prefix="leaderboard-bench-")) / "dagster_home"
    shutil.copytree(built, other)
    with dg.DagsterInstance.from_config(str(other)) as instance:
        started = time.perf_counter()
        read_statuses(instance)
        out["read_statuses_cold_s"] = round(time.perf_counter() - started, 3)
    shutil.rmtree(other.parent, ignore_errors=True)
    with dg.DagsterInstance.get() as instance:
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            result = dg.materialize([leaderboard], instance=instance)
            times.append(time.perf_counter() - started)
            assert result.success
        [mat] = result.asset_materializations_for_node("leaderboard")
        out["materialize_cold_s"] = round(times[0], 3)
        out["materialize_warm_s_median"] = round(statistics.median(times[1:] or times), 3)
        out["researches"] = mat.metadata["researches"].value

        started = time.perf_counter()
        statuses = read_statuses(instance)
        read_s = time.perf_counter() - started
        entries = [
            LeaderboardEntry.from_status(s.data, s.sharpe, s.excess_return, s.deflated_sharpe)
            for s in statuses
        ]
        started = time.perf_counter()
        table = rows(entries)
        rows_s = time.perf_counter() - started
        started = time.perf_counter()
        png = comparison_png(entries)
        png_s = time.perf_counter() - started
        out["parts_warm_s"] = {
            "read_statuses": round(read_s, 3),
            "rows": round(rows_s, 3),
            "picture": round(png_s, 3),
        }
        out["png_bytes"] = len(png)
        out["table_rows"] = len(table)
        record = instance.fetch_materializations(leaderboard.key, limit=1).records[0]
        out["event_bytes"] = len(dg.serialize_value(record.event_log_entry))
    shutil.rmtree(home.parent, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
