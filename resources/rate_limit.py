"""A request budget per video platform, shared by every run and process of the deployment.

Platforms throttle (YouTube answers bursts with its session rate limit, 429s and bot checks), so every request
the pipeline makes (search, metadata, preview decode, clip download) first takes a token. The budget's state
is a row in the ledgers' database (`Ledgers.rate_budget`), so a backfill of a hundred per-class runs in as
many processes draws on one budget instead of a hundred.

The production default is YouTube-safe: yt-dlp's maintainers report that a session is rate-limited after about
300 videos an hour (its `-t sleep` preset waits 10-20 s between videos), and each video costs us about three
requests (metadata, preview, clip): 300 x 3 per hour is 0.25 requests per second.
"""

from __future__ import annotations

import threading

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from resources.ledgers import Ledgers
from resources.token_bucket import Bucket

YOUTUBE_RATE_PER_S = 300 * 3 / 3600
YOUTUBE_BURST = 3  # one video's requests back to back


class RateLimit(ConfigurableResource):
    """The request budget `budget` of one platform, kept in `ledgers`; configure one per platform.

    Every RateLimit with the same ledgers and budget name, in any process, draws on one bucket, so all
    workers of all runs together stay within `rate_per_s`. Give every process of a deployment the same rate.
    """

    ledgers: Ledgers
    budget: str = Field(default="youtube", description="The budget's name; equal names share one bucket.")
    rate_per_s: float = Field(default=YOUTUBE_RATE_PER_S, gt=0, description="Sustained requests per second, "
                                                                            "all processes together.")
    burst: int = Field(default=YOUTUBE_BURST, ge=1, description="Requests allowed back to back after a quiet spell.")

    _bucket: Bucket | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def bucket(self) -> Bucket:
        with self._lock:
            if self._bucket is None:
                self._bucket = self.ledgers.rate_budget(self.budget, self.rate_per_s, self.burst)
            return self._bucket
