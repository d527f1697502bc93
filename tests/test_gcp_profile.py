"""The gcp profile against a real GCS JSON API (gcp-storage-emulator on 127.0.0.1): its storage resources, and a
two-class slice of the pipeline through to a release that lands in the bucket, nothing of it on the local disk
but the download cache."""

from __future__ import annotations

import hashlib
import json

import dagster as dg
import pytest
from google.cloud import storage

from kinetics_assets.definitions import STAGES
from kinetics_assets.materialized import latest
from kinetics_assets.partitions import class_key
from kinetics_assets.voting.assets import vote_inbox_sensor
from resources.gcs_storage import GCSArtifactStore, GCSClipStore, GCSCrowdInbox, GCSParquetIOManager, checked_name
from resources.ledgers import DATABASE_URL_ENV, Ledgers
from resources.profiles import GCP_PROJECT_ENV, GCP_WORLD_ENV, GCS_BUCKET_ENV, gcs_storage, resources_for
from resources.rate_limit import RateLimit
from resources.sandbox.crowd import SandboxCrowd
from resources.sandbox.edition import write_previous_edition
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.world import World
from resources.tpu import GkeTpuJobLauncher, LocalProcessLauncher, PipesGCSAccelerator
from sandbox_pipeline import sandbox_resources
from tests.gcs_emulator import gcs_emulator

CLASSES = ["stacking dice", "luge"]
POLICY = resources_for("sandbox")["policy"]
LOCAL_STORES = ("assets", "artifacts", "clips", "crowd", "ledgers")  # where the sandbox profile keeps what gcp puts in GCS


@pytest.fixture()
def emulator(monkeypatch):
    with gcs_emulator() as running:
        for name, value in {**running.environment(), GCS_BUCKET_ENV: running.bucket,
                            GCP_PROJECT_ENV: "kinetics-test"}.items():
            monkeypatch.setenv(name, value)
        yield running


def _objects(emulator) -> dict[str, storage.Blob]:
    return {blob.name: blob for blob in storage.Client().list_blobs(emulator.bucket)}


def _resolved(resource):
    """The resource with its dg.EnvVar fields read, as Dagster hands it to an asset."""
    with dg.build_resources({"it": resource}) as built:
        return built.it


def test_emulator_round_trips_an_object_through_the_google_client(emulator):
    """The harness every gcp test stands on: google-cloud-storage reaches the emulator, not Google."""
    payload = bytes(range(256)) * 4000  # 1 MB, every byte value
    client = storage.Client()
    client.bucket(emulator.bucket).blob("dir/object with space.bin").upload_from_string(payload)
    assert list(_objects(emulator)) == ["dir/object with space.bin"]
    assert client.bucket(emulator.bucket).blob("dir/object with space.bin").download_as_bytes() == payload


def test_the_gcp_profile_stores_everything_in_the_bucket_from_the_environment(emulator, monkeypatch):
    monkeypatch.setenv(GCP_WORLD_ENV, "sandbox")
    resources = resources_for("gcp")
    assert isinstance(resources["io_manager"], GCSParquetIOManager)
    assert isinstance(resources["artifacts"], GCSArtifactStore)
    assert isinstance(resources["clip_store"], GCSClipStore)
    assert isinstance(resources["crowd_inbox"], GCSCrowdInbox)
    assert isinstance(resources["video_platform"], SandboxPlatform)
    # the ledgers and the rate budget every pod shares: PostgreSQL, its URL (and password) read when a run starts
    assert resources["ledgers"].url == dg.EnvVar(DATABASE_URL_ENV) and resources["ledgers"].root is None
    assert resources["rate_limit"].ledgers is resources["ledgers"]
    # I3D trains as external compute talking to the run through the bucket: stand-in hosts here, a TPU slice there
    assert isinstance(resources["accelerator"], PipesGCSAccelerator)
    assert isinstance(resources["accelerator"].launcher, LocalProcessLauncher)
    # the bucket and project are read when a run starts, never written into the configuration
    assert resources["artifacts"].bucket.name == dg.EnvVar(GCS_BUCKET_ENV)
    assert _resolved(resources["artifacts"]).bucket.name == emulator.bucket
    monkeypatch.delenv(GCP_WORLD_ENV)
    production = resources_for("gcp")
    assert type(production["video_platform"]).__name__ == "YouTubePlatform"
    assert isinstance(production["accelerator"].launcher, GkeTpuJobLauncher)
    assert list(production["accelerator"].host_paths.values()) == ["/gcs/artifacts"]


def test_a_bucket_named_by_an_unread_environment_variable_is_refused(emulator, tmp_path):
    """Outside Dagster a resource's dg.EnvVar is the variable's name: it must not become the bucket's."""
    with pytest.raises(RuntimeError, match="unresolved dg.EnvVar"):
        gcs_storage(tmp_path)["artifacts"].write_text("report.md", "text")
    assert _objects(emulator) == {}


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a/", "a\nb", "é" * 513])
def test_object_names_are_checked_before_any_request(bad):
    with pytest.raises(ValueError, match="object path"):
        checked_name(bad)


def test_a_clip_path_outside_the_store_is_refused_like_the_local_store(emulator, tmp_path):
    clips = _resolved(gcs_storage(tmp_path)["clip_store"])
    for bad in ("../x.mp4", ".staging/x.mp4", "train/../../x.mp4"):
        with pytest.raises(ValueError, match="clip path"):
            clips.exists(bad)
    assert _objects(emulator) == {}


def test_a_clip_is_uploaded_from_staging_and_read_through_the_cache(emulator, tmp_path):
    clips = _resolved(gcs_storage(tmp_path)["clip_store"])
    with clips.staging() as stage:
        (stage / "clip.mp4").write_bytes(b"clip")
        assert clips.put(stage / "clip.mp4", "train/luge/a.mp4") == f"gs://{emulator.bucket}/clips/train/luge/a.mp4"
    assert _objects(emulator)["clips/train/luge/a.mp4"].download_as_bytes() == b"clip"
    assert clips.exists("train/luge/a.mp4") and not clips.exists("train/luge/b.mp4")
    assert clips.path("train/luge/a.mp4").read_bytes() == b"clip"
    other_machine = _resolved(gcs_storage(tmp_path / "other")["clip_store"])  # an empty cache downloads it
    assert other_machine.path("train/luge/a.mp4").read_bytes() == b"clip"
    assert not (tmp_path / "clips").exists() and not any((tmp_path / "cache").rglob("*.partial"))


def test_a_folder_is_uploaded_manifest_and_pointer_last_and_only_what_changed(emulator, tmp_path):
    """(gcp-storage-emulator ignores generation preconditions, so the create-only and lost-update guards are
    GCS's to enforce and are not exercised here.)"""
    artifacts = _resolved(gcs_storage(tmp_path)["artifacts"])
    with artifacts.folder("releases") as releases:
        (releases / "r-1" / "train").mkdir(parents=True)
        (releases / "r-1" / "train" / "clip.mp4").write_bytes(b"clip")
        (releases / "r-1" / "manifest.json").write_text("{}")
        (releases / "r-1" / "train.csv").write_text("rows")
        (releases / "LATEST").write_text("r-1\n")
        (releases / ".r-2.partial-x").mkdir()  # work in progress stays local
        (releases / ".r-2.partial-x" / "train.csv").write_text("half")
    objects = _objects(emulator)
    prefix = "artifacts/releases/"
    assert sorted(objects) == [prefix + name for name in ("LATEST", "r-1/manifest.json", "r-1/train.csv",
                                                          "r-1/train/clip.mp4")]
    order = sorted(objects, key=lambda name: int(objects[name].generation))
    assert order[-2:] == [prefix + "r-1/manifest.json", prefix + "LATEST"]
    elsewhere = _resolved(gcs_storage(tmp_path / "other")["artifacts"])  # another machine's cache
    assert (elsewhere.path("releases") / "r-1" / "train.csv").read_text() == "rows"
    with elsewhere.folder("releases") as releases:
        (releases / "LATEST").write_text("r-2\n")
    after = _objects(emulator)
    assert [name for name in after if after[name].generation != objects[name].generation] == [prefix + "LATEST"]
    assert artifacts.path("releases/LATEST").read_text() == "r-2\n"  # the first cache catches up


def _materialize(assets, resources, instance, selection, partition=None):
    result = dg.materialize(assets, selection=selection, resources=resources, instance=instance,
                            partition_key=partition, raise_on_error=False)
    assert result.success, [(e.check_name, e.metadata) for e in result.get_asset_check_evaluations() if not e.passed]
    return result


def test_a_two_class_slice_on_the_gcp_profile_releases_into_the_bucket(emulator, tmp_path, ledger_server):
    """Edition, clips, replenishment, crowd votes through the inbox sensor, curation and the release, with the
    gcp profile's storage and PostgreSQL ledgers over a small sandbox world: every stored thing is an object under
    its profile name, the release's objects are the files its manifest lists, the ledgers are the database's, and
    KINETICS_HOME holds none of it."""
    platform = SandboxPlatform(classes=CLASSES, relevant_per_class=48, distractors_per_class=10, max_duration=25.0,
                               cache_dir=str(tmp_path / "world"), clock_file=str(tmp_path / "clock"))
    edition_dir = tmp_path / "edition"
    write_previous_edition(World(platform.world_config(), tmp_path / "world"), edition_dir,
                           minimum=POLICY.minimum_clips_per_class, seed=1)
    ledgers = Ledgers(url=ledger_server.create_database("gcp_slice").url)
    resources = {**sandbox_resources(tmp_path, platform, edition_dir, POLICY), **gcs_storage(tmp_path),
                 "ledgers": ledgers, "rate_limit": RateLimit(ledgers=ledgers, budget="sandbox", rate_per_s=100,
                                                             burst=50)}
    instance = dg.DagsterInstance.ephemeral()
    assets = [*dg.load_assets_from_modules(STAGES), *dg.load_asset_checks_from_modules(STAGES)]
    _materialize(assets, resources, instance, ["edition_annotations", "edition_availability", "class_deficits"])
    deficits, metadata = latest(instance, "class_deficits")  # read back through the catalog's gs:// path
    assert metadata["path"].value == f"gs://{emulator.bucket}/assets/class_deficits/_.parquet"
    short = sorted(deficits.loc[deficits["deficit"] > 0, "class_name"])
    assert "stacking dice" in short
    for name in CLASSES:
        _materialize(assets, resources, instance, ["class_clips", "retained_clips"], class_key(name))
    crowd = SandboxCrowd(platform=platform, inbox=_resolved(resources["crowd_inbox"]))
    for name in short:
        _materialize(assets, resources, instance, ["search_queries", "candidate_videos", "candidate_clips",
                                                   "annotation_tasks"], class_key(name))
        crowd.answer_pending(name)
    with dg.build_sensor_context(instance=instance, resources={"crowd_inbox": resources["crowd_inbox"]}) as context:
        requests = vote_inbox_sensor(context)
    assert sorted(r.partition_key for r in requests) == sorted(map(class_key, short))
    for request in requests:
        _materialize(assets, resources, instance, ["rater_votes", "accepted_clips", "accepted_fingerprints"],
                     request.partition_key)
    for name in CLASSES:
        _materialize(assets, resources, instance, ["retained_fingerprints"], class_key(name))
    released = _materialize(assets, resources, instance, ["duplicate_clusters", "final_clips", "edition_splits",
                                                          "edition_release"])

    objects = _objects(emulator)
    generation = {key: int(blob.generation) for key, blob in objects.items()}  # (a download forgets it)
    name = objects["artifacts/releases/LATEST"].download_as_bytes().decode().strip()
    assert name == "previous-replenished-1"
    release = f"artifacts/releases/{name}"
    manifest = json.loads(objects[f"{release}/manifest.json"].download_as_bytes())
    stored = {key.removeprefix(release + "/"): blob for key, blob in objects.items() if key.startswith(release + "/")}
    assert set(stored) == {*manifest["files"], "manifest.json"}
    for file, entry in manifest["files"].items():
        assert hashlib.sha256(stored[file].download_as_bytes()).hexdigest() == entry["sha256"], file
    assert max(generation[f"{release}/{file}"] for file in stored) == generation[f"{release}/manifest.json"]
    assert generation["artifacts/releases/LATEST"] > generation[f"{release}/manifest.json"]
    metadata = released.asset_materializations_for_node("edition_release")[0].metadata
    assert metadata["release"].value == f"gs://{emulator.bucket}/{release}"
    # the release's clips are the store's clips, byte for byte
    clips = {blob.md5_hash for key, blob in objects.items() if key.startswith("clips/")}
    release_clips = [blob for file, blob in stored.items() if file.endswith(".mp4")]
    assert release_clips and {blob.md5_hash for blob in release_clips} <= clips
    for key in short:
        assert f"crowd/tasks/{class_key(key)}/tasks.csv" in objects
        assert any(o.startswith(f"crowd/votes/{class_key(key)}/") for o in objects)
    assert {f"assets/{asset}/{class_key(CLASSES[0])}.parquet" for asset in ("class_clips", "retained_clips")} <= set(objects)
    assert "assets/edition_release/_.parquet" in objects and any(o.startswith("artifacts/dedup/") for o in objects)
    assert any(o.startswith("artifacts/release/data_docs/") for o in objects)
    assert [store for store in LOCAL_STORES if (tmp_path / store).exists()] == []
    with ledgers.clip_ledger() as ledger:  # every clip fetched is the database's, none a local file's
        done = {entry.relpath for entry in ledger.entries() if entry.status == "done"}
    assert done >= {key.removeprefix("clips/") for key in objects if key.startswith("clips/")}

