"""A research's state, read back from the Dagster instance (records, statuses, capacity, cancel,
fleet metrics). No Dagster definitions live here (they are in research_assets/defs)."""
