"""The demo on the gcp profile, on local stand-ins for the cloud: `.venv/bin/python deploy/gcp_demo.py`.

The bucket is gcp-storage-emulator (a real GCS JSON API, in memory) and the Dagster instance is deploy/dagster.yaml's
PostgreSQL storage on a throwaway local server, with compute logs on GCS (GCSComputeLogManager); the ledgers and
the rate budget are a database of their own on the same server. Both servers are the tests' harnesses
(tests/gcs_emulator.py, tests/postgres_server.py) and go when the demo ends. The pipeline runs with
KINETICS_PROFILE=gcp and the sandbox's platform, crowd and Data API (KINETICS_GCP_WORLD=sandbox), exactly as
`kinetics demo` runs it; the release lands in the bucket, whose listing is printed at the end. KINETICS_HOME
(default: a fresh folder under /tmp) keeps only the sandbox world and the download cache.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the harnesses live in tests/

from resources.ledgers import DATABASE_URL_ENV  # noqa: E402
from resources.profiles import GCP_PROJECT_ENV, GCP_WORLD_ENV, GCS_BUCKET_ENV  # noqa: E402
from tests.gcs_emulator import gcs_emulator  # noqa: E402
from tests.postgres_server import postgres_server  # noqa: E402

BUCKET = "kinetics-demo"
DEPLOY_INSTANCE = ROOT / "deploy" / "dagster.yaml"
FROM_PRODUCTION = ("storage", "compute_logs", "run_queue", "telemetry")  # not its K8s launcher or run monitoring


def instance_yaml(local_logs: Path) -> str:
    """The production instance's storage and compute logs; runs launched as local processes."""
    production = yaml.safe_load(DEPLOY_INSTANCE.read_text())
    config = {key: production[key] for key in FROM_PRODUCTION}
    config["compute_logs"]["config"]["local_dir"] = str(local_logs)
    config["compute_logs"]["config"]["upload_interval"] = 5
    config["nux"] = {"enabled": False}
    return yaml.safe_dump(config, sort_keys=False)


def main() -> None:
    home = Path(os.environ.get("KINETICS_HOME") or tempfile.mkdtemp(prefix="kinetics-gcp-demo-")).resolve()
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the emulator and the server on the way out
    with gcs_emulator(BUCKET) as gcs, postgres_server() as database:
        os.environ.update({
            **gcs.environment(), "KINETICS_PROFILE": "gcp", GCP_WORLD_ENV: "sandbox", GCS_BUCKET_ENV: gcs.bucket,
            GCP_PROJECT_ENV: "kinetics-demo", "KINETICS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"),
            "DAGSTER_PG_HOST": database.host, "DAGSTER_PG_PORT": str(database.port),
            "DAGSTER_PG_USERNAME": database.username, "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": database.database,
            DATABASE_URL_ENV: database.create_database("ledgers").url,  # the ledgers and rate budget, beside it
        })
        dagster_home = home / "dagster_home"
        dagster_home.mkdir(parents=True, exist_ok=True)
        (dagster_home / "dagster.yaml").write_text(instance_yaml(home / "cache" / "compute_logs"))
        print(f"GCS emulator {gcs.url} (bucket {gcs.bucket}); Dagster instance on PostgreSQL "
              f"{database.host}:{database.port}; KINETICS_HOME {home}")

        from google.cloud import storage

        from kinetics_assets.demo import run_demo

        run_demo()
        objects = sorted(blob.name for blob in storage.Client().list_blobs(gcs.bucket))
        releases = [name for name in objects if name.startswith("artifacts/releases/") and name.endswith("manifest.json")]
        print(f"\nThe bucket gs://{gcs.bucket}: {len(objects)} objects; releases: "
              + ", ".join(name.split("/")[2] for name in releases))
        for top in sorted({name.split("/")[0] for name in objects}):
            print(f"  {top}/: {sum(name.startswith(top + '/') for name in objects)} objects")
    print(f"gcp demo finished in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
