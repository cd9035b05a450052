"""A snapshot of the whole asset graph: keys, deps, groups, kinds, partitions, pools, checks.

An accidental change to the graph fails here. To accept an intended change, run
``UPDATE_SNAPSHOTS=1 pytest tests/defs/test_asset_graph_snapshot.py`` and commit the file.
"""

import json
import os
from pathlib import Path

from research_assets.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_snapshot() -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        spec_def = defs.resolve_assets_def(key)
        assets[key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitions": getattr(node.partitions_def, "name", None),
            "pool": spec_def.op.pool,
            "checks": sorted(
                {
                    "name": c.name,
                    "blocking": c.blocking,
                    "partitions": getattr(c.partitions_def, "name", None),
                }.__repr__()
                for c in spec_def.check_specs
            ),
        }
    jobs = sorted(j.name for j in defs.jobs or [])
    sensors = {s.name: s.default_status.value for s in defs.sensors or []}
    return {
        "assets": assets,
        "jobs": jobs,
        "sensors": sensors,
        "resources": sorted(defs.resources or {}),
    }


def test_asset_graph_matches_snapshot():
    current = graph_snapshot()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected


def test_gates_are_blocking_and_partition_scoped():
    # One check per gate criterion (tests/defs/test_gate_checks.py), each partitioned by research.
    for key in ("trained_model", "backtest_report"):
        specs = defs.resolve_assets_def(key).check_specs
        assert specs and all(c.blocking for c in specs)
        assert {c.partitions_def.name for c in specs} == {"research"}
        assert defs.resolve_assets_def(key).partitions_def.name == "research"
