"""Why a clip could not be fetched, and whether trying again can help.

Every failure lands in one category. Permanent ones (the video is gone, private, blocked, or the platform wants
a human) are recorded and never retried: retrying only spends the rate budget and invites bot checks.
Transient ones (throttling, outages, dropped or short transfers) are retried with exponential backoff and full
jitter, a bounded number of times; what still fails is left for the next run to retry.

Classification reads the whole exception chain yt-dlp and PyAV produce (DownloadError -> ExtractorError ->
HTTPError ...), the platform's own message, and ffmpeg's exit status (it carries the low byte of the
libav error code, which is how an HTTP error or a dropped connection inside ffmpeg reaches us).
"""

from __future__ import annotations

import enum
import random
import re
import socket
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import IncompleteRead, RemoteDisconnected
from typing import Generic, TypeVar

import av.error
from yt_dlp.networking.exceptions import HTTPError as YtdlpHTTPError
from yt_dlp.networking.exceptions import IncompleteRead as YtdlpIncompleteRead
from yt_dlp.networking.exceptions import TransportError
from yt_dlp.utils import GeoRestrictedError

T = TypeVar("T")


class FailureCategory(enum.Enum):
    """A failure's category; `permanent` says whether retrying can ever help."""

    REMOVED = ("removed", True)
    PRIVATE = ("private", True)
    COPYRIGHT = ("copyright", True)
    ACCOUNT_TERMINATED = ("account_terminated", True)
    COUNTRY_BLOCKED = ("country_blocked", True)
    POLICY = ("policy", True)
    BOT_CHECK = ("bot_check", True)
    SIGN_IN_REQUIRED = ("sign_in_required", True)
    UNAVAILABLE = ("unavailable", True)
    RATE_LIMITED = ("rate_limited", False)
    FORBIDDEN = ("forbidden", False)
    SERVER_ERROR = ("server_error", False)
    HTTP_ERROR = ("http_error", False)
    TIMEOUT = ("timeout", False)
    CONNECTION = ("connection", False)
    INCOMPLETE = ("incomplete", False)
    UNKNOWN = ("unknown", False)

    def __init__(self, label: str, permanent: bool) -> None:
        self.label = label
        self.permanent = permanent

    @classmethod
    def from_label(cls, label: str) -> FailureCategory:
        for category in cls:
            if category.label == label:
                return category
        raise ValueError(f"unknown failure category {label!r}")


ADVICE = {
    FailureCategory.BOT_CHECK: (
        "The platform wants proof this is not a bot. Pass cookies of a logged-in session "
        "(VideoPlatform.cookie_file, `--cookie-file`), slow down (a lower RateLimit.rate_per_s, "
        "VideoPlatform.sleep_interval_s, `--sleep`), and give yt-dlp a JavaScript runtime for the platform's "
        "challenges (VideoPlatform.js_runtimes, `--js-runtime node`; deno on PATH is the default) with its "
        "solver scripts (the yt-dlp-ejs package, or VideoPlatform.remote_components, `--remote-component`)."
    ),
    FailureCategory.SIGN_IN_REQUIRED: (
        "Only a signed-in viewer can play this video; pass a logged-in cookie file "
        "(VideoPlatform.cookie_file, `--cookie-file`) if the dataset may include it."
    ),
    FailureCategory.RATE_LIMITED: "The platform is throttling: lower RateLimit.rate_per_s or the concurrency.",
}


@dataclass(frozen=True)
class Failure:
    category: FailureCategory
    message: str

    @property
    def permanent(self) -> bool:
        return self.category.permanent


class AcquisitionError(Exception):
    """A failure our own checks detect (e.g. a clip with missing frames), already categorized."""

    def __init__(self, category: FailureCategory, message: str) -> None:
        super().__init__(message)
        self.failure = Failure(category, message)


# The platform's wording, most specific first: "Sign in to confirm you're not a bot" before other sign-ins.
_MESSAGE_RULES: tuple[tuple[re.Pattern[str], FailureCategory], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), category)
    for pattern, category in (
        (r"confirm you.?re not a bot", FailureCategory.BOT_CHECK),
        (r"account associated with this video has been terminated|account has been terminated",
         FailureCategory.ACCOUNT_TERMINATED),
        (r"copyright", FailureCategory.COPYRIGHT),
        (r"community guidelines|terms of service|violat\w+ .*polic|policy on", FailureCategory.POLICY),
        (r"not (?:made this video )?available in your country|geo.?restrict", FailureCategory.COUNTRY_BLOCKED),
        (r"\bprivate video\b|video is private", FailureCategory.PRIVATE),
        (r"removed by the (?:uploader|user)|video has been removed|no longer available", FailureCategory.REMOVED),
        (r"sign in to confirm your age|age.?restricted|members.?only|join this channel|requires payment"
         + r"|login required|sign in", FailureCategory.SIGN_IN_REQUIRED),
        (r"too many requests", FailureCategory.RATE_LIMITED),
        (r"timed? ?out", FailureCategory.TIMEOUT),
        (r"incomplete ?read|bytes read, \d+ more expected", FailureCategory.INCOMPLETE),
        (r"video unavailable|this video is (?:no longer )?unavailable", FailureCategory.UNAVAILABLE),
    )
)
_HTTP_STATUS_IN_TEXT = re.compile(r"HTTP Error (\d{3})")
_FFMPEG_EXIT = re.compile(r"ffmpeg exited with code (\d+)")
# ffmpeg exits with the low byte of the libav error: every AVERROR_HTTP_* ends in 0x08.
_FFMPEG_EXIT_CATEGORY = {
    8: (FailureCategory.HTTP_ERROR, "the media server answered with an HTTP error (403, 429 or 5xx)"),
    187: (FailureCategory.CONNECTION, "the media connection closed early (AVERROR_EOF)"),
    146: (FailureCategory.TIMEOUT, "reading the media timed out (ETIMEDOUT)"),
    251: (FailureCategory.CONNECTION, "I/O error while reading the media (EIO)"),
    152: (FailureCategory.CONNECTION, "the media connection was reset (ECONNRESET)"),
    183: (FailureCategory.INCOMPLETE, "the media data was cut short or corrupt (AVERROR_INVALIDDATA)"),
}
_NOISE = re.compile(r"^ERROR: |;? ?please report this issue on .*$|\s*See\s+https?://\S+\s+for how to .*$", re.DOTALL)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (yt-dlp's exc_info / cause, Python's __cause__/__context__)."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        exc_info = getattr(current, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) == 3:
            pending.append(exc_info[1])
        cause = getattr(current, "cause", None)
        if isinstance(cause, BaseException):
            pending.append(cause)
        pending.extend([current.__cause__, current.__context__])


def _http_status(exc: BaseException) -> int | None:
    if isinstance(exc, YtdlpHTTPError):
        return exc.status
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code
    return None


def _category_of_status(status: int) -> FailureCategory:
    if status == 429:
        return FailureCategory.RATE_LIMITED
    if status == 403:
        return FailureCategory.FORBIDDEN
    if status == 408:
        return FailureCategory.TIMEOUT
    if status >= 500:
        return FailureCategory.SERVER_ERROR
    return FailureCategory.HTTP_ERROR


_AV_CATEGORIES: tuple[tuple[type[BaseException], FailureCategory], ...] = (
    (av.error.HTTPTooManyRequestsError, FailureCategory.RATE_LIMITED),
    (av.error.HTTPForbiddenError, FailureCategory.FORBIDDEN),
    (av.error.HTTPServerError, FailureCategory.SERVER_ERROR),
    (av.error.HTTPClientError, FailureCategory.HTTP_ERROR),
    (av.error.HTTPError, FailureCategory.HTTP_ERROR),
    (av.error.EOFError, FailureCategory.CONNECTION),
    (av.error.InvalidDataError, FailureCategory.INCOMPLETE),
)


def _category_of_type(exc: BaseException) -> FailureCategory | None:
    """A category from the exception's type alone, for the types that say it unambiguously."""
    if isinstance(exc, GeoRestrictedError):
        return FailureCategory.COUNTRY_BLOCKED
    status = _http_status(exc)
    if status is not None:
        return _category_of_status(status)
    for kind, category in _AV_CATEGORIES:
        if isinstance(exc, kind):
            return category
    if isinstance(exc, IncompleteRead | YtdlpIncompleteRead):
        return FailureCategory.INCOMPLETE
    if isinstance(exc, TimeoutError | socket.timeout):
        return FailureCategory.TIMEOUT
    if isinstance(exc, RemoteDisconnected | ConnectionError | TransportError):
        return FailureCategory.CONNECTION
    return None


def _clean(message: str) -> str:
    return _NOISE.sub("", message.strip()).strip() or "no message"


def classify(exc: BaseException) -> Failure:
    """The category of any exception raised while fetching a clip, with a message naming the cause.

    The platform's own words win when they say the video is gone for good (they arrive wrapped in generic
    extractor errors); otherwise the most specific exception type, then transient wording, then an HTTP
    status or ffmpeg exit status in the text.
    """
    if isinstance(exc, AcquisitionError):
        return exc.failure
    chain = list(_chain(exc))
    text = " | ".join(dict.fromkeys(str(e) for e in chain if str(e)))
    message = _clean(str(exc) or text)
    by_text = next((c for pattern, c in _MESSAGE_RULES if pattern.search(text)), None)
    by_type = next((c for e in chain if (c := _category_of_type(e)) is not None), None)
    if by_text is not None and (by_text.permanent or by_type in (None, FailureCategory.CONNECTION)):
        category = by_text  # the platform's words, or "timed out" refining a generic transport error
    else:
        category = by_type
    if category is None and (status := _HTTP_STATUS_IN_TEXT.search(text)):
        category = _category_of_status(int(status.group(1)))
    if category is None and (exit_code := _FFMPEG_EXIT.search(text)):
        category, reason = _FFMPEG_EXIT_CATEGORY.get(int(exit_code.group(1)), (FailureCategory.UNKNOWN, ""))
        message = f"{message}: {reason}" if reason else message
    category = category or FailureCategory.UNKNOWN
    advice = ADVICE.get(category)
    return Failure(category, f"{message} -- {advice}" if advice else message)


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` tries; before retry n, sleep uniform(0, min(cap_s, base_s * 2**(n-1))) (full jitter)."""

    attempts: int = 4
    base_s: float = 2.0
    cap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError("RetryPolicy.base_s and cap_s must be >= 0")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1 = the first retry)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** (retry - 1)))


@dataclass(frozen=True)
class Attempted(Generic[T]):
    """What `call_with_retries` ended with: a value or the last failure, and how many tries it took."""

    value: T | None
    failure: Failure | None
    attempts: int


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Attempted[T]:
    """Call `fn` until it succeeds, fails permanently, or `policy.attempts` tries are spent."""
    rng = rng or random.Random()
    for attempt in range(1, policy.attempts + 1):
        try:
            return Attempted(fn(), None, attempt)
        except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes unrecorded
            failure = classify(exc)
        if failure.permanent or attempt == policy.attempts:
            return Attempted(None, failure, attempt)
        sleep(policy.delay(attempt, rng))
    raise AssertionError("unreachable: the loop returns on the last attempt")
