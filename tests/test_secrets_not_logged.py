"""Secrets given through the environment stay out of everything a Dagster run keeps.

Protects: a run whose resources take the YouTube Data API key, the platform's cookie file and a proxy URL with a
password from the environment (`dg.EnvVar`) uses them (the sandbox's Data API accepts only that key; every
platform request goes through a proxy that accepts only that password and carries the cookie) and leaves none of
them, nor the cookie file's path or content, in the run's record, its job snapshot (the config defaults the UI
shows), its event log or its compute logs, nor in any file of the instance. The same grep finds a secret given
as a plain value, so it can fail.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import threading
import urllib.request
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._serdes import serialize_value

from kinetics_assets.acquisition.assets import _search_function
from kinetics_assets.release.assets import edition_geography
from resources.geography import API_KEY_ENV, YouTubeDataApi
from resources.ledgers import Ledgers
from resources.rate_limit import RateLimit
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.server import SandboxServer
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES, World, WorldConfig
from resources.video_platform import VideoPlatform

pytestmark = pytest.mark.timeout(180)
API_KEY = "AIzaSy-sentinel-api-key-5b1f0c"
PROXY_PASSWORD = "sentinel-proxy-password-9e2d"
COOKIE_VALUE = "sentinel-cookie-value-41aa"
COOKIE_DIR = "sentinel-cookie-folder-7c3e"
COOKIE_ENV, PROXY_ENV = "KINETICS_COOKIE_FILE", "KINETICS_PROXY"
WORLD = WorldConfig(classes=DEMO_CLASSES[:1], relevant_per_class=8, distractors_per_class=2, max_duration=10.0)


class AuthenticatingProxy(http.server.ThreadingHTTPServer):
    """A forward HTTP proxy on 127.0.0.1 that relays only requests carrying `password`, noting their cookies."""

    def __init__(self, password: str):
        self.expected = "Basic " + base64.b64encode(f"kinetics:{password}".encode()).decode()
        self.relayed: list[str] = []  # each relayed request's Cookie header
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Proxy-Authorization") != self.server.expected:
            self.send_error(407, "proxy authentication required")
            return
        self.server.relayed.append(self.headers.get("Cookie", ""))
        headers = {key: value for key, value in self.headers.items()
                   if key.lower() not in ("proxy-authorization", "proxy-connection", "connection")}
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with direct.open(urllib.request.Request(self.path, headers=headers), timeout=30) as answer:
                status, body, reply = answer.status, answer.read(), answer.headers
        except urllib.error.HTTPError as error:
            status, body, reply = error.code, error.read(), error.headers
        self.send_response(status)
        for key, value in reply.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@dg.asset
def platform_search(video_platform: VideoPlatform, rate_limit: RateLimit) -> dg.MaterializeResult:
    """The pipeline's own search path (candidate_videos' `_search_function`) through the configured platform."""
    entries = _search_function(video_platform, rate_limit)(DEMO_CLASSES[0], 5)
    return dg.MaterializeResult(metadata={"results": len(entries)})


def _run_record(instance: dg.DagsterInstance, run_id: str) -> str:
    """What the instance keeps about the run, decoded: the run (its config and tags), its job and execution plan
    snapshots (config defaults included, stored compressed) and every event."""
    run = instance.get_run_by_id(run_id)
    parts = [serialize_value(run), serialize_value(instance.get_job_snapshot(run.job_snapshot_id)),
             serialize_value(instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id))]
    return "\n".join(parts + [serialize_value(record) for record in instance.all_logs(run_id)])


def _instance_files(root: Path) -> bytes:
    """Every file of the instance: its databases and the compute logs (each step's stdout and stderr)."""
    return b"\n".join(path.read_bytes() for path in root.rglob("*") if path.is_file())


def _leaks(text: str, data: bytes, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text or value.encode() in data]


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("secrets")
    cookie_file = root / COOKIE_DIR / "cookies.txt"
    cookie_file.parent.mkdir()
    cookie_file.write_text("# Netscape HTTP Cookie File\n"
                           f"127.0.0.1\tFALSE\t/\tFALSE\t2147483647\tsession\t{COOKIE_VALUE}\n")
    proxy = AuthenticatingProxy(PROXY_PASSWORD)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    world = World(WORLD, root / "world")
    ids = GroundTruth(world).ids()[:20]

    @dg.asset
    def edition_splits() -> pd.DataFrame:
        return pd.DataFrame({"youtube_id": ids})

    secrets = {"api key": API_KEY, "proxy password": PROXY_PASSWORD, "cookie": COOKIE_VALUE,
               "cookie file path": str(cookie_file)}
    ledgers = Ledgers(root=str(root / "ledgers"))
    instance_root = root / "instance"
    instance_root.mkdir()
    try:
        with SandboxServer(world, datetime.date(2021, 1, 1)) as api_server, \
                dg.DagsterInstance.local_temp(str(instance_root)) as instance, \
                pytest.MonkeyPatch.context() as env:
            api_server.data_api.api_key = API_KEY
            env.setenv(API_KEY_ENV, API_KEY)
            env.setenv(COOKIE_ENV, str(cookie_file))
            env.setenv(PROXY_ENV, proxy.url.replace("http://", f"http://kinetics:{PROXY_PASSWORD}@"))
            result = dg.materialize(
                [edition_splits, edition_geography, platform_search], instance=instance,
                resources={
                    "data_api": YouTubeDataApi(api_key=dg.EnvVar(API_KEY_ENV), api_endpoint=f"{api_server.base_url}/"),
                    "video_platform": SandboxPlatform(cache_dir=str(root / "world"), classes=list(WORLD.classes),
                                                      relevant_per_class=WORLD.relevant_per_class,
                                                      distractors_per_class=WORLD.distractors_per_class,
                                                      max_duration=WORLD.max_duration,
                                                      cookie_file=dg.EnvVar(COOKIE_ENV), proxy=dg.EnvVar(PROXY_ENV)),
                    "rate_limit": RateLimit(ledgers=ledgers, budget="t", rate_per_s=100),
                })
            assert result.success
            yield result, instance, instance_root, proxy, secrets
    finally:
        proxy.shutdown()


def test_the_run_used_every_secret(secret_run):
    result, _, _, proxy, _ = secret_run
    geography = result.output_for_node("edition_geography")
    assert geography["clips"].sum() > 0, "the Data API accepted the key from the environment"
    search = result.asset_materializations_for_node("platform_search")[0].metadata
    assert search["results"].value > 0
    assert proxy.relayed and all(f"session={COOKIE_VALUE}" in cookie for cookie in proxy.relayed), \
        "every platform request went through the password-protected proxy with the cookie file's cookie"


def test_no_secret_is_in_the_run_s_record_event_log_compute_logs_or_instance_files(secret_run):
    result, instance, instance_root, _, secrets = secret_run
    record = _run_record(instance, result.run_id)
    assert "KINETICS_PROXY" in record and API_KEY_ENV in record, "the record names the variables, not their values"
    assert any(entry.user_message for entry in instance.all_logs(result.run_id))
    assert [path for path in instance_root.rglob("*.err") if path.stat().st_size], "compute logs were captured"
    assert _leaks(record, _instance_files(instance_root), secrets) == []


def test_the_grep_finds_a_secret_given_as_a_plain_value(tmp_path):
    @dg.asset
    def configured(data_api: YouTubeDataApi) -> None:
        pass

    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        result = dg.materialize([configured], instance=instance,
                                resources={"data_api": YouTubeDataApi(api_key=API_KEY)})
        assert _leaks(_run_record(instance, result.run_id), b"", {"api key": API_KEY}) == ["api key"]
