"""Failure taxonomy and retries: every failure gets the right category, permanent ones are never retried.

Protects: categories read from the REAL errors yt-dlp and PyAV raise for the sandbox platform (removed, private,
copyright, terminated, country-blocked, sign-in, unknown ids; 429/503/timeouts/truncated bodies), synthetic
errors for what the sandbox cannot produce (bot check, policy, ffmpeg exits, plain HTTP errors), the actionable
bot-check message, and the retry loop's bounds (attempts, full-jitter delays, no retry of permanent failures).
"""

from __future__ import annotations

import datetime
import io
import random
import urllib.error

import av
import pytest
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import DownloadError, ExtractorError

from kinetics_assets.acquisition.failures import (
    AcquisitionError,
    FailureCategory,
    RetryPolicy,
    call_with_retries,
    classify,
)
from resources.sandbox.faults import FaultConfig
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.server import SandboxServer, media_url, watch_url
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES

pytestmark = pytest.mark.timeout(120)

AFTER_ALL_REMOVALS = datetime.date(2031, 1, 1)  # removals fall within 10 years of the 2019 epoch


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """A metadata-only world (nothing is rendered) with heavy link-rot, so every removal reason occurs."""
    sandbox = SandboxPlatform(classes=list(DEMO_CLASSES), relevant_per_class=30, distractors_per_class=0,
                              compilations_per_class=0, reupload_rate=0.0, annual_removal_rate=0.6,
                              cache_dir=str(tmp_path_factory.mktemp("failures-sandbox")))
    yield sandbox
    sandbox.shutdown()


def _extraction_failure(platform, url: str, **opts) -> BaseException:
    with pytest.raises(DownloadError) as failure:
        platform.youtube_dl(extractor_retries=0, **opts).extract_info(url, download=False, process=False)
    return failure.value


REASONS = {
    "removed_by_user": FailureCategory.REMOVED,
    "private": FailureCategory.PRIVATE,
    "account_terminated": FailureCategory.ACCOUNT_TERMINATED,
    "copyright": FailureCategory.COPYRIGHT,
    "country_blocked": FailureCategory.COUNTRY_BLOCKED,
    "sign_in_required": FailureCategory.SIGN_IN_REQUIRED,
}


@pytest.mark.parametrize("reason", sorted(REASONS))
def test_removed_videos_are_permanent_with_their_reason(platform, reason):
    truth = GroundTruth(platform.server.world)
    video = next(v for v in truth.ids(kind="relevant") if (r := truth.removal(v)) and r.reason == reason)
    platform.server.set_clock(AFTER_ALL_REMOVALS)
    failure = classify(_extraction_failure(platform, platform.watch_url(video)))
    assert failure.category is REASONS[reason]
    assert failure.permanent
    assert video in failure.message


def test_an_id_the_platform_never_had_is_unavailable(platform):
    failure = classify(_extraction_failure(platform, platform.watch_url("zzzzzzzzzzz")))
    assert failure.category is FailureCategory.UNAVAILABLE and failure.permanent


@pytest.mark.parametrize("fault, category", [
    ("429", FailureCategory.RATE_LIMITED),
    ("503", FailureCategory.SERVER_ERROR),
    ("truncated", FailureCategory.INCOMPLETE),
    ("timeout", FailureCategory.TIMEOUT),
])
def test_platform_faults_are_transient(platform, fault, category):
    world = platform.server.world
    video = GroundTruth(world).ids(kind="relevant")[0]
    faults = FaultConfig(rate=1.0, kinds=(fault,), stall_s=2.0)
    with SandboxServer(world, world.config.epoch, faults) as flaky:
        error = _extraction_failure(platform, watch_url(flaky.base_url, video), socket_timeout=0.5)
    failure = classify(error)
    assert failure.category is category
    assert not failure.permanent


def test_media_errors_from_pyav_are_transient(platform):
    """A media URL can fail even for a playable video (expired signature, throttling): retry re-extracts."""
    world = platform.server.world
    video = GroundTruth(world).ids(kind="relevant")[0]
    with (SandboxServer(world, world.config.epoch, FaultConfig(rate=1.0, kinds=("429",))) as limited,
          pytest.raises(av.error.FFmpegError) as throttled):
        av.open(media_url(limited.base_url, video), timeout=5)
    assert classify(throttled.value).category is FailureCategory.RATE_LIMITED
    gone = next(v for v in GroundTruth(world).ids(kind="relevant") if GroundTruth(world).removal(v))
    with SandboxServer(world, AFTER_ALL_REMOVALS) as server, pytest.raises(av.error.FFmpegError) as forbidden:
        av.open(media_url(server.base_url, gone), timeout=5)
    assert classify(forbidden.value).category is FailureCategory.FORBIDDEN


def _http_error(status: int) -> HTTPError:
    return HTTPError(Response(io.BytesIO(b""), "https://www.youtube.com/youtubei/v1/player", {}, status=status))


@pytest.mark.parametrize("error, category", [
    (_http_error(403), FailureCategory.FORBIDDEN),
    (_http_error(429), FailureCategory.RATE_LIMITED),
    (_http_error(502), FailureCategory.SERVER_ERROR),
    (urllib.error.HTTPError("https://x", 500, "Internal Server Error", {}, None), FailureCategory.SERVER_ERROR),
    (DownloadError("ERROR: ffmpeg exited with code 8"), FailureCategory.HTTP_ERROR),
    (DownloadError("ERROR: ffmpeg exited with code 187"), FailureCategory.CONNECTION),
    (DownloadError("ERROR: ffmpeg exited with code 146"), FailureCategory.TIMEOUT),
    (TimeoutError("read timed out"), FailureCategory.TIMEOUT),
    (ExtractorError("This video has been removed for violating YouTube's Community Guidelines", expected=True),
     FailureCategory.POLICY),
    (ExtractorError("Private video. Sign in if you've been granted access to this video", expected=True),
     FailureCategory.PRIVATE),
    (AcquisitionError(FailureCategory.INCOMPLETE, "clip has 120 frames"), FailureCategory.INCOMPLETE),
    (RuntimeError("something nobody anticipated"), FailureCategory.UNKNOWN),
])
def test_synthetic_errors(error, category):
    failure = classify(error)
    assert failure.category is category
    assert failure.permanent is category.permanent


def test_wrapped_http_error_keeps_its_status():
    wrapped = DownloadError("ERROR: Unable to download API page", exc_info=(HTTPError, _http_error(429), None))
    assert classify(wrapped).category is FailureCategory.RATE_LIMITED


def test_bot_check_is_its_own_permanent_category_with_actionable_advice():
    error = DownloadError("ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you\u2019re not a bot. "
                          "Use --cookies-from-browser or --cookies for the authentication.")
    failure = classify(error)
    assert failure.category is FailureCategory.BOT_CHECK and failure.permanent
    for advice in ("cookie_file", "sleep_interval_s", "rate_per_s", "JavaScript runtime"):
        assert advice in failure.message


def test_categories_round_trip_through_their_labels():
    assert all(FailureCategory.from_label(c.label) is c for c in FailureCategory)
    with pytest.raises(ValueError, match="unknown failure category"):
        FailureCategory.from_label("gremlins")


class _Flaky:
    """Fails with the given errors in turn, then returns 'ok'; counts calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors, self.calls = list(errors), 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_transient_failures_are_retried_until_success():
    sleeps: list[float] = []
    flaky = _Flaky(_http_error(503), _http_error(429))
    result = call_with_retries(flaky, RetryPolicy(attempts=5, base_s=1.0, cap_s=10.0), sleeps.append,
                               random.Random(0))
    assert (result.value, result.failure, result.attempts, flaky.calls) == ("ok", None, 3, 3)
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0


def test_permanent_failures_are_never_retried():
    sleeps: list[float] = []
    flaky = _Flaky(ExtractorError("Video unavailable. This video is private", expected=True))
    result = call_with_retries(flaky, RetryPolicy(attempts=5), sleeps.append, random.Random(0))
    assert result.failure.category is FailureCategory.PRIVATE
    assert (result.attempts, flaky.calls, sleeps) == (1, 1, [])


def test_retries_stop_after_the_configured_attempts():
    sleeps: list[float] = []
    flaky = _Flaky(*[_http_error(503)] * 10)
    result = call_with_retries(flaky, RetryPolicy(attempts=3, base_s=1.0, cap_s=10.0), sleeps.append,
                               random.Random(0))
    assert result.value is None and result.failure.category is FailureCategory.SERVER_ERROR
    assert (result.attempts, flaky.calls, len(sleeps)) == (3, 3, 2)


def test_full_jitter_delays_span_zero_to_the_capped_exponential():
    policy, rng = RetryPolicy(attempts=10, base_s=0.5, cap_s=3.0), random.Random(7)
    for retry, bound in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (8, 3.0)]:
        delays = [policy.delay(retry, rng) for _ in range(400)]
        assert 0 <= min(delays) < 0.1 * bound and 0.9 * bound < max(delays) <= bound
    assert RetryPolicy(base_s=1.0).delay(1, random.Random(3)) == RetryPolicy(base_s=1.0).delay(1, random.Random(3))
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
