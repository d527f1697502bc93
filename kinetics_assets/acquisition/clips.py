"""Fetch localized 10-s clips through yt-dlp, normalized, into a clip store, with a ledger and retries.

Per requested clip: read the platform's metadata (one request), pick the window (the annotation's, or the
localization strategy's), then let yt-dlp download exactly that section: `download_ranges` +
`force_keyframes_at_cuts` make ffmpeg re-encode from the first frame of the window, and the same ffmpeg pass
normalizes (H.264, 25 fps, short side scaled down to `ClipFormat.short_side`, yuv420p, no audio). The result
is checked (frame count, rate, codec) in a staging folder and moved into the store under the official name
`{youtube_id}_{start:06d}_{end:06d}.mp4` by one atomic rename. Names never claim frames a clip lacks: when the
source ends inside the window, the clip is recorded (ledger, outcome, release) and named with its real end,
flagged `short_source`; a window with no frame in the video, or shorter than a frame, is a permanent failure.

Every platform request takes a token from the platform's bucket first; yt-dlp's own retries are switched off
so that every attempt is budgeted, counted and backed off by `RetryPolicy`. One YoutubeDL per worker thread
(they are not thread-safe). At most `concurrency` section downloads (ffmpeg encodes) run at once; `lookahead`
more worker threads read metadata and localize the next requests meanwhile, so a preview's fetch and decode
overlap an encode instead of leaving the encoder idle (over a real network the fetch is most of the wait).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from yt_dlp.utils import download_range_func

from kinetics_assets.acquisition.failures import (
    AcquisitionError,
    Attempted,
    BreakerPolicy,
    Failure,
    FailureCategory,
    RetryPolicy,
    SessionBreaker,
    SessionRefused,
    call_with_retries,
)
from kinetics_assets.acquisition.ledger import ClipLedger, LedgerEntry
from kinetics_assets.acquisition.localize import (
    DURATION_TOLERANCE_S,
    LocalizationStrategy,
    MotionStrategy,
    SourceVideo,
    Window,
    clip_id,
)
from resources.clip_store import ClipStore, validate_relpath
from resources.rate_limit import RateLimit
from resources.token_bucket import Bucket
from resources.video_platform import VideoPlatform, validate_video_id


@dataclass(frozen=True)
class ClipFormat:
    """How stored clips are encoded: H.264 yuv420p at `fps`, the short side scaled down to `short_side`
    (never up), no audio. `crf`/`preset` trade size and quality against encode time."""

    fps: int = 25
    short_side: int = 256
    crf: int = 23
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        if self.fps < 1 or self.short_side < 16 or self.short_side % 2 or not 0 <= self.crf <= 51:
            raise ValueError(f"ClipFormat needs fps >= 1, an even short_side >= 16 and crf in [0, 51]: {self}")

    def video_filter(self) -> str:
        side = self.short_side
        return (f"fps={self.fps},scale=w='if(gte(iw,ih),-2,min({side},trunc(iw/2)*2))'"
                f":h='if(gte(iw,ih),min({side},trunc(ih/2)*2),-2)',setsar=1")

    def ffmpeg_output_args(self) -> list[str]:
        """ffmpeg output options that make a clip's bytes depend only on its source pixels, on any machine, under
        any load: bit-exact muxing; one x264 thread (its automatic count, 1.5 a core, changes the bytes with the
        core count); no macroblock tree (its AVX-512 code reads data the other SIMD levels' code does not, so its
        bytes follow the SIMD level and, with frame threads under CPU load, the threads' timing)."""
        return ["-vf", self.video_filter(), "-an", "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf),
                "-threads:v", "1", "-x264-params", "mbtree=0",
                "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-map_metadata", "-1",
                "-fflags", "+bitexact", "-flags:v", "+bitexact"]


@dataclass(frozen=True)
class ClipRequest:
    """One clip to fetch: a video, the store folder for it, and the window when an annotation gives it
    (otherwise the localization strategy picks one)."""

    youtube_id: str
    folder: str = ""
    time_start: float | None = None
    time_end: float | None = None

    def __post_init__(self) -> None:
        validate_video_id(self.youtube_id)
        if self.folder:
            validate_relpath(self.folder)
        if (self.time_start is None) != (self.time_end is None):
            raise ValueError(f"{self.youtube_id}: give both time_start and time_end, or neither")
        if self.time_start is not None:
            Window(self.time_start, self.time_end)  # validates the annotated window

    @property
    def key(self) -> str:
        """The ledger key: the clip id when the window is known, else the video id; under the folder."""
        stem = self.youtube_id if self.time_start is None else clip_id(self.youtube_id, self.time_start,
                                                                        self.time_end)
        return f"{self.folder}/{stem}" if self.folder else stem

    def relpath(self, start: float, end: float) -> str:
        """Where the clip of [start, end) is stored: its official name (whole seconds) under the folder."""
        name = f"{clip_id(self.youtube_id, start, end)}.mp4"
        return f"{self.folder}/{name}" if self.folder else name


@dataclass(frozen=True)
class ClipOutcome:
    """What happened to one request. `skipped`: settled by an earlier run, no platform request made."""

    key: str
    youtube_id: str
    status: str  # done | permanent_failure | transient_failure
    clip_id: str | None = None
    start: float | None = None
    end: float | None = None
    relpath: str | None = None
    path: str | None = None
    uri: str | None = None
    category: str | None = None
    message: str | None = None
    attempts: int = 0
    short_source: bool | None = None
    source_width: int | None = None
    source_height: int | None = None
    frames: int | None = None
    skipped: bool = False


@dataclass(frozen=True)
class ClipProbe:
    frames: int
    fps: float
    width: int
    height: int
    codec: str
    pix_fmt: str


def probe_clip(path: Path) -> ClipProbe:
    """Frame count, rate, size and codec of a clip, from its container (counts packets when the header
    has no frame count); no video stream (ffmpeg found no frame to cut) is zero frames."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return ClipProbe(0, 0.0, 0, 0, "", "")
        stream = container.streams.video[0]
        frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        ctx = stream.codec_context
        return ClipProbe(frames, float(stream.average_rate or 0), ctx.width, ctx.height, ctx.name,
                         ctx.pix_fmt or "")


@dataclass(frozen=True)
class _Fetched:
    window: Window
    relpath: str
    path: Path
    uri: str
    probe: ClipProbe
    source_width: int | None
    source_height: int | None
    downloaded: bool


def _preview_format(info: dict[str, Any]) -> dict[str, Any]:
    """The cheapest rendition with video that ffmpeg can read over plain HTTP(S)."""
    formats = [f for f in info.get("formats") or [] if f.get("vcodec") != "none" and f.get("url")
               and (f.get("protocol") or "https") in ("http", "https")]
    if not formats:
        raise AcquisitionError(FailureCategory.UNAVAILABLE, f"{info.get('id')}: no progressive video format")

    def cost(fmt: dict[str, Any]) -> tuple[float, float]:
        sides = [s for s in (fmt.get("width"), fmt.get("height")) if s]
        return (min(sides) if sides else math.inf, fmt.get("tbr") or math.inf)

    return min(formats, key=cost)


class _ClipTask:
    """Fetches one request; keeps the chosen window across retries so a retry never re-localizes."""

    def __init__(self, job: _Job, request: ClipRequest) -> None:
        self.job, self.request = job, request
        self.window: Window | None = None

    def __call__(self) -> _Fetched:
        job, request = self.job, self.request
        if request.time_start is not None and request.time_end - request.time_start < 1 / job.clip_format.fps:
            raise AcquisitionError(FailureCategory.WINDOW_TOO_SHORT, f"{request.youtube_id}: window "
                                   f"[{request.time_start:g}, {request.time_end:g}) is shorter than one frame "
                                   f"at {job.clip_format.fps} fps")
        ydl = job.youtube_dl()
        with job.store.staging() as stage:
            ydl.params["outtmpl"]["default"] = str(stage / "clip.%(ext)s")
            job.bucket.acquire()
            info = ydl.extract_info(job.platform.watch_url(request.youtube_id), download=False, process=False)
            duration = info.get("duration")
            if self.window is None:
                self.window = self._choose_window(ydl, info, duration)
            landed = self._landed(duration)
            if landed is not None:  # landed in a run killed before its ledger write: never fetch twice
                window, relpath, probe = landed
                return _Fetched(window, relpath, job.store.path(relpath), job.store.uri(relpath), probe,
                                info.get("width"), info.get("height"), downloaded=False)
            return self._download(ydl, info, duration)

    def _choose_window(self, ydl, info: dict[str, Any], duration: float | None) -> Window:
        request = self.request
        if request.time_start is None:
            source = SourceVideo(request.youtube_id, duration, lambda: self._open_preview(ydl, info))
            return self.job.strategy.localize(source)
        # An annotation's window is fetched as given; a source that ends inside it yields what it has, and the
        # clip is then recorded, and named, with its real end (`_measured`).
        if duration is not None and request.time_start >= duration:
            raise AcquisitionError(FailureCategory.WINDOW_OUTSIDE_VIDEO, f"{request.youtube_id}: window "
                                   f"[{request.time_start:g}, {request.time_end:g}) starts after the video "
                                   f"ends ({duration:g} s)")
        return Window(request.time_start, request.time_end)

    def _measured(self, probe: ClipProbe) -> Window:
        """The window the clip really covers: the chosen one when it has every frame, else (the source ends
        inside it) from its start to its last frame, flagged `short_source`."""
        window, fps = self.window, self.job.clip_format.fps
        if probe.frames >= round((window.end - window.start) * fps):
            return window
        return Window(window.start, round(window.start + probe.frames / fps, 3), short_source=True)

    def _landed(self, duration: float | None) -> tuple[Window, str, ClipProbe] | None:
        """This request's clip, if a killed run stored it before recording it. Its name is the window's or,
        when the source may end inside the window, one of the few whole seconds where the clip then ends;
        a file counts only when its frames give exactly its name."""
        window, store = self.window, self.job.store
        ends = [int(window.end)]
        if duration is None or window.end > duration - DURATION_TOLERANCE_S:
            lowest = window.start if duration is None else max(window.start, duration - DURATION_TOLERANCE_S)
            ends += range(int(window.end) - 1, int(lowest) - 1, -1)
        for end in ends:
            relpath = self.request.relpath(window.start, end)
            if store.exists(relpath):
                probe = probe_clip(store.path(relpath))
                measured = self._measured(probe)
                if self.request.relpath(measured.start, measured.end) == relpath:
                    return measured, relpath, probe
        return None

    def _open_preview(self, ydl, info: dict[str, Any]) -> av.container.InputContainer:
        fmt = _preview_format(info)
        headers = {**ydl.params.get("http_headers", {}), **(fmt.get("http_headers") or {})}
        options = {"rw_timeout": str(int(self.job.platform.socket_timeout_s * 1e6)),
                   "headers": "".join(f"{key}: {value}\r\n" for key, value in headers.items())}
        cookies = ydl.cookiejar.get_cookies_for_url(fmt["url"])
        if cookies:
            options["cookies"] = "".join(f"{c.name}={c.value}; path={c.path}; domain={c.domain};\r\n"
                                         for c in cookies)
        if self.job.platform.proxy:
            options["http_proxy"] = self.job.platform.proxy
        self.job.bucket.acquire()
        return av.open(fmt["url"], options=options, timeout=self.job.platform.socket_timeout_s)

    def _download(self, ydl, info: dict[str, Any], duration: float | None) -> _Fetched:
        job, window = self.job, self.window
        ydl.params["download_ranges"] = download_range_func(None, [(window.start, window.end)])
        with job.download_slots:
            job.bucket.acquire()
            result = ydl.process_ie_result(info, download=True)
        staged = Path(result["requested_downloads"][0]["filepath"])
        probe = probe_clip(staged)
        measured = self._check(probe, duration)
        relpath = self.request.relpath(measured.start, measured.end)
        uri = job.store.put(staged, relpath)
        return _Fetched(measured, relpath, job.store.path(relpath), uri, probe, result.get("width"),
                        result.get("height"), downloaded=True)

    def _check(self, probe: ClipProbe, duration: float | None) -> Window:
        """The window a clip covers (`_measured`), once checked: it must hold every frame of its window
        (exactly, unless the window touches the video's end, whose length platforms only report to the second),
        and, when the source ends inside the window, at least the whole second that a clip name needs."""
        window, fps, video = self.window, self.job.clip_format.fps, self.request.youtube_id
        if probe.frames == 0 and (duration is None or window.start >= duration - DURATION_TOLERANCE_S):
            raise AcquisitionError(FailureCategory.WINDOW_OUTSIDE_VIDEO, f"{video}: no frame of the window "
                                   f"[{window.start:g}, {window.end:g}) is in the video")
        if probe.frames and (probe.codec != "h264" or probe.pix_fmt != "yuv420p" or round(probe.fps) != fps):
            raise AcquisitionError(FailureCategory.UNKNOWN, f"{video}: clip came out as "
                                   f"{probe.codec}/{probe.pix_fmt} at {probe.fps:g} fps")
        inside = duration is None or window.end <= duration - DURATION_TOLERANCE_S
        span = window.end - window.start if duration is None else min(window.end, duration) - window.start
        expected = round(span * fps)
        enough = probe.frames == expected if inside else probe.frames >= expected - DURATION_TOLERANCE_S * fps
        if not enough or probe.frames < 1:
            raise AcquisitionError(FailureCategory.INCOMPLETE, f"{video}: clip has "
                                   f"{probe.frames} frames, its window [{window.start:g}, {window.end:g}) "
                                   f"needs {expected}")
        measured = self._measured(probe)
        if measured.short_source and int(measured.end) <= int(measured.start):
            raise AcquisitionError(FailureCategory.WINDOW_OUTSIDE_VIDEO, f"{video}: the video ends "
                                   f"{measured.end - window.start:.2f} s into the window [{window.start:g}, "
                                   f"{window.end:g}), short of the whole second a clip name needs")
        return measured


@dataclass
class _Job:
    platform: VideoPlatform
    store: ClipStore
    ledger: ClipLedger
    strategy: LocalizationStrategy
    bucket: Bucket
    retry: RetryPolicy
    clip_format: ClipFormat
    sleep: Callable[[float], None]
    jitter_seed: int | None
    download_slots: threading.BoundedSemaphore
    breaker: SessionBreaker
    _local: threading.local = field(default_factory=threading.local)
    _opened: list = field(default_factory=list)

    def youtube_dl(self):
        """This worker thread's YoutubeDL (they are not thread-safe; building one loads ~1,800 extractors and
        an HTTP session, 0.1 s of pure Python, so each worker builds one and reuses it). Tasks set only the
        output folder and the section to cut."""
        ydl = getattr(self._local, "ydl", None)
        if ydl is None:
            ydl = self.platform.youtube_dl(
                # Our RetryPolicy owns retries: yt-dlp's own would make unbudgeted, uncounted requests.
                extractor_retries=0, retries=0, fragment_retries=0,
                format="bv*/b",
                format_sort=[f"+res:{self.clip_format.short_side}"],
                force_keyframes_at_cuts=True,
                external_downloader_args={
                    "ffmpeg_i": ["-rw_timeout", str(int(self.platform.socket_timeout_s * 1e6))],
                    "ffmpeg_o": self.clip_format.ffmpeg_output_args(),
                },
            )
            self._local.ydl = ydl
            self._opened.append(ydl)
        return ydl

    def close(self) -> None:
        for ydl in self._opened:
            ydl.close()

    def run(self, request: ClipRequest) -> ClipOutcome:
        earlier = self.ledger.get(request.key)
        if earlier is not None and (earlier.failed_for_good or (
                earlier.status == "done" and earlier.relpath and self.store.exists(earlier.relpath))):
            return self._from_ledger(earlier)
        rng = random.Random(f"{self.jitter_seed}/{request.key}") if self.jitter_seed is not None else None
        attempted: Attempted[_Fetched] = call_with_retries(_ClipTask(self, request), self.retry, self.sleep, rng,
                                                           self.breaker)
        if attempted.value is not None:
            return self._record_done(request, attempted.value, attempted.attempts)
        return self._record_failure(request, attempted.failure, attempted.attempts)

    def _from_ledger(self, entry: LedgerEntry) -> ClipOutcome:
        done = entry.status == "done"
        return ClipOutcome(
            key=entry.clip_key, youtube_id=entry.youtube_id, status=entry.status, clip_id=entry.clip_id,
            start=entry.time_start, end=entry.time_end, relpath=entry.relpath,
            path=str(self.store.path(entry.relpath)) if done else None,
            uri=self.store.uri(entry.relpath) if done else None, category=entry.category, message=entry.message,
            attempts=0, short_source=entry.short_source, source_width=entry.source_width,
            source_height=entry.source_height, skipped=True)

    def _record_done(self, request: ClipRequest, fetched: _Fetched, attempts: int) -> ClipOutcome:
        window = fetched.window
        name = clip_id(request.youtube_id, window.start, window.end)
        self.ledger.record(request.key, request.youtube_id, "done", attempts, clip_id=name, relpath=fetched.relpath,
                           time_start=window.start, time_end=window.end, downloaded=fetched.downloaded,
                           short_source=window.short_source, source_width=fetched.source_width,
                           source_height=fetched.source_height)
        return ClipOutcome(
            key=request.key, youtube_id=request.youtube_id, status="done", clip_id=name, start=window.start,
            end=window.end, relpath=fetched.relpath, path=str(fetched.path), uri=fetched.uri, attempts=attempts,
            short_source=window.short_source, source_width=fetched.source_width,
            source_height=fetched.source_height, frames=fetched.probe.frames)

    def _record_failure(self, request: ClipRequest, failure: Failure, attempts: int) -> ClipOutcome:
        status = "permanent_failure" if failure.permanent else "transient_failure"
        self.ledger.record(request.key, request.youtube_id, status, attempts, time_start=request.time_start,
                           time_end=request.time_end, category=failure.category.label, message=failure.message)
        return ClipOutcome(key=request.key, youtube_id=request.youtube_id, status=status,
                           start=request.time_start, end=request.time_end, category=failure.category.label,
                           message=failure.message, attempts=attempts)


def acquire_clips(
    platform: VideoPlatform,
    requests: Iterable[ClipRequest],
    store: ClipStore,
    ledger: ClipLedger,
    strategy: LocalizationStrategy | None = None,
    *,
    rate_limit: RateLimit | Bucket,
    concurrency: int = 4,
    lookahead: int = 1,
    retry: RetryPolicy = RetryPolicy(),
    breaker: BreakerPolicy = BreakerPolicy(),
    clip_format: ClipFormat = ClipFormat(),
    sleep: Callable[[float], None] = time.sleep,
    jitter_seed: int | None = None,
    on_outcome: Callable[[ClipOutcome], None] | None = None,
) -> list[ClipOutcome]:
    """Fetch every request's clip into `store`; returns one outcome per request, in request order.

    Reruns are cheap: clips the ledger has as done (file present) and permanent failures are answered from
    the ledger without touching the platform; transient failures are tried again. `concurrency` bounds the
    downloads running at once, `lookahead` the requests being localized beside them.

    A session-level answer (throttled, bot check) to any request pauses the whole batch (`breaker`); if the
    session is still refused after its backoffs, the batch stops and `SessionRefused` is raised once the
    requests under way have settled: what finished is recorded, every other request is left untouched (no
    ledger entry), for a later run. Our own bugs stop the batch too, and propagate.
    """
    if concurrency < 1 or lookahead < 0:
        raise ValueError(f"concurrency must be >= 1 and lookahead >= 0, got {concurrency} and {lookahead}")
    requests = list(requests)
    duplicated = sorted(key for key, n in Counter(request.key for request in requests).items() if n > 1)
    if duplicated:
        raise ValueError(f"the same clip is requested more than once: {', '.join(duplicated[:5])}")
    bucket = rate_limit.bucket() if isinstance(rate_limit, RateLimit) else rate_limit
    breaker_rng = random.Random(f"{jitter_seed}/breaker") if jitter_seed is not None else random.Random()
    job = _Job(platform, store, ledger, strategy or MotionStrategy(), bucket, retry, clip_format, sleep, jitter_seed,
               threading.BoundedSemaphore(concurrency), SessionBreaker(breaker, sleep, breaker_rng))
    store.sweep_staging()

    def run(request: ClipRequest) -> ClipOutcome:
        outcome = job.run(request)
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome

    try:
        with ThreadPoolExecutor(max_workers=concurrency + lookahead, thread_name_prefix="clip") as pool:
            futures = [pool.submit(run, request) for request in requests]
            return _collect(futures)
    finally:
        job.close()


def _collect(futures: list[Future[ClipOutcome]]) -> list[ClipOutcome]:
    """The outcomes in request order; on the first bug, the requests not started are cancelled and it is
    raised; a refused session is raised after every request has settled, counting those left untouched."""
    outcomes, refused = [], None
    for future in futures:
        try:
            outcomes.append(future.result())
        except SessionRefused as err:
            refused = refused or err
        except BaseException:
            for pending in futures:
                pending.cancel()
            raise
    if refused is not None:
        raise refused.with_untouched(len(futures) - len(outcomes)) from refused
    return outcomes
