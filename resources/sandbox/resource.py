"""The sandbox as a Dagster resource: a `VideoPlatform` whose platform is a local SandboxServer.

Only the addresses and the extra yt-dlp extractors differ from `YouTubePlatform`; the pipeline
makes identical calls on both. The world is built and the server started lazily on first use
(most runs touch the platform in one or two assets only), and stopped at resource teardown.
"""

from __future__ import annotations

import datetime
import pathlib
import threading

from dagster import InitResourceContext
from pydantic import Field, PrivateAttr
from yt_dlp.extractor.common import InfoExtractor

from resources.media_tools import user_cache_dir
from resources.sandbox.clock import FileClock
from resources.sandbox.faults import FAULT_KINDS, FaultConfig
from resources.sandbox.server import SandboxServer, oembed_url, watch_url
from resources.sandbox.world import DEMO_CLASSES, World, WorldConfig
from resources.sandbox.ytdlp_extractors import SandboxIE, SandboxSearchIE
from resources.video_platform import VideoPlatform

CLOCK_AFTER_EPOCH = datetime.timedelta(days=365)


class SandboxPlatform(VideoPlatform):
    """A deterministic local stand-in for the video platform, reached through yt-dlp over HTTP."""

    seed: int = Field(default=0, description="World seed: same seed, same videos, ids and removals.")
    classes: list[str] | None = Field(default=None, description="Kinetics-700 class names; None = the demo set.")
    relevant_per_class: int = Field(default=60, ge=0)
    distractors_per_class: int = Field(default=20, ge=0)
    reupload_rate: float = Field(default=0.08, ge=0, le=1)
    compilations_per_class: int = Field(default=1, ge=0)
    width: int = Field(default=160, gt=0)
    height: int = Field(default=120, gt=0)
    fps: int = Field(default=25, gt=0)
    max_duration: float = Field(default=600.0, ge=3, description="Caps video length (short worlds for tests).")
    annual_removal_rate: float = Field(default=0.03, ge=0, description="Link-rot hazard per year.")
    future_years: float = Field(default=1.5, ge=0, description="Uploads go on until the epoch + this many years.")
    note_lookalikes: bool = Field(default=False, description="Per class, videos titled with its words that show "
                                  "another scene, in the odds of the note's P(voted positive) (world.py).")
    cache_dir: str | None = Field(default=None, description="World cache (index + media); None = per-user cache dir.")
    clock: str | None = Field(default=None, description="Platform 'today' (YYYY-MM-DD); None = `clock_file`'s.")
    clock_file: str | None = Field(default=None, description="File with the platform's 'today', shared by every "
                                   "process (`kinetics sandbox clock`); missing or None = epoch + 1 year.")
    fault_rate: float = Field(default=0.0, ge=0, le=1, description="Share of faulty answers: transient request "
                              "failures (429, 503, stalls, truncation) and throttled-session waves.")
    fault_seed: int = Field(default=0)
    fault_kinds: list[str] = Field(default=list(FAULT_KINDS), description=f"Faults to inject, of {FAULT_KINDS}.")

    _server: SandboxServer | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def world_config(self) -> WorldConfig:
        return WorldConfig(
            seed=self.seed,
            classes=tuple(self.classes) if self.classes is not None else DEMO_CLASSES,
            relevant_per_class=self.relevant_per_class,
            distractors_per_class=self.distractors_per_class,
            reupload_rate=self.reupload_rate,
            compilations_per_class=self.compilations_per_class,
            width=self.width,
            height=self.height,
            fps=self.fps,
            max_duration=self.max_duration,
            annual_removal_rate=self.annual_removal_rate,
            future_years=self.future_years,
            note_lookalikes=self.note_lookalikes,
        )

    def clock_date(self, config: WorldConfig) -> datetime.date | FileClock:
        """A pinned `clock`, else the shared `clock_file` (the world's epoch + 1 year until it is written)."""
        if self.clock is None:
            start = config.epoch + CLOCK_AFTER_EPOCH
            return FileClock(pathlib.Path(self.clock_file), start) if self.clock_file else start
        try:
            return datetime.date.fromisoformat(self.clock)
        except ValueError:
            raise ValueError(f"SandboxPlatform.clock must be YYYY-MM-DD, got {self.clock!r}") from None

    def shared_clock(self) -> FileClock:
        """The clock file every process serving this world reads (the demo and `kinetics sandbox clock` move it)."""
        source = self.clock_date(self.world_config())
        if not isinstance(source, FileClock):
            raise ValueError("this sandbox platform has no shared clock: its clock is pinned or clock_file is unset")
        return source

    @property
    def server(self) -> SandboxServer:
        """The running server, started on first use (tests and evaluation may move its clock)."""
        with self._lock:
            if self._server is None:
                config = self.world_config()
                world = World(config, pathlib.Path(self.cache_dir) if self.cache_dir else user_cache_dir() / "sandbox")
                faults = FaultConfig(rate=self.fault_rate, seed=self.fault_seed, kinds=tuple(self.fault_kinds))
                self._server = SandboxServer(world, self.clock_date(config), faults).start()
            return self._server

    @property
    def started(self) -> bool:
        return self._server is not None

    def shutdown(self) -> None:
        """Stop the server if it was started; safe to call more than once."""
        with self._lock:
            if self._server is not None:
                self._server.stop()
                self._server = None

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.shutdown()

    @property
    def search_key(self) -> str:
        return SandboxSearchIE.SEARCH_KEY

    def watch_url(self, video_id: str) -> str:
        return watch_url(self.server.base_url, video_id)

    def probe_url(self, video_id: str) -> str:
        return oembed_url(self.server.base_url, video_id)

    def _extractors(self) -> list[InfoExtractor]:
        return [SandboxSearchIE(), SandboxIE()]

    def _extractor_args(self) -> dict[str, dict[str, list[str]]]:
        return {SandboxSearchIE.SEARCH_KEY: {"base_url": [self.server.base_url]}}
