"""The production instance storage (deploy/dagster.yaml: PostgreSQL, its run queue and pools) on a real server.

Protects: with deploy/dagster.yaml's `storage`, `concurrency` (run limits, pools) and `run_queue` sections (its
environment variables pointed at a local PostgreSQL started by tests/postgres_server.py), a partitioned
materialization of a per-class asset is recorded in PostgreSQL and seen by a second instance; a backfill over
two classes runs through the daemon's backfill and run-queue iterations, one run per class, in run workers that
reach the same database; a sensor tick records its runs and cursor there and a second tick launches nothing.
The embedded default (`ensure_dagster_home`) stays SQLite.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.storage.runs import SqliteRunStorage
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from kinetics_assets.acquisition.assets import search_queries
from kinetics_assets.editions.taxonomy import load_classes
from kinetics_assets.instance import ensure_dagster_home
from kinetics_assets.partitions import class_key
from kinetics_assets.sensor_ticks import run_queued, tick_sensors, workspace_context
from postgres_server import postgres_server
from test_backfills import assert_backfill_runs_each_class_once
from test_demo_sensors import INBOX_WORKSPACE

pytestmark = pytest.mark.timeout(600)
DEPLOY_INSTANCE = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"
# What the production instance shares with this one; the K8s run launcher and GCS compute logs need a cluster
# and a bucket (tests/test_deploy.py loads their config).
SECTIONS = ("storage", "concurrency", "run_queue")
LOGGER = logging.getLogger("test_postgres_instance")


@pytest.fixture(scope="module")
def server():
    with postgres_server() as running:
        yield running


@pytest.fixture()
def instance(server, request, tmp_path, monkeypatch):
    """An instance from deploy/dagster.yaml's sections on a fresh database; code servers and run workers inherit
    the environment, so they reach the same database."""
    database = server.create_database(request.node.name.replace("test_", "db_", 1)[:60])
    for name, value in {"DAGSTER_PG_HOST": database.host, "DAGSTER_PG_PORT": str(database.port),
                        "DAGSTER_PG_USERNAME": database.username, "DAGSTER_PG_PASSWORD": "",
                        "DAGSTER_PG_DB": database.database}.items():
        monkeypatch.setenv(name, value)
    production = yaml.safe_load(DEPLOY_INSTANCE.read_text())
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({**{key: production[key] for key in SECTIONS},
                                                       "telemetry": {"enabled": False}}))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as opened:
        assert isinstance(opened.run_storage, PostgresRunStorage)
        assert isinstance(opened.event_log_storage, PostgresEventLogStorage)
        opened.test_database = database  # for the tests that read the tables themselves
        yield opened


def test_the_embedded_default_stays_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("KINETICS_HOME", str(tmp_path))
    with dg.DagsterInstance.from_config(str(ensure_dagster_home())) as embedded:
        assert isinstance(embedded.run_storage, SqliteRunStorage)


def _rows(database, sql: str) -> list[tuple]:
    con = psycopg2.connect(database.url)
    try:
        with con.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        con.close()


def test_a_partitioned_materialization_is_stored_in_postgres(instance):
    key = class_key(load_classes("Kinetics-700-2020")[0])
    result = dg.materialize([search_queries], partition_key=key, instance=instance)
    assert result.success
    with dg.DagsterInstance.from_config(instance.root_directory) as second:  # another process's view
        assert second.get_materialized_partitions(dg.AssetKey("search_queries")) == {key}
    stored = _rows(instance.test_database, "SELECT partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
    assert stored == [(key,)]


def test_a_backfill_runs_one_run_per_class_on_postgres(instance):
    keys = [class_key(name) for name in load_classes("Kinetics-700-2020")[2:4]]
    assert_backfill_runs_each_class_once(instance, keys, "search_queries")


def test_a_sensor_tick_keeps_its_runs_and_cursor_in_postgres(instance, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("TEST_INBOX", str(inbox))
    for name in ("a", "b"):
        (inbox / name).write_text("")
    with workspace_context(instance, INBOX_WORKSPACE) as context:
        tick = tick_sensors(context, LOGGER)["inbox_sensor"]
        assert tick.status == TickStatus.SUCCESS and sorted(tick.run_keys) == ["a", "b"]
        run_queued(context, list(tick.run_ids))
        with dg.DagsterInstance.from_config(instance.root_directory) as second:
            [state] = [s for s in second.all_instigator_state() if s.name == "inbox_sensor"]
            assert state.instigator_data.cursor == "b"
            assert {run.tags["dagster/run_key"] for run in second.get_runs()} == {"a", "b"}
        time.sleep(1.1)  # the test sensor's minimum interval
        again = tick_sensors(context, LOGGER)["inbox_sensor"]
        assert again.status == TickStatus.SKIPPED and not again.run_ids
        assert instance.get_runs_count() == 2, "the second tick launched a run the first one had launched"
