"""The code location loads, and the main job materializes Table 1 with its metadata and reports."""

import subprocess
import sys

import dagster as dg

from jobs import JOBS
from kinetics_assets.definitions import STAGES, defs
from resources.editions import EditionCatalog, EditionFiles
from resources.profiles import resources_for

EDITION_ASSETS = ["class_taxonomy", "edition_annotations", "class_statistics", "class_clips"]


def test_definitions_resolve_every_asset_and_job():
    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert set(EDITION_ASSETS) <= keys
    assert {job.name for job in defs.resolve_all_job_defs()} >= {job.name for job in JOBS}
    assert [sensor.name for sensor in defs.sensors] == ["vote_inbox_sensor", "next_round_sensor", "link_rot_sensor"]
    assert [schedule.name for schedule in defs.schedules] == ["weekly_availability_sweep"]


def test_edition_assets_materialize_table1_and_flag_rejected_rows(tmp_path, kinetics_home):
    annotations = tmp_path / "train.csv"
    annotations.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,0wR5jVB-WPk,0,10,train\n"
        "abseiling,3caPS4FHFF8,5,15,train\n"
        "zumba,abcdefghijk,1,11,validate\n"
        "zumba,bad-id,1,11,validate\n"
    )
    instance = dg.DagsterInstance.ephemeral()
    catalog = EditionCatalog(
        editions=[EditionFiles(name="Kinetics-700", taxonomy="Kinetics-700", files=[str(annotations)])],
        current="Kinetics-700",
    )
    assets = [*dg.load_assets_from_modules(STAGES), *dg.load_asset_checks_from_modules(STAGES)]
    resources = {**resources_for(), "editions": catalog}
    main = ["class_taxonomy", "edition_annotations", "class_statistics"]
    result = dg.materialize(assets, selection=main, resources=resources, instance=instance)
    assert result.success

    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "all_rows_valid")
    assert not check.passed and check.metadata["rejected_rows"].value == 1

    stats_event = instance.get_latest_materialization_event(dg.AssetKey("class_statistics"))
    metadata = stats_event.asset_materialization.metadata
    rows = {r.data["split"]: r.data for r in metadata["table1"].value.records}
    assert rows["all"]["clips"] == 3 and rows["all"]["minimum"] == 1 and rows["all"]["maximum"] == 2
    assert metadata["Kinetics-700: clips per class"].value.startswith("![Kinetics-700 clips per class](data:image/png;base64,")
    report = kinetics_home / "artifacts" / "editions" / "table1.md"
    assert "| Kinetics-700 | train   |       2 |" in report.read_text()


def test_importing_the_code_location_prints_no_beta_warning_for_the_chosen_backfill_policy():
    """Every process that loads the location (demo, code server, each run worker) used to print a dozen."""
    done = subprocess.run([sys.executable, "-W", "default", "-c", "import kinetics_assets.definitions"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert "BetaWarning" not in done.stderr, done.stderr[-2000:]


def test_the_catalog_explains_itself_every_asset_and_check_described_grouped_by_stage_with_kinds_and_owners():
    """The UI showed "No description provided" on the blocking Great Expectations checks, and no owner anywhere."""
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and node.group_name != "default" and node.kinds, key.to_user_string()
        assert node.owners == (["team:benchmark"] if node.group_name == "benchmark" else ["team:curation"]), key
    for check_key in graph.asset_check_keys:
        assert graph.get_check_spec(check_key).description, check_key


def test_every_stored_frame_carries_its_column_schema(tmp_path):
    """The catalog's Columns tab reads `dagster/column_schema` off the materialization the IO manager records."""
    import pandas as pd

    from resources.storage import LocalParquetIOManager

    frame = pd.DataFrame({"label": ["luge"], "youtube_id": ["0wR5jVB-WPk"], "time_start": [0.0], "kept": [True]})
    context = dg.build_output_context(asset_key=dg.AssetKey("clips"))
    LocalParquetIOManager(base_dir=str(tmp_path)).handle_output(context, frame)
    schema = context.get_logged_metadata()["dagster/column_schema"].schema
    assert [(c.name, c.type) for c in schema.columns] == [
        ("label", "string"), ("youtube_id", "string"), ("time_start", "float"), ("kept", "bool")]
    assert "YouTube id" in schema.columns[1].description
