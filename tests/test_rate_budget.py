"""One request budget for the whole deployment: the bucket lives in the ledgers' database, so every thread,
run and process that uses the same ledgers and budget name together stays within one rate."""

from __future__ import annotations

import datetime
import multiprocessing
import types

import pytest

from kinetics_assets.acquisition.assets import _search_function
from resources.ledgers import Ledgers
from resources.profiles import kinetics_home, resources_for
from resources.rate_limit import YOUTUBE_RATE_PER_S, RateLimit
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.server import SandboxServer
from resources.sandbox.world import DEMO_CLASSES, World, WorldConfig
from resources.token_bucket import SharedTokenBucket

pytestmark = pytest.mark.timeout(120)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_two_buckets_on_one_database_share_one_bank(ledger_backend):
    clock, where = FakeClock(), ledger_backend.location()
    first, second = (SharedTokenBucket(where, "youtube", 2.0, 3, clock=clock, sleep=lambda s: None)
                     for _ in range(2))
    assert first.try_acquire() and first.try_acquire() and second.try_acquire()
    assert not second.try_acquire() and not first.try_acquire()  # the burst is spent, whoever spent it
    clock.now += 0.5
    assert second.available() == pytest.approx(1.0)
    assert first.available() == pytest.approx(1.0)


def test_reservations_queue_across_buckets_on_one_database(ledger_backend):
    clock, where = FakeClock(), ledger_backend.location()
    buckets = [SharedTokenBucket(where, "youtube", 1.0, 1, clock=clock, sleep=lambda s: None) for _ in range(2)]
    waits = [buckets[i % 2].acquire() for i in range(4)]  # the clock stands still: each books the next free second
    assert waits == pytest.approx([0.0, 1.0, 2.0, 3.0])


def test_budgets_of_other_names_are_independent(ledger_backend):
    clock, where = FakeClock(), ledger_backend.location()
    youtube, sandbox = (SharedTokenBucket(where, name, 1.0, 1, clock=clock) for name in ("youtube", "sandbox"))
    assert youtube.try_acquire() and sandbox.try_acquire()
    assert not youtube.try_acquire()


def test_a_clock_that_steps_back_refills_nothing(ledger_backend):
    clock = FakeClock()
    bucket = SharedTokenBucket(ledger_backend.location(), "youtube", 1.0, 2, clock=clock)
    assert bucket.try_acquire() and bucket.try_acquire()
    clock.now -= 3600
    assert bucket.available() == pytest.approx(0.0)
    clock.now += 1
    assert bucket.available() == pytest.approx(1.0)


def test_rate_limit_resources_on_one_ledgers_database_share_one_budget(ledger_backend):
    ledgers = ledger_backend.ledgers()
    limit = RateLimit(ledgers=ledgers, budget="sandbox", rate_per_s=0.001, burst=2)
    assert limit.bucket() is limit.bucket()
    assert (limit.bucket().rate_per_s, limit.bucket().burst) == (0.001, 2.0)
    other_run = RateLimit(ledgers=Ledgers(root=ledgers.root, url=ledgers.url), budget="sandbox", rate_per_s=0.001,
                          burst=2)
    assert limit.bucket().try_acquire(2)
    assert not other_run.bucket().try_acquire()


def test_production_default_is_youtube_safe():
    # ~300 videos an hour per session before YouTube rate-limits it, ~3 requests per video
    assert RateLimit(ledgers=Ledgers(root="unused")).rate_per_s == YOUTUBE_RATE_PER_S <= 300 * 3 / 3600


RACE_BURST, RACERS, TRIES = 60, 3, 40


def _take_what_you_can(where, start, taken) -> None:
    bucket = SharedTokenBucket(where, "race", rate_per_s=1e-6, burst=RACE_BURST)  # refills nothing meanwhile
    start.wait(timeout=60)
    taken.put(sum(bucket.try_acquire() for _ in range(TRIES)))


def test_processes_racing_for_one_budget_take_each_token_once(ledger_backend):
    """Each take reads, refills and writes the bank in one transaction that no other process interleaves with:
    two processes that both read the same bank would both spend its last token (a lost update)."""
    where, context = ledger_backend.location(), multiprocessing.get_context("fork")
    start, taken = context.Barrier(RACERS), context.Queue()
    racers = [context.Process(target=_take_what_you_can, args=(where, start, taken)) for _ in range(RACERS)]
    for process in racers:
        process.start()
    counts = [taken.get(timeout=60) for _ in racers]
    for process in racers:
        process.join(timeout=10)
    assert [process.exitcode for process in racers] == [0] * RACERS
    assert sum(counts) == RACE_BURST, counts  # none beyond the burst, whoever took them


def test_the_sandbox_profile_keeps_ledgers_and_budget_in_one_shared_folder():
    resources = resources_for("sandbox")
    assert resources["ledgers"].root == str(kinetics_home() / "ledgers")
    assert resources["rate_limit"].ledgers == resources["ledgers"]


# -- searches take tokens, and N processes together stay within the rate ----------------------------------------
RATE, BURST = 6.0, 2
PROCESSES, SEARCHES = 3, 6
# Requests arrive at the server a little after their token was granted, by a delay that varies under load;
# the rate bound is checked with that much slack.
ARRIVAL_JITTER_S = 0.5


class SandboxAt(SandboxPlatform):
    """The sandbox platform as served by another process (this test's), the way a deployment's runs share it."""

    base_url: str

    @property
    def server(self):
        return types.SimpleNamespace(base_url=self.base_url)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = WorldConfig(classes=DEMO_CLASSES[:1], relevant_per_class=6, distractors_per_class=2, max_duration=10.0)
    world = World(config, tmp_path_factory.mktemp("world"))
    with SandboxServer(world, config.epoch + datetime.timedelta(days=365)) as running:
        yield running


def test_every_search_takes_a_token(server, tmp_path):
    limit = RateLimit(ledgers=Ledgers(root=str(tmp_path)), budget="sandbox", rate_per_s=0.001, burst=5)
    search = _search_function(SandboxAt(base_url=server.base_url), limit)
    for text in ("dance", "ball", "jump"):
        search(text, 5)
    assert limit.bucket().available() == pytest.approx(2.0, abs=0.01)


def _search_worker(base_url: str, ledgers: dict, start, worker: int) -> None:
    """One per-class run's searches, in its own process, through the deployment's RateLimit resource."""
    limit = RateLimit(ledgers=Ledgers(**ledgers), budget="sandbox", rate_per_s=RATE, burst=BURST)
    search = _search_function(SandboxAt(base_url=base_url), limit)
    start.wait(timeout=60)
    for i in range(SEARCHES):
        search(f"class {worker} query {i}", 5)


def test_concurrent_processes_together_stay_within_the_rate(server, ledger_backend):
    # Forked from a server process that has imported the pipeline once (as Dagster's forkserver executor does).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["kinetics_assets.acquisition.assets"])
    start = context.Barrier(PROCESSES + 1)
    earlier = len(server.request_times())
    ledgers = ledger_backend.ledgers()  # one folder of SQLite files, or one PostgreSQL database, for them all
    workers = [context.Process(target=_search_worker, args=(server.base_url, {"root": ledgers.root, "url": ledgers.url},
                                                            start, i)) for i in range(PROCESSES)]
    for process in workers:
        process.start()
    try:
        start.wait(timeout=90)
        for process in workers:
            process.join(timeout=60)
    finally:
        for process in workers:
            if process.is_alive():
                process.kill()
    assert [process.exitcode for process in workers] == [0] * PROCESSES

    arrivals = sorted(server.request_times()[earlier:])
    assert len(arrivals) == PROCESSES * SEARCHES  # one request per search, none lost
    slack = RATE * ARRIVAL_JITTER_S
    worst = max((j - i + 1) - (BURST + RATE * (arrivals[j] - arrivals[i]))
                for i in range(len(arrivals)) for j in range(i, len(arrivals)))
    assert worst <= slack, f"{worst:.1f} requests over budget in some window (allowed slack {slack:.1f})"
