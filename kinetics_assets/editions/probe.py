"""Probing a published video: the platform's cheap oEmbed answer first, the full metadata check only when needed.

oEmbed (YouTube's `/oembed`, the sandbox's equivalent) answers 200 for a public video with one small request and
no player page. Its other answers do not say why: 401 is private *or* embedding disabled, 403 not embeddable
here or signed-in only, 404 removed (or an edge's hiccup). Only those ambiguous answers pay for the full yt-dlp
metadata check, whose playability message `classify` turns into a category; 429, 5xx and transport errors are
classified as they are (session-level or transient) without spending another request. Every request first takes
a token from the platform's shared rate budget.
"""

from __future__ import annotations

import datetime
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from yt_dlp.networking.exceptions import HTTPError as YtdlpHTTPError

from kinetics_assets.acquisition.failures import (
    BreakerPolicy,
    RetryPolicy,
    SessionBreaker,
    SessionRefused,
    call_with_retries,
)
from kinetics_assets.editions.history import Answer, AvailabilityHistory, VideoStatus, answer_of
from resources.video_platform import VideoPlatform, validate_video_id

AMBIGUOUS_OEMBED = frozenset({401, 403, 404})


def check_video(video_id: str, oembed: Callable[[str], object], metadata: Callable[[str], object]) -> None:
    """Return if the video plays; raise the platform's answer otherwise (the oEmbed one unless ambiguous)."""
    try:
        oembed(video_id)
        return
    except YtdlpHTTPError as err:
        if err.status not in AMBIGUOUS_OEMBED:
            raise
    metadata(video_id)


def platform_check(platform: VideoPlatform, take_token: Callable[[], object]) -> Callable[[str], None]:
    """`check_video` through the platform's yt-dlp (its cookies, proxy, timeouts); one thread only."""
    ydl = platform.youtube_dl(extractor_retries=0, retries=0)

    def oembed(video_id: str) -> None:
        take_token()
        with ydl.urlopen(platform.probe_url(validate_video_id(video_id))) as response:
            response.read()

    def metadata(video_id: str) -> None:
        take_token()
        ydl.extract_info(platform.watch_url(video_id), download=False, process=False)

    return lambda video_id: check_video(video_id, oembed, metadata)


@dataclass(frozen=True)
class Probed:
    """What a batch of probes recorded; `refused` is set when a refused session stopped it early."""

    statuses: dict[str, VideoStatus]
    answers: list[Answer]
    refused: SessionRefused | None = None


def probe_videos(
    video_ids: Iterable[str],
    check: Callable[[str], None],
    history: AvailabilityHistory,
    *,
    gone_after: datetime.timedelta,
    retry: RetryPolicy,
    breaker: BreakerPolicy,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    sleep: Callable[[float], None] = time.sleep,
    keep_going: Callable[[], bool] = lambda: True,
) -> Probed:
    """Probe each video in turn and record every answer at once (a crash loses nothing already asked).

    Transient answers are retried per `retry`; a session-level one pauses per `breaker` and, once the session
    is given up, is recorded (it counts for nothing) and ends the batch: the rest stay unprobed. `keep_going`
    is asked before each video (a sensor's deadline)."""
    session = SessionBreaker(breaker, sleep, random.Random())
    statuses: dict[str, VideoStatus] = {}
    answers: list[Answer] = []
    for video_id in dict.fromkeys(video_ids):
        if not keep_going():
            break
        try:
            attempted = call_with_retries(lambda: check(video_id), retry, sleep, breaker=session)
        except SessionRefused as refused:
            answers.append(answer_of(video_id, refused.failure))
            statuses[video_id] = history.record(answers[-1], now(), gone_after)
            return Probed(statuses, answers, refused)
        answers.append(answer_of(video_id, attempted.failure))
        statuses[video_id] = history.record(answers[-1], now(), gone_after)
    return Probed(statuses, answers)
