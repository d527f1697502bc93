"""A refused session is never a video's fate: the link-rot check and clip acquisition under throttling.

Protects: a session-level answer (YouTube's session rate limit, bot check, 429) met while checking link-rot
pauses every probe and, once the session is given up, raises SessionRefused instead of marking any video gone
or unknown; a throttled wave that passes leaves the same table as no wave; our own bugs propagate and fail the
check; the step surfaces a refused session as a delayed Dagster retry. End to end on the sandbox: its
throttled wave met by the real link-rot fetcher (yt-dlp) leaves the clean table, or raises SessionRefused.
"""

from __future__ import annotations

import threading
import types

import dagster as dg
import pytest
from yt_dlp.utils import DownloadError, ExtractorError

from kinetics_assets.acquisition.failures import BreakerPolicy, RetryPolicy, SessionRefused
from kinetics_assets.editions.assets import _metadata_fetcher
from kinetics_assets.editions.availability import check_availability
from kinetics_assets.session_retry import RETRY_AFTER_S, retry_step_if_session_refused
from resources.token_bucket import TokenBucket
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES

pytestmark = pytest.mark.timeout(60)

IDS = [f"vid{i:08d}" for i in range(12)]
GONE = {IDS[3]: "Video unavailable. This video has been removed by the uploader"}
THROTTLED = ("Video unavailable. This content isn't available, try again later. The current session has been "
             "rate-limited by YouTube for up to an hour")


def _refusal(text: str) -> DownloadError:
    error = ExtractorError(text, expected=True, video_id="x", ie="youtube")
    return DownloadError(f"ERROR: {error}", (ExtractorError, error, None))


class Platform:
    """Answers metadata requests on a fake clock that only sleeping moves; from the fifth request on it refuses
    the session with YouTube's words for `throttled_s` seconds."""

    def __init__(self, throttled_s: float = 0.0, refusal: str = THROTTLED) -> None:
        self.throttled_s, self.refusal, self.calls, self.now = throttled_s, refusal, [], 0.0
        self.wave_start: float | None = None
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def fetch(self, video_id: str) -> dict:
        with self._lock:
            self.calls.append(video_id)
            if len(self.calls) == 5:
                self.wave_start = self.now
            if self.wave_start is not None and self.now < self.wave_start + self.throttled_s:
                raise _refusal(self.refusal)
        if video_id in GONE:
            raise DownloadError(f"ERROR: [youtube] {video_id}: {GONE[video_id]}")
        return {"id": video_id, "location": "US", "upload_date": "20200101", "height": 720}


def _check(platform: Platform, backoffs: int = 4, concurrency: int = 3):
    return check_availability(IDS, platform.fetch, retry=RetryPolicy(attempts=3, base_s=0.0), concurrency=concurrency,
                              sleep=platform.sleep, seed=0, breaker=BreakerPolicy(backoffs=backoffs, base_s=1.0))


def test_a_wave_that_passes_changes_no_videos_status():
    clean = _check(Platform())
    platform = Platform(throttled_s=2.5)
    throttled = _check(platform)
    assert platform.now >= 2.5 and len(platform.calls) > len(IDS), "the wave was met and waited out"
    columns = ["youtube_id", "status", "category"]
    assert throttled[columns].equals(clean[columns])
    assert set(clean.loc[clean["status"] == "gone", "youtube_id"]) == set(GONE)
    assert (clean["status"] != "unknown").all()


@pytest.mark.parametrize("refusal", [THROTTLED, "Sign in to confirm you\u2019re not a bot", "HTTP Error 429: Too Many Requests"])
def test_a_session_refused_for_good_marks_nothing_gone_or_unknown(refusal):
    platform = Platform(throttled_s=10_000, refusal=refusal)
    with pytest.raises(SessionRefused) as refused:
        _check(platform, backoffs=3)
    assert 3.5 <= platform.now <= 7, "bounded: three pauses (0.5-1, 1-2, 2-4 s) for the whole batch"
    assert len(platform.calls) < len(IDS) + 8, "the other probes stopped instead of each meeting the refusal"
    assert "not recorded as failed" in str(refused.value)


def test_a_bug_in_our_code_fails_the_check():
    def broken(video_id: str) -> dict:
        return {}["height"]

    with pytest.raises(KeyError):
        check_availability(IDS, broken, retry=RetryPolicy(), concurrency=2, sleep=lambda s: None)


def test_the_step_is_retried_later_when_the_session_is_refused():
    platform = Platform(throttled_s=10_000)
    with pytest.raises(dg.RetryRequested) as retry:
        with retry_step_if_session_refused():
            _check(platform, backoffs=1)
    assert retry.value.seconds_to_wait == RETRY_AFTER_S and retry.value.max_retries >= 1
    assert isinstance(retry.value.__cause__, SessionRefused)


# -- end to end on the sandbox: a throttled wave during the link-rot check ---------------------------------------
class FaultClock:
    """The sandbox's fault clock, moved only by the check's own (injected) sleeps."""

    def __init__(self, now: float) -> None:
        self.now, self._lock = now, threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def _sandbox_check(platform, ids, clock: FaultClock, breaker: BreakerPolicy = BreakerPolicy()):
    budget = types.SimpleNamespace(bucket=lambda: TokenBucket(rate_per_s=1000.0, burst=1000))  # RateLimit's part used
    return check_availability(ids, _metadata_fetcher(platform, budget),
                              retry=RetryPolicy(), concurrency=4, sleep=clock.sleep, seed=0, breaker=breaker)


def test_a_throttled_wave_during_the_sandbox_link_rot_check_changes_no_videos_status(tmp_path):
    fields = {"classes": list(DEMO_CLASSES[:3]), "relevant_per_class": 8, "distractors_per_class": 0,
              "compilations_per_class": 0, "annual_removal_rate": 0.5, "clock": "2022-01-01",
              "cache_dir": str(tmp_path)}
    clean_platform = SandboxPlatform(**fields)
    throttled_platform = SandboxPlatform(**fields, fault_rate=1.0, fault_kinds=["throttled"])
    try:
        ids = GroundTruth(clean_platform.server.world).ids(kind="relevant")
        clean = _sandbox_check(clean_platform, ids, FaultClock(0.0))
        faults = throttled_platform.server.faults
        start = next(float(t) for t in range(0, 3600) if faults.wave(t))  # the check begins inside a wave
        clock = FaultClock(start)
        faults.clock = clock
        throttled = _sandbox_check(throttled_platform, ids, clock)
        assert faults.injected["throttled"] > 0 and clock.now > start
        with pytest.raises(SessionRefused):  # a wave longer than the breaker's patience decides nothing either
            faults.clock = FaultClock(start)
            _sandbox_check(throttled_platform, ids, faults.clock, BreakerPolicy(backoffs=1, base_s=0.5))
    finally:
        clean_platform.shutdown()
        throttled_platform.shutdown()
    columns = ["youtube_id", "status", "category"]
    assert {"available", "gone"} <= set(clean["status"])
    assert throttled[columns].equals(clean[columns])
