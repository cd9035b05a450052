"""`research status --json` and `research metrics --json` over a view of N researches, fast.

Building an orchestration-benchmark instance of 100,000 researches (benchmarks/orchestration.py
--scale 100000) takes over half an hour on a loaded 2-core machine. This copies the rendered
statuses of a smaller built instance (``--from``: its DAGSTER_HOME, e.g. the 10,000 one) under N
ids into a fresh instance that holds only those partitions and the view (no events, no runs),
then times the CLI as subprocesses under GNU time (wall, CPU, peak memory): the first `status`
(every fingerprint checked, the output kept), then warm ones, then `metrics`. What it leaves out
against a real instance: the fingerprint queries over events and runs (empty here) and metrics'
runs table read (102,000 rows at 100,000 researches).

Usage::

    .venv/bin/python benchmarks/status_view_scale.py --from DAGSTER_HOME [-n 100000]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402

from research_assets.state import research_index as ri  # noqa: E402
from research_assets.state import status_view as sv  # noqa: E402


def build(source: str, home: Path, n: int) -> None:
    src = dg.DagsterInstance.from_config(source)
    entries = list(sv._load_view(src, list(range(ri.BUCKETS)))[1].values())
    src.dispose()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home)
    instance = dg.DagsterInstance.from_config(str(home))
    ids = [f"r-20261201-000000-{i:05x}" for i in range(n)]
    instance.add_dynamic_partitions("research", ids)
    fingerprint = sv._fingerprints(instance, ids[:1], {})[ids[0]]  # no events, no run
    by_bucket: dict[int, dict] = {}
    for i, pk in enumerate(ids):
        fp, at, doc, *rest = entries[i % len(entries)]
        doc = re.sub(r'^\{"id": "[^"]*"', f'{{"id": "{pk}"', doc)
        by_bucket.setdefault(ri.bucket_of(pk), {})[pk] = [fingerprint, at + i * 1e-3, doc, *rest]
    sv._write_view(instance, by_bucket, {})
    instance.dispose()


def run(home: Path, *args: str) -> str:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    proc = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "%e s wall, %U+%S s CPU, %M KB peak",
            sys.executable,
            "-m",
            "research_assets.cli",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
        check=True,
    )
    return proc.stderr.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", required=True)
    parser.add_argument("-n", type=int, default=100_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="research-view-scale-"))
    try:
        build(args.source, home, args.n)
        print(f"{args.n} researches; host load average {os.getloadavg()}")
        print("status --json, first:", run(home, "status", "--json"))
        for _ in range(3):
            print("status --json, warm: ", run(home, "status", "--json"))
        for _ in range(2):
            print("metrics --json:      ", run(home, "metrics", "--json"))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
