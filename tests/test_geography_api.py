"""Upload countries through the YouTube Data API v3 client against the sandbox's API on 127.0.0.1.

These protect what Table 3 relies on in production, where yt-dlp has no country: 50 ids per request (the API's
maximum), each within the rate budget; a recording location pin placed in its country, else the channel's stated
country, else "unknown" (never a crash); a refused key or spent quota stopping with YouTube's reason and never
the key; a 429 retried after a backoff, a permanent refusal not retried.
"""

from __future__ import annotations

import datetime
import json
import logging
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import httplib2
import pandas as pd
import pytest
from googleapiclient.http import HttpMockSequence

from kinetics_assets.release.assets import edition_geography
from resources.geography import CHANNEL, RECORDING_LOCATION, UNKNOWN, DataApiError, YouTubeDataApi
from resources.ledgers import Ledgers
from resources.rate_limit import RateLimit
from resources.sandbox.data_api import SANDBOX_API_KEY
from resources.sandbox.server import SandboxServer
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES, World, WorldConfig

pytestmark = pytest.mark.timeout(120)
ABSENT = "zzzzzzzzzzz"  # a well-formed id the platform never had


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    config = WorldConfig(classes=DEMO_CLASSES[:2], relevant_per_class=60, distractors_per_class=5, max_duration=10.0)
    return World(config, tmp_path_factory.mktemp("world"))


@pytest.fixture
def server(world):
    with SandboxServer(world, datetime.date(2021, 1, 1)) as running:
        yield running


class RecordingHttp(httplib2.Http):
    """httplib2 that keeps every request's path, query and headers."""

    def __init__(self):
        super().__init__(timeout=10)
        self.sent = []

    def request(self, uri, method="GET", body=None, headers=None, **kwargs):
        parts = urlsplit(uri)
        self.sent.append((parts.path, parse_qs(parts.query), dict(headers or {})))
        return super().request(uri, method, body, headers, **kwargs)


def _api(server, key=SANDBOX_API_KEY, **settings) -> YouTubeDataApi:
    return YouTubeDataApi(api_key=key, api_endpoint=f"{server.base_url}/", **settings)


def _countries(api, ids, http=None, sleep=lambda s: None):
    tokens = []
    frame = api.countries(ids, acquire=lambda: tokens.append(1), sleep=sleep, client=api.client(http=http))
    return frame.set_index("youtube_id"), len(tokens)


def test_120_ids_take_three_video_requests_of_at_most_50_each_within_the_budget(server, world):
    ids = GroundTruth(world).ids()[:120]
    http = RecordingHttp()
    frame, tokens = _countries(_api(server), ids, http)
    video_calls = [query["id"][0].split(",") for path, query, _ in http.sent if path == "/youtube/v3/videos"]
    assert [len(batch) for batch in video_calls] == [50, 50, 20]
    assert sum(video_calls, []) == ids
    channel_calls = [query["id"][0].split(",") for path, query, _ in http.sent if path == "/youtube/v3/channels"]
    assert channel_calls and all(len(batch) <= 50 for batch in channel_calls)
    assert tokens == len(http.sent), "every request takes a token of the rate budget"
    assert list(frame.index) == ids


def test_a_pin_gives_its_country_else_the_channels_and_both_match_the_upload_country(server, world):
    truth = GroundTruth(world)
    ids = truth.ids()
    frame, _ = _countries(_api(server), ids)
    sources = set(frame["source"])
    assert {RECORDING_LOCATION, CHANNEL, UNKNOWN} <= sources
    known = frame[frame["source"] != UNKNOWN]
    assert all(country == truth.country(video) for video, country in known["country"].items())
    # A video without a pin whose channel states its country is known through the channel.
    assert (frame["source"] == CHANNEL).sum() > (frame["source"] == RECORDING_LOCATION).sum() > 0


def test_a_video_with_no_country_anywhere_is_unknown_not_an_error(server, world):
    truth = GroundTruth(world)
    no_country = [video for video in truth.ids() if truth.country(video) is None]
    assert no_country, "the world has uploads without a country"
    frame, _ = _countries(_api(server), [*no_country, ABSENT])
    assert set(frame["source"]) == {UNKNOWN}
    assert frame["country"].isna().all()


def test_an_invalid_id_is_refused_before_any_request(server):
    http = RecordingHttp()
    with pytest.raises(ValueError, match="invalid video id"):
        _countries(_api(server), ["ok_but_bad&key=x"], http)
    assert http.sent == []


def test_a_bad_key_stops_with_youtubes_reason_and_the_key_is_never_shown(server, caplog):
    secret = "AIzaSy-this-key-must-not-leak"
    http = RecordingHttp()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DataApiError) as refused:
        _countries(_api(server, key=secret), [ABSENT], http)
    message = str(refused.value)
    assert "API key not valid" in message and "YOUTUBE_API_KEY" in message
    assert secret not in message and secret not in caplog.text
    assert len(http.sent) == 1, "a refused key is not retried"
    path, query, headers = http.sent[0]
    assert "key" not in query and secret not in path, "the key travels in a header, never in the URL"
    assert headers["x-goog-api-key"] == secret


def test_a_spent_quota_stops_with_youtubes_reason(server):
    server.data_api.quota = 0
    with pytest.raises(DataApiError, match="quotaExceeded"):
        _countries(_api(server), [ABSENT])


def _answer(status: int, body: dict) -> tuple[dict, str]:
    return {"status": str(status)}, json.dumps(body)


RATE_LIMITED = _answer(429, {"error": {"code": 429, "message": "Too many requests.",
                                       "errors": [{"reason": "rateLimitExceeded", "message": "Too many requests."}]}})
VIDEO = {"items": [{"id": ABSENT, "snippet": {"channelId": "UC_channel"}, "recordingDetails": {}}]}
CHANNELS = {"items": [{"id": "UC_channel", "snippet": {"country": "MX"}}]}


def test_a_429_is_retried_after_a_backoff_with_jitter_and_then_succeeds():
    api = YouTubeDataApi(api_key="k", backoff_s=2.0)
    http = HttpMockSequence([RATE_LIMITED, _answer(200, VIDEO), _answer(200, CHANNELS)])
    slept, tokens = [], []
    frame = api.countries([ABSENT], acquire=lambda: tokens.append(1), sleep=slept.append, client=api.client(http))
    assert frame.to_dict("records") == [{"youtube_id": ABSENT, "country": "MX", "source": CHANNEL}]
    assert len(slept) == 1 and 2.0 <= slept[0] <= 4.0
    assert len(tokens) == 3, "the retry takes its own token"


def test_transient_failures_are_retried_a_bounded_number_of_times():
    api = YouTubeDataApi(api_key="k", attempts=3)
    http = HttpMockSequence([_answer(503, {})] * 3)
    slept = []
    with pytest.raises(DataApiError, match="after 3 tries.*HTTP 503"):
        api.countries([ABSENT], acquire=lambda: None, sleep=slept.append, client=api.client(http))
    assert len(slept) == 2 and api.backoff_s <= slept[0] <= 2 * api.backoff_s <= slept[1] <= 4 * api.backoff_s


def test_edition_geography_reports_its_unknown_share_beside_table3(server, world, tmp_path):
    ids = GroundTruth(world).ids()[:60]

    @dg.asset
    def edition_splits() -> pd.DataFrame:
        return pd.DataFrame({"youtube_id": ids})

    ledgers = Ledgers(root=str(tmp_path / "ledgers"))
    result = dg.materialize(
        [edition_splits, edition_geography],
        resources={"data_api": _api(server), "rate_limit": RateLimit(ledgers=ledgers, budget="t", rate_per_s=100)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    metadata = result.asset_materializations_for_node("edition_geography")[0].metadata
    sources = {row.data["source"]: row.data["clips"] for row in metadata["country_sources"].value.records}
    assert sources.get(UNKNOWN, 0) > 0 and sum(sources.values()) == len(ids)
    table3 = result.output_for_node("edition_geography")
    assert table3["clips"].sum() == len(ids) - sources[UNKNOWN], "Table 3 counts the clips with a country"
    assert metadata["with_location"].value == pytest.approx(1 - sources[UNKNOWN] / len(ids), abs=1e-4)
