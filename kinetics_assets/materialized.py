"""Reading back what an asset materialized: its latest value (the parquet its `path` metadata names) and metadata.

How an asset builds on its own previous value, how a stage reads what its downstream assets recorded in earlier
rounds (depending on them would make the graph cyclic), and how the demo prints its results.
"""

from __future__ import annotations

import io

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
    return pd.read_parquet(stored_file(metadata["path"].value)), metadata


def stored_file(location: str) -> str | io.BytesIO:
    """The parquet a value's ``path`` metadata names, for pandas or pyarrow: a local path as it is, a ``gs://``
    object of the gcp profile as its bytes (pyarrow's own GCS client would look for Google's endpoint and
    credentials, not the environment's)."""
    if location.startswith("gs://"):
        from resources.gcs_storage import read_object

        return io.BytesIO(read_object(location))
    return location
