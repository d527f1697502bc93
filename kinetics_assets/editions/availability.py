"""Link-rot: which of an edition's videos can still be played, and why the others cannot.

Each video's public metadata is requested once through the platform (yt-dlp, no media). A permanent failure
(removed, private, copyright, terminated account, country block, sign-in, members-only) marks the video gone
with its category; a transient one (outage, timeout) is retried with backoff and, if it persists, leaves the
video ``unknown``, as does a premiere not out yet — never gone: a flaky network must not delete clips from a
dataset. A session-level answer (throttled, bot check, captcha) says nothing about any video: the check pauses
every probe, backs off, and if the session stays refused raises `SessionRefused` instead of returning a table,
so not one video's status is decided from it.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

import pandas as pd

from kinetics_assets.acquisition.failures import BreakerPolicy, RetryPolicy, SessionBreaker, call_with_retries

AVAILABILITY_COLUMNS = ["youtube_id", "status", "category", "message", "attempts", "country", "upload_date", "height"]


def check_availability(
    video_ids: Iterable[str],
    fetch_metadata: Callable[[str], dict],
    *,
    retry: RetryPolicy,
    concurrency: int,
    sleep: Callable[[float], None],
    seed: int | None = None,
    breaker: BreakerPolicy = BreakerPolicy(),
) -> pd.DataFrame:
    """One row per distinct video: ``available``, ``gone`` (permanent failure) or ``unknown`` (transient, or not
    out yet), with the public facts later stages use (upload country, upload date, source height) where it
    plays. Raises `SessionRefused` when the platform refuses the session through every `breaker` backoff."""
    ids = sorted(set(video_ids))
    session = SessionBreaker(breaker, sleep, random.Random(None if seed is None else f"{seed}/breaker"))

    def check(index_and_id: tuple[int, str]) -> dict:
        index, video_id = index_and_id
        rng = random.Random(None if seed is None else seed * 1_000_003 + index)
        attempted = call_with_retries(lambda: fetch_metadata(video_id), retry, sleep, rng, session)
        failure, info = attempted.failure, attempted.value or {}
        if failure is None:
            status, category, message = "available", None, None
        else:
            status = "gone" if failure.permanent else "unknown"
            category, message = failure.category.label, failure.message
        return {"youtube_id": video_id, "status": status, "category": category, "message": message,
                "attempts": attempted.attempts, "country": info.get("location"),
                "upload_date": info.get("upload_date"), "height": info.get("height")}

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="probe") as pool:
        rows = list(pool.map(check, enumerate(ids)))
    return pd.DataFrame(rows, columns=AVAILABILITY_COLUMNS)
