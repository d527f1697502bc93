"""The yt-dlp path to the sandbox: search, metadata, unavailability errors, retries, section downloads.

The pipeline only ever talks to the platform through yt-dlp, so these are the behaviours it relies
on: `sandboxsearchN:q` ranks like the platform, metadata lands in yt-dlp's standard fields,
removed videos raise yt-dlp's standard errors with the platform's reason, transient faults are
retried, and a 10-s section download is frame-exact.
"""

from __future__ import annotations

import av
import pytest
import yt_dlp
from yt_dlp.utils import DownloadError, GeoRestrictedError

from resources.sandbox import ytdlp_extractors
from resources.sandbox.faults import FaultConfig, FaultInjector
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.server import PLAYER_API_PATH, SandboxServer, watch_url
from resources.sandbox.world import DEMO_CLASSES

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    sandbox = SandboxPlatform(
        classes=list(DEMO_CLASSES[:2]),
        relevant_per_class=4,
        distractors_per_class=2,
        cache_dir=str(tmp_path_factory.mktemp("sandbox")),
    )
    yield sandbox
    sandbox.shutdown()


@pytest.fixture(scope="module")
def world(platform):
    return platform.server.world


@pytest.fixture(scope="module")
def public_video(platform, world):
    return world.search(world.config.classes[0], limit=1, on=platform.server.clock)[0]


def _extraction_error(ydl: yt_dlp.YoutubeDL, url: str) -> BaseException:
    with pytest.raises(DownloadError) as failure:
        ydl.extract_info(url, download=False)
    return failure.value.exc_info[1]


@pytest.mark.parametrize("n", [1, 5])
def test_search_returns_the_platform_ranking_as_flat_url_entries(platform, world, n):
    query = world.config.classes[0]
    result = platform.youtube_dl(extract_flat="in_playlist").extract_info(platform.search_url(query, n), download=False)
    expected = world.search(query, limit=n, on=platform.server.clock)
    entries = list(result["entries"])
    assert [e["id"] for e in entries] == [m.id for m in expected]
    first, meta = entries[0], expected[0]
    assert first["_type"] == "url" and first["ie_key"] == "Sandbox"
    assert first["url"] == platform.watch_url(meta.id)
    assert (first["title"], first["duration"], first["channel"], first["view_count"]) == (
        meta.title, meta.duration, meta.channel, meta.view_count)


def test_search_pages_through_results(platform, world, monkeypatch):
    monkeypatch.setattr(ytdlp_extractors, "MAX_SEARCH_PAGE", 2)
    query = world.config.classes[1]
    result = platform.youtube_dl(extract_flat="in_playlist").extract_info(platform.search_url(query, 5), download=False)
    assert [e["id"] for e in result["entries"]] == [m.id for m in world.search(query, limit=5, on=platform.server.clock)]


def test_search_without_a_server_address_fails_with_a_clear_error(platform):
    ydl = yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True}, auto_init=False)
    ydl.add_info_extractor(ytdlp_extractors.SandboxSearchIE())
    ydl.add_default_info_extractors()
    assert "base_url" in str(_extraction_error(ydl, "sandboxsearch3:anything"))


def test_metadata_arrives_in_standard_info_fields(platform, public_video):
    info = platform.youtube_dl().extract_info(platform.watch_url(public_video.id), download=False)
    meta = public_video
    assert info["extractor_key"] == "Sandbox"
    for field in ("id", "title", "description", "channel", "channel_id", "upload_date", "duration", "view_count"):
        assert info[field] == getattr(meta, field), field
    assert info["uploader"] == meta.channel
    assert info["location"] == meta.country
    assert (info["width"], info["height"], info["fps"]) == (meta.width, meta.height, meta.fps)
    assert info["ext"] == "mp4" and info["protocol"] == "http" and info["vcodec"] == "avc1"
    assert info["url"].endswith(f"/media/{meta.id}.mp4")


def test_unknown_video_id_is_video_unavailable(platform):
    error = _extraction_error(platform.youtube_dl(), platform.watch_url("zzzzzzzzzzz"))
    assert "Video unavailable" in str(error)


def test_transient_metadata_faults_are_retried(platform, world, public_video):
    target = f"{PLAYER_API_PATH}?v={public_video.id}"
    # A seed whose first player-API attempt fails: extraction only succeeds if the IE retries.
    faults = next(
        config
        for config in (FaultConfig(rate=0.5, seed=s, kinds=("429", "503", "truncated")) for s in range(100))
        if FaultInjector(config).decide(target) is not None
    )
    with SandboxServer(world, platform.server.clock, faults) as flaky:
        url = watch_url(flaky.base_url, public_video.id)
        info = platform.youtube_dl(extractor_retries=10).extract_info(url, download=False)
    assert info["id"] == public_video.id


def test_exhausted_retries_surface_the_http_error(platform, world, public_video):
    with SandboxServer(world, platform.server.clock, FaultConfig(rate=1.0, kinds=("429",))) as limited:
        error = _extraction_error(platform.youtube_dl(extractor_retries=1), watch_url(limited.base_url, public_video.id))
    assert "429" in str(error)


def test_ten_second_section_download_is_frame_exact(platform, world, tmp_path):
    clock = platform.server.clock
    video = next(m for m in world.search(world.config.classes[0], limit=20, on=clock) if m.duration >= 12)
    start = round(min(1.37, video.duration - 10.5), 2)  # deliberately not on a keyframe
    ydl = platform.youtube_dl(
        outtmpl=str(tmp_path / "%(id)s.%(ext)s"),
        download_ranges=yt_dlp.utils.download_range_func(None, [(start, start + 10)]),
        force_keyframes_at_cuts=True,
    )
    assert ydl.download([platform.watch_url(video.id)]) == 0
    [clip] = list(tmp_path.glob(f"{video.id}*.mp4"))
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 25
        assert sum(1 for _ in container.decode(stream)) == 250
