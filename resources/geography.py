"""Where videos were uploaded from, as YouTube really says it: the YouTube Data API v3.

yt-dlp's `location` is the free text of a location pin ("WESTMINSTER") and flat search results lack it, so the
country comes from the Data API instead: `videos.list` gives a pin's latitude and longitude
(`recordingDetails.location`, no country), placed in the country of the nearest town of GeoNames' cities
(bundled with reverse-geocode, offline); a video without a pin takes its channel's stated country
(`channels.list`, `snippet.country`); a video with neither, or one the API no longer shows, is unknown.

Every request asks for 50 ids (the API's maximum) and first takes a token of the shared rate budget. 429, 5xx
and YouTube's rate-limit reasons are retried a few times with backoff and jitter; a refused key, a spent quota
or any other refusal stops with an error naming YouTube's reason. The key travels in the `X-Goog-Api-Key`
header, so it is in no URL, error message or log line.
"""

from __future__ import annotations

import csv
import json
import random
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httplib2
import pandas as pd

_CSV_LIMIT = csv.field_size_limit()
import reverse_geocode  # noqa: E402  (its import raises the process-wide CSV field limit to sys.maxsize)

csv.field_size_limit(_CSV_LIMIT)  # put back: the vote ledger rejects over-long fields at the standard limit
from dagster import ConfigurableResource, EnvVar
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from pydantic import Field

from resources.video_platform import validate_video_id

API_KEY_ENV = "YOUTUBE_API_KEY"
YOUTUBE_API_ENDPOINT = "https://youtube.googleapis.com/"
BATCH = 50  # ids per list call: the API's maximum
GEOGRAPHY_COLUMNS = ["youtube_id", "country", "source"]
RECORDING_LOCATION, CHANNEL, UNKNOWN = "recording_location", "channel", "unknown"
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})  # YouTube's 403s that pass

Acquire = Callable[[], Any]


class DataApiError(RuntimeError):
    """The Data API refused a request for good (bad key, spent quota, bad request): the run stops, saying why."""


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _reason(err: HttpError) -> tuple[str, str]:
    """YouTube's (reason, message) from an error answer's JSON; the HTTP reason phrase when it has none."""
    try:
        error = json.loads(err.content)["error"]
        return str(error["errors"][0]["reason"]), str(error["message"])
    except (ValueError, KeyError, IndexError, TypeError):
        return "", str(err.resp.reason)


def country_at(points: list[tuple[float, float]]) -> list[str]:
    """The ISO 3166-1 alpha-2 country of the nearest town to each (latitude, longitude)."""
    return [place["country_code"] for place in reverse_geocode.search(points)] if points else []


class YouTubeDataApi(ConfigurableResource):
    """The YouTube Data API v3 at `api_endpoint`; production's is YouTube's, with the key from the environment."""

    api_key: str = Field(description=f"Data API key; give it from the environment: EnvVar({API_KEY_ENV!r}).")
    api_endpoint: str = Field(default=YOUTUBE_API_ENDPOINT, description="Base URL of the API.")
    timeout_s: float = Field(default=30.0, gt=0, description="Per-request socket timeout.")
    attempts: int = Field(default=5, ge=1, description="Tries per request on 429, 5xx and rate-limit answers.")
    backoff_s: float = Field(default=1.0, ge=0, description="First retry's wait; doubled each retry, plus jitter.")

    def endpoint(self) -> str:
        return self.api_endpoint

    def client(self, http: httplib2.Http | None = None) -> Any:
        """A googleapiclient service from the discovery document it ships (offline); no credentials, the key
        goes in a header."""
        return build("youtube", "v3", http=http or httplib2.Http(timeout=self.timeout_s), static_discovery=True,
                     cache_discovery=False, client_options={"api_endpoint": self.endpoint()})

    def countries(self, video_ids: Iterable[str], acquire: Acquire, sleep: Callable[[float], None] = time.sleep,
                  client: Any = None) -> pd.DataFrame:
        """One row per distinct id: youtube_id, country (ISO alpha-2 or None), source (where it came from)."""
        ids = list(dict.fromkeys(validate_video_id(i) for i in video_ids))
        service = client or self.client()
        videos: dict[str, dict] = {}
        for batch in _chunks(ids, BATCH):
            # No maxResults: the API refuses it beside `id`; an id list answers every id it shows.
            answer = self._execute(service.videos().list(part="recordingDetails,snippet", id=",".join(batch)),
                                   acquire, sleep)
            videos.update((item["id"], item) for item in answer.get("items", []))
        pinned = {i: v["recordingDetails"]["location"] for i, v in videos.items()
                  if {"latitude", "longitude"} <= set(v.get("recordingDetails", {}).get("location", {}))}
        by_pin = dict(zip(pinned, country_at([(p["latitude"], p["longitude"]) for p in pinned.values()])))
        channel_of = {i: v["snippet"]["channelId"] for i, v in videos.items() if i not in by_pin}
        channels: dict[str, str | None] = {}
        for batch in _chunks(sorted(set(channel_of.values())), BATCH):
            answer = self._execute(service.channels().list(part="snippet", id=",".join(batch)), acquire, sleep)
            channels.update((item["id"], item.get("snippet", {}).get("country")) for item in answer.get("items", []))
        rows = []
        for video_id in ids:
            if video_id in by_pin:
                rows.append((video_id, by_pin[video_id], RECORDING_LOCATION))
            elif channels.get(channel_of.get(video_id)):
                rows.append((video_id, channels[channel_of[video_id]], CHANNEL))
            else:
                rows.append((video_id, None, UNKNOWN))
        return pd.DataFrame(rows, columns=GEOGRAPHY_COLUMNS)

    def _execute(self, request: Any, acquire: Acquire, sleep: Callable[[float], None]) -> dict:
        """Run one list request within the rate budget, retrying transient answers; DataApiError on refusal."""
        request.headers["x-goog-api-key"] = self.api_key
        for attempt in range(1, self.attempts + 1):
            acquire()
            try:
                return request.execute(num_retries=0)
            except HttpError as err:
                reason, message = _reason(err)
                status = err.resp.status
                transient = status in TRANSIENT_STATUS or reason in RATE_LIMIT_REASONS
                failure = f"HTTP {status} {reason or 'error'}: {message}"
            except (TimeoutError, socket.timeout, ConnectionError, httplib2.HttpLib2Error) as err:
                transient, failure = True, f"{type(err).__name__}: {err}"
            if not transient:
                raise DataApiError(f"the YouTube Data API refused the request ({failure}); check the API key "
                                   f"({API_KEY_ENV}), its quota and that the YouTube Data API v3 is enabled") from None
            if attempt < self.attempts:
                wait = self.backoff_s * 2 ** (attempt - 1)
                sleep(wait + random.uniform(0, wait))
        raise DataApiError(f"the YouTube Data API kept failing after {self.attempts} tries (last: {failure})")


def youtube_data_api() -> YouTubeDataApi:
    """Production's Data API: YouTube's endpoint, the key from the environment."""
    return YouTubeDataApi(api_key=EnvVar(API_KEY_ENV))
