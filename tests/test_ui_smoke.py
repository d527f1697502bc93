"""The Dagster UI serves the code location: asset keys and the 700 class partitions, over GraphQL."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from kinetics_assets.editions.taxonomy import load_classes
from kinetics_assets.partitions import class_key
from postgres_server import free_port

REPO = Path(__file__).resolve().parents[1]
QUERY = """
{
  assetNodes { assetKey { path } }
  assetNodeOrError(assetKey: {path: ["class_clips"]}) { ... on AssetNode { partitionKeys } }
}
"""


@contextmanager
def serve_webserver(home: Path):
    """dagster-webserver on a free loopback port over this process's instance; yields its URL, stops it after."""
    port = free_port()
    log = open(home / "webserver.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, default signal handlers: stoppable by PID
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (home / "webserver.log").read_text()
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail("dagster-webserver did not answer /server_info within 120 s")
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture()
def webserver(kinetics_home):
    with serve_webserver(kinetics_home) as url:
        yield url


def test_ui_lists_assets_and_700_class_partitions(webserver):
    response = requests.post(f"{webserver}/graphql", json={"query": QUERY}, timeout=60)
    response.raise_for_status()
    data = response.json()["data"]
    keys = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
    assert {"class_taxonomy", "edition_annotations", "class_statistics", "class_clips"} <= keys
    partitions = data["assetNodeOrError"]["partitionKeys"]
    assert partitions == [class_key(name) for name in load_classes("Kinetics-700-2020")]
