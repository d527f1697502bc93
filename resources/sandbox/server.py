"""The sandbox video platform served over HTTP on 127.0.0.1.

Shaped like the real platform so the pipeline reaches it through the same code paths as
production (yt-dlp extractors, ffmpeg over HTTP, an oEmbed probe): a search endpoint, a watch
page embedding the player response, a JSON player API, seekable media with HTTP Range support,
oEmbed, and the Data API's video and channel lists (data_api.py). Unavailable videos answer with the
platform's own playability messages, and a throttled session (a fault wave, see faults.py) with YouTube's
session-level ones. The clock is settable so tests can
move time past a removal date.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import html
import json
import logging
import re
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple, Self
from urllib.parse import parse_qs, urlencode, urlsplit

from resources.sandbox.clock import FileClock
from resources.sandbox.data_api import CHANNELS_PATH, VIDEOS_PATH, DataApi
from resources.sandbox.faults import THROTTLED, FaultConfig, FaultInjector
from resources.sandbox.render import preview_size
from resources.video_platform import VIDEO_ID_RE, validate_video_id

if TYPE_CHECKING:
    from resources.sandbox.world import Availability, VideoMetadata, World

log = logging.getLogger(__name__)

SEARCH_PATH = "/results"
WATCH_PATH = "/watch"
PLAYER_API_PATH = "/api/player"
OEMBED_PATH = "/oembed"
MEDIA_PREFIX = "/media/"
PREVIEW_SUFFIX = ".preview.mp4"  # the low-resolution rendition, like a platform's 144p
MAX_SEARCH_PAGE = 50
REQUEST_LOG_SIZE = 100_000  # arrival times kept for request_times(): a long-running server must not grow forever
MAX_QUERY_CHARS = 500
_CHUNK = 64 * 1024
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
# The platform's playability status for an unavailable video, by reason (others: "ERROR").
_UNPLAYABLE_STATUS = {
    "private": "LOGIN_REQUIRED",
    "sign_in_required": "LOGIN_REQUIRED",
    "country_blocked": "UNPLAYABLE",
}
# oEmbed answers like YouTube's: 401 private, 403 not embeddable here, 404 gone.
_OEMBED_STATUS = {
    "private": HTTPStatus.UNAUTHORIZED,
    "sign_in_required": HTTPStatus.FORBIDDEN,
    "country_blocked": HTTPStatus.FORBIDDEN,
}


class Listing(NamedTuple):
    """A video the platform has (uploaded, possibly no longer available) as of its clock."""

    meta: VideoMetadata
    availability: Availability


class BadRequest(ValueError):
    """A request the platform refuses with 400; the message names the offending parameter."""


def _request_video_id(raw: str) -> str:
    """A video id taken from a request, validated before it touches the world or a path."""
    try:
        return validate_video_id(raw)
    except ValueError as err:
        raise BadRequest(str(err)) from None


def watch_url(base_url: str, video_id: str) -> str:
    return f"{base_url}{WATCH_PATH}?{urlencode({'v': validate_video_id(video_id)})}"


def media_url(base_url: str, video_id: str, preview: bool = False) -> str:
    suffix = PREVIEW_SUFFIX if preview else ".mp4"
    return f"{base_url}{MEDIA_PREFIX}{validate_video_id(video_id)}{suffix}"


def oembed_url(base_url: str, video_id: str) -> str:
    return f"{base_url}{OEMBED_PATH}?{urlencode({'url': watch_url(base_url, video_id), 'format': 'json'})}"


def player_response(video_id: str, found: Listing | None, base_url: str) -> dict[str, Any]:
    """The player response for a video: playability status, and details + formats when playable."""
    if found is None:
        return {"playabilityStatus": {"status": "ERROR", "reason": "Video unavailable"}, "videoId": video_id}
    meta, availability = found
    small_width, small_height = preview_size(meta.width, meta.height)
    if not availability.available:
        return {
            "playabilityStatus": {
                "status": _UNPLAYABLE_STATUS.get(availability.reason, "ERROR"),
                "reason": availability.message,
            },
            "videoId": video_id,
        }
    return {
        "playabilityStatus": {"status": "OK"},
        "videoId": video_id,
        "videoDetails": dataclasses.asdict(meta),
        "streamingData": {
            "formats": [
                {
                    "itag": 18,
                    "url": media_url(base_url, video_id),
                    "mimeType": 'video/mp4; codecs="avc1"',
                    "width": meta.width,
                    "height": meta.height,
                    "fps": meta.fps,
                    "qualityLabel": f"{meta.height}p",
                },
                {
                    "itag": 160,
                    "url": media_url(base_url, video_id, preview=True),
                    "mimeType": 'video/mp4; codecs="avc1"',
                    "width": small_width,
                    "height": small_height,
                    "fps": meta.fps,
                    "qualityLabel": f"{small_height}p",
                },
            ]
        },
    }


# What YouTube's player response says to a throttled session (playabilityStatus with its errorScreen), by answer.
_THROTTLED_STATUS = {
    "session_rate_limited": {
        "status": "ERROR",
        "reason": "Video unavailable",
        "errorScreen": {"playerErrorMessageRenderer": {
            "reason": {"simpleText": "Video unavailable"},
            "subreason": {"runs": [{"text": "This content isn't available, try again later."}]},
        }},
    },
    "bot_check": {
        "status": "LOGIN_REQUIRED",
        "reason": "Sign in to confirm you\u2019re not a bot",
        "errorScreen": {"playerErrorMessageRenderer": {
            "reason": {"runs": [{"text": "Sign in to confirm you\u2019re not a bot"}]},
            "subreason": {"runs": [{"text": "This helps protect our community. "}, {"text": "Learn more"}]},
        }},
    },
}


def throttled_player_response(video_id: str, answer: str) -> dict[str, Any]:
    """The player response a throttled session gets for any video: no details, no formats, YouTube's words."""
    return {"playabilityStatus": _THROTTLED_STATUS[answer], "videoId": video_id}


def watch_page(response: dict[str, Any]) -> str:
    """An HTML watch page embedding the player response the way the real platform does."""
    title = response.get("videoDetails", {}).get("title") or response["playabilityStatus"].get("reason", "")
    payload = json.dumps(response).replace("</", "<\\/")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<script>var ytInitialPlayerResponse = {payload};</script></body></html>"
    )


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte positions for a single `bytes=` range, or None if unsatisfiable/malformed."""
    match = _RANGE_RE.fullmatch(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first_s, last_s = match.groups()
    if first_s == "":  # suffix range: the last N bytes
        suffix = int(last_s)
        return (max(size - suffix, 0), size - 1) if suffix > 0 and size > 0 else None
    first = int(first_s)
    last = min(int(last_s), size - 1) if last_s else size - 1
    return (first, last) if first <= last and first < size else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SandboxPlatform/1.0"
    timeout = 30  # idle keep-alive connections must not pin threads forever
    server: _SandboxHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def _dispatch(self, head: bool) -> None:
        sandbox = self.server.sandbox
        sandbox.note_request()
        url = urlsplit(self.path)
        try:
            route = self._route(url.path)
            if route is None:
                return self._send_text(HTTPStatus.NOT_FOUND, f"no such page: {url.path}", head)
            fault = sandbox.faults.decide(self.path)
            if fault is not None and fault.kind == THROTTLED:
                return self._throttled(route, parse_qs(url.query), fault.answer, head)
            if fault is not None and fault.kind in ("429", "503", "timeout"):
                return self._inject(fault.kind)
            route(sandbox, url.path, parse_qs(url.query), head, truncate=fault is not None and fault.kind == "truncated")
        except BadRequest as err:
            self._send_text(HTTPStatus.BAD_REQUEST, f"Bad Request: {err}", head)

    def _route(self, path: str):
        if path.startswith(MEDIA_PREFIX):
            return self._media
        return {
            SEARCH_PATH: self._search,
            WATCH_PATH: self._watch,
            PLAYER_API_PATH: self._player,
            OEMBED_PATH: self._oembed,
            VIDEOS_PATH: self._data_api,
            CHANNELS_PATH: self._data_api,
        }.get(path)

    # -- endpoints -------------------------------------------------------------------------
    def _search(self, sandbox: SandboxServer, path: str, query: dict, head: bool, truncate: bool) -> None:
        text = _single(query, "search_query")
        if not text.strip() or len(text) > MAX_QUERY_CHARS:
            raise BadRequest(f"search_query must be 1..{MAX_QUERY_CHARS} characters")
        n = _int_param(query, "n", default=20, low=1, high=MAX_SEARCH_PAGE)
        page = _int_param(query, "page", default=0, low=0, high=10_000)
        found = sandbox.world.search(text, limit=(page + 1) * n, on=sandbox.clock)[page * n :]
        self._send_json(HTTPStatus.OK, [dataclasses.asdict(m) for m in found], head, truncate)

    def _watch(self, sandbox: SandboxServer, path: str, query: dict, head: bool, truncate: bool) -> None:
        status, response = sandbox.player_response(_request_video_id(_single(query, "v")))
        self._send(status, watch_page(response).encode(), "text/html; charset=utf-8", head, truncate)

    def _player(self, sandbox: SandboxServer, path: str, query: dict, head: bool, truncate: bool) -> None:
        status, response = sandbox.player_response(_request_video_id(_single(query, "v")))
        self._send_json(status, response, head, truncate)

    def _media(self, sandbox: SandboxServer, path: str, query: dict, head: bool, truncate: bool) -> None:
        name = path[len(MEDIA_PREFIX) :]
        preview = name.endswith(PREVIEW_SUFFIX)
        if not name.endswith(".mp4"):
            return self._send_text(HTTPStatus.NOT_FOUND, f"no such media: {name}", head)
        video_id = _request_video_id(name[: -len(PREVIEW_SUFFIX if preview else ".mp4")])
        found = sandbox.lookup(video_id)
        if found is None:
            return self._send_text(HTTPStatus.NOT_FOUND, f"no such video: {video_id}", head)
        if not found.availability.available:
            return self._send_text(HTTPStatus.FORBIDDEN, "Forbidden", head)
        self._send_file(sandbox.world.media_path(video_id, preview=preview), head, truncate)

    def _oembed(self, sandbox: SandboxServer, path: str, query: dict, head: bool, truncate: bool) -> None:
        target = urlsplit(_single(query, "url"))
        if target.path != WATCH_PATH:
            raise BadRequest(f"url must be a watch URL ({WATCH_PATH}?v=ID), got {target.path!r}")
        video_id = _request_video_id(_single(parse_qs(target.query), "v"))
        found = sandbox.lookup(video_id)
        if found is None:
            return self._send_text(HTTPStatus.NOT_FOUND, "Not Found", head)
        meta, availability = found
        if not availability.available:
            status = _OEMBED_STATUS.get(availability.reason, HTTPStatus.NOT_FOUND)
            return self._send_text(status, status.phrase, head)
        base = sandbox.base_url
        body = {
            "type": "video",
            "version": "1.0",
            "title": meta.title,
            "author_name": meta.channel,
            "author_url": f"{base}/channel/{meta.channel_id}",
            "provider_name": "Sandbox",
            "provider_url": f"{base}/",
            "width": meta.width,
            "height": meta.height,
            "html": f'<iframe src="{base}/embed/{video_id}" width="{meta.width}" height="{meta.height}"></iframe>',
        }
        self._send_json(HTTPStatus.OK, body, head, truncate)

    def _data_api(self, sandbox: SandboxServer, path: str, query: dict, head: bool, truncate: bool) -> None:
        key = self.headers.get("X-Goog-Api-Key") or next(iter(query.get("key", [])), None)
        status, body = sandbox.data_api.answer(path, query, key, sandbox.shown)
        self._send_json(status, body, head, truncate)

    # -- response writing ------------------------------------------------------------------
    def _throttled(self, route, query: dict, answer: str, head: bool) -> None:
        """A throttled session: the player says so in its playability status; everything else answers 429."""
        if route in (self._watch, self._player):
            response = throttled_player_response(_request_video_id(_single(query, "v")), answer)
            if route == self._watch:
                return self._send(HTTPStatus.OK, watch_page(response).encode(), "text/html; charset=utf-8", head)
            return self._send_json(HTTPStatus.OK, response, head)
        self._inject("429")

    def _inject(self, fault: str) -> None:
        config = self.server.sandbox.faults.config
        if fault == "timeout":
            time.sleep(config.stall_s)
            self.close_connection = True  # drop the connection without a response
        elif fault == "429":
            self._send(HTTPStatus.TOO_MANY_REQUESTS, b"Too Many Requests", "text/plain",
                       extra={"Retry-After": str(config.retry_after_s)})
        else:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"Service Unavailable", "text/plain")

    def _send_text(self, status: HTTPStatus, text: str, head: bool) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8", head)

    def _send_json(self, status: HTTPStatus, obj: Any, head: bool, truncate: bool = False) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", head, truncate)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, head: bool = False,
              truncate: bool = False, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(body)

    def _send_file(self, path, head: bool, truncate: bool) -> None:
        size = path.stat().st_size
        header = self.headers.get("Range")
        first, last, status = 0, size - 1, HTTPStatus.OK
        if header is not None:
            span = parse_range(header, size)
            if span is None:
                return self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", "text/plain", head,
                                  extra={"Content-Range": f"bytes */{size}"})
            (first, last), status = span, HTTPStatus.PARTIAL_CONTENT
        length = last - first + 1
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if head:
            return
        to_send = length // 2 if truncate else length
        with path.open("rb") as media:
            media.seek(first)
            while to_send > 0:
                chunk = media.read(min(_CHUNK, to_send))
                if not chunk:
                    break
                self.wfile.write(chunk)
                to_send -= len(chunk)
        if truncate:
            self.close_connection = True


def _single(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    if not values or len(values) != 1:
        raise BadRequest(f"expected exactly one {name!r} parameter")
    return values[0]


def _int_param(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    if name not in query:
        return default
    raw = _single(query, name)
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer in [{low}, {high}], got {raw!r}")
    return int(raw)


class _SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-response is normal (ffmpeg does it when it seeks); anything else is a bug."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class SandboxServer:
    """Serves a World on 127.0.0.1 at a free port; start()/stop() or use as a context manager."""

    def __init__(self, world: World, clock: datetime.date | FileClock, faults: FaultConfig | None = None) -> None:
        self.world = world
        self.faults = FaultInjector(faults or FaultConfig())  # its `clock` (wall time) decides when faults fall
        self._clock = clock  # a fixed date, or the file every process serving this world reads
        self._httpd: _SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._requests_lock = threading.Lock()
        self._request_times: collections.deque[float] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self.data_api = DataApi(world)  # YouTube's Data API v3 over the same world (tests may set its quota)

    def note_request(self) -> None:
        with self._requests_lock:
            self._request_times.append(time.monotonic())

    def request_times(self) -> list[float]:
        """When each of the latest requests arrived (monotonic seconds), as a platform's rate limiter counts them."""
        with self._requests_lock:
            return list(self._request_times)

    @property
    def clock(self) -> datetime.date:
        """The platform's 'today': availability and search results are as of this date."""
        return self._clock.today() if isinstance(self._clock, FileClock) else self._clock

    def set_clock(self, today: datetime.date) -> None:
        """Pin this server's date (tests); a shared clock file is left as it is."""
        if not isinstance(today, datetime.date):
            raise TypeError(f"clock must be a datetime.date, got {type(today).__name__}")
        self._clock = today

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("SandboxServer is not running; call start() first")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def lookup(self, video_id: str) -> Listing | None:
        """The video as the platform knows it today; None if it never had it or it is not uploaded yet."""
        meta = self.world.metadata(video_id)
        if meta is None:
            return None
        availability = self.world.availability(video_id, on=self.clock)
        if not availability.available and availability.reason is None:
            return None
        return Listing(meta, availability)

    def shown(self, video_id: str) -> VideoMetadata | None:
        """The video's public metadata if the platform shows it today (available), else None."""
        found = self.lookup(video_id) if VIDEO_ID_RE.fullmatch(video_id) else None
        return found.meta if found is not None and found.availability.available else None

    def player_response(self, video_id: str) -> tuple[HTTPStatus, dict[str, Any]]:
        """HTTP status (404 for videos the platform does not have) and the player response as of the clock."""
        found = self.lookup(video_id)
        status = HTTPStatus.NOT_FOUND if found is None else HTTPStatus.OK
        return status, player_response(video_id, found, self.base_url)

    def start(self) -> SandboxServer:
        if self._httpd is None:
            self._httpd = _SandboxHTTPServer(self)
            self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.1,), name="sandbox-http", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
