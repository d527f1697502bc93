"""The code location loads, and the main job materializes Table 1 with its metadata and reports."""

import dagster as dg
import pandas as pd

from jobs import MAIN_JOB, PER_CLASS_JOB
from kinetics_assets.definitions import defs
from kinetics_assets.partitions import class_key


def test_definitions_resolve_every_asset_and_job():
    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {"class_taxonomy", "edition_annotations", "class_statistics", "class_clips"} <= keys
    assert {job.name for job in defs.resolve_all_job_defs()} >= {MAIN_JOB, PER_CLASS_JOB}


def test_main_job_materializes_table1_and_flags_rejected_rows(tmp_path, kinetics_home):
    annotations = tmp_path / "train.csv"
    annotations.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,0wR5jVB-WPk,0,10,train\n"
        "abseiling,3caPS4FHFF8,5,15,train\n"
        "zumba,abcdefghijk,1,11,validate\n"
        "zumba,bad-id,1,11,validate\n"
    )
    instance = dg.DagsterInstance.ephemeral()
    run_config = {"ops": {"edition_annotations": {"config": {"edition": "Kinetics-700", "files": [str(annotations)]}}}}
    result = defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance, run_config=run_config)
    assert result.success

    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "all_rows_valid")
    assert not check.passed and check.metadata["rejected_rows"].value == 1

    stats_event = instance.get_latest_materialization_event(dg.AssetKey("class_statistics"))
    metadata = stats_event.asset_materialization.metadata
    rows = {r.data["split"]: r.data for r in metadata["table1"].value.records}
    assert rows["all"]["clips"] == 3 and rows["all"]["minimum"] == 1 and rows["all"]["maximum"] == 2
    assert metadata["clips_per_class"].value.startswith("![clips per class](data:image/png;base64,")
    report = kinetics_home / "artifacts" / "editions" / "Kinetics-700" / "table1.md"
    assert "| Kinetics-700 | train   |       2 |" in report.read_text()

    per_class = defs.resolve_job_def(PER_CLASS_JOB).execute_in_process(
        instance=instance, partition_key=class_key("zumba")
    )
    clips_event = instance.get_latest_materialization_event(dg.AssetKey("class_clips"))
    assert per_class.success and clips_event.asset_materialization.partition == "zumba"
    clips = pd.read_parquet(clips_event.asset_materialization.metadata["path"].value)
    assert clips["youtube_id"].tolist() == ["abcdefghijk"]
