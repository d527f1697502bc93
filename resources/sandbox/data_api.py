"""The sandbox's YouTube Data API v3: `videos.list` and `channels.list` as YouTube answers them.

The world knows each video's upload country (its channel's). YouTube shows it less directly, and so does this:
some videos carry a recording location pin (`recordingDetails.location`, latitude and longitude, no country),
most channels state a country (`snippet.country`), some neither. A request needs the API key (`key` parameter
or `X-Goog-Api-Key` header); a wrong key, a missing one and a spent daily quota are answered in YouTube's
error JSON. Videos the platform does not show (removed, private, never uploaded) are left out of `items`.
"""

from __future__ import annotations

import hashlib
import threading
from http import HTTPStatus
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resources.sandbox.world import VideoMetadata, World

VIDEOS_PATH = "/youtube/v3/videos"
CHANNELS_PATH = "/youtube/v3/channels"
SANDBOX_API_KEY = "sandbox-data-api-key"  # not a secret: the local server's own key
MAX_IDS = 50  # as YouTube: at most 50 ids per list call
RECORDING_PIN_SHARE = 0.3  # videos whose uploader dropped a location pin
CHANNEL_COUNTRY_SHARE = 0.85  # channels (with a country) that state it in their settings
# A city of every country the world draws uploads from: where a location pin drops.
CITY_OF = {
    "ZA": (-26.2041, 28.0473), "NG": (6.5244, 3.3792), "KE": (-1.2921, 36.8219), "EG": (30.0444, 31.2357),
    "IN": (19.0760, 72.8777), "JP": (35.6762, 139.6503), "KR": (37.5665, 126.9780), "PH": (14.5995, 120.9842),
    "ID": (-6.2088, 106.8456), "TR": (41.0082, 28.9784), "TH": (13.7563, 100.5018), "VN": (21.0278, 105.8342),
    "MY": (3.1390, 101.6869), "GB": (51.5072, -0.1276), "DE": (52.5200, 13.4050), "FR": (48.8566, 2.3522),
    "ES": (40.4168, -3.7038), "IT": (41.9028, 12.4964), "NL": (52.3676, 4.9041), "PL": (52.2297, 21.0122),
    "RU": (55.7558, 37.6173), "PT": (38.7223, -9.1393), "SE": (59.3293, 18.0686), "BR": (-23.5505, -46.6333),
    "MX": (19.4326, -99.1332), "AR": (-34.6037, -58.3816), "CO": (4.7110, -74.0721), "CL": (-33.4489, -70.6693),
    "PE": (-12.0464, -77.0428), "VE": (10.4806, -66.9036), "US": (40.7128, -74.0060), "CA": (43.6532, -79.3832),
    "AU": (-33.8688, 151.2093), "NZ": (-36.8485, 174.7633),
}


def _drawn(name: str, salt: str) -> float:
    """A fixed number in [0, 1) for `name`: the same video or channel always gets the same answer."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{name}".encode()).digest()[:8], "big") / 2**64


def _error(status: HTTPStatus, message: str, reason: str, domain: str, rpc_status: str) -> tuple[HTTPStatus, dict]:
    return status, {"error": {"code": int(status), "message": message, "status": rpc_status,
                              "errors": [{"message": message, "domain": domain, "reason": reason}]}}


class DataApi:
    """The API over one world: `answer(path, query, key)` -> (HTTP status, JSON body). Set `quota` to limit units."""

    def __init__(self, world: World, api_key: str = SANDBOX_API_KEY, quota: int | None = None) -> None:
        self.world = world
        self.api_key = api_key
        self.quota = quota  # list calls left today (each costs YouTube's 1 unit); None = unlimited
        self._lock = threading.Lock()
        self._channel_countries: dict[str, str | None] | None = None

    def answer(self, path: str, query: dict[str, list[str]], key: str | None,
               shown: Callable[[str], VideoMetadata | None]) -> tuple[HTTPStatus, dict[str, Any]]:
        """`shown(video_id)` is the video's public metadata if the platform shows it today, else None."""
        if not key:
            return _error(HTTPStatus.FORBIDDEN, "Method doesn't allow unregistered callers (callers without "
                          "established identity). Please use API Key or other form of API consumer identity to "
                          "call this API.", "forbidden", "global", "PERMISSION_DENIED")
        if key != self.api_key:
            return _error(HTTPStatus.BAD_REQUEST, "API key not valid. Please pass a valid API key.", "badRequest",
                          "global", "INVALID_ARGUMENT")
        with self._lock:
            if self.quota is not None and self.quota <= 0:
                return _error(HTTPStatus.FORBIDDEN, "The request cannot be completed because you have exceeded "
                              "your quota.", "quotaExceeded", "youtube.quota", "PERMISSION_DENIED")
            if self.quota is not None:
                self.quota -= 1
        ids = [i for value in query.get("id", []) for i in value.split(",") if i]
        if not ids or len(ids) > MAX_IDS:
            return _error(HTTPStatus.BAD_REQUEST, f"The request specifies 1 to {MAX_IDS} ids; it has {len(ids)}.",
                          "invalidFilters", "youtube.parameter", "INVALID_ARGUMENT")
        if path == VIDEOS_PATH:
            items = [self._video(meta) for meta in map(shown, ids) if meta is not None]
            return HTTPStatus.OK, {"kind": "youtube#videoListResponse", "items": items}
        items = [self._channel(i) for i in ids if i in self._countries()]
        return HTTPStatus.OK, {"kind": "youtube#channelListResponse", "items": items}

    def _video(self, meta: VideoMetadata) -> dict[str, Any]:
        item = {"kind": "youtube#video", "id": meta.id,
                "snippet": {"title": meta.title, "channelId": meta.channel_id, "channelTitle": meta.channel},
                "recordingDetails": {}}
        if meta.country in CITY_OF and _drawn(meta.id, "pin") < RECORDING_PIN_SHARE:
            latitude, longitude = CITY_OF[meta.country]
            item["recordingDetails"] = {"location": {"latitude": latitude, "longitude": longitude, "altitude": 0.0}}
        return item

    def _channel(self, channel_id: str) -> dict[str, Any]:
        snippet: dict[str, Any] = {"title": channel_id}
        country = self._countries()[channel_id]
        if country is not None and _drawn(channel_id, "channel") < CHANNEL_COUNTRY_SHARE:
            snippet["country"] = country
        return {"kind": "youtube#channel", "id": channel_id, "snippet": snippet}

    def _countries(self) -> dict[str, str | None]:
        """Every channel's country, read once from the world."""
        with self._lock:
            if self._channel_countries is None:
                self._channel_countries = {r.channel_id: r.country for r in self.world.iter_records()}
            return self._channel_countries
