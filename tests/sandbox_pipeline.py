"""The resources a test pipeline run on a sandbox world uses: everything under one root, its own ledgers."""

from pathlib import Path

from kinetics_assets.policy import CurationPolicy
from resources.clip_store import LocalClipStore
from resources.crowd import CrowdInbox
from resources.editions import EditionCatalog, EditionFiles
from resources.ledgers import Ledgers
from resources.rate_limit import RateLimit
from resources.sandbox.geography import SandboxDataApi
from resources.sandbox.resource import SandboxPlatform
from resources.storage import LocalArtifactStore, LocalParquetIOManager

EDITION_FILES = ("train.csv", "validate.csv", "private/test_labelled.csv")


def sandbox_resources(root: Path, platform: SandboxPlatform, edition_dir: Path, policy: CurationPolicy) -> dict:
    """Resources for `dg.materialize` over `platform`, with the previous edition written to `edition_dir`."""
    ledgers = Ledgers(root=str(root / "ledgers"))  # the ledgers of this world only
    files = [str(edition_dir / name) for name in EDITION_FILES]
    return {
        "io_manager": LocalParquetIOManager(base_dir=str(root / "assets")),
        "artifacts": LocalArtifactStore(root=str(root / "artifacts")),
        "policy": policy,
        "video_platform": platform,
        "data_api": SandboxDataApi(platform=platform),
        "ledgers": ledgers,
        "rate_limit": RateLimit(ledgers=ledgers, budget="sandbox", rate_per_s=100, burst=50),
        "clip_store": LocalClipStore(root=str(root / "clips")),
        "editions": EditionCatalog(
            editions=[EditionFiles(name="previous", taxonomy="Kinetics-700", files=files)], current="previous"
        ),
        "crowd_inbox": CrowdInbox(root=str(root / "crowd")),
    }
