"""The shared names (core/names.py) are the names the definitions actually use."""

import dagster as dg

from research_assets.core import names
from research_assets.definitions import defs
from research_assets.defs.partitions import research_partitions


def test_every_asset_is_named_once_and_the_research_assets_are_the_partitioned_ones():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    named = {
        v
        for k, v in vars(names).items()
        if k.isupper() and isinstance(v, str) and not k.endswith("_GATE")
    }
    assert keys == named
    partitioned = {
        k.to_user_string()
        for k in graph.get_all_asset_keys()
        if graph.get(k).partitions_def == research_partitions
    }
    assert partitioned == set(names.RESEARCH_ASSETS)


def test_each_gate_checks_the_asset_it_is_named_for():
    graph = defs.resolve_asset_graph()
    gates: dict[str, set[str]] = {}
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        gate = (spec.metadata or {}).get("gate")
        gate = gate.value if isinstance(gate, dg.TextMetadataValue) else gate
        gates.setdefault(str(gate), set()).add(key.asset_key.to_user_string())
    assert gates == {g: {a} for g, a in names.GATED_ASSETS.items()}


def test_statuses_are_plain_strings_in_json():
    import json

    assert json.dumps({"status": names.Status.REJECTED}) == '{"status": "rejected"}'
    assert set(names.FINAL_STATUSES) | set(names.ACTIVE_STATUSES) == set(names.Status)
