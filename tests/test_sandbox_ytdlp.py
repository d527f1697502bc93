"""The yt-dlp path to the sandbox: search, metadata, unavailability errors, retries, section downloads.

The pipeline only ever talks to the platform through yt-dlp, so these are the behaviours it relies
on: `sandboxsearchN:q` ranks like the platform, metadata lands in yt-dlp's standard fields,
removed videos raise yt-dlp's standard errors with the platform's reason, transient faults are
retried, and a 10-s section download is frame-exact.
"""

from __future__ import annotations

import datetime
import pathlib

import av
import pytest
import yt_dlp
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from resources.sandbox import ytdlp_extractors
from resources.sandbox.faults import FaultConfig, FaultInjector
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.server import PLAYER_API_PATH, SandboxServer, watch_url
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    sandbox = SandboxPlatform(
        classes=list(DEMO_CLASSES[:2]),
        relevant_per_class=12,  # enough that a title word finds 5 videos
        distractors_per_class=3,
        max_duration=20.0,
        cache_dir=str(tmp_path_factory.mktemp("sandbox")),
    )
    yield sandbox
    sandbox.shutdown()


@pytest.fixture(scope="module")
def world(platform):
    return platform.server.world


@pytest.fixture(scope="module")
def public_video(platform, world):
    """A video of at least 12 s that is up on the server's date (chosen with ground truth)."""
    return next(
        meta for meta in map(world.metadata, GroundTruth(world).ids())
        if meta.duration >= 12 and world.availability(meta.id, on=platform.server.clock).available
    )


@pytest.fixture(scope="module")
def busy_query(platform, world, public_video):
    """The word of a public title that finds the most videos."""
    return max(public_video.title.split(), key=lambda w: len(world.search(w, 50, on=platform.server.clock)))


def _extraction_error(ydl: yt_dlp.YoutubeDL, url: str) -> BaseException:
    with pytest.raises(DownloadError) as failure:
        ydl.extract_info(url, download=False)
    return failure.value.exc_info[1]


@pytest.mark.parametrize("n", [1, 5])
def test_search_returns_the_platform_ranking_as_flat_url_entries(platform, world, busy_query, n):
    result = platform.youtube_dl(extract_flat="in_playlist").extract_info(
        platform.search_url(busy_query, n), download=False)
    expected = world.search(busy_query, limit=n, on=platform.server.clock)
    assert len(expected) == n, "precondition: the query finds at least n videos"
    entries = list(result["entries"])
    assert [e["id"] for e in entries] == [m.id for m in expected]
    first, meta = entries[0], expected[0]
    assert first["_type"] == "url" and first["ie_key"] == "Sandbox"
    assert first["url"] == platform.watch_url(meta.id)
    assert (first["title"], first["duration"], first["channel"], first["view_count"]) == (
        meta.title, meta.duration, meta.channel, meta.view_count)


def test_search_pages_through_results(platform, world, busy_query, monkeypatch):
    monkeypatch.setattr(ytdlp_extractors, "MAX_SEARCH_PAGE", 2)
    result = platform.youtube_dl(extract_flat="in_playlist").extract_info(
        platform.search_url(busy_query, 5), download=False)
    expected = world.search(busy_query, limit=5, on=platform.server.clock)
    assert [e["id"] for e in result["entries"]] == [m.id for m in expected]


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


PINNED_FAULTS = 1_800_000_010.0  # one fault window: the same faults every run (this one truncates media and
# leaves the first player answer of the section download whole)


def test_transient_metadata_faults_are_retried(platform, world, public_video):
    target = f"{PLAYER_API_PATH}?v={public_video.id}"
    # A seed whose first player-API attempt fails: extraction only succeeds if the IE retries.
    faults = next(
        config
        for config in (FaultConfig(rate=0.5, seed=s, kinds=("429", "503", "truncated")) for s in range(100))
        if FaultInjector(config, clock=lambda: PINNED_FAULTS).decide(target) is not None
    )
    with SandboxServer(world, platform.server.clock, faults) as flaky:
        flaky.faults.clock = lambda: PINNED_FAULTS
        url = watch_url(flaky.base_url, public_video.id)
        info = platform.youtube_dl(extractor_retries=10).extract_info(url, download=False)
    assert info["id"] == public_video.id


def test_exhausted_retries_surface_the_http_error(platform, world, public_video):
    with SandboxServer(world, platform.server.clock, FaultConfig(rate=1.0, kinds=("429",))) as limited:
        error = _extraction_error(platform.youtube_dl(extractor_retries=1), watch_url(limited.base_url, public_video.id))
    assert "429" in str(error)


def _download_section(platform, url: str, out: pathlib.Path, start: float) -> pathlib.Path:
    ydl = platform.youtube_dl(
        outtmpl=str(out / "%(id)s.%(ext)s"),
        download_ranges=yt_dlp.utils.download_range_func(None, [(start, start + 10)]),
        force_keyframes_at_cuts=True,
    )
    assert ydl.download([url]) == 0
    [clip] = list(out.glob("*.mp4"))
    return clip


def _frames(clip: pathlib.Path) -> tuple[int, float]:
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        return sum(1 for _ in container.decode(stream)), stream.average_rate


def test_ten_second_section_download_is_frame_exact(platform, public_video, tmp_path):
    start = round(min(1.37, public_video.duration - 10.5), 2)  # deliberately not on a keyframe
    clip = _download_section(platform, platform.watch_url(public_video.id), tmp_path, start)
    assert _frames(clip) == (250, 25)


def test_section_download_survives_dropped_and_short_media_responses(platform, world, public_video, tmp_path):
    """ffmpeg must resume a truncated body and retry 429s; otherwise it silently writes a short clip."""
    faults = FaultConfig(rate=0.5, seed=1, kinds=("truncated", "429"), retry_after_s=0)
    with SandboxServer(world, platform.server.clock, faults) as flaky:
        flaky.faults.clock = lambda: PINNED_FAULTS
        clip = _download_section(platform, watch_url(flaky.base_url, public_video.id), tmp_path, 2.0)
    assert _frames(clip) == (250, 25)
    assert flaky.faults.injected["truncated"] > 0, "precondition: a media response was cut short"


# -- removals: yt-dlp's standard errors, with the platform's reason, from the removal date on ---


@pytest.mark.parametrize(
    "reason, error_type, words",
    [
        ("private", ExtractorError, "This video is private"),
        ("sign_in_required", ExtractorError, "Sign in to confirm"),
        ("country_blocked", GeoRestrictedError, "not made this video available in your country"),
        ("removed_by_user", ExtractorError, "removed by the uploader"),
        ("copyright", ExtractorError, "copyright"),
        ("account_terminated", ExtractorError, "account associated with this video has been terminated"),
    ],
)
def test_removed_video_raises_the_standard_error_from_its_removal_date_on(
        platform, rotting_world, reason, error_type, words):
    truth = GroundTruth(rotting_world)
    video_id, removal = next(
        (i, truth.removal(i)) for i in truth.ids()
        if truth.removal(i) and truth.removal(i).reason == reason
        and rotting_world.availability(i, on=truth.removal(i).on - datetime.timedelta(days=1)).available
    )
    ydl = platform.youtube_dl()
    with SandboxServer(rotting_world, removal.on - datetime.timedelta(days=1)) as server:
        url = watch_url(server.base_url, video_id)
        assert ydl.extract_info(url, download=False)["id"] == video_id
        server.set_clock(removal.on)
        error = _extraction_error(ydl, url)
    assert type(error) is error_type and error.expected
    assert words in str(error)
    assert rotting_world.availability(video_id, on=removal.on).message in str(error)
