"""Why a platform request failed, whose fault it is, and what trying again can do.

Every failure lands in one category, and every category in one of four kinds:

- permanent: the video's own fate (removed, private, copyright, terminated account, country block, policy,
  members-only, sign-in/age gate, never existed). Recorded and never retried: retrying only spends the rate
  budget and invites bot checks.
- later: the video exists but cannot be fetched yet (a premiere or an upcoming live stream). Not retried in
  this batch, not recorded as gone; the next run tries again.
- transient: this request went wrong (5xx, 403 on a media URL, timeouts, dropped or short transfers). Retried
  with exponential backoff and full jitter, a bounded number of times; what still fails is left for the next run.
- session: the platform refuses the *session*, not the video (HTTP 429, YouTube's "This content isn't
  available, try again later" session rate limit, "Sign in to confirm you're not a bot", a captcha, a blocked
  IP). Such an answer says nothing about the video, so it is never recorded against one: a `SessionBreaker`
  shared by the whole batch pauses every worker, backs off with jitter a bounded number of times, and if the
  session is still refused stops the batch with `SessionRefused`, leaving every unfinished video untouched.

Classification reads the whole exception chain yt-dlp and PyAV produce (DownloadError -> ExtractorError ->
HTTPError ...), the platform's own message as yt-dlp's YouTube extractor words it, and ffmpeg's exit status (it
carries the low byte of the libav error code, which is how an HTTP error or a dropped connection inside ffmpeg
reaches us). Only errors of the outside world are classified (yt-dlp, PyAV, the OS and the network, and our
own `AcquisitionError`); anything else is a bug in our code and propagates.
"""

from __future__ import annotations

import enum
import http.client
import random
import re
import socket
import threading
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
from yt_dlp.utils import GeoRestrictedError, YoutubeDLError

T = TypeVar("T")


class Persistence(enum.Enum):
    """How long a failure lasts, and so what may be done about it."""

    PERMANENT = "permanent"  # the video's fate: record, never retry
    LATER = "later"  # not yet (premiere, upcoming live): not retried now, not recorded as gone
    TRANSIENT = "transient"  # this request: retry with backoff
    SESSION = "session"  # the whole session is refused: pause the batch, then stop it


class FailureCategory(enum.Enum):
    """A failure's category; `persistence` says what retrying can do."""

    REMOVED = ("removed", Persistence.PERMANENT)
    PRIVATE = ("private", Persistence.PERMANENT)
    COPYRIGHT = ("copyright", Persistence.PERMANENT)
    ACCOUNT_TERMINATED = ("account_terminated", Persistence.PERMANENT)
    COUNTRY_BLOCKED = ("country_blocked", Persistence.PERMANENT)
    POLICY = ("policy", Persistence.PERMANENT)
    MEMBERS_ONLY = ("members_only", Persistence.PERMANENT)
    SIGN_IN_REQUIRED = ("sign_in_required", Persistence.PERMANENT)
    UNAVAILABLE = ("unavailable", Persistence.PERMANENT)
    # The request's own fate, not the video's: the window asks for frames the video does not have.
    WINDOW_OUTSIDE_VIDEO = ("window_outside_video", Persistence.PERMANENT)
    WINDOW_TOO_SHORT = ("window_too_short", Persistence.PERMANENT)
    UPCOMING = ("upcoming", Persistence.LATER)
    SESSION_RATE_LIMITED = ("session_rate_limited", Persistence.SESSION)
    BOT_CHECK = ("bot_check", Persistence.SESSION)
    CAPTCHA = ("captcha", Persistence.SESSION)
    IP_BLOCKED = ("ip_blocked", Persistence.SESSION)
    RATE_LIMITED = ("rate_limited", Persistence.SESSION)
    FORBIDDEN = ("forbidden", Persistence.TRANSIENT)
    SERVER_ERROR = ("server_error", Persistence.TRANSIENT)
    HTTP_ERROR = ("http_error", Persistence.TRANSIENT)
    TIMEOUT = ("timeout", Persistence.TRANSIENT)
    CONNECTION = ("connection", Persistence.TRANSIENT)
    INCOMPLETE = ("incomplete", Persistence.TRANSIENT)
    UNKNOWN = ("unknown", Persistence.TRANSIENT)

    def __init__(self, label: str, persistence: Persistence) -> None:
        self.label = label
        self.persistence = persistence

    @property
    def permanent(self) -> bool:
        """The video's own fate: retrying can never help."""
        return self.persistence is Persistence.PERMANENT

    @property
    def session_level(self) -> bool:
        """About the session, not the video: transient, and every other request of the session meets it too."""
        return self.persistence is Persistence.SESSION

    @property
    def retry_now(self) -> bool:
        """Whether another attempt of this request, after a backoff, can succeed."""
        return self.persistence in (Persistence.TRANSIENT, Persistence.SESSION)

    @classmethod
    def from_label(cls, label: str) -> FailureCategory:
        for category in cls:
            if category.label == label:
                return category
        raise ValueError(f"unknown failure category {label!r}")


_SLOW_DOWN = ("slow down (a lower RateLimit.rate_per_s, VideoPlatform.sleep_interval_s, `--sleep`)")
_COOKIES = "pass cookies of a logged-in session (VideoPlatform.cookie_file, `--cookie-file`)"
ADVICE = {
    FailureCategory.BOT_CHECK: (
        f"The platform wants proof this is not a bot: {_COOKIES}, {_SLOW_DOWN}, and give yt-dlp "
        "a JavaScript runtime for the platform's challenges (VideoPlatform.js_runtimes, `--js-runtime node`; "
        "deno on PATH is the default) with its solver scripts (the yt-dlp-ejs package, or "
        "VideoPlatform.remote_components, `--remote-component`)."
    ),
    FailureCategory.CAPTCHA: f"The platform wants a captcha solved for this session: {_COOKIES} and {_SLOW_DOWN}.",
    FailureCategory.SESSION_RATE_LIMITED: (
        f"The platform has rate-limited this session (YouTube: for up to an hour): wait, then {_SLOW_DOWN}."
    ),
    FailureCategory.IP_BLOCKED: f"The platform is blocking this address: {_SLOW_DOWN}, or use another network "
                                "(VideoPlatform.proxy).",
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


# The platform's wording as yt-dlp's YouTube extractor raises it (yt_dlp/extractor/youtube/_video.py joins the
# player response's reason and subreason, adds a login hint to every "sign in" reason, a captcha note, and a
# rate-limit explanation to "This content isn't available, try again later"). Most specific first: the
# session-level answers start with "Video unavailable" or "Sign in" too.
_MESSAGE_RULES: tuple[tuple[re.Pattern[str], FailureCategory], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), category)
    for pattern, category in (
        (r"content isn.?t available, try again later|session has been rate.?limited"
         r"|account has been rate.?limited", FailureCategory.SESSION_RATE_LIMITED),
        (r"confirm you.?re not a bot", FailureCategory.BOT_CHECK),
        (r"captcha", FailureCategory.CAPTCHA),
        (r"your IP is likely being blocked", FailureCategory.IP_BLOCKED),
        (r"account associated with this video has been terminated|account has been terminated",
         FailureCategory.ACCOUNT_TERMINATED),
        (r"copyright", FailureCategory.COPYRIGHT),
        (r"community guidelines|terms of service|violat\w+ .*polic|policy on", FailureCategory.POLICY),
        (r"not (?:made this video )?available in your country|geo.?restrict|not available from your location",
         FailureCategory.COUNTRY_BLOCKED),
        (r"\bprivate video\b|video is private", FailureCategory.PRIVATE),
        (r"removed by the (?:uploader|user)|video has been removed|no longer available", FailureCategory.REMOVED),
        (r"members.?only|join this channel|available to this channel.?s members", FailureCategory.MEMBERS_ONLY),
        (r"\bpremieres? (?:in|will begin)|live event will begin|live stream recording is not available|"
         r"\bis_upcoming\b", FailureCategory.UPCOMING),
        (r"sign in to confirm your age|age.?restricted|inappropriate for some users|requires payment"
         r"|login required|login details are needed|sign in", FailureCategory.SIGN_IN_REQUIRED),
        (r"too many requests", FailureCategory.RATE_LIMITED),
        (r"timed? ?out", FailureCategory.TIMEOUT),
        (r"incomplete ?read|bytes read, \d+ more expected", FailureCategory.INCOMPLETE),
        (r"video unavailable|this video is (?:no longer |not )?(?:un)?available|does not exist",
         FailureCategory.UNAVAILABLE),
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
# What the outside world raises: yt-dlp (its networking errors included), PyAV/ffmpeg, the OS and the network.
_PLATFORM_ERRORS = (AcquisitionError, YoutubeDLError, av.error.FFmpegError, OSError, http.client.HTTPException)


def is_platform_error(exc: BaseException) -> bool:
    """Whether `exc` comes from the outside world (classified) rather than from a bug in our code (propagates)."""
    return isinstance(exc, _PLATFORM_ERRORS)


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
    """The category of an outside-world exception raised while fetching, with a message naming the cause.

    The platform's own words win when they say the video is gone for good or the session is refused (they
    arrive wrapped in generic extractor errors); otherwise the most specific exception type, then transient
    wording, then an HTTP status or ffmpeg exit status in the text.
    """
    if isinstance(exc, AcquisitionError):
        return exc.failure
    chain = list(_chain(exc))
    text = " | ".join(dict.fromkeys(str(e) for e in chain if str(e)))
    message = _clean(str(exc) or text)
    by_text = next((c for pattern, c in _MESSAGE_RULES if pattern.search(text)), None)
    by_type = next((c for e in chain if (c := _category_of_type(e)) is not None), None)
    if by_text is not None and (not by_text.retry_now or by_text.session_level
                                or by_type in (None, FailureCategory.CONNECTION)):
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
    """At most `attempts` tries of one request; before retry n, sleep uniform(0, min(cap_s, base_s * 2**(n-1)))
    (full jitter). Session-level refusals do not spend these attempts: the `BreakerPolicy` bounds them."""

    attempts: int = 6
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
class BreakerPolicy:
    """How long a refused session is waited out before the batch stops: at most `backoffs` pauses in a row
    (a success in between starts the count again); pause n lasts uniform(d/2, d), d = min(cap_s, base_s *
    2**(n-1)) ("equal jitter": a refused session needs a real pause, and parallel runs must not return in step).
    The defaults wait 4 to 8.5 minutes in all; YouTube lifts a session rate limit within about an hour, which
    is the step retry's business (see `SessionRefused`)."""

    backoffs: int = 8
    base_s: float = 2.0
    cap_s: float = 300.0

    def __post_init__(self) -> None:
        if self.backoffs < 0 or self.base_s < 0 or self.cap_s < 0:
            raise ValueError(f"BreakerPolicy fields must be >= 0: {self}")

    def delay(self, backoff: int, rng: random.Random) -> float:
        """Seconds of pause number `backoff` (1 = the first)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (backoff - 1))
        return rng.uniform(ceiling / 2, ceiling)


class SessionRefused(Exception):
    """The platform kept refusing the session (throttled, bot check, captcha) through every backoff.

    Nothing about the videos not yet finished was recorded: they are untouched, and a later run (Dagster's step
    retry, or the same command run again after a while) fetches them. What finished before stays recorded.
    """

    def __init__(self, failure: Failure, backoffs: int, waited_s: float, untouched: int | None = None) -> None:
        self.failure, self.backoffs, self.waited_s, self.untouched = failure, backoffs, waited_s, untouched
        videos = "the unfinished videos are" if untouched is None else f"{untouched} unfinished request(s) are"
        super().__init__(
            f"the platform refused this session ({failure.category.label}) through {backoffs} backoff(s) over "
            f"{waited_s:.0f} s, so the batch stopped; {videos} left untouched (not recorded as failed) for a "
            f"later run. Last answer: {failure.message}")

    def with_untouched(self, untouched: int) -> SessionRefused:
        return SessionRefused(self.failure, self.backoffs, self.waited_s, untouched)


class SessionBreaker:
    """One per batch, shared by its workers: a session-level answer to any request pauses them all.

    The first worker to meet a refusal sleeps the backoff while the others wait at `admit`; a refusal to an
    attempt that began before the last pause ended does not pause again. After `policy.backoffs` pauses with no
    success in between, the breaker stays open: every worker's next `admit` raises `SessionRefused`.
    """

    def __init__(self, policy: BreakerPolicy, sleep: Callable[[float], None], rng: random.Random) -> None:
        self.policy, self._sleep, self._rng = policy, sleep, rng
        self._cond = threading.Condition()
        self._pauses_in_a_row = 0
        self._waited_s = 0.0
        self._generation = 0  # counts pauses: tells whether an attempt began before the last one
        self._pausing = False
        self._refused: Failure | None = None

    def _raise_if_refused(self) -> None:
        if self._refused is not None:
            raise SessionRefused(self._refused, self._pauses_in_a_row, self._waited_s)

    def admit(self) -> int:
        """Wait out a pause in progress; raise `SessionRefused` once the session is given up; else the
        generation the attempt starts in (to pass to `refused`)."""
        with self._cond:
            while self._pausing:
                self._cond.wait()
            self._raise_if_refused()
            return self._generation

    def succeeded(self) -> None:
        with self._cond:
            self._pauses_in_a_row = 0

    def refused(self, failure: Failure, generation: int) -> None:
        """A session-level `failure` met by an attempt admitted in `generation`: pause once for everyone, or
        give the session up."""
        with self._cond:
            if generation != self._generation or self._pausing:
                return  # a pause began after this attempt did: the caller's next admit waits it out
            if self._pauses_in_a_row >= self.policy.backoffs:
                self._refused = failure
                self._raise_if_refused()
            self._pauses_in_a_row += 1
            self._pausing = True
            delay = self.policy.delay(self._pauses_in_a_row, self._rng)
        try:
            self._sleep(delay)
        finally:
            with self._cond:
                self._waited_s += delay
                self._generation += 1
                self._pausing = False
                self._cond.notify_all()


@dataclass(frozen=True)
class Attempted(Generic[T]):
    """What `call_with_retries` ended with: a value or the last failure (never a session-level one: those raise
    `SessionRefused`), and how many tries it took."""

    value: T | None
    failure: Failure | None
    attempts: int


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    breaker: SessionBreaker | None = None,
) -> Attempted[T]:
    """Call `fn` until it succeeds, fails for good (permanent or later), or `policy.attempts` tries fail.

    Session-level answers go to `breaker` (the batch's; by default one of this call's own with the default
    `BreakerPolicy`) and do not spend the attempts; `SessionRefused` is raised when the breaker gives up.
    Exceptions that are not the outside world's (`is_platform_error`) propagate at once: they are our bugs.
    """
    rng = rng or random.Random()
    breaker = breaker or SessionBreaker(BreakerPolicy(), sleep, rng)
    tries = failed = 0
    while True:
        generation = breaker.admit()
        tries += 1
        try:
            value = fn()
        except Exception as exc:
            if not is_platform_error(exc):
                raise
            failure = classify(exc)
        else:
            breaker.succeeded()
            return Attempted(value, None, tries)
        if failure.category.session_level:
            breaker.refused(failure, generation)
            continue
        failed += 1
        if not failure.category.retry_now or failed == policy.attempts:
            return Attempted(None, failure, tries)
        sleep(policy.delay(failed, rng))
