"""Every research is one key of this dynamic partition set."""

import dagster as dg

research_partitions = dg.DynamicPartitionsDefinition(name="research")
