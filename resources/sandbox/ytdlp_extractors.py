"""yt-dlp extractors for the sandbox platform, so the pipeline drives it exactly like YouTube.

`SandboxIE` turns a watch URL into a standard info dict (or raises yt-dlp's standard errors
with the platform's message for unavailable videos); `SandboxSearchIE` makes
`sandboxsearchN:query` work like `ytsearchN:query`. Register both before yt-dlp's defaults,
or the generic extractor claims every URL. The search extractor learns the server from
`extractor_args={"sandboxsearch": {"base_url": [url]}}`; watch URLs carry their own host.
"""

from __future__ import annotations

import datetime

from yt_dlp.extractor.common import InfoExtractor, SearchInfoExtractor
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import ExtractorError

from resources.sandbox.server import (
    MAX_SEARCH_PAGE,
    PLAYER_API_PATH,
    SEARCH_PATH,
    watch_url,
)

_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_VIDEO_FIELDS = ("title", "description", "channel", "channel_id", "duration", "width", "height", "fps", "view_count")


def _is_transient(err: ExtractorError) -> bool:
    """Worth retrying: rate limits, outages, dropped connections and short reads."""
    cause = err.cause
    if isinstance(cause, HTTPError):
        return cause.status in _TRANSIENT_STATUS
    return isinstance(cause, TransportError)


def _info_fields(meta: dict) -> dict:
    """yt-dlp's standard info-dict fields from the platform's public metadata."""
    info = {key: meta.get(key) for key in _VIDEO_FIELDS}
    info.update(
        id=meta["id"],
        uploader=meta.get("channel"),
        uploader_id=meta.get("channel_id"),
        upload_date=meta.get("upload_date"),
        timestamp=_timestamp(meta.get("upload_date")),
        location=meta.get("country"),
        availability="public",
    )
    return info


def _timestamp(upload_date: str | None) -> int | None:
    if not upload_date:
        return None
    day = datetime.datetime.strptime(upload_date, "%Y%m%d").replace(tzinfo=datetime.UTC)
    return int(day.timestamp())


class _SandboxBaseIE(InfoExtractor):
    def _fetch_json(self, url: str, video_id: str, note: str, query: dict) -> object:
        """GET JSON, retrying transient failures `extractor_retries` times like the YouTube IE does."""
        for retry in self.RetryManager():
            try:
                return self._download_json(url, video_id, note=note, query=query, expected_status=404)
            except ExtractorError as err:
                if not _is_transient(err):
                    raise
                retry.error = err


def _reason(status: dict) -> str:
    """The reason as yt-dlp's YouTube extractor words it (extractor/youtube/_video.py): the error screen's
    subreason joined to the reason (except after a sign-in request), and yt-dlp's note on a session rate limit."""
    reason = status.get("reason") or "Video unavailable"
    screen = (status.get("errorScreen") or {}).get("playerErrorMessageRenderer") or {}
    subreason = "".join(run.get("text", "") for run in (screen.get("subreason") or {}).get("runs", [])).strip()
    if subreason and subreason != reason and "sign in" not in reason.lower():
        reason += f". {subreason}"
    if "This content isn't available, try again later" in reason:
        reason = (f"{reason.strip().removesuffix('.')}. The current session has been rate-limited by YouTube for "
                  "up to an hour")
    return reason


class SandboxIE(_SandboxBaseIE):
    IE_NAME = "sandbox"
    IE_DESC = "Local sandbox video platform"
    _VALID_URL = r"(?P<base>https?://127\.0\.0\.1:\d+)/watch\?(?:[^#]*&)?v=(?P<id>[A-Za-z0-9_-]{11})(?![A-Za-z0-9_-])"

    def _real_extract(self, url: str) -> dict:
        base, video_id = self._match_valid_url(url).group("base", "id")
        response = self._fetch_json(f"{base}{PLAYER_API_PATH}", video_id, "Downloading player API JSON", {"v": video_id})
        self._raise_unplayable(response.get("playabilityStatus") or {}, video_id)
        details = response["videoDetails"]
        formats = [
            {
                "format_id": str(fmt["itag"]),
                "format_note": fmt.get("qualityLabel"),
                "url": fmt["url"],
                "ext": "mp4",
                "protocol": "http",
                "width": fmt.get("width"),
                "height": fmt.get("height"),
                "fps": fmt.get("fps"),
                "vcodec": "avc1",
                "acodec": "none",
            }
            for fmt in response["streamingData"]["formats"]
        ]
        return {**_info_fields(details), "formats": formats, "webpage_url": watch_url(base, video_id)}

    def _raise_unplayable(self, status: dict, video_id: str) -> None:
        """Raise yt-dlp's standard error for an unplayable video, carrying the platform's reason."""
        kind, reason = status.get("status"), _reason(status)
        if kind == "OK":
            return
        if kind == "UNPLAYABLE" and "country" in reason.lower():
            self.raise_geo_restricted(reason)
        if kind == "LOGIN_REQUIRED":
            self.raise_login_required(reason, method="cookies")
        raise ExtractorError(f"{video_id}: {reason}", expected=True, video_id=video_id)


class SandboxSearchIE(SearchInfoExtractor, _SandboxBaseIE):
    IE_NAME = "sandbox:search"
    IE_DESC = "Local sandbox video platform search"
    _SEARCH_KEY = "sandboxsearch"
    _MAX_RESULTS = 1000

    def _search_results(self, query: str):
        base = self._base_url()
        for page in range(-(-self._MAX_RESULTS // MAX_SEARCH_PAGE)):
            results = self._fetch_json(
                f"{base}{SEARCH_PATH}", query, f"Downloading search page {page + 1}",
                {"search_query": query, "n": MAX_SEARCH_PAGE, "page": page},
            )
            for meta in results:
                yield self.url_result(watch_url(base, meta["id"]), SandboxIE, **_info_fields(meta))
            if len(results) < MAX_SEARCH_PAGE:
                return

    def _base_url(self) -> str:
        urls = self._configuration_arg("base_url", ie_key="sandboxsearch", casesense=True)
        if len(urls) != 1:
            raise ExtractorError(
                'sandboxsearch needs exactly one server: extractor_args={"sandboxsearch": {"base_url": [url]}}',
                expected=True,
            )
        return urls[0].rstrip("/")
