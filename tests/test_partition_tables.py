"""A many-partition input annotated ``PartitionTables`` reads each stored partition when asked for, whole or some columns."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from resources.storage import LocalParquetIOManager, PartitionTables

PARTS = dg.StaticPartitionsDefinition(["a", "b", "c"])


@dg.asset(partitions_def=PARTS)
def per_class(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"clip_id": [f"{context.partition_key}{k}" for k in range(3)], "n": range(3)})


def _materialize(tmp_path: Path, downstream, *partitions: str) -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    resources = {"io_manager": LocalParquetIOManager(base_dir=str(tmp_path))}
    for key in partitions:
        assert dg.materialize([per_class], partition_key=key, resources=resources, instance=instance).success
    dg.materialize([per_class, downstream], selection=[downstream], resources=resources, instance=instance)
    return instance


def test_partitions_are_read_in_turn_and_missing_ones_skipped(tmp_path):
    seen = {}

    @dg.asset(ins={"per_class": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
    def downstream(per_class: PartitionTables) -> pd.DataFrame:
        seen["names"] = per_class.names
        seen["columns"] = per_class.columns(1, ["n", "absent"]).columns.tolist()
        (tmp_path / "per_class" / "c.parquet").unlink()  # after the load, before the iteration: c is read lazily
        tables = iter(per_class)
        seen["first"] = next(tables)
        with pytest.raises(FileNotFoundError, match="per_class partition c is not materialized yet"):
            next(tables)
        return pd.DataFrame()

    _materialize(tmp_path, downstream, "a", "c")
    assert seen["names"] == ("per_class/a", "per_class/c")  # b was never materialized: skipped, not an error
    assert seen["columns"] == ["n"]  # only the columns asked for, of those the table has
    assert seen["first"]["clip_id"].tolist() == ["a0", "a1", "a2"]


def test_a_dataframe_input_still_gets_the_concatenation(tmp_path):
    seen = {}

    @dg.asset(ins={"per_class": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
    def downstream(per_class: pd.DataFrame) -> pd.DataFrame:
        seen["rows"] = per_class["clip_id"].tolist()
        return pd.DataFrame()

    _materialize(tmp_path, downstream, "a", "b")
    assert seen["rows"] == ["a0", "a1", "a2", "b0", "b1", "b2"]


def test_in_memory_tables_iterate_in_order_and_join():
    tables = PartitionTables.of([pd.DataFrame({"v": [1]}), pd.DataFrame({"v": [2]})], asset="x")
    joined = tables + PartitionTables.of([pd.DataFrame({"v": [3], "w": [4]})], asset="y")
    assert [t["v"].item() for t in joined] == [1, 2, 3] and joined.names == ("x/0", "x/1", "y/0")
    assert joined.columns(2, ["w"])["w"].tolist() == [4] and joined[-1]["v"].item() == 3
    with pytest.raises(IndexError):
        joined[3]
