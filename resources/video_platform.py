"""The video platform as the pipeline sees it: one Dagster resource interface, any platform behind it.

Assets search, probe and download only through `VideoPlatform`, so production (YouTube) and the
local sandbox are driven by identical calls: `search_url` / `watch_url` / `probe_url` build the
platform's addresses and `youtube_dl()` returns a YoutubeDL with the platform's extractors
registered and ffmpeg on PATH.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlencode

from dagster import ConfigurableResource
from pydantic import Field, field_validator
from yt_dlp import YoutubeDL
from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.globals import supported_js_runtimes, supported_remote_components

from resources.media_tools import ensure_ffmpeg_on_path

VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
log = logging.getLogger(__name__)


class YtdlpLog:
    """yt-dlp's messages go to logging, not the terminal: its errors also arrive as exceptions, which the
    callers classify, so printing them would only repeat expected failures (removed videos) as alarms."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg.strip())


class PlatformYoutubeDL(YoutubeDL):
    """YoutubeDL without the cost of `--print` when nothing is printed.

    yt-dlp renders the formats, thumbnails and subtitles tables for `--print` templates at every processing
    stage of a download (seven per video) whether or not any template is set: 38 ms of CPU per clip with the
    sandbox's two formats, more with YouTube's dozens, beside an encode of ~300 ms. Stages with no template and
    no `force*` printing skip it; anything that would print goes through yt-dlp unchanged.
    """

    _FORCED_FIELDS = ("forcetitle", "forceid", "forceurl", "forcethumbnail", "forcedescription", "forcefilename",
                      "forceduration", "forceformat", "forcejson")

    def _forceprint(self, key, info_dict):
        prints = self.params["forceprint"].get(key) or self.params["print_to_file"].get(key) or (
            key == "video" and any(self.params.get(field) for field in self._FORCED_FIELDS))
        if info_dict is None or prints:
            return super()._forceprint(key, info_dict)
        return info_dict


def _js_runtime(entry: str) -> tuple[str, str | None]:
    """`RUNTIME[:PATH]` as yt-dlp's --js-runtimes reads it: (lower-case runtime name, path or None)."""
    name, _, path = entry.partition(":")
    return name.lower(), path or None


def validate_video_id(video_id: str) -> str:
    """Return the id if it is a well-formed 11-character platform id; ValueError otherwise.

    Ids come from CSVs and search results and end up in URLs and file names, so they are
    checked before they touch either.
    """
    if not isinstance(video_id, str) or not VIDEO_ID_RE.fullmatch(video_id):
        raise ValueError(f"invalid video id {video_id!r}: expected 11 characters of [A-Za-z0-9_-]")
    return video_id


class VideoPlatform(ConfigurableResource):
    """Base for video platforms; subclasses supply addresses and any extra yt-dlp extractors."""

    cookie_file: str | None = Field(default=None, description="Netscape cookie file passed to yt-dlp.")
    proxy: str | None = Field(default=None, description="Proxy URL for all platform traffic.")
    sleep_interval_s: float = Field(default=0.0, ge=0, description="Pause before each download (politeness).")
    socket_timeout_s: float = Field(default=30.0, gt=0, description="Per-socket-operation timeout.")
    retries: int = Field(default=10, ge=0, description="Download retries on transient HTTP errors.")
    extractor_retries: int = Field(default=3, ge=0, description="Metadata/search request retries.")
    js_runtimes: list[str] | None = Field(
        default=None, description="JavaScript runtimes yt-dlp may use for the platform's player challenges, as "
                                  "yt-dlp's --js-runtimes takes them: RUNTIME[:PATH], e.g. 'node' or "
                                  "'deno:/opt/deno/bin/deno'. None keeps yt-dlp's default (deno on PATH).")
    remote_components: list[str] = Field(
        default_factory=list, description="Challenge-solver scripts yt-dlp may fetch when the yt-dlp-ejs package "
                                          "is missing or stale, e.g. 'ejs:github' (yt-dlp's --remote-components).")

    @field_validator("js_runtimes")
    @classmethod
    def _known_js_runtimes(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or []:
            if _js_runtime(entry)[0] not in supported_js_runtimes.value:
                raise ValueError(f"unknown JavaScript runtime {entry!r}: yt-dlp supports "
                                 f"{', '.join(supported_js_runtimes.value)} (as RUNTIME or RUNTIME:PATH)")
        return value

    @field_validator("remote_components")
    @classmethod
    def _known_remote_components(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(supported_remote_components.value))
        if unknown:
            raise ValueError(f"unknown remote component(s) {', '.join(unknown)}: yt-dlp supports "
                             f"{', '.join(supported_remote_components.value)}")
        return value

    @property
    def search_key(self) -> str:
        """yt-dlp search prefix: `f"{search_key}{n}:{query}"` searches the platform."""
        raise NotImplementedError(f"{type(self).__name__} must define search_key")

    def watch_url(self, video_id: str) -> str:
        raise NotImplementedError(f"{type(self).__name__} must define watch_url")

    def probe_url(self, video_id: str) -> str:
        """oEmbed URL: a cheap existence check (200 = still public) that downloads no media."""
        raise NotImplementedError(f"{type(self).__name__} must define probe_url")

    def search_url(self, query: str, n: int) -> str:
        if n < 1:
            raise ValueError(f"search result count must be >= 1, got {n}")
        return f"{self.search_key}{n}:{query}"

    def youtube_dl(self, **opts: Any) -> YoutubeDL:
        """A YoutubeDL for this platform; `opts` are yt-dlp params and override the resource's."""
        ensure_ffmpeg_on_path()
        params: dict[str, Any] = {
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "logger": YtdlpLog(),
            "socket_timeout": self.socket_timeout_s,
            "retries": self.retries,
            "extractor_retries": self.extractor_retries,
            "external_downloader_args": {"ffmpeg_i": self._ffmpeg_reconnect_args()},
        }
        if self.cookie_file:
            params["cookiefile"] = self.cookie_file
        if self.proxy:
            params["proxy"] = self.proxy
        if self.sleep_interval_s:
            params["sleep_interval"] = self.sleep_interval_s
        if self.js_runtimes is not None:
            params["js_runtimes"] = {name: {"path": path} for name, path in map(_js_runtime, self.js_runtimes)}
        if self.remote_components:
            params["remote_components"] = list(self.remote_components)
        extractor_args = {**self._extractor_args(), **opts.pop("extractor_args", {})}
        params.update(opts)
        if extractor_args:
            params["extractor_args"] = extractor_args
        ydl = PlatformYoutubeDL(params, auto_init=False)
        for extractor in self._extractors():  # before the defaults, or the generic IE takes every URL
            ydl.add_info_extractor(extractor)
        ydl.add_default_info_extractors()
        return ydl

    def _ffmpeg_reconnect_args(self) -> list[str]:
        """ffmpeg input options for section downloads (which bypass yt-dlp's own HTTP retries).

        Without them ffmpeg takes a dropped or short response as the end of the file and yt-dlp
        reports success for a clip with missing frames; with them it resumes at the byte offset
        and retries 429/5xx (honouring Retry-After).
        """
        return [
            "-reconnect", "1",
            "-reconnect_on_network_error", "1",
            "-reconnect_on_http_error", "429,5xx",
            "-reconnect_max_retries", str(self.retries),
            "-reconnect_delay_max", "8",
            "-rw_timeout", str(int(self.socket_timeout_s * 1_000_000)),
        ]

    def _extractors(self) -> list[InfoExtractor]:
        """Extractors this platform needs beyond yt-dlp's built-ins."""
        return []

    def _extractor_args(self) -> dict[str, dict[str, list[str]]]:
        return {}


class YouTubePlatform(VideoPlatform):
    """Production: YouTube through yt-dlp's built-in extractors."""

    @property
    def search_key(self) -> str:
        return "ytsearch"

    def watch_url(self, video_id: str) -> str:
        return f"https://www.youtube.com/watch?v={validate_video_id(video_id)}"

    def probe_url(self, video_id: str) -> str:
        return f"https://www.youtube.com/oembed?{urlencode({'url': self.watch_url(video_id), 'format': 'json'})}"
