"""Failure taxonomy and retries: every failure gets the right category, permanent ones are never retried.

Protects: categories read from the REAL errors yt-dlp and PyAV raise for the sandbox platform (removed, private,
copyright, terminated, country-blocked, sign-in, unknown ids; 429/503/timeouts/truncated bodies), yt-dlp's YouTube
wording raised inside a real YoutubeDL (so wrapped as DownloadError around ExtractorError): session-level answers
(session rate limit, bot check, captcha, blocked IP, 429) are transient and session-wide, never a video's fate;
the actionable advice texts; our own bugs propagate instead of being classified; the retry loop's bounds
(attempts, full-jitter delays, no retry of permanent or not-yet-available videos) and the session breaker.
"""

from __future__ import annotations

import datetime
import io
import random
import urllib.error

import av
import pytest
from yt_dlp import YoutubeDL
from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.extractor.youtube import YoutubeIE
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import DownloadError, ExtractorError

from kinetics_assets.acquisition.failures import (
    AcquisitionError,
    BreakerPolicy,
    FailureCategory,
    RetryPolicy,
    SessionBreaker,
    SessionRefused,
    call_with_retries,
    classify,
    is_platform_error,
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
def test_platform_faults_are_retryable(platform, fault, category):
    world = platform.server.world
    video = GroundTruth(world).ids(kind="relevant")[0]
    faults = FaultConfig(rate=1.0, kinds=(fault,), stall_s=2.0)
    with SandboxServer(world, world.config.epoch, faults) as flaky:
        error = _extraction_failure(platform, watch_url(flaky.base_url, video), socket_timeout=0.5)
    failure = classify(error)
    assert failure.category is category
    assert not failure.permanent and failure.category.retry_now
    assert failure.category.session_level is (fault == "429")


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
])
def test_synthetic_errors(error, category):
    failure = classify(error)
    assert failure.category is category
    assert failure.permanent is category.permanent


def test_wrapped_http_error_keeps_its_status():
    wrapped = DownloadError("ERROR: Unable to download API page", exc_info=(HTTPError, _http_error(429), None))
    assert classify(wrapped).category is FailureCategory.RATE_LIMITED


# -- yt-dlp's YouTube wording, raised inside a real YoutubeDL --------------------------------------------------
# The reasons are YouTube's (playabilityStatus / errorScreen); the additions are yt-dlp's, copied from
# yt_dlp/extractor/youtube/_video.py (captcha note, session rate-limit explanation) or computed by it (login hint).
LOGIN_HINT = YoutubeIE()._youtube_login_hint
RATE_LIMIT_NOTE = (
    "The current session has been rate-limited by YouTube for up to an hour. It is recommended to use `-t sleep` to "
    "add a delay between video requests to avoid exceeding the rate limit. For more information, refer to  "
    "https://github.com/yt-dlp/yt-dlp/wiki/Extractors#this-content-isnt-available-try-again-later")


class _YouTubeSaysIE(InfoExtractor):
    """Raises what `raise(ie)` raises from inside YoutubeDL.extract_info, as yt-dlp's YouTube extractor would."""

    IE_NAME = "youtube"
    _VALID_URL = r"says:(?P<id>[A-Za-z0-9_-]{11})"

    def __init__(self, raise_) -> None:
        super().__init__()
        self._raise = raise_

    def _real_extract(self, url: str) -> dict:
        self._raise(self)


class _Silent:
    def debug(self, msg: str) -> None: ...
    warning = error = debug


def _wrapped_by_youtube_dl(raise_) -> DownloadError:
    ydl = YoutubeDL({"logger": _Silent(), "quiet": True})
    ydl.add_info_extractor(_YouTubeSaysIE(raise_))
    with pytest.raises(DownloadError) as failure:
        ydl.extract_info("says:dQw4w9WgXcQ", ie_key="_YouTubeSays", download=False)
    # YoutubeDL keeps the extractor's error, or the network error it was raised over, as exc_info
    assert isinstance(failure.value.exc_info[1], ExtractorError | HTTPError)
    return failure.value


def _no_formats(reason: str):
    return lambda ie: ie.raise_no_formats(reason, expected=True)


def _http(status: int, note: str = "Unable to download API page"):
    def raise_(ie):
        try:
            raise _http_error(status)
        except HTTPError as err:
            raise ExtractorError(f"{note}: {err}", cause=err) from err
    return raise_


YOUTUBE_WORDING = [
    # session-level: transient, and about the session, not the video
    (_no_formats("Video unavailable. This content isn't available, try again later. " + RATE_LIMIT_NOTE),
     FailureCategory.SESSION_RATE_LIMITED),
    (_no_formats(f"Sign in to confirm you\u2019re not a bot. {LOGIN_HINT}"), FailureCategory.BOT_CHECK),
    (_no_formats("Video unavailable. YouTube is requiring a captcha challenge before playback"),
     FailureCategory.CAPTCHA),
    (lambda ie: ie.raise_no_formats(ExtractorError(
        "All player responses are invalid. Your IP is likely being blocked by Youtube", expected=True)),
     FailureCategory.IP_BLOCKED),
    (_http(429), FailureCategory.RATE_LIMITED),
    # transient, per request
    (_http(403), FailureCategory.FORBIDDEN),
    (_http(500), FailureCategory.SERVER_ERROR),
    (_http(503, "Unable to download webpage"), FailureCategory.SERVER_ERROR),
    # the video's fate
    (lambda ie: ie.raise_geo_restricted(
        "The uploader has not made this video available in your country", ["US"], metadata_available=True),
     FailureCategory.COUNTRY_BLOCKED),
    (_no_formats(f"Private video. Sign in if you've been granted access to this video. {LOGIN_HINT}"),
     FailureCategory.PRIVATE),
    (_no_formats("Video unavailable. This video has been removed by the uploader"), FailureCategory.REMOVED),
    (_no_formats("Video unavailable. This video is no longer available because the YouTube account associated "
                 "with this video has been terminated."), FailureCategory.ACCOUNT_TERMINATED),
    (_no_formats("Video unavailable. This video is no longer available due to a copyright claim by Example "
                 "Records"), FailureCategory.COPYRIGHT),
    (_no_formats("Video unavailable. This video contains content from Example Records, who has blocked it on "
                 "copyright grounds."), FailureCategory.COPYRIGHT),
    (_no_formats("This video has been removed for violating YouTube's policy on hate speech. Learn more about "
                 "combating hate speech in your country."), FailureCategory.POLICY),
    (_no_formats("This video has been removed for violating YouTube's Community Guidelines"), FailureCategory.POLICY),
    (_no_formats("This video has been removed for violating YouTube's Terms of Service"), FailureCategory.POLICY),
    (_no_formats("Join this channel to get access to members-only content like this video, and other exclusive "
                 "perks."), FailureCategory.MEMBERS_ONLY),
    (_no_formats("Sign in to confirm your age. This video may be inappropriate for some users. " + LOGIN_HINT),
     FailureCategory.SIGN_IN_REQUIRED),
    (_no_formats("Video unavailable"), FailureCategory.UNAVAILABLE),
    # not yet
    (_no_formats("Premieres in 3 hours"), FailureCategory.UPCOMING),
    (_no_formats("This live event will begin in 2 hours."), FailureCategory.UPCOMING),
]


@pytest.mark.parametrize("raise_, category", YOUTUBE_WORDING, ids=[c.label for _, c in YOUTUBE_WORDING])
def test_youtube_wording_wrapped_by_youtube_dl(raise_, category):
    failure = classify(_wrapped_by_youtube_dl(raise_))
    assert failure.category is category
    session_answer = category in (FailureCategory.SESSION_RATE_LIMITED, FailureCategory.BOT_CHECK,
                                  FailureCategory.CAPTCHA, FailureCategory.IP_BLOCKED, FailureCategory.RATE_LIMITED)
    assert failure.category.session_level is session_answer
    assert not (session_answer and failure.permanent), "a session-level answer is never the video's fate"
    assert "dQw4w9WgXcQ" in failure.message or category is FailureCategory.COUNTRY_BLOCKED


def test_session_answers_keep_their_actionable_advice():
    bot = classify(_wrapped_by_youtube_dl(_no_formats(f"Sign in to confirm you\u2019re not a bot. {LOGIN_HINT}")))
    for advice in ("cookie_file", "sleep_interval_s", "rate_per_s", "JavaScript runtime", "js_runtimes"):
        assert advice in bot.message
    throttled = classify(_wrapped_by_youtube_dl(_no_formats(
        "Video unavailable. This content isn't available, try again later. " + RATE_LIMIT_NOTE)))
    assert "sleep_interval_s" in throttled.message and "rate-limited" in throttled.message


def test_a_premiere_is_not_retried_now_nor_gone():
    flaky = _Flaky(*[ExtractorError("Premieres in 3 hours", expected=True)] * 3)
    result = call_with_retries(flaky, RetryPolicy(attempts=5), lambda s: None, random.Random(0))
    assert result.failure.category is FailureCategory.UPCOMING and not result.failure.permanent
    assert flaky.calls == 1


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


# -- our bugs propagate; session refusals go to the breaker -----------------------------------------------------
def test_our_own_bugs_propagate_instead_of_being_classified():
    flaky = _Flaky(KeyError("requested_downloads"))
    with pytest.raises(KeyError):
        call_with_retries(flaky, RetryPolicy(attempts=4), lambda s: None, random.Random(0))
    assert flaky.calls == 1, "a bug is not retried"
    assert not is_platform_error(KeyError("x")) and not is_platform_error(TypeError("x"))
    for outside in (_http_error(503), DownloadError("x"), av.error.EOFError(541478725, "eof"), TimeoutError(),
                    ConnectionResetError(), AcquisitionError(FailureCategory.INCOMPLETE, "short")):
        assert is_platform_error(outside)


THROTTLED = ExtractorError("Video unavailable. This content isn't available, try again later. " + RATE_LIMIT_NOTE,
                           expected=True)


def test_session_refusals_back_off_without_spending_the_videos_attempts():
    sleeps: list[float] = []
    flaky = _Flaky(*[THROTTLED] * 3, _http_error(503))
    breaker = SessionBreaker(BreakerPolicy(backoffs=5, base_s=4.0, cap_s=100.0), sleeps.append, random.Random(1))
    result = call_with_retries(flaky, RetryPolicy(attempts=2, base_s=0.0), sleeps.append, random.Random(0), breaker)
    assert (result.value, result.attempts, flaky.calls) == ("ok", 5, 5)
    pauses = sleeps[:3]
    assert 2 <= pauses[0] <= 4 and 4 <= pauses[1] <= 8 and 8 <= pauses[2] <= 16, "equal jitter, doubling"


def test_a_session_still_refused_after_every_backoff_raises_session_refused():
    sleeps: list[float] = []
    flaky = _Flaky(*[THROTTLED] * 50)
    breaker = SessionBreaker(BreakerPolicy(backoffs=3, base_s=1.0), sleeps.append, random.Random(1))
    with pytest.raises(SessionRefused, match="session_rate_limited.*3 backoff") as refused:
        call_with_retries(flaky, RetryPolicy(attempts=10), sleeps.append, random.Random(0), breaker)
    assert (flaky.calls, len(sleeps)) == (4, 3)
    assert refused.value.failure.category is FailureCategory.SESSION_RATE_LIMITED
    with pytest.raises(SessionRefused):
        breaker.admit()  # every other worker of the batch stops at its next request
    assert flaky.calls == 4


def test_a_success_between_refusals_starts_the_backoff_count_again():
    breaker = SessionBreaker(BreakerPolicy(backoffs=1, base_s=0.0), lambda s: None, random.Random(0))
    for _ in range(3):
        flaky = _Flaky(THROTTLED)
        assert call_with_retries(flaky, RetryPolicy(), lambda s: None, random.Random(0), breaker).value == "ok"


def test_one_pause_serves_every_worker_that_met_the_refusal():
    """Workers refused by the same throttled wave wait out one pause together, not one each."""
    import threading

    started, pauses = threading.Barrier(4), []
    breaker = SessionBreaker(BreakerPolicy(backoffs=2, base_s=0.2), pauses.append, random.Random(0))

    def worker() -> None:
        calls = {"n": 0}

        def fetch() -> str:
            calls["n"] += 1
            if calls["n"] == 1:
                started.wait()  # all four attempts are under way before any refusal is seen
                raise THROTTLED
            return "ok"

        assert call_with_retries(fetch, RetryPolicy(), lambda s: None, random.Random(0), breaker).value == "ok"

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(pauses) == 1


@pytest.mark.parametrize("answer, category", [("session_rate_limited", FailureCategory.SESSION_RATE_LIMITED),
                                              ("bot_check", FailureCategory.BOT_CHECK)])
def test_the_sandbox_throttled_session_reaches_us_as_a_session_level_failure(platform, answer, category):
    """The sandbox's throttled wave, through yt-dlp like YouTube's: transient and session-wide, never the video's."""
    world = platform.server.world
    video = GroundTruth(world).ids(kind="relevant")[0]
    throttled = FaultConfig(rate=1.0, kinds=("throttled",), wave_s=60.0, wave_period_s=60.0)
    with SandboxServer(world, world.config.epoch, throttled) as server:
        moment = next(60.0 * slot for slot in range(1000) if server.faults.wave(60.0 * slot) == answer)
        server.faults.clock = lambda: moment
        failure = classify(_extraction_failure(platform, watch_url(server.base_url, video)))
    assert failure.category is category and failure.category.session_level and not failure.permanent
