"""The ledgers are a Dagster resource: assets read and write the ledgers they are given, nowhere else."""

import dagster as dg
import pandas as pd

from kinetics_assets.acquisition.assets import candidate_clips, candidate_videos, retained_clips
from kinetics_assets.partitions import class_key
from kinetics_assets.voting.assets import annotation_tasks, edition_clips_in_store, rater_votes
from resources.clip_store import LocalClipStore
from resources.crowd import CrowdInbox
from resources.ledgers import Ledgers

CLASS = "luge"
VOTES = b"task_id,rater_id,answer,submitted_at\nt1,r1,yes,2024-05-01T10:00:00Z\nt1,r2,no,2024-05-01T10:05:00Z\n"


def _import_votes(inbox: CrowdInbox, ledgers: Ledgers) -> dg.Output:
    context = dg.build_asset_context(partition_key=class_key(CLASS))
    return rater_votes(context, annotation_tasks=pd.DataFrame({"task_id": ["t1"]}), crowd_inbox=inbox,
                       ledgers=ledgers)


def test_vote_imports_land_in_the_ledgers_resource_given(tmp_path):
    inbox = CrowdInbox(root=str(tmp_path / "crowd"))
    inbox.write_votes(f"{class_key(CLASS)}/batch1.csv", VOTES)
    first = Ledgers(root=str(tmp_path / "first"))
    assert _import_votes(inbox, first).metadata["votes_added"].value == 2
    assert _import_votes(inbox, first).metadata["votes_added"].value == 0  # the same bytes, the same ledger
    assert (tmp_path / "first" / "votes.sqlite").is_file()
    other = Ledgers(root=str(tmp_path / "other"))  # another deployment's ledgers have not seen the file
    assert _import_votes(inbox, other).metadata["votes_added"].value == 2


def test_gold_clips_come_from_the_clip_ledger_given(tmp_path):
    store = LocalClipStore(root=str(tmp_path / "clips"))
    ledgers = Ledgers(root=str(tmp_path / "ledgers"))
    clip_id = "abcdefghijk_000001_000011"
    with ledgers.clip_ledger() as ledger:
        ledger.record(f"edition/luge/{clip_id}", "abcdefghijk", "done", 1, clip_id=clip_id,
                      relpath=f"edition/luge/{clip_id}.mp4", time_start=1.0, time_end=11.0)
    gold = edition_clips_in_store(store, ledgers)
    assert list(gold["youtube_id"]) == ["abcdefghijk"] and list(gold["label"]) == [CLASS]
    assert edition_clips_in_store(store, Ledgers(root=str(tmp_path / "empty"))).empty


def test_every_asset_that_keeps_books_asks_for_the_ledgers_resource():
    for asset in (candidate_videos, retained_clips, candidate_clips, annotation_tasks, rater_votes):
        assert "ledgers" in asset.required_resource_keys, asset.key
