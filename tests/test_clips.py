"""Clip acquisition end to end on the sandbox, through yt-dlp, plus its budget-free parts.

Protects: clips are exactly 250 frames at 25 fps, H.264 yuv420p at the configured short side, under official
names; short sources are kept whole and flagged; permanent failures are categorized and never retried; with 20 %
injected transient faults the clip set is identical (bytes and frames) to a clean run; a rerun makes no platform
request for finished or permanently failed clips and retries transient ones; killing a run mid-download leaves
no partial file and a rerun fetches nothing twice. Also the token bucket's arithmetic (fake clock), the clip
store's path checks and atomic put, and the ledger's accumulation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from kinetics_assets.acquisition.clips import ClipFormat, ClipProbe, ClipRequest, acquire_clips
from kinetics_assets.acquisition.failures import (
    AcquisitionError,
    BreakerPolicy,
    FailureCategory,
    RetryPolicy,
    SessionRefused,
)
from kinetics_assets.acquisition.ledger import ClipLedger
from kinetics_assets.acquisition.localize import FixedStrategy, MotionStrategy, Window
from resources.clip_store import LocalClipStore, validate_relpath
from resources.token_bucket import TokenBucket
from resources.sandbox.faults import THROTTLED
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES

pytestmark = pytest.mark.timeout(240)

SHORT_SIDE = 96
FAST_RETRIES = RetryPolicy(attempts=8, base_s=0.01, cap_s=0.05)
REMOVAL_CATEGORY = {"removed_by_user": "removed", "private": "private", "account_terminated": "account_terminated",
                    "copyright": "copyright", "country_blocked": "country_blocked",
                    "sign_in_required": "sign_in_required"}


# -- token bucket -----------------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_allows_a_burst_then_paces_requests():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=2.0, burst=3, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.5)
    assert bucket.acquire() == pytest.approx(0.5)
    assert clock.now == pytest.approx(1.0)


def test_bucket_refills_at_the_rate_up_to_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=4.0, burst=2, clock=clock, sleep=clock.sleep)
    assert bucket.try_acquire() and bucket.try_acquire() and not bucket.try_acquire()
    clock.now += 0.25
    assert bucket.available() == pytest.approx(1.0)
    clock.now += 100.0
    assert bucket.available() == pytest.approx(2.0)


def test_waiting_callers_queue_for_booked_tokens():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=1.0, burst=1, clock=lambda: clock.now, sleep=lambda s: None)
    waits = [bucket.acquire() for _ in range(4)]  # the clock stands still: each books the next free second
    assert waits == pytest.approx([0.0, 1.0, 2.0, 3.0])


def test_bucket_is_thread_safe():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=1.0, burst=50, clock=clock, sleep=clock.sleep)
    granted = []

    def grab() -> None:
        granted.extend(bucket.try_acquire() for _ in range(40))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 50


def test_bucket_rejects_impossible_settings():
    with pytest.raises(ValueError):
        TokenBucket(rate_per_s=0, burst=1)
    with pytest.raises(ValueError):
        TokenBucket(rate_per_s=1, burst=0.5)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate_per_s=1, burst=2).acquire(3)


class CountingBucket(TokenBucket):
    """A generous bucket that counts the platform requests made through it."""

    def __init__(self) -> None:
        super().__init__(rate_per_s=1000.0, burst=1000)
        self.requests = 0

    def acquire(self, tokens: float = 1.0) -> float:
        self.requests += 1
        return super().acquire(tokens)


# -- store and ledger -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["", "/abs/x.mp4", "../x.mp4", "a/../b.mp4", "a//b.mp4", ".hidden.mp4",
                                 "a/./b.mp4", "a\\b.mp4", "x\x00.mp4", "a/b\n.mp4"])
def test_store_paths_stay_inside_the_store(bad, tmp_path):
    with pytest.raises(ValueError, match="plain names"):
        validate_relpath(bad)
    with pytest.raises(ValueError):
        LocalClipStore(root=str(tmp_path)).path(bad)


def test_put_moves_a_staged_file_into_place(tmp_path):
    store = LocalClipStore(root=str(tmp_path))
    with store.staging() as stage:
        staged = stage / "clip.mp4"
        staged.write_bytes(b"clip")
        assert not store.exists("train/luge/x.mp4")
        uri = store.put(staged, "train/luge/x.mp4")
    assert not stage.exists() and not staged.exists()
    assert store.path("train/luge/x.mp4").read_bytes() == b"clip" and store.exists("train/luge/x.mp4")
    assert uri == store.path("train/luge/x.mp4").resolve().as_uri()


def test_sweep_removes_only_staging_of_dead_processes(tmp_path):
    store = LocalClipStore(root=str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / ".staging" / f"{dead.pid}-abc"
    stale.mkdir(parents=True)
    (stale / "clip.mp4.part").write_bytes(b"half")
    with store.staging() as mine:
        assert store.sweep_staging() == 1
        assert mine.exists() and not stale.exists()


def test_ledger_accumulates_attempts_and_downloads_across_runs(ledger_backend):
    where = ledger_backend.location()
    with ClipLedger(where) as ledger:
        ledger.record("k/abc", "dQw4w9WgXcQ", "transient_failure", 3, category="rate_limited", message="429")
    with ClipLedger(where) as ledger:
        entry = ledger.record("k/abc", "dQw4w9WgXcQ", "done", 1, clip_id="dQw4w9WgXcQ_000001_000011",
                              relpath="k/dQw4w9WgXcQ_000001_000011.mp4", time_start=1, time_end=11, downloaded=True,
                              short_source=False)
        assert (entry.status, entry.attempts, entry.downloads, entry.category) == ("done", 4, 1, None)
        assert ledger.entries() == [entry]
        if ledger_backend.name == "sqlite":  # readers in other processes share the file
            assert ledger._con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with pytest.raises(ValueError, match="status"):
            ledger.record("k/abc", "dQw4w9WgXcQ", "finished", 1)


# -- end to end on the sandbox ----------------------------------------------------------------------------------
def _world_fields(seed: int, cache: Path) -> dict:
    return {"seed": seed, "classes": list(DEMO_CLASSES[:2]), "relevant_per_class": 4, "distractors_per_class": 1,
            "compilations_per_class": 0, "reupload_rate": 0.0, "max_duration": 30, "cache_dir": str(cache)}


@pytest.fixture(scope="module")
def world_fields(tmp_path_factory):
    """The first seed whose small world has a playable video shorter than a clip and a removed one
    (only the index is built while searching; pixels are rendered on demand)."""
    cache = tmp_path_factory.mktemp("clips-sandbox")
    for seed in range(60):
        probe = SandboxPlatform(**_world_fields(seed, cache))
        try:
            world, clock = probe.server.world, probe.server.clock
            relevant = GroundTruth(world).ids(kind="relevant")
            if any(world.availability(v, clock).available and world.record(v).duration < 10 for v in relevant) \
                    and any(world.availability(v, clock).reason for v in relevant):
                return _world_fields(seed, cache)
        finally:
            probe.shutdown()
    pytest.fail("no seed < 60 gives a world with a short and a removed video")


@pytest.fixture(scope="module")
def platform(world_fields):
    sandbox = SandboxPlatform(**world_fields)
    yield sandbox
    sandbox.shutdown()


@pytest.fixture(scope="module")
def requests(platform):
    """Every video localized by motion (playable, short, removed), plus annotated windows (one on a short video)."""
    world, clock = platform.server.world, platform.server.clock
    ids = [v for v in GroundTruth(world).ids() if world.availability(v, clock).available or
           world.availability(v, clock).reason]
    annotated = next(v for v in ids if world.availability(v, clock).available and world.record(v).duration >= 13)
    short = next(v for v in ids if world.availability(v, clock).available and world.record(v).duration < 10)
    return [ClipRequest(v, folder="candidates") for v in ids] + [
        ClipRequest(annotated, "annotated", 2, 12), ClipRequest(short, "annotated", 0, 10)]


def _acquire(platform, requests, root: Path, **kwargs):
    kwargs.setdefault("rate_limit", CountingBucket())
    with ClipLedger(root / "ledger.sqlite") as ledger:
        outcomes = acquire_clips(platform, requests, LocalClipStore(root=str(root)), ledger, MotionStrategy(),
                                 concurrency=2, clip_format=ClipFormat(short_side=SHORT_SIDE), **kwargs)
        return outcomes, ledger.entries()


@pytest.fixture(scope="module")
def clean_run(platform, requests, tmp_path_factory):
    root = tmp_path_factory.mktemp("clean-store")
    sleeps: list[float] = []
    outcomes, entries = _acquire(platform, requests, root, retry=FAST_RETRIES, sleep=sleeps.append,
                                 jitter_seed=0)
    return root, outcomes, entries, sleeps


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_clips_are_250_frames_at_25_fps_h264_at_the_short_side(clean_run, platform):
    _, outcomes, _, _ = clean_run
    full = [o for o in outcomes if o.status == "done" and not o.short_source]
    assert len(full) >= 4
    for outcome in full:
        with av.open(outcome.path) as container:
            stream = container.streams.video[0]
            decoded = sum(1 for _ in container.decode(stream))
            ctx = stream.codec_context
            assert (decoded, stream.average_rate, ctx.name, ctx.pix_fmt) == (250, 25, "h264", "yuv420p")
            assert (ctx.width, ctx.height) == (128, SHORT_SIDE)  # 160x120 scaled to a 96-pixel short side
        assert (outcome.frames, outcome.source_width, outcome.source_height) == (250, 160, 120)


def test_clips_are_stored_under_official_names(clean_run):
    root, outcomes, entries, _ = clean_run
    for outcome in (o for o in outcomes if o.status == "done"):
        name = f"{outcome.youtube_id}_{int(outcome.start):06d}_{int(outcome.end):06d}"
        assert outcome.clip_id == name and outcome.relpath.endswith(f"/{name}.mp4")
        assert Path(outcome.path) == root / outcome.relpath and Path(outcome.path).is_file()
    annotated = [o.relpath.removeprefix(f"annotated/{o.youtube_id}") for o in outcomes
                 if o.key.startswith("annotated/")]
    short_end = int(next(o.end for o in outcomes if o.key.startswith("annotated/") and o.short_source))
    assert annotated == ["_000002_000012.mp4", f"_000000_{short_end:06d}.mp4"]  # a name gives the real end
    assert {e.clip_key for e in entries} == {o.key for o in outcomes}


def test_short_sources_are_kept_whole_and_flagged(clean_run, platform):
    _, outcomes, entries, _ = clean_run
    short = [o for o in outcomes if o.status == "done" and o.short_source]
    assert short, "the fixture world has a playable video shorter than a clip"
    assert {o.key.split("/")[0] for o in short} == {"candidates", "annotated"}
    recorded = {e.clip_key: e for e in entries}
    for outcome in short:
        duration = platform.server.world.record(outcome.youtube_id).duration
        # localized or annotated: the whole video, recorded and named with its real end, not the window's
        assert outcome.start == 0 and outcome.end == pytest.approx(duration, abs=0.5 / 25)
        assert outcome.clip_id == f"{outcome.youtube_id}_000000_{int(outcome.end):06d}"
        assert len(_frames(Path(outcome.path))) == round(duration * 25) == outcome.frames
        entry = recorded[outcome.key]
        assert (entry.short_source, entry.time_end, entry.clip_id) == (True, outcome.end, outcome.clip_id)


def test_permanent_failures_are_categorized_and_not_retried(clean_run, platform):
    _, outcomes, _, sleeps = clean_run
    world, clock = platform.server.world, platform.server.clock
    gone = [o for o in outcomes if world.availability(o.youtube_id, clock).reason]
    assert gone
    for outcome in gone:
        reason = world.availability(outcome.youtube_id, clock).reason
        assert (outcome.status, outcome.category, outcome.attempts) == (
            "permanent_failure", REMOVAL_CATEGORY[reason], 1)
    assert sleeps == [], "a clean run with only permanent failures never backs off"
    assert all(o.status == "done" for o in outcomes if o not in gone)


def test_rerun_answers_settled_clips_from_the_ledger_without_platform_requests(clean_run, platform, requests):
    root, first, _, _ = clean_run
    bucket = CountingBucket()
    again, entries = _acquire(platform, requests, root, rate_limit=bucket)
    assert bucket.requests == 0
    assert all(o.skipped and o.attempts == 0 for o in again)
    assert [(o.status, o.relpath, o.category) for o in again] == [(o.status, o.relpath, o.category) for o in first]
    assert all(e.downloads == 1 for e in entries if e.status == "done")


PINNED = 1_800_000_000.0  # the sandbox's fault clock in these tests: moved only by the pipeline's own sleeps


def _wave_start(faults, after: float) -> float:
    """The first second from `after` on at which the sandbox begins to throttle the session after 10 s without."""
    return next(t for t in range(int(after), int(after) + 3600)
                if faults.wave(t) and not any(faults.wave(t - k) for k in range(1, 11)))


def test_faults_at_a_fifth_with_the_default_policies_do_not_change_the_clip_set(clean_run, world_fields, requests,
                                                                                 tmp_path):
    """429s, 503s, stalls, truncation and a throttled wave (met at the start, waited out by the breaker):
    the default retry and breaker policies end with the clean run's clips, bytes and frames."""
    root, clean, _, _ = clean_run
    flaky, clock = SandboxPlatform(**world_fields, fault_rate=0.2, fault_seed=1), FakeClock()
    try:
        faults = flaky.server.faults
        clock.now = _wave_start(faults, PINNED)
        faults.clock = clock
        faulty, entries = _acquire(flaky, requests, tmp_path, sleep=clock.sleep, jitter_seed=0)
    finally:
        flaky.shutdown()
    assert faults.injected[THROTTLED] > 0 and sum(faults.injected.values()) > faults.injected[THROTTLED]
    assert sum(o.attempts for o in faulty) > len(faulty), "faults were injected and retried"
    assert [(o.key, o.status, o.relpath) for o in faulty] == [(o.key, o.status, o.relpath) for o in clean]
    assert not [e for e in entries if e.category and FailureCategory.from_label(e.category).session_level]
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.mp4"))
    assert files == sorted(p.relative_to(root) for p in root.rglob("*.mp4"))
    for relpath in files:
        assert (tmp_path / relpath).read_bytes() == (root / relpath).read_bytes()
        assert np.array_equal(_frames(tmp_path / relpath), _frames(root / relpath))


def test_a_session_refused_through_every_backoff_stops_the_batch_and_touches_no_other_video(
        platform, world_fields, requests, tmp_path):
    """A throttled wave begins once the first clip is done and outlasts the breaker: the batch stops with
    SessionRefused, the finished clip stays recorded, no other request gets a ledger entry; a later run
    fetches the rest."""
    world, today = platform.server.world, platform.server.clock
    playable = [r for r in requests if r.folder == "candidates" and world.availability(r.youtube_id, today).available]
    throttling, clock = SandboxPlatform(**world_fields, fault_rate=1.0, fault_kinds=[THROTTLED]), FakeClock()
    try:
        faults = throttling.server.faults
        wave = _wave_start(faults, PINNED)
        clock.now, faults.clock = wave - 5, clock  # before the wave: the first clips get through

        def throttle_from_now(outcome) -> None:
            clock.now = max(clock.now, wave)

        with ClipLedger(tmp_path / "ledger.sqlite") as ledger, pytest.raises(SessionRefused) as refused:
            acquire_clips(throttling, playable, LocalClipStore(root=str(tmp_path)), ledger, MotionStrategy(),
                          rate_limit=CountingBucket(), concurrency=1, lookahead=0, retry=FAST_RETRIES,
                          breaker=BreakerPolicy(backoffs=2, base_s=1.0), clip_format=ClipFormat(short_side=SHORT_SIDE),
                          sleep=lambda s: None, on_outcome=throttle_from_now)  # the clock stays inside the wave
        with ClipLedger(tmp_path / "ledger.sqlite") as ledger:
            finished = ledger.entries()
        assert len(finished) == 1 and finished[0].status == "done", "only the finished clip is recorded"
        assert refused.value.untouched == len(playable) - len(finished) > 0
        assert faults.injected[THROTTLED] > 0
        clock.now = wave + 10  # the wave has passed
        again, _ = _acquire(throttling, playable, tmp_path, retry=FAST_RETRIES, sleep=clock.sleep)
    finally:
        throttling.shutdown()
    assert [o.status for o in again] == ["done"] * len(playable)
    assert {o.key for o in again if o.skipped} == {e.clip_key for e in finished}


def test_a_bot_check_an_old_run_recorded_as_permanent_is_tried_again(platform, requests, tmp_path):
    """Ledgers written before session-level answers had their own kind hold bot checks as permanent failures."""
    world, today = platform.server.world, platform.server.clock
    request = next(r for r in requests if r.folder == "annotated" and world.availability(r.youtube_id, today).available)
    with ClipLedger(tmp_path / "ledger.sqlite") as ledger:
        ledger.record(request.key, request.youtube_id, "permanent_failure", 1, category="bot_check",
                      message="Sign in to confirm you\u2019re not a bot")
    [outcome], _ = _acquire(platform, [request], tmp_path)
    assert outcome.status == "done" and not outcome.skipped


def test_only_failures_still_permanent_exclude_a_video_for_good(ledger_backend):
    """candidate_videos drops the videos the ledger holds as failed for good; old bot checks are not among them."""
    with ClipLedger(ledger_backend.location()) as ledger:
        for video_id, category in (("AAAAAAAAAAA", "removed"), ("BBBBBBBBBBB", "bot_check"),
                                   ("CCCCCCCCCCC", "no_longer_a_category")):
            ledger.record(video_id, video_id, "permanent_failure", 1, category=category, message="m")
        ledger.record("DDDDDDDDDDD", "DDDDDDDDDDD", "transient_failure", 1, category="timeout", message="m")
        assert [e.youtube_id for e in ledger.entries() if e.failed_for_good] == ["AAAAAAAAAAA"]


def test_transient_failures_are_retried_by_the_next_run(world_fields, requests, tmp_path):
    playable = [r for r in requests if r.folder == "annotated"][:1]
    down = SandboxPlatform(**world_fields, fault_rate=1.0, fault_kinds=["503"])
    try:
        [failed], _ = _acquire(down, playable, tmp_path, retry=RetryPolicy(attempts=2, base_s=0), sleep=lambda s: None)
    finally:
        down.shutdown()
    assert failed.status == "transient_failure" and failed.attempts == 2
    healthy = SandboxPlatform(**world_fields)
    try:
        [done], [entry] = _acquire(healthy, playable, tmp_path)
    finally:
        healthy.shutdown()
    assert done.status == "done" and not done.skipped
    assert (entry.status, entry.attempts, entry.downloads) == ("done", 3, 1)


_KILLABLE_RUN = """
import json, sys
from pathlib import Path
from kinetics_assets.acquisition.clips import ClipFormat, ClipRequest, acquire_clips
from kinetics_assets.acquisition.ledger import ClipLedger
from kinetics_assets.acquisition.localize import FixedStrategy
from resources.clip_store import LocalClipStore
from resources.token_bucket import TokenBucket
from resources.sandbox.resource import SandboxPlatform

args = json.loads(sys.argv[1])
platform = SandboxPlatform(**args["platform"])
with ClipLedger(Path(args["root"]) / "ledger.sqlite") as ledger:
    acquire_clips(platform, [ClipRequest(**r) for r in args["requests"]], LocalClipStore(root=args["root"]), ledger,
                  FixedStrategy(offset_s=1), rate_limit=TokenBucket(rate_per_s=2.0, burst=1), concurrency=1,
                  clip_format=ClipFormat(short_side=96))
platform.shutdown()
"""


def test_a_killed_run_leaves_no_partial_files_and_a_rerun_fetches_nothing_twice(world_fields, platform, requests,
                                                                                 tmp_path):
    world, clock = platform.server.world, platform.server.clock
    playable = [r for r in requests if r.folder == "candidates" and world.availability(r.youtube_id, clock).available]
    args = {"platform": world_fields, "root": str(tmp_path),
            "requests": [{"youtube_id": r.youtube_id, "folder": r.folder} for r in playable]}
    run = subprocess.Popen([sys.executable, "-c", _KILLABLE_RUN, json.dumps(args)], start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (landed := [p for p in (tmp_path / "candidates").glob("*.mp4")] if (tmp_path / "candidates").is_dir()
               else []):
        assert run.poll() is None, f"the run ended before any clip landed: {run.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL
    first = landed[0]
    first_stat = first.stat()
    assert len(list((tmp_path / "candidates").glob("*.mp4"))) < len(playable), "killed before it finished"

    with ClipLedger(tmp_path / "ledger.sqlite") as ledger:
        outcomes = acquire_clips(platform, playable, LocalClipStore(root=str(tmp_path)), ledger,
                                 FixedStrategy(offset_s=1), rate_limit=CountingBucket(), concurrency=2,
                                 clip_format=ClipFormat(short_side=96))
        entries = ledger.entries()
    assert all(o.status == "done" for o in outcomes)
    assert all(e.downloads <= 1 for e in entries) and len(entries) == len(playable)
    assert (first.stat().st_ino, first.stat().st_mtime_ns) == (first_stat.st_ino, first_stat.st_mtime_ns)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and (p.suffix in (".part", ".partial")
                                                                     or ".staging" in p.parts)]
    assert leftovers == []
    assert sorted(p.name for p in (tmp_path / "candidates").glob("*.mp4")) == sorted(
        f"{o.clip_id}.mp4" for o in outcomes)


class TimedMotion:
    """Motion localization that records when each call ran."""

    name = "motion"

    def __init__(self, spans: list) -> None:
        self.spans = spans

    def localize(self, source):
        started = time.perf_counter()
        try:
            return MotionStrategy().localize(source)
        finally:
            self.spans.append(("localize", started, time.perf_counter()))


@pytest.mark.parametrize("lookahead", [0, 1])
def test_downloads_stay_within_concurrency_while_lookahead_localizes_beside_them(platform, requests, lookahead,
                                                                               tmp_path, monkeypatch):
    import yt_dlp

    spans: list = []
    download = yt_dlp.YoutubeDL.process_ie_result

    def timed_download(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            result = download(self, *args, **kwargs)
            time.sleep(0.2)  # a download longer than the bookkeeping around it, as a real one is, even under load
            return result
        finally:
            spans.append(("download", started, time.perf_counter()))

    monkeypatch.setattr(yt_dlp.YoutubeDL, "process_ie_result", timed_download)
    world, clock = platform.server.world, platform.server.clock
    playable = [r for r in requests if r.folder == "candidates" and world.availability(r.youtube_id, clock).available]
    with ClipLedger(tmp_path / "ledger.sqlite") as ledger:
        outcomes = acquire_clips(platform, playable, LocalClipStore(root=str(tmp_path)), ledger, TimedMotion(spans),
                                 rate_limit=CountingBucket(), concurrency=1, lookahead=lookahead,
                                 clip_format=ClipFormat(short_side=SHORT_SIDE))
    assert all(o.status == "done" for o in outcomes)
    downloads = sorted((a, b) for kind, a, b in spans if kind == "download")
    localized = [(a, b) for kind, a, b in spans if kind == "localize" and b - a > 0]
    assert len(downloads) == len(playable) >= 4
    assert all(end <= later for (_, end), (later, _) in zip(downloads, downloads[1:])), "one download at a time"
    overlapping = sum(any(a < d_end and d_start < b for d_start, d_end in downloads) for a, b in localized)
    assert (overlapping > 0) == (lookahead > 0)


def test_duplicate_requests_are_refused(platform, tmp_path):
    request = ClipRequest("dQw4w9WgXcQ", "x", 0, 10)
    with ClipLedger(tmp_path / "l.sqlite") as ledger, pytest.raises(ValueError, match="more than once"):
        acquire_clips(platform, [request, request], LocalClipStore(root=str(tmp_path)), ledger,
                      rate_limit=CountingBucket())


def test_requests_validate_their_fields():
    with pytest.raises(ValueError, match="invalid video id"):
        ClipRequest("not an id")
    with pytest.raises(ValueError, match="plain names"):
        ClipRequest("dQw4w9WgXcQ", folder="../up")
    with pytest.raises(ValueError, match="both"):
        ClipRequest("dQw4w9WgXcQ", time_start=3)
    with pytest.raises(ValueError, match="at most 10 s"):
        ClipRequest("dQw4w9WgXcQ", time_start=0, time_end=11)
    assert ClipRequest("dQw4w9WgXcQ", "train/luge", 4, 14).key == "train/luge/dQw4w9WgXcQ_000004_000014"
    assert ClipRequest("dQw4w9WgXcQ").key == "dQw4w9WgXcQ"


# -- windows the video cannot fill ------------------------------------------------------------------------------
def _long_video(platform) -> tuple[str, float]:
    world, clock = platform.server.world, platform.server.clock
    vid = next(v for v in GroundTruth(world).ids() if world.availability(v, clock).available
               and world.record(v).duration >= 13)
    return vid, world.record(vid).duration


def test_a_window_the_source_ends_inside_is_named_and_recorded_with_its_real_end(platform, tmp_path):
    """A 10-s annotation whose video ends 5-odd s in is a 5-odd-s clip, and says so: name, ledger, outcome."""
    vid, duration = _long_video(platform)
    start = int(duration) - 5
    [outcome], [entry] = _acquire(platform, [ClipRequest(vid, "annotated", start, start + 10)], tmp_path)
    assert outcome.status == "done" and outcome.short_source and entry.short_source
    assert outcome.frames == len(_frames(Path(outcome.path))) == round((duration - start) * 25)
    assert outcome.end == entry.time_end == pytest.approx(duration, abs=0.5 / 25) and outcome.end < start + 10
    assert outcome.relpath == entry.relpath == f"annotated/{vid}_{start:06d}_{int(duration):06d}.mp4"
    assert outcome.key == f"annotated/{vid}_{start:06d}_{start + 10:06d}", "the request keeps its key"
    assert not (tmp_path / f"annotated/{vid}_{start:06d}_{start + 10:06d}.mp4").exists()


def test_windows_outside_the_video_or_shorter_than_a_frame_fail_for_good_without_retries(platform, tmp_path):
    vid, duration = _long_video(platform)
    requests = [ClipRequest(vid, "past", 1000, 1010), ClipRequest(vid, "at_end", int(duration) + 1, int(duration) + 11),
                ClipRequest(vid, "tiny", 5.0, 5.01)]
    sleeps: list[float] = []
    outcomes, _ = _acquire(platform, requests, tmp_path, retry=FAST_RETRIES, sleep=sleeps.append)
    assert [(o.status, o.category, o.attempts) for o in outcomes] == [
        ("permanent_failure", "window_outside_video", 1), ("permanent_failure", "window_outside_video", 1),
        ("permanent_failure", "window_too_short", 1)]
    assert "starts after the video ends" in outcomes[0].message and "shorter than one frame" in outcomes[2].message
    assert sleeps == [] and list(tmp_path.rglob("*.mp4")) == []
    bucket = CountingBucket()
    again, _ = _acquire(platform, requests, tmp_path, rate_limit=bucket)
    assert bucket.requests == 0 and all(o.skipped for o in again), "settled: never asked again"


def test_a_short_clip_stored_by_a_killed_run_is_found_under_its_real_name(platform, tmp_path):
    """The name of a short clip is known only once it is cut; a rerun still finds it instead of fetching twice."""
    vid, duration = _long_video(platform)
    request = ClipRequest(vid, "annotated", int(duration) - 5, int(duration) + 5)
    [first], _ = _acquire(platform, [request], tmp_path / "store")
    stat = Path(first.path).stat()
    (tmp_path / "store" / "ledger.sqlite").unlink()  # the kill came between the rename and the ledger write
    [again], [entry] = _acquire(platform, [request], tmp_path / "store")
    assert (again.status, again.relpath, again.end, again.short_source) == ("done", first.relpath, first.end, True)
    assert entry.downloads == 0
    assert (Path(again.path).stat().st_ino, Path(again.path).stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)


def _task(start: float, end: float):
    from kinetics_assets.acquisition.clips import _ClipTask

    task = _ClipTask(SimpleNamespace(clip_format=ClipFormat()), ClipRequest("dQw4w9WgXcQ", "x", start, end))
    task.window = Window(start, end)
    return task


@pytest.mark.parametrize("frames, duration, category", [
    (0, None, "window_outside_video"),     # no frame and no duration to tell: the window is past the end
    (0, 40.5, "window_outside_video"),     # no frame where the video has at most one and a half seconds
    (12, 40.5, "window_outside_video"),    # half a second: less than the whole second a name needs
    (0, 60.0, "incomplete"),               # the video has the frames: the download lost them, try again
])
def test_a_clip_without_a_named_second_is_classified_by_whether_the_video_has_it(frames, duration, category):
    task = _task(40, 50)
    probe = ClipProbe(frames, 25.0 if frames else 0.0, 128, 96, "h264" if frames else "", "yuv420p")
    with pytest.raises(AcquisitionError) as raised:
        task._check(probe, duration)
    assert raised.value.failure.category.label == category


def test_the_measured_window_is_the_chosen_one_when_every_frame_is_there():
    task = _task(40, 50)
    full = ClipProbe(250, 25.0, 128, 96, "h264", "yuv420p")
    assert task._check(full, 60.0) == Window(40, 50)
    cut = ClipProbe(133, 25.0, 128, 96, "h264", "yuv420p")
    assert task._check(cut, 45.3) == Window(40, 45.32, short_source=True)
