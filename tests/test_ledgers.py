"""The ledgers are a Dagster resource: assets read and write the ledgers they are given, nowhere else; on a
folder of SQLite files by default, or on the production PostgreSQL database named by the environment."""

import socket
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg2
import pytest

from kinetics_assets.acquisition.assets import candidate_clips, candidate_videos, retained_clips
from kinetics_assets.partitions import class_key
from kinetics_assets.voting.assets import annotation_tasks, edition_clips_in_store, rater_votes
from resources.clip_store import LocalClipStore
from resources.crowd import CrowdInbox
from resources.ledgers import DATABASE_URL_ENV, Ledgers, postgres_ledgers

CLASS = "luge"
VOTES = b"task_id,rater_id,answer,submitted_at\nt1,r1,yes,2024-05-01T10:00:00Z\nt1,r2,no,2024-05-01T10:05:00Z\n"


def _import_votes(inbox: CrowdInbox, ledgers: Ledgers) -> dg.Output:
    context = dg.build_asset_context(partition_key=class_key(CLASS))
    return rater_votes(context, annotation_tasks=pd.DataFrame({"task_id": ["t1"]}), crowd_inbox=inbox,
                       ledgers=ledgers)


def test_vote_imports_land_in_the_ledgers_resource_given(tmp_path, ledger_backend):
    inbox = CrowdInbox(root=str(tmp_path / "crowd"))
    inbox.write_votes(f"{class_key(CLASS)}/batch1.csv", VOTES)
    first = ledger_backend.ledgers()
    assert _import_votes(inbox, first).metadata["votes_added"].value == 2
    assert _import_votes(inbox, first).metadata["votes_added"].value == 0  # the same bytes, the same ledger
    if first.root is not None:
        assert (Path(first.root) / "votes.sqlite").is_file()
    other = ledger_backend.ledgers()  # another deployment's ledgers have not seen the file
    assert _import_votes(inbox, other).metadata["votes_added"].value == 2


def test_gold_clips_come_from_the_clip_ledger_given(tmp_path, ledger_backend):
    store = LocalClipStore(root=str(tmp_path / "clips"))
    ledgers = ledger_backend.ledgers()
    clip_id = "abcdefghijk_000001_000011"
    with ledgers.clip_ledger() as ledger:
        ledger.record(f"edition/luge/{clip_id}", "abcdefghijk", "done", 1, clip_id=clip_id,
                      relpath=f"edition/luge/{clip_id}.mp4", time_start=1.0, time_end=11.0)
    gold = edition_clips_in_store(store, ledgers)
    assert list(gold["youtube_id"]) == ["abcdefghijk"] and list(gold["label"]) == [CLASS]
    assert edition_clips_in_store(store, ledger_backend.ledgers()).empty


def test_every_asset_that_keeps_books_asks_for_the_ledgers_resource():
    for asset in (candidate_videos, retained_clips, candidate_clips, annotation_tasks, rater_votes):
        assert "ledgers" in asset.required_resource_keys, asset.key


def test_the_ledgers_live_in_exactly_one_place(tmp_path):
    with pytest.raises(ValueError, match="exactly one of root .* or url"):
        Ledgers()
    with pytest.raises(ValueError, match="exactly one of root .* or url"):
        Ledgers(root=str(tmp_path), url="postgresql://127.0.0.1/ledgers")


PASSWORD = "ledger-pw-that-must-not-leak"


def test_the_production_ledgers_come_from_the_environment_and_the_password_stays_out_of_the_run(
        tmp_path, ledger_server, monkeypatch):
    database = ledger_server.create_database("ledgers_from_env")
    # The test server trusts 127.0.0.1, so it takes any password: the URL carries one as production's does.
    url = f"postgresql://{database.username}:{PASSWORD}@{database.host}:{database.port}/{database.database}"
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    inbox = CrowdInbox(root=str(tmp_path / "crowd"))
    inbox.write_votes(f"{class_key(CLASS)}/batch1.csv", VOTES)

    @dg.asset(name="annotation_tasks", partitions_def=rater_votes.partitions_def)
    def tasks() -> pd.DataFrame:
        return pd.DataFrame({"task_id": ["t1"]})

    instance = dg.DagsterInstance.ephemeral()
    resources = {"ledgers": postgres_ledgers(), "crowd_inbox": inbox}
    for added in (2, 0):  # a rerun imports nothing twice
        result = dg.materialize([tasks, rater_votes], partition_key=class_key(CLASS), resources=resources,
                                instance=instance)
        [materialization] = result.asset_materializations_for_node("rater_votes")
        assert materialization.metadata["votes_added"].value == added
        run = instance.get_run_by_id(result.run_id)
        assert PASSWORD not in repr(run.run_config) + repr(instance.all_logs(result.run_id))
    with psycopg2.connect(url) as con, con.cursor() as cursor:
        cursor.execute("SELECT rater_id FROM votes ORDER BY rowid")
        assert cursor.fetchall() == [("r1",), ("r2",)]  # in the database the environment named
    assert PASSWORD not in repr(postgres_ledgers()) + repr(Ledgers(url=url).vote_ledger().where)


def test_an_unreachable_ledger_database_is_an_error_naming_the_server_not_the_password():
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        unused_port = probe.getsockname()[1]
    ledgers = Ledgers(url=f"postgresql://kinetics:{PASSWORD}@127.0.0.1:{unused_port}/ledgers")
    with pytest.raises(psycopg2.OperationalError) as failed:
        ledgers.clip_ledger()
    assert "127.0.0.1" in str(failed.value) and PASSWORD not in str(failed.value)


def test_production_ledgers_without_their_environment_variable_stop_the_run_naming_it(monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    with pytest.raises(dg.DagsterInvalidConfigError, match=DATABASE_URL_ENV):
        with dg.build_resources({"ledgers": postgres_ledgers()}):
            pass
