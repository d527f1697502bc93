"""The one place where a profile picks the resources: ``KINETICS_PROFILE`` (default ``sandbox``).

``sandbox`` keeps everything under ``KINETICS_HOME`` (default ``./var``) and talks to the local sandbox platform;
``gcp`` keeps asset values, artefacts, clips and the crowd exchange in a GCS bucket (resources/gcs_storage.py) and
talks to YouTube, or to the sandbox when ``KINETICS_GCP_WORLD=sandbox`` (the demo on the GCS emulator).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from kinetics_assets.data_files import data_path
from kinetics_assets.policy import CurationPolicy
from kinetics_assets.benchmark.assets import BenchmarkSettings
from resources.accelerator import InProcessAccelerator
from resources.clip_store import LocalClipStore
from resources.crowd import CrowdInbox
from resources.editions import EditionCatalog, EditionFiles
from resources.geography import youtube_data_api
from resources.ledgers import Ledgers, postgres_ledgers
from resources.rate_limit import RateLimit
from resources.sandbox.geography import SandboxDataApi
from resources.sandbox.resource import SandboxPlatform
from resources.storage import LocalArtifactStore, LocalParquetIOManager

DEFAULT_PROFILE = "sandbox"
# The sandbox demo replenishes a previous edition emitted by the sandbox world (`kinetics sandbox edition`),
# scaled down from the note's 700 clips per class.
SANDBOX_EDITION = "sandbox-previous"
SANDBOX_MINIMUM = 16
SANDBOX_MAX_CANDIDATES = 16  # per class and round: keeps `make demo` to a few minutes on 2 cores
# Link-rot confirmation interval in the demo (production: a week): under the link-rot sensor's 30-s interval, so
# the tick after the one that first sees a removal confirms it.
SANDBOX_GONE_AFTER_S = 25
DEFAULT_FILES_URL = "http://127.0.0.1:3001"  # beside the UI's 3000


def kinetics_home() -> Path:
    """Root of everything a local run writes (gitignored): asset values, artefacts, the Dagster instance."""
    return Path(os.environ.get("KINETICS_HOME", "var")).resolve()


def files_url() -> str:
    """Where `kinetics ui` serves the artefact folder, so the materializations' links open in the browser."""
    return os.environ.get("KINETICS_FILES_URL", DEFAULT_FILES_URL)


def sandbox_edition_dir() -> Path:
    return kinetics_home() / "editions" / SANDBOX_EDITION


def _sandbox_resources() -> dict:
    home = kinetics_home()
    previous = sandbox_edition_dir()
    ledgers = Ledgers(root=str(home / "ledgers"))
    # A dozen of the note's replenished classes; videos up to 45 s so rendering stays quick. Uploads go on
    # through the years the demo moves the clock on (a platform keeps growing: later rounds find new videos).
    platform = SandboxPlatform(
        cache_dir=str(home / "sandbox"), relevant_per_class=60, distractors_per_class=12, max_duration=45.0,
        future_years=5.0,
        note_lookalikes=True,  # search results as mixed as the note's: its P(voted positive) per class
        clock_file=str(home / "sandbox" / "clock"),  # the demo moves it a year on for every process at once
    )
    return {
        "io_manager": LocalParquetIOManager(base_dir=str(home / "assets")),
        "artifacts": LocalArtifactStore(root=str(home / "artifacts"), files_url=files_url()),
        "policy": CurationPolicy(
            minimum_clips_per_class=SANDBOX_MINIMUM,
            max_candidates_per_class=SANDBOX_MAX_CANDIDATES,
            val_clips_per_class=2,  # the note's 50 and 100, scaled like the minimum
            test_clips_per_class=3,
            split_tolerance=0.5,
            # The demo jumps the platform's clock years ahead at once; the history's times are our wall clock, so
            # a removal is confirmed by a second answer a tick later instead of production's week.
            gone_after_s=SANDBOX_GONE_AFTER_S,
            link_rot_batch=300,  # the whole demo release in one tick (a few seconds at the sandbox's budget)
        ),
        "video_platform": platform,
        # Upload countries from the Data API the sandbox serves (production: youtube_data_api(), key from env).
        "data_api": SandboxDataApi(platform=platform),
        "ledgers": ledgers,
        # A local server only needs a cap; YouTube's budget is RateLimit's default.
        "rate_limit": RateLimit(ledgers=ledgers, budget="sandbox", rate_per_s=50, burst=20),
        "clip_store": LocalClipStore(root=str(home / "clips")),
        # The I3D benchmark at CPU scale: the tiny model on 16 frames of 24 px, its examples per class scaled like
        # the minimum (100 -> 2, ..., 600 -> 14 clips of a class), trained in the run's process.
        "benchmark": BenchmarkSettings(model="tiny", inputs="demo", examples_scale=SANDBOX_MINIMUM / 700,
                                       compilation_cache=str(home / "cache" / "jax")),
        "accelerator": InProcessAccelerator(),
        "crowd_inbox": CrowdInbox(root=str(home / "crowd")),
        "editions": EditionCatalog(
            editions=[
                EditionFiles(name="Kinetics-400", taxonomy="Kinetics-400", files=[str(data_path("kinetics400_val.csv"))]),
                EditionFiles(
                    name=SANDBOX_EDITION,
                    taxonomy="Kinetics-700",
                    # The labelled private copy of test stands in for the public test.csv, which has no labels.
                    files=[str(previous / name) for name in ("train.csv", "validate.csv", "private/test_labelled.csv")],
                ),
            ],
            current=SANDBOX_EDITION,
            how_to_create=f"make demo writes it, or: kinetics sandbox edition --out {previous}",
        ),
    }


# The gcp profile: everything the pipeline stores goes to this bucket (through dagster-gcp), read from the
# environment when a run starts; GCS credentials are the environment's too (Application Default Credentials: a
# pod's Workload Identity, GOOGLE_APPLICATION_CREDENTIALS; none against STORAGE_EMULATOR_HOST).
GCS_BUCKET_ENV = "KINETICS_GCS_BUCKET"
GCP_PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"
# "sandbox": the gcp profile talks to the sandbox platform, crowd and Data API (the demo on the GCS emulator);
# anything else (the default) to YouTube.
GCP_WORLD_ENV = "KINETICS_GCP_WORLD"
# Production's previous edition: the folder holding the official train.csv, validate.csv and test.csv.
EDITION_DIR_ENV = "KINETICS_EDITION_DIR"
PRODUCTION_EDITION = "Kinetics-700-2020"
TPU_IMAGE_ENV = "KINETICS_TPU_IMAGE"  # the training image (deploy/Dockerfile's with libtpu: deploy/README.md)
# Secrets of the production platform, passed as dg.EnvVar when set (their values never enter config or logs).
PLATFORM_SECRET_ENVS = {"cookie_file": "KINETICS_COOKIE_FILE", "proxy": "KINETICS_PROXY"}


def gcp_ledgers() -> Ledgers:
    """The gcp profile's ledgers and the shared rate budget: the production PostgreSQL database named by
    $KINETICS_LEDGER_DATABASE_URL, which every run pod of the deployment reaches (a local SQLite file would be one
    pod's)."""
    return postgres_ledgers()


def gcp_accelerator(home: Path, sandbox_world: bool):
    """I3D training as external compute that shares only the bucket with the run (Dagster Pipes over GCS): a GKE
    TPU-slice Job on YouTube's world, whose hosts see the artefacts under the bucket's mount (/gcs/artifacts) where
    the run has its local copy; local stand-in hosts on the sandbox world (the gcp demo), on this machine's disk."""
    from dagster_gcp import GCSResource

    from resources.tpu import GkeTpuJobLauncher, LocalProcessLauncher, PipesGCSAccelerator

    pipes = {"gcs": GCSResource(project=dg.EnvVar(GCP_PROJECT_ENV)), "bucket": dg.EnvVar(GCS_BUCKET_ENV)}
    if sandbox_world:
        return PipesGCSAccelerator(**pipes, launcher=LocalProcessLauncher())
    local_artifacts = home / "cache" / "gcs" / os.environ.get(GCS_BUCKET_ENV, "") / "artifacts"  # GCSBucket's cache
    return PipesGCSAccelerator(**pipes, launcher=GkeTpuJobLauncher(image=dg.EnvVar(TPU_IMAGE_ENV)),
                               host_paths={str(local_artifacts): "/gcs/artifacts"})


def gcs_storage(home: Path) -> dict:
    """Asset values, artefacts, clips and the crowd exchange in the bucket; local files only as a download cache."""
    from dagster_gcp import GCSResource

    from resources.gcs_storage import GCSArtifactStore, GCSBucket, GCSClipStore, GCSCrowdInbox, GCSParquetIOManager

    bucket = GCSBucket(gcs=GCSResource(project=dg.EnvVar(GCP_PROJECT_ENV)), name=dg.EnvVar(GCS_BUCKET_ENV),
                       cache_dir=str(home / "cache" / "gcs"))
    return {
        "io_manager": GCSParquetIOManager(bucket=bucket),
        "artifacts": GCSArtifactStore(bucket=bucket),
        "clip_store": GCSClipStore(bucket=bucket),
        "crowd_inbox": GCSCrowdInbox(bucket=bucket),
    }


def _youtube_world(home: Path) -> dict:
    """YouTube, the Data API and the note's thresholds; the edition replenished is the official download."""
    from resources.video_platform import YouTubePlatform

    ledgers = gcp_ledgers()
    secrets = {field: dg.EnvVar(name) for field, name in PLATFORM_SECRET_ENVS.items() if name in os.environ}
    edition = Path(os.environ.get(EDITION_DIR_ENV, home / "editions" / PRODUCTION_EDITION))
    return {
        "policy": CurationPolicy(),
        "video_platform": YouTubePlatform(**secrets),
        "data_api": youtube_data_api(),
        "ledgers": ledgers,
        "rate_limit": RateLimit(ledgers=ledgers),
        "benchmark": BenchmarkSettings(compilation_cache=str(home / "cache" / "jax")),
        "accelerator": gcp_accelerator(home, sandbox_world=False),
        "editions": EditionCatalog(
            editions=[EditionFiles(name=PRODUCTION_EDITION, taxonomy=PRODUCTION_EDITION,
                                   files=[str(edition / name) for name in ("train.csv", "validate.csv", "test.csv")])],
            current=PRODUCTION_EDITION,
            how_to_create=f"download the edition's CSVs into a folder and set {EDITION_DIR_ENV} to it",
        ),
    }


def _gcp_resources() -> dict:
    """Storage on GCS; the platform, crowd and Data API of the sandbox when KINETICS_GCP_WORLD=sandbox, else
    YouTube's. The ledgers and rate budget on PostgreSQL, I3D training through Pipes over the bucket, either way."""
    home = kinetics_home()
    if os.environ.get(GCP_WORLD_ENV) != "sandbox":
        return {**_youtube_world(home), **gcs_storage(home)}
    ledgers, sandbox = gcp_ledgers(), _sandbox_resources()
    budget = sandbox["rate_limit"]
    return {**sandbox, **gcs_storage(home), "ledgers": ledgers,
            "rate_limit": RateLimit(ledgers=ledgers, budget=budget.budget, rate_per_s=budget.rate_per_s,
                                    burst=budget.burst),
            "accelerator": gcp_accelerator(home, sandbox_world=True)}


PROFILES = {"sandbox": _sandbox_resources, "gcp": _gcp_resources}


def active_profile() -> str:
    return os.environ.get("KINETICS_PROFILE", DEFAULT_PROFILE)


def resources_for(profile: str | None = None) -> dict:
    """The Dagster resources of ``profile`` (the active one by default)."""
    name = profile or active_profile()
    if name not in PROFILES:
        raise ValueError(f"unknown KINETICS_PROFILE {name!r}; known profiles: {', '.join(PROFILES)}")
    return PROFILES[name]()
