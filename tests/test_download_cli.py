"""`kinetics download CSV --out DIR` on a small sandbox edition.

Protects: clips of every playable row land in the torchvision layout `{out}/{split}/{label}/{clip}.mp4` (test
rows without labels directly under `{out}/test/`), videos gone since the edition are reported by category in
the failure report, invalid rows are reported with file and line, a rerun fetches nothing again, the exit
status says when a rerun could still help, and the platform is chosen through the VideoPlatform classes.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from kinetics_assets.acquisition.download_cli import (
    LEDGER_NAME,
    build_platform,
    download,
    label_folder,
    layout_folder,
)
from kinetics_assets.acquisition.ledger import ClipLedger
from resources.sandbox.edition import write_previous_edition
from resources.sandbox.faults import REQUEST_KINDS
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.truth import GroundTruth
from resources.video_platform import YouTubePlatform

pytestmark = pytest.mark.timeout(180)

app = typer.Typer()
app.command()(download)
WORLD = {"classes": ["stacking dice", "punching person (boxing)"], "relevant_per_class": 5,
         "distractors_per_class": 0, "compilations_per_class": 0, "reupload_rate": 0.0, "max_duration": 30,
         "annual_removal_rate": 0.2}


def test_label_folders_follow_torchvision():
    assert label_folder("punching person (boxing)") == "punching_person_boxing"
    assert label_folder("massaging person's head") == "massaging_persons_head"
    assert layout_folder("train", "stacking dice") == "train/stacking_dice"
    assert layout_folder("test", None) == "test"


def test_platforms_are_built_from_their_resource_classes(tmp_path):
    youtube = build_platform("youtube", {"cookie_file": "/tmp/c.txt", "sleep_interval_s": 2.0}, ["luge"])
    assert isinstance(youtube, YouTubePlatform) and youtube.cookie_file == "/tmp/c.txt"
    sandbox = build_platform("sandbox", {"seed": 3, "cache_dir": str(tmp_path)}, ["luge"])
    assert isinstance(sandbox, SandboxPlatform) and sandbox.classes == ["luge"] and sandbox.seed == 3
    with pytest.raises(typer.BadParameter, match="unknown platform"):
        build_platform("vimeo", {}, [])
    with pytest.raises(typer.BadParameter, match="relevant_per_class"):
        build_platform("sandbox", {"relevant_per_class": -1}, [])
    with pytest.raises(typer.BadParameter, match="js_runtimes"):
        build_platform("youtube", {"js_runtimes": ["rhino"]}, [])


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """A previous edition of the world, a platform clock that has removed its earliest-removed video, and a
    bad row appended to train.csv."""
    cache = tmp_path_factory.getbasetemp() / "download-sandbox"
    probe = SandboxPlatform(**WORLD, cache_dir=str(cache))
    try:
        world = probe.server.world
        folder = tmp_path_factory.mktemp("edition")
        write_previous_edition(world, folder, minimum=3)
        truth = GroundTruth(world)
        rows = pd.concat([frame for name in ("train.csv", "validate.csv", "test.csv")
                          if not (frame := pd.read_csv(folder / name)).empty])
        removals = sorted((truth.removal(v).on, v) for v in rows["youtube_id"] if truth.removal(v))
    finally:
        probe.shutdown()
    assert removals, "with 20 % yearly link-rot some edition video is removed within 10 years"
    clock, removed = removals[0]
    with open(folder / "train.csv", "a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(["stacking dice", "bad id!", 1, 11, "train", 0])
    config = folder / "platform.json"
    config.write_text(json.dumps({**WORLD, "cache_dir": str(cache), "clock": clock.isoformat()}))
    return folder, config, removed, truth


def _download(csv_path: Path, out: Path, config: Path, *extra: str):
    return CliRunner().invoke(app, [str(csv_path), "--out", str(out), "--platform", "sandbox", "--platform-config",
                                    str(config), "--short-side", "96", "--concurrency", "2", *extra])


@pytest.fixture(scope="module")
def downloaded(edition, tmp_path_factory):
    folder, config, _, _ = edition
    out = tmp_path_factory.mktemp("dataset")
    results = {name: _download(folder / f"{name}.csv", out, config) for name in ("train", "validate", "test")}
    return out, results


def test_clips_land_in_the_torchvision_layout(edition, downloaded):
    folder, _, removed, _ = edition
    out, results = downloaded
    assert all(result.exit_code == 0 for result in results.values()), {k: r.output for k, r in results.items()}
    expected = set()
    for name, split in (("train", "train"), ("validate", "val"), ("test", "test")):
        for row in pd.read_csv(folder / f"{name}.csv").itertuples():
            if row.youtube_id in (removed, "bad id!"):
                continue
            label = getattr(row, "label", None)
            where = f"{split}/{label_folder(label)}" if isinstance(label, str) else split
            expected.add(f"{where}/{row.youtube_id}_{row.time_start:06d}_{row.time_end:06d}.mp4")
    assert {str(p.relative_to(out)) for p in out.rglob("*.mp4")} == expected
    assert any(path.startswith("test/") and path.count("/") == 1 for path in expected), "unlabelled test clips"


def test_failures_are_reported_by_category(edition, downloaded):
    _, _, removed, truth = edition
    out, _ = downloaded
    reports = {name: pd.read_csv(out / f"{name}.failures.csv") for name in ("train", "validate", "test")}
    failed = pd.concat([report for report in reports.values() if not report.empty])
    assert list(failed["youtube_id"]) == [removed]
    [row] = failed.itertuples()
    reason = truth.removal(removed).reason
    assert row.category == {"removed_by_user": "removed"}.get(reason, reason) and row.permanent
    assert row.status == "permanent_failure" and row.attempts == 1 and row.source_file.endswith(".csv")
    summaries = pd.concat([summary for name in reports
                           if not (summary := pd.read_csv(out / f"{name}.failure_summary.csv")).empty])
    assert summaries[["category", "clips"]].values.tolist() == [[row.category, 1]]


def test_invalid_rows_are_reported_with_file_and_line(edition, downloaded):
    folder, _, _, _ = edition
    out, results = downloaded
    rejected = pd.read_csv(out / "train.rejected_rows.csv")
    bad = rejected[rejected["reason"].str.contains("invalid youtube_id")]
    assert len(bad) == 1 and bad.iloc[0]["source_file"] == str(folder / "train.csv")
    assert bad.iloc[0]["line"] == len(pd.read_csv(folder / "train.csv")) + 1
    assert "rows rejected" in results["train"].output


def test_a_rerun_fetches_nothing_again(edition, downloaded):
    folder, config, _, _ = edition
    out, _ = downloaded
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    again = _download(folder / "train.csv", out, config)
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == before
    with ClipLedger(out / LEDGER_NAME) as ledger:
        assert all(e.downloads == 1 for e in ledger.entries() if e.status == "done")
    clips = sum(1 for p in before if p.relative_to(out).parts[0] == "train")
    assert f"{clips} of {clips + 1} clips present ({clips} from earlier runs)" in again.output


def test_transient_failures_exit_nonzero_so_a_rerun_is_asked_for(edition, tmp_path):
    folder, config, _, _ = edition
    down = tmp_path / "down.json"
    # Every request faults only without throttled waves: with them, fault_rate 1.0 spreads over the kinds and a
    # share of requests outside a wave is answered normally, so the outcome depended on the wall clock's window.
    down.write_text(json.dumps({**json.loads(config.read_text()), "fault_rate": 1.0, "fault_kinds": list(REQUEST_KINDS)}))
    result = _download(folder / "test.csv", tmp_path / "out", down, "--attempts", "1")
    assert result.exit_code == 1 and "run the same command again" in result.output
    report = pd.read_csv(tmp_path / "out" / "test.failures.csv")
    assert len(report) > 0 and set(report["status"]) == {"transient_failure"} and not report["permanent"].any()


def test_js_runtime_flags_reach_the_platform_resource(edition, tmp_path):
    folder, config, _, _ = edition
    result = _download(folder / "test.csv", tmp_path / "out", config, "--js-runtime", "rhino")
    assert result.exit_code == 2 and "unknown JavaScript runtime 'rhino'" in result.output
    assert not list((tmp_path / "out").rglob("*.mp4"))


def test_repeated_conflicting_and_over_long_rows_are_reported_and_the_rest_fetched(edition, tmp_path):
    """An exact repeat is collapsed (and said so); a row naming the same clip file with another window, and a
    line over the csv module's field limit, are rejected with their line; the other rows are fetched."""
    folder, config, removed, _ = edition
    rows = pd.read_csv(folder / "train.csv")
    first, second = [row for row in rows.itertuples(index=False) if row.youtube_id not in (removed, "bad id!")][:2]

    def line(row, shift=0.0):
        return f"{row.label},{row.youtube_id},{row.time_start + shift:g},{row.time_end + shift:g},train,0\n"

    path = tmp_path / "mixed.csv"
    path.write_text("label,youtube_id,time_start,time_end,split,is_cc\n" + line(first) + line(first)
                    + line(first, 0.3) + f"{first.label},{'x' * 200_000},1,11,train,0\n" + line(second))
    out = tmp_path / "out"
    result = _download(path, out, config)
    assert result.exit_code == 0, result.output
    assert "1 rows repeat an earlier row exactly: collapsed" in result.output
    clip = f"train/{label_folder(first.label)}/{first.youtube_id}_{first.time_start:06d}_{first.time_end:06d}"
    assert {str(p.relative_to(out)) for p in out.rglob("*.mp4")} == {
        f"{clip}.mp4",
        f"train/{label_folder(second.label)}/{second.youtube_id}_{second.time_start:06d}_{second.time_end:06d}.mp4"}
    rejected = pd.read_csv(out / "mixed.rejected_rows.csv")
    assert rejected[["line", "reason"]].values.tolist() == [
        [5, "line longer than 131072 bytes (the csv module's field limit)"],
        [4, f"the same clip {clip} as line 2 ({first.time_start}-{first.time_end} s), which is fetched instead"]]


@pytest.mark.timeout(30)
def test_an_unreadable_csv_is_an_error_naming_it(edition, tmp_path):
    """UTF-16 text and a FIFO are refused at once (exit 2), as is a file without one valid row; never
    "0 of 0 clips present" with exit 0."""
    folder, config, _, _ = edition
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text((folder / "train.csv").read_text(encoding="utf-8"), encoding="utf-16")
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    invalid = tmp_path / "invalid.csv"
    invalid.write_text("label,youtube_id,time_start,time_end,split\nstacking dice,bad id!,1,11,train\n")
    for path, message in ((utf16, "UTF-16 text (byte-order mark ff fe), not UTF-8"),
                          (fifo, "not a regular file (a FIFO)"),
                          (invalid, f"no clip to fetch: none of the 1 data rows of {invalid} is valid")):
        for edition_flag in ([], ["--edition", "Kinetics-700"]):
            result = _download(path, tmp_path / "out", config, *edition_flag)
            assert result.exit_code == 2, result.output
            assert message in result.output and "clips present" not in result.output
    assert not list((tmp_path / "out").rglob("*.mp4"))
