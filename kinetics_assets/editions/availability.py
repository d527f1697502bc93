"""Link-rot: which of an edition's videos can still be played, and why the others cannot.

Each video's public metadata is requested once through the platform (yt-dlp, no media). A permanent failure
(removed, private, copyright, terminated account, country block, sign-in) marks the video gone with its
category; a transient one (throttling, outage, timeout) is retried with backoff and, if it persists, leaves the
video ``unknown`` — never gone: a flaky network must not delete clips from a dataset.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

import pandas as pd

from kinetics_assets.acquisition.failures import RetryPolicy, call_with_retries

AVAILABILITY_COLUMNS = ["youtube_id", "status", "category", "message", "attempts", "country", "upload_date", "height"]


def check_availability(
    video_ids: Iterable[str],
    fetch_metadata: Callable[[str], dict],
    *,
    retry: RetryPolicy,
    concurrency: int,
    sleep: Callable[[float], None],
    seed: int | None = None,
) -> pd.DataFrame:
    """One row per distinct video: ``available``, ``gone`` (permanent failure) or ``unknown`` (transient),
    with the public facts later stages use (upload country, upload date, source height) where it plays."""
    ids = sorted(set(video_ids))

    def check(index_and_id: tuple[int, str]) -> dict:
        index, video_id = index_and_id
        rng = random.Random(None if seed is None else seed * 1_000_003 + index)
        attempted = call_with_retries(lambda: fetch_metadata(video_id), retry, sleep, rng)
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
