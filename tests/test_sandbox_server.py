"""HTTP behaviour of the sandbox platform: media ranges, id validation, search paging, oEmbed, faults.

These protect what ffmpeg, yt-dlp and the probe code rely on: byte-exact 206 bodies so ffmpeg can
seek, 416 on bad ranges, 400 before a malformed id touches anything, and faults that are both
reproducible and visible to a client.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import json
import re

import pytest
import requests

from resources.sandbox.faults import (
    FAULT_KINDS,
    REQUEST_KINDS,
    THROTTLE_ANSWERS,
    THROTTLED,
    FaultConfig,
    FaultInjector,
)
from resources.sandbox.server import SandboxServer, media_url, oembed_url, watch_url
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES, World, WorldConfig

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def sandbox_world(tmp_path_factory):
    config = WorldConfig(classes=DEMO_CLASSES[:2], relevant_per_class=6, distractors_per_class=3, max_duration=20.0)
    return World(config, tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def sandbox_server(sandbox_world):
    with SandboxServer(sandbox_world, sandbox_world.config.epoch + datetime.timedelta(days=365)) as server:
        yield server


@pytest.fixture(scope="module")
def public_video(sandbox_world, sandbox_server):
    """A video that is up on the server's date (chosen with ground truth; tests may read it)."""
    return next(
        sandbox_world.metadata(i) for i in GroundTruth(sandbox_world).ids()
        if sandbox_world.availability(i, on=sandbox_server.clock).available
    )


@pytest.fixture(scope="module")
def busy_query(sandbox_world, sandbox_server, public_video):
    """The word of a public title that finds the most videos, so paging has something to page."""
    return max(public_video.title.split(), key=lambda w: len(sandbox_world.search(w, 50, on=sandbox_server.clock)))


@pytest.fixture(scope="module")
def media(public_video, sandbox_world, sandbox_server):
    """(url, bytes) of one rendered video."""
    body = sandbox_world.media_path(public_video.id).read_bytes()
    return media_url(sandbox_server.base_url, public_video.id), body


def test_full_get_serves_the_rendered_file_and_advertises_ranges(media):
    url, body = media
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "video/mp4"


@pytest.mark.parametrize(
    "header, span",
    [("bytes=10-99", (10, 99)), ("bytes=1000-", (1000, None)), ("bytes=-50", (-50, None)), ("bytes=0-0", (0, 0))],
)
def test_range_request_returns_exact_bytes_with_content_range(media, header, span):
    url, body = media
    first, last = span
    expected = body[first:] if last is None else body[first : last + 1]
    start = first if first >= 0 else len(body) + first
    response = requests.get(url, headers={"Range": header}, timeout=30)
    assert response.status_code == 206
    assert response.content == expected
    assert response.headers["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{len(body)}"
    assert int(response.headers["Content-Length"]) == len(expected)


def test_range_end_past_the_file_is_clamped(media):
    url, body = media
    response = requests.get(url, headers={"Range": f"bytes=5-{len(body) * 2}"}, timeout=30)
    assert response.status_code == 206
    assert response.content == body[5:]


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes=50-10", "bytes=-0", "items=0-10", "bytes=0-5,10-20"])
def test_unsatisfiable_or_malformed_range_is_416(media, header):
    url, body = media
    response = requests.get(url, headers={"Range": header.format(size=len(body))}, timeout=30)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(body)}"


def test_head_gives_length_and_no_body(media):
    url, body = media
    response = requests.head(url, timeout=30)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(body)
    assert response.content == b""
    ranged = requests.head(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert ranged.status_code == 206 and ranged.headers["Content-Length"] == "100"


@pytest.mark.parametrize(
    "path",
    [
        "/watch?v=../../etc/pa",
        "/watch?v=short",
        "/api/player?v=abc%00defghij",
        "/media/..%2F..%2Fetc.mp4",
        "/media/AAAAAAAAAAAA.mp4",
        "/watch",
        "/results?search_query=dice&n=0",
        "/results?search_query=dice&n=abc",
        "/results?n=3",
    ],
)
def test_malformed_ids_and_parameters_are_rejected_with_400(sandbox_server, path):
    response = requests.get(sandbox_server.base_url + path, timeout=30)
    assert response.status_code == 400
    assert "Bad Request" in response.text


def test_unknown_but_well_formed_id_is_404(sandbox_server):
    base = sandbox_server.base_url
    assert requests.get(f"{base}/media/zzzzzzzzzzz.mp4", timeout=30).status_code == 404
    player = requests.get(f"{base}/api/player", params={"v": "zzzzzzzzzzz"}, timeout=30)
    assert player.status_code == 404
    assert player.json()["playabilityStatus"]["status"] == "ERROR"
    assert requests.get(oembed_url(base, "zzzzzzzzzzz"), timeout=30).status_code == 404


def test_search_pages_concatenate_to_the_worlds_ranking(sandbox_world, sandbox_server, busy_query):
    expected = sandbox_world.search(busy_query, limit=6, on=sandbox_server.clock)
    assert len(expected) > 3, "precondition: the query must fill more than one page of 3"
    pages = [
        requests.get(
            f"{sandbox_server.base_url}/results", params={"search_query": busy_query, "n": 3, "page": p}, timeout=30
        ).json()
        for p in (0, 1)
    ]
    assert [item["id"] for page in pages for item in page] == [m.id for m in expected]
    assert pages[0][0] == dataclasses.asdict(expected[0])


def test_search_leaves_out_videos_that_are_gone(sandbox_world, sandbox_server):
    truth = GroundTruth(sandbox_world)
    gone = [i for i in truth.ids() if not sandbox_world.availability(i, on=sandbox_server.clock).available]
    assert gone, "precondition: some video is unavailable on the server's date"
    for video_id in gone:
        title = sandbox_world.metadata(video_id).title
        found = requests.get(
            f"{sandbox_server.base_url}/results", params={"search_query": title, "n": 50}, timeout=30).json()
        assert video_id not in {item["id"] for item in found}


def test_watch_page_embeds_the_player_response(public_video, sandbox_server):
    meta = public_video
    page = requests.get(watch_url(sandbox_server.base_url, meta.id), timeout=30)
    assert page.status_code == 200
    embedded = re.search(r"var ytInitialPlayerResponse = (\{.*?\});</script>", page.text).group(1)
    response = json.loads(embedded)
    assert response["playabilityStatus"]["status"] == "OK"
    assert response["videoDetails"] == dataclasses.asdict(meta)
    assert response["streamingData"]["formats"][0]["url"] == media_url(sandbox_server.base_url, meta.id)


def test_oembed_of_a_public_video_gives_title_and_author(public_video, sandbox_server):
    meta = public_video
    response = requests.get(oembed_url(sandbox_server.base_url, meta.id), timeout=30)
    assert response.status_code == 200
    assert response.json()["title"] == meta.title
    assert response.json()["author_name"] == meta.channel


@pytest.mark.parametrize(
    "reason, oembed_status, player_status",
    [("private", 401, "LOGIN_REQUIRED"), ("sign_in_required", 403, "LOGIN_REQUIRED"),
     ("country_blocked", 403, "UNPLAYABLE"), ("removed_by_user", 404, "ERROR"),
     ("copyright", 404, "ERROR"), ("account_terminated", 404, "ERROR")],
)
def test_removed_videos_answer_like_the_platform(rotting_world, reason, oembed_status, player_status):
    truth = GroundTruth(rotting_world)
    video_id, removal = next(
        (i, truth.removal(i)) for i in truth.ids() if truth.removal(i) and truth.removal(i).reason == reason)
    with SandboxServer(rotting_world, removal.on) as server:
        player = requests.get(f"{server.base_url}/api/player", params={"v": video_id}, timeout=30).json()
        assert player["playabilityStatus"] == {
            "status": player_status, "reason": rotting_world.availability(video_id, on=removal.on).message}
        assert "streamingData" not in player and "videoDetails" not in player
        assert requests.get(oembed_url(server.base_url, video_id), timeout=30).status_code == oembed_status
        assert requests.head(media_url(server.base_url, video_id), timeout=30).status_code == 403


def test_video_not_yet_uploaded_is_unknown_to_the_platform(sandbox_world):
    truth = GroundTruth(sandbox_world)
    video_id = truth.ids()[0]
    uploaded = datetime.datetime.strptime(sandbox_world.metadata(video_id).upload_date, "%Y%m%d").date()
    with SandboxServer(sandbox_world, uploaded - datetime.timedelta(days=1)) as server:
        assert requests.get(f"{server.base_url}/api/player", params={"v": video_id}, timeout=30).status_code == 404
        assert requests.get(oembed_url(server.base_url, video_id), timeout=30).status_code == 404
        server.set_clock(uploaded)
        assert requests.get(f"{server.base_url}/api/player", params={"v": video_id}, timeout=30).status_code == 200


def test_oembed_rejects_non_watch_urls(sandbox_server):
    response = requests.get(f"{sandbox_server.base_url}/oembed", params={"url": "http://x/media/a.mp4"}, timeout=30)
    assert response.status_code == 400


# -- faults ---------------------------------------------------------------------------------


PINNED = 1_800_000_000.0  # a fixed fault clock: the same faults every time


def _decisions(config: FaultConfig, targets: list[str], now: float = PINNED) -> list[str | None]:
    injector = FaultInjector(config, clock=lambda: now)
    return [fault.kind if (fault := injector.decide(t)) else None for t in targets]


def test_same_seed_gives_the_same_fault_sequence_and_another_seed_differs():
    targets = [f"/api/player?v={i:011d}" for i in range(40)] * 3
    first = _decisions(FaultConfig(rate=0.5, seed=7, kinds=REQUEST_KINDS), targets)
    assert first == _decisions(FaultConfig(rate=0.5, seed=7, kinds=REQUEST_KINDS), targets)
    assert first != _decisions(FaultConfig(rate=0.5, seed=8, kinds=REQUEST_KINDS), targets)
    assert set(first) == {None, "429", "503", "timeout", "truncated"}


def test_fault_decision_depends_on_the_target_and_attempt_not_on_interleaving():
    """Concurrent clients interleave differently; each target's own sequence must not change."""
    a, b = "/results?search_query=a", "/results?search_query=b"
    together = FaultInjector(FaultConfig(rate=0.5, seed=3), clock=lambda: PINNED)
    interleaved = [(t, f.kind if (f := together.decide(t)) else None) for t in [a, b] * 10]
    alone_a = _decisions(FaultConfig(rate=0.5, seed=3), [a] * 10)
    assert [d for t, d in interleaved if t == a] == alone_a


def test_faults_pass_with_time_so_a_later_rerun_meets_other_faults():
    """A new server process at the same moment meets the same faults (reproducible); a rerun in a later window,
    like a real platform's transient faults, meets others."""
    config = FaultConfig(rate=0.5, seed=5, kinds=REQUEST_KINDS, window_s=10.0)
    targets = [f"/api/player?v={i:011d}" for i in range(60)]
    now = _decisions(config, targets, PINNED)
    assert now == _decisions(config, targets, PINNED + 9.0), "same window, fresh process: same faults"
    later = _decisions(config, targets, PINNED + 10.0)
    assert later != now
    failed_now = {t for t, d in zip(targets, now) if d}
    assert any(d is None for t, d in zip(targets, later) if t in failed_now), "a failed request later succeeds"


def test_fault_rate_zero_never_fires_and_rate_one_always_does():
    targets = [f"/t{i}" for i in range(50)]
    assert _decisions(FaultConfig(rate=0.0), targets) == [None] * 50
    assert None not in _decisions(FaultConfig(rate=1.0, kinds=REQUEST_KINDS), targets)


def test_throttled_waves_fall_on_the_clock_and_take_their_share_of_time():
    config = FaultConfig(rate=0.2, seed=2, wave_s=3.0, wave_period_s=60.0)
    injector = FaultInjector(config)
    seconds = [PINNED + i for i in range(20_000)]
    throttled = [injector.wave(t) for t in seconds]
    share = sum(a is not None for a in throttled) / len(seconds)
    assert share == pytest.approx(config.rate / len(FAULT_KINDS), rel=0.35)
    assert set(throttled) == {None, *THROTTLE_ANSWERS}
    runs = "".join("x" if a else "." for a in throttled).split(".")
    assert max(len(run) for run in runs) == 3, "a wave lasts wave_s seconds, then passes"
    assert [FaultInjector(config).wave(t) for t in seconds[:3000]] == throttled[:3000], "reproducible"
    always = FaultInjector(FaultConfig(rate=1.0, kinds=(THROTTLED,), wave_s=60.0, wave_period_s=60.0))
    assert all(always.wave(t) for t in seconds[:500])


@pytest.mark.parametrize("bad", [{"rate": 1.5}, {"rate": -0.1}, {"kinds": ("404",)}, {"kinds": ()},
                                 {"window_s": 0}, {"wave_s": 0}, {"wave_s": 61, "wave_period_s": 60}])
def test_invalid_fault_config_is_refused(bad):
    with pytest.raises(ValueError):
        FaultConfig(**bad)


@pytest.fixture
def faulty_server(sandbox_world, sandbox_server, request):
    with SandboxServer(sandbox_world, sandbox_server.clock, request.param) as server:
        server.faults.clock = lambda: PINNED
        yield server


@pytest.mark.parametrize("faulty_server", [FaultConfig(rate=1.0, kinds=("429",), retry_after_s=3)], indirect=True)
def test_429_fault_reaches_the_client_with_retry_after(faulty_server):
    response = requests.get(faulty_server.base_url + "/results", params={"search_query": "x"}, timeout=30)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"


@pytest.mark.parametrize("faulty_server", [FaultConfig(rate=1.0, kinds=("503",))], indirect=True)
def test_503_fault_reaches_the_client(faulty_server, public_video):
    for url in (media_url(faulty_server.base_url, public_video.id), oembed_url(faulty_server.base_url, public_video.id)):
        assert requests.get(url, timeout=30).status_code == 503


@pytest.mark.parametrize("faulty_server", [FaultConfig(rate=1.0, kinds=("truncated",))], indirect=True)
def test_truncated_fault_sends_less_than_content_length(faulty_server, public_video, media):
    body = media[1]
    connection = http.client.HTTPConnection("127.0.0.1", int(faulty_server.base_url.rsplit(":", 1)[1]), timeout=30)
    connection.request("GET", f"/media/{public_video.id}.mp4")
    response = connection.getresponse()
    assert int(response.headers["Content-Length"]) == len(body)
    with pytest.raises(http.client.IncompleteRead) as short:
        response.read()
    assert 0 < len(short.value.partial) < len(body)
    connection.close()


@pytest.mark.parametrize("faulty_server", [FaultConfig(rate=1.0, kinds=("timeout",), stall_s=1.0)], indirect=True)
def test_timeout_fault_stalls_past_the_client_timeout(faulty_server):
    with pytest.raises((requests.Timeout, requests.ConnectionError)):
        requests.get(faulty_server.base_url + "/results", params={"search_query": "x"}, timeout=0.3)


ALWAYS_THROTTLED = FaultConfig(rate=1.0, kinds=(THROTTLED,), wave_s=60.0, wave_period_s=60.0)


@pytest.mark.parametrize("faulty_server", [ALWAYS_THROTTLED], indirect=True)
def test_a_throttled_session_gets_youtubes_words_and_429s(faulty_server, public_video):
    base, answer = faulty_server.base_url, faulty_server.faults.wave(PINNED)
    player = requests.get(f"{base}/api/player", params={"v": public_video.id}, timeout=30)
    status = player.json()["playabilityStatus"]
    assert player.status_code == 200 and "streamingData" not in player.json()
    words = {"session_rate_limited": "This content isn't available, try again later.",
             "bot_check": "Sign in to confirm you\u2019re not a bot"}[answer]
    assert words in json.dumps(status["errorScreen"], ensure_ascii=False)
    page = requests.get(watch_url(base, public_video.id), timeout=30)
    assert page.status_code == 200 and "ytInitialPlayerResponse" in page.text and "streamingData" not in page.text
    for url in (media_url(base, public_video.id), oembed_url(base, public_video.id), f"{base}/results?search_query=x"):
        assert requests.get(url, timeout=30).status_code == 429
    assert faulty_server.faults.injected[THROTTLED] == 5


def test_fault_sequence_seen_over_http_is_reproducible(sandbox_world, sandbox_server):
    paths = [f"/results?search_query=q{i % 4}" for i in range(24)]

    def statuses() -> list[int]:
        config = FaultConfig(rate=0.5, seed=11, kinds=("429", "503"))
        with SandboxServer(sandbox_world, sandbox_server.clock, config) as server:
            server.faults.clock = lambda: PINNED
            return [requests.get(server.base_url + p, timeout=30).status_code for p in paths]

    first = statuses()
    assert first == statuses()
    assert {200, 429, 503} <= set(first)


def test_stopped_server_releases_its_port(sandbox_world, sandbox_server):
    server = SandboxServer(sandbox_world, sandbox_server.clock).start()
    base = server.base_url
    assert requests.get(base + "/results", params={"search_query": "x"}, timeout=30).status_code == 200
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/results", params={"search_query": "x"}, timeout=5)
