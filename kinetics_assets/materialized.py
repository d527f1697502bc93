"""Reading back what an asset materialized: its latest value (the parquet its `path` metadata names) and metadata.

How an asset builds on its own previous value, how a stage reads what its downstream assets recorded in earlier
rounds (depending on them would make the graph cyclic), and how the demo prints its results.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd


def latest(instance: dg.DagsterInstance, asset: str | dg.AssetKey, partition: str | None = None):
    """(value, metadata) of the asset's (or its partition's) latest materialization; (None, None) before the first."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey.from_coercible(asset),
                              asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    if not records:
        return None, None
    metadata = records[0].event_log_entry.asset_materialization.metadata
    return pd.read_parquet(metadata["path"].value), metadata
