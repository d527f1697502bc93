"""The sandbox platform's world: every video, its public metadata, search, link-rot and media.

The world is virtual and seeded: records for all videos are generated per class, vectorised, and stored once per
configuration in a SQLite file (with an FTS5 index for search) under `cache_dir`; pixels are rendered only when a
video's media is first requested. Everything a real platform would show is in `VideoMetadata`; the rest of a
record (true label, action segment, duplicate sources, removal date) is ground truth, read through truth.py.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import functools
import hashlib
import json
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Iterator

import numpy as np

from resources.sandbox import text
from resources.sandbox.render import (
    DATA_DIR, Compilation, Cut, MediaSpec, Reupload, Scene, Transform, class_motion, encode_mp4, partial_path,
    stable_int, sweep_stale_partials,
)

DEMO_CLASSES: tuple[str, ...] = (
    "stacking dice", "steering car", "punching person (boxing)", "jumping sofa", "brushing floor",
    "springboard diving", "luge", "metal detecting", "spinning plates", "shooting off fireworks",
    "washing hair", "square dancing",
)
VIDEO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")

REMOVAL_REASONS = {  # reason -> (share of removals, what the platform shows)
    "removed_by_user": (0.32, "Video unavailable. This video has been removed by the uploader"),
    "private": (0.28, "Video unavailable. This video is private"),
    "account_terminated": (0.14, "Video unavailable. This video is no longer available because the account "
                                 "associated with this video has been terminated"),
    "copyright": (0.12, "Video unavailable. This video contains content from a rights holder, who has blocked it "
                        "on copyright grounds"),
    "country_blocked": (0.08, "Video unavailable. The uploader has not made this video available in your country"),
    "sign_in_required": (0.06, "Sign in to confirm your age. This video may be inappropriate for some users"),
}
UNKNOWN_MESSAGE = "Video unavailable"
RENDER_LOCK_STRIPES = 64


@functools.cache
def kinetics700_classes() -> frozenset[str]:
    return frozenset((DATA_DIR / "kinetics700_classes.txt").read_text(encoding="utf-8").split("\n")) - {""}


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0
    classes: tuple[str, ...] = DEMO_CLASSES
    relevant_per_class: int = 60
    distractors_per_class: int = 20
    reupload_rate: float = 0.08          # share of relevant videos that get a re-upload
    compilations_per_class: int = 1
    width: int = 160
    height: int = 120
    fps: int = 25
    epoch: date = date(2019, 7, 1)       # the previous edition's snapshot date
    history_years: float = 6.0           # uploads span [epoch - history_years, epoch + future_years]
    future_years: float = 1.5
    annual_removal_rate: float = 0.03    # link-rot hazard; Table 2 of the note implies roughly 2-4 % a year
    max_duration: float = 600.0          # caps original videos' length (tests use short worlds)
    none_country_share: float = 0.10     # uploads without a country, as in the note (~90 % have one)
    # Lookalikes: videos titled with the class's own words (its phrasings) that show another scene, as many per
    # relevant video as the odds (1 - p) / p of the note's P(voted positive) p for the class (Appendix A), at most
    # MAX_LOOKALIKE_ODDS; classes the note does not list get none. Calibrated to the note by construction.
    note_lookalikes: bool = False

    def __post_init__(self):
        unknown = [c for c in self.classes if c not in kinetics700_classes()]
        if unknown:
            raise ValueError(f"WorldConfig.classes: not Kinetics-700 class names: {unknown}")
        if len(set(self.classes)) != len(self.classes) or not self.classes:
            raise ValueError("WorldConfig.classes must be a non-empty tuple without repeats")
        if self.width % 2 or self.height % 2 or self.width < 32 or self.height < 32:
            raise ValueError(f"WorldConfig: width/height must be even and >= 32, got {self.width}x{self.height}")
        if self.relevant_per_class < 1 or self.distractors_per_class < 0 or self.compilations_per_class < 0:
            raise ValueError("WorldConfig: per-class counts must be non-negative (relevant >= 1)")
        if not 0.0 <= self.reupload_rate <= 1.0:
            raise ValueError(f"WorldConfig.reupload_rate must be in [0, 1], got {self.reupload_rate}")
        if self.max_duration < 3.0:
            raise ValueError(f"WorldConfig.max_duration must be >= 3 s, got {self.max_duration}")


@dataclass(frozen=True)
class VideoMetadata:
    """Only what a real platform shows publicly."""

    id: str
    title: str
    description: str
    channel: str
    channel_id: str
    upload_date: str           # YYYYMMDD
    country: str | None        # ISO 3166-1 alpha-2 or None
    duration: float            # seconds
    width: int
    height: int
    fps: int
    view_count: int


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None         # None or a key of REMOVAL_REASONS
    message: str


@dataclass(frozen=True)
class VideoRecord(VideoMetadata):
    """A video's full record, ground truth included: for truth.py, edition.py and rendering only."""

    label: str                 # the class the video was generated for (a distractor's look-alike class)
    kind: str                  # relevant | distractor | lookalike (the class's words, another scene) | reupload | compilation
    removal_date: str | None   # YYYYMMDD from which the video is unavailable
    removal_reason: str | None
    action_start: float | None  # seconds; None when the video has no action of its own
    action_end: float | None
    look_seed: int
    source_id: str | None      # re-upload: the video it copies
    edit: str | None           # re-upload: JSON of render.Transform
    cuts: str | None           # compilation: JSON list of [source_id, first_frame, n_frames]


_COLUMNS = tuple(f.name for f in dataclasses.fields(VideoRecord))
_METADATA_COLUMNS = tuple(f.name for f in dataclasses.fields(VideoMetadata))


def video_id(seed: int, label: str, kind: str, slot: int) -> str:
    """11 base64url chars of a seed-keyed hash: looks like a platform id, stable across class subsets."""
    digest = hashlib.blake2b(f"v/{label}/{kind}/{slot}".encode(), digest_size=8,
                             key=str(seed).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


def _channel_id(seed: int, index: int) -> str:
    digest = hashlib.blake2b(f"c/{index}".encode(), digest_size=16, key=str(seed).encode()).digest()
    return "UC" + base64.urlsafe_b64encode(digest).decode()[:22]


@functools.cache
def _geography() -> tuple[tuple[str, ...], np.ndarray, dict[str, tuple[tuple[str, ...], np.ndarray]]]:
    """Continent shares (the note's Table 3, Kinetics-700-2020) and country weights within each continent."""
    with open(DATA_DIR / "continents.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    continents = tuple(r["continent"] for r in rows)
    shares = np.array([float(r["share"]) for r in rows])
    countries: dict[str, list[tuple[str, float]]] = {c: [] for c in continents}
    with open(DATA_DIR / "countries.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            countries[r["continent"]].append((r["country"], float(r["weight"])))
    per = {c: (tuple(code for code, _ in v), np.array([w for _, w in v]) / sum(w for _, w in v))
           for c, v in countries.items()}
    return continents, shares / shares.sum(), per


def continent_of(country: str) -> str:
    """The continent (Table 3's grouping) the sandbox files a country under."""
    for continent, (codes, _) in _geography()[2].items():
        if country in codes:
            return continent
    raise KeyError(f"country {country!r} is not in the sandbox's country table")


@dataclass(frozen=True)
class _Channels:
    names: list[str]
    ids: list[str]
    countries: list[str | None]


def _channels(cfg: WorldConfig, count: int) -> _Channels:
    """Uploaders; each has one country (about 10 % none) drawn to match Table 3's continent shares."""
    rng = np.random.default_rng([cfg.seed, 0xC0FFEE])
    continents, shares, per = _geography()
    continent_idx = rng.choice(len(continents), size=count, p=shares)
    country_u = rng.random(count)
    has_country = rng.random(count) >= cfg.none_country_share
    countries: list[str | None] = []
    for i in range(count):
        codes, weights = per[continents[continent_idx[i]]]
        pos = min(int(np.searchsorted(np.cumsum(weights), country_u[i], side="right")), len(codes) - 1)
        countries.append(codes[pos] if has_country[i] else None)
    name_u = rng.random((count, 3))
    return _Channels([text.channel_name(u) for u in name_u], [_channel_id(cfg.seed, i) for i in range(count)],
                     countries)


class _Days:
    """Day offsets from the epoch as YYYYMMDD strings, memoised (millions of conversions per build)."""

    def __init__(self, epoch: date):
        self.epoch = epoch

    @functools.lru_cache(maxsize=None)
    def text(self, offset: int) -> str:
        return (self.epoch + timedelta(days=int(offset))).strftime("%Y%m%d")


def _durations(rng: np.random.Generator, n: int, cfg: WorldConfig) -> np.ndarray:
    """Mostly 12-120 s, ~8 % shorter than 10 s, ~12 % long; whole frames."""
    u = rng.random(n)
    short = rng.uniform(3.0, 9.6, n)
    normal = np.exp(rng.uniform(np.log(12.0), np.log(120.0), n))
    long = np.exp(rng.uniform(np.log(120.0), np.log(600.0), n))
    seconds = np.where(u < 0.08, short, np.where(u < 0.88, normal, long))
    frames = np.maximum(np.round(np.minimum(seconds, cfg.max_duration) * cfg.fps), cfg.fps)
    return frames / cfg.fps


NEVER = np.iinfo(np.int64).max  # removal day offset of videos that stay online
REMOVAL_HORIZON_DAYS = 3653     # removals are only scheduled up to 10 years after the epoch


def _removals(rng: np.random.Generator, upload_days: np.ndarray, cfg: WorldConfig
              ) -> tuple[np.ndarray, list[str | None]]:
    """Exponential time-to-removal after upload; removals past REMOVAL_HORIZON_DAYS are dropped (None)."""
    n = len(upload_days)
    years = rng.exponential(1.0 / cfg.annual_removal_rate, n) if cfg.annual_removal_rate > 0 else np.full(n, np.inf)
    removal = upload_days + np.ceil(np.minimum(years, 1e4) * 365.25).astype(np.int64)
    reasons, weights = zip(*((r, share) for r, (share, _) in REMOVAL_REASONS.items()))
    picked = rng.choice(len(reasons), size=n, p=np.array(weights) / sum(weights))
    keep = removal <= REMOVAL_HORIZON_DAYS
    return np.where(keep, removal, NEVER), [reasons[p] if k else None for p, k in zip(picked, keep)]


def _action_segments(rng: np.random.Generator, durations: np.ndarray, fps: int) -> tuple[np.ndarray, np.ndarray]:
    """An action segment of >= 11 s (so a 10-s whole-second window fits) or the whole video when shorter."""
    length = np.minimum(durations, rng.uniform(11.0, 40.0, len(durations)))
    start = np.round(rng.random(len(durations)) * (durations - length) * fps) / fps
    end = np.minimum(np.round((start + length) * fps) / fps, durations)
    return start, end


MAX_LOOKALIKE_ODDS = 6.0  # lookalikes per relevant video at most (P(voted positive) >= 1/7 by construction)


@functools.cache
def lookalike_odds() -> dict[str, float]:
    """Per class of the note's Appendix A, lookalikes per relevant video: (1 - p) / p, capped."""
    from kinetics_assets.voting.yields import paper_yields

    table = paper_yields()
    p = table.set_index("label")["p_voted_positive"].clip(lower=1 / (1 + MAX_LOOKALIKE_ODDS))
    return ((1 - p) / p).to_dict()


def _transform(rng: np.random.Generator, cfg: WorldConfig) -> Transform:
    """A re-uploader's edit: other resolution and bitrate, crop or letterbox, grade, maybe mirror and logo."""
    scale = float(rng.choice([0.6, 0.8, 1.0, 1.2]))
    width, height = (int(round(cfg.width * scale / 2)) * 2, int(round(cfg.height * scale / 2)) * 2)
    mode = rng.random()
    crop = tuple(float(x) for x in rng.uniform(0.02, 0.12, 4)) if mode < 0.35 else (0.0, 0.0, 0.0, 0.0)
    pad = float(rng.uniform(0.1, 0.25)) if 0.35 <= mode < 0.6 else 0.0
    graded = rng.random() < 0.6
    return Transform(
        width=width, height=height, mirror=bool(rng.random() < 0.3), crop=crop, pad=pad,
        brightness=float(rng.uniform(-25, 25)) if graded else 0.0,
        contrast=float(rng.uniform(0.8, 1.2)) if graded else 1.0,
        logo_corner=int(rng.integers(4)) if rng.random() < 0.3 else None,
        trim_frames=int(rng.integers(0, 3 * cfg.fps)) if rng.random() < 0.5 else 0,
        crf=int(rng.choice([23, 28, 32, 35])),
    )


class _ClassBuilder:
    """Generates every record of one class from the world seed and the class name."""

    def __init__(self, cfg: WorldConfig, label: str, channels: _Channels, days: _Days):
        self.cfg, self.label, self.channels, self.days = cfg, label, channels, days
        self.rng = np.random.default_rng([cfg.seed, stable_int("class/" + label)])
        self.phrases = text.class_phrases(label)

    def _common(self, kind: str, slot: int, upload_day: int, removal: int, reason: str | None,
                channel: int, views: float, look_seed: int) -> dict:
        return dict(id=video_id(self.cfg.seed, self.label, kind, slot), label=self.label, kind=kind,
                    upload_date=self.days.text(upload_day),
                    removal_date=None if removal == NEVER else self.days.text(removal),
                    removal_reason=reason, channel=self.channels.names[channel],
                    channel_id=self.channels.ids[channel], country=self.channels.countries[channel],
                    view_count=int(views), look_seed=look_seed, fps=self.cfg.fps)

    def _draw_common(self, n: int, earliest: np.ndarray | None = None, views_median: float = 1500.0):
        rng, cfg = self.rng, self.cfg
        if earliest is None:
            upload = rng.integers(-int(cfg.history_years * 365.25), int(cfg.future_years * 365.25) + 1, n)
        else:
            upload = earliest + rng.integers(5, 700, n)
        removal, reasons = _removals(rng, upload, cfg)
        channel = rng.integers(len(self.channels.ids), size=n)
        views = np.exp(rng.normal(np.log(views_median), 1.8, n)) + 1
        looks = rng.integers(0, 2 ** 62, n)
        return upload, removal, reasons, channel, views, looks

    def _phrased_text(self, phrasing: str, upload_date: str, u: np.ndarray) -> tuple[str, str]:
        if phrasing == "untitled":
            return text.untitled_title(upload_date, u[0]), ""
        phrase = text.pick(self.phrases.phrasings[phrasing], u[1])
        return text.title_and_description(phrase, text.phrasing_language(phrasing), int(upload_date[:4]), u[2:5])

    def build(self) -> list[VideoRecord]:
        relevant = self._originals("relevant", self.cfg.relevant_per_class)
        distractors = self._originals("distractor", self.cfg.distractors_per_class)
        built = relevant + distractors + self._reuploads(relevant) + self._compilations(relevant)
        return built + self._originals("lookalike", self._lookalikes())  # drawn last: the others stay the same

    def _lookalikes(self) -> int:
        if not self.cfg.note_lookalikes:
            return 0
        odds = lookalike_odds().get(self.label, 0.0)
        return int(round(self.cfg.relevant_per_class * odds))

    def _originals(self, kind: str, n: int) -> list[VideoRecord]:
        cfg, rng = self.cfg, self.rng
        durations = _durations(rng, n, cfg)
        starts, ends = _action_segments(rng, durations, cfg.fps)
        upload, removal, reasons, channel, views, looks = self._draw_common(
            n, views_median=1500.0 if kind == "relevant" else 4000.0)
        u = rng.random((n, 6))
        records = []
        for i in range(n):
            common = self._common(kind, i, int(upload[i]), int(removal[i]), reasons[i], int(channel[i]),
                                  views[i], int(looks[i]))
            if kind in ("relevant", "lookalike"):
                phrasing = text.pick_weighted(self.phrases.shares, u[i, 5])
                title, description = self._phrased_text(phrasing, common["upload_date"], u[i])
                action = (float(starts[i]), float(ends[i])) if kind == "relevant" else (None, None)
            else:
                title, description = self._distractor_text(common["upload_date"], u[i])
                action = (None, None)
            records.append(VideoRecord(
                **common, title=title, description=description, duration=float(durations[i]),
                width=cfg.width, height=cfg.height, action_start=action[0], action_end=action[1],
                source_id=None, edit=None, cuts=None))
        return records

    def _distractor_text(self, upload_date: str, u: np.ndarray) -> tuple[str, str]:
        languages = list(self.phrases.distractors)
        language = "en" if u[0] < 0.6 or len(languages) == 1 else text.pick(languages[1:], u[5])
        phrase = text.pick(self.phrases.distractors[language], u[1])
        return text.title_and_description(phrase, language, int(upload_date[:4]), u[2:5])

    def _reuploads(self, relevant: list[VideoRecord]) -> list[VideoRecord]:
        cfg, rng = self.cfg, self.rng
        n = int(round(cfg.reupload_rate * len(relevant)))
        sources = [relevant[i] for i in rng.choice(len(relevant), size=n, replace=False)]
        source_upload = np.array([(parse_day(s.upload_date) - cfg.epoch).days for s in sources], dtype=np.int64)
        upload, removal, reasons, channel, views, looks = self._draw_common(n, earliest=source_upload)
        records = []
        for i, src in enumerate(sources):
            src_frames = int(round(src.duration * cfg.fps))
            edit = _transform(rng, cfg)
            edit = dataclasses.replace(edit, trim_frames=max(0, min(edit.trim_frames, src_frames - cfg.fps)))
            trim = edit.trim_frames / cfg.fps
            action_end = src.action_end - trim
            u = rng.random(6)
            common = self._common("reupload", i, int(upload[i]), int(removal[i]), reasons[i], int(channel[i]),
                                  views[i], int(looks[i]))
            if u[0] < 0.7:
                title, description = text.reupload_title(src.title, u[1]), src.description
            else:
                phrasing = text.pick_weighted(self.phrases.shares, u[5])
                title, description = self._phrased_text(phrasing, common["upload_date"], u)
            records.append(VideoRecord(
                **common, title=title, description=description,
                duration=(src_frames - edit.trim_frames) / cfg.fps, width=edit.width, height=edit.height,
                action_start=max(0.0, src.action_start - trim) if action_end > 0 else None,
                action_end=action_end if action_end > 0 else None,
                source_id=src.id, edit=edit.to_json(), cuts=None))
        return records

    def _compilations(self, relevant: list[VideoRecord]) -> list[VideoRecord]:
        cfg, rng = self.cfg, self.rng
        records = []
        for slot in range(cfg.compilations_per_class):
            k = int(min(rng.integers(4, 8), len(relevant)))
            picked = [relevant[i] for i in rng.choice(len(relevant), size=k, replace=False)]
            cut_len = min(cfg.max_duration / k, 12.0)
            cuts = []
            for src in picked:
                total = int(round(src.duration * cfg.fps))
                length = min(total, int(rng.uniform(4.0, max(cut_len, 4.0)) * cfg.fps), int(cut_len * cfg.fps))
                on_action = rng.random() < 0.7
                aim = int((src.action_start + rng.uniform(-2.0, 2.0)) * cfg.fps) if on_action \
                    else int(rng.random() * (total - length))
                cuts.append([src.id, max(0, min(aim, total - length)), max(length, 1)])
            latest = max((parse_day(s.upload_date) - cfg.epoch).days for s in picked)
            upload, removal, reasons, channel, views, looks = self._draw_common(
                1, earliest=np.array([latest]), views_median=20000.0)
            common = self._common("compilation", slot, int(upload[0]), int(removal[0]), reasons[0],
                                  int(channel[0]), views[0], int(looks[0]))
            phrasing = text.pick_weighted({k: v for k, v in self.phrases.shares.items() if k != "untitled"},
                                          rng.random())
            phrase = text.pick(self.phrases.phrasings[phrasing], rng.random())
            title = text.compilation_title(phrase, text.phrasing_language(phrasing), int(common["upload_date"][:4]))
            records.append(VideoRecord(
                **common, title=title, description="", duration=sum(c[2] for c in cuts) / cfg.fps,
                width=cfg.width, height=cfg.height, action_start=None, action_end=None,
                source_id=None, edit=None, cuts=json.dumps(cuts)))
        return records


_SCHEMA = f"""
CREATE TABLE videos (rowid INTEGER PRIMARY KEY, {", ".join(c + (" TEXT UNIQUE NOT NULL" if c == "id" else "")
                                                           for c in _COLUMNS)});
CREATE INDEX videos_label_kind ON videos(label, kind);
CREATE VIRTUAL TABLE search_index USING fts5(title, description, content='videos', content_rowid='rowid',
                                            tokenize='unicode61 remove_diacritics 2');
"""


def config_key(cfg: WorldConfig) -> str:
    """Identifies a world: its config plus the code and data files that generate and draw it, so a cached
    index or media file is never reused after any of them changes."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(cfg), default=str, sort_keys=True).encode())
    sources = [Path(__file__), Path(text.__file__), Path(__file__).with_name("render.py")]
    for path in sources + sorted(DATA_DIR.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def index_path(cfg: WorldConfig, cache_dir: Path) -> Path:
    """Where the world's SQLite index lives (exists once some process has built it)."""
    return Path(cache_dir) / f"world-{config_key(cfg)}.sqlite"


def build_index(cfg: WorldConfig, path: Path) -> None:
    """Generate every record and write the SQLite + FTS5 file atomically (several processes may race)."""
    tmp = partial_path(path)
    tmp.unlink(missing_ok=True)
    per_class = cfg.relevant_per_class * (1 + cfg.reupload_rate) + cfg.distractors_per_class
    channels = _channels(cfg, max(50, int(len(cfg.classes) * per_class) // 6))
    days = _Days(cfg.epoch)
    con = sqlite3.connect(tmp)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.executescript(_SCHEMA)
        insert = f"INSERT INTO videos ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        for label in cfg.classes:
            rows = [dataclasses.astuple(r) for r in _ClassBuilder(cfg, label, channels, days).build()]
            try:
                con.executemany(insert, rows)
            except sqlite3.IntegrityError as exc:
                raise RuntimeError(f"video id collision while generating class {label!r}: {exc}") from exc
        con.execute("INSERT INTO search_index(search_index) VALUES('rebuild')")
        con.execute("INSERT INTO search_index(search_index) VALUES('optimize')")
        con.commit()
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, path)


def parse_day(yyyymmdd: str) -> date:
    """A YYYYMMDD string as stored in records, back to a date."""
    return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))


def _day(on: date) -> str:
    if not isinstance(on, date):
        raise TypeError(f"`on` must be a datetime.date, got {type(on).__name__}")
    return on.strftime("%Y%m%d")


class World:
    """A seeded, virtual video platform: metadata, search, availability over time and media files."""

    def __init__(self, config: WorldConfig, cache_dir: Path):
        self.config = config
        key = config_key(config)
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = index_path(config, self.cache_dir)
        self.media_dir = self.cache_dir / f"media-{key}"
        self.media_dir.mkdir(exist_ok=True)
        for folder in (self.cache_dir, self.media_dir):  # leftovers of renders and builds killed mid-write
            sweep_stale_partials(folder)
        if not self.db_path.exists():
            build_index(config, self.db_path)
        self._local = threading.local()
        self._render_locks = tuple(threading.Lock() for _ in range(RENDER_LOCK_STRIPES))

    def _db(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
            self._local.con = con
        return con

    def __len__(self) -> int:
        """How many videos the world holds (whatever their availability)."""
        return self._db().execute("SELECT count(*) FROM videos").fetchone()[0]

    def record(self, video_id: str) -> VideoRecord | None:
        """The full record, ground truth included (for truth.py / edition.py / rendering; never the pipeline)."""
        if not isinstance(video_id, str) or not VIDEO_ID_RE.match(video_id):
            return None
        row = self._db().execute(f"SELECT {', '.join(_COLUMNS)} FROM videos WHERE id = ?", (video_id,)).fetchone()
        return VideoRecord(*row) if row else None

    def iter_records(self, label: str | None = None, kind: str | None = None) -> Iterator[VideoRecord]:
        """All records, optionally of one class and/or kind, in generation order."""
        clauses = [(c, v) for c, v in (("label", label), ("kind", kind)) if v is not None]
        where = (" WHERE " + " AND ".join(f"{c} = ?" for c, _ in clauses)) if clauses else ""
        cursor = self._db().execute(f"SELECT {', '.join(_COLUMNS)} FROM videos{where} ORDER BY rowid",
                                    tuple(v for _, v in clauses))
        for row in cursor:
            yield VideoRecord(*row)

    def metadata(self, video_id: str) -> VideoMetadata | None:
        rec = self.record(video_id)
        return None if rec is None else VideoMetadata(**{c: getattr(rec, c) for c in _METADATA_COLUMNS})

    def availability(self, video_id: str, on: date) -> Availability:
        """Whether the video can be watched on `on`; unknown ids and not-yet-uploaded videos are unavailable.

        The platform is seen from a single vantage point, so a country block reads as unavailable."""
        day = _day(on)
        rec = self.record(video_id)
        if rec is None or day < rec.upload_date:
            return Availability(False, None, UNKNOWN_MESSAGE)
        if rec.removal_date is not None and day >= rec.removal_date:
            return Availability(False, rec.removal_reason, REMOVAL_REASONS[rec.removal_reason][1])
        return Availability(True, None, "")

    def search(self, query: str, limit: int, on: date) -> list[VideoMetadata]:
        """Videos whose title/description contain every query word (accent-insensitive), best match first,
        then most viewed; videos not yet uploaded or already gone on `on` are left out."""
        if limit < 1:
            raise ValueError(f"search limit must be >= 1, got {limit}")
        tokens = text.search_tokens(query)
        if not tokens:
            return []
        day = _day(on)
        match = " ".join(f'"{t}"' for t in tokens)
        rows = self._db().execute(
            f"SELECT {', '.join('v.' + c for c in _METADATA_COLUMNS)} FROM search_index "
            "JOIN videos v ON v.rowid = search_index.rowid "
            "WHERE search_index MATCH ? AND v.upload_date <= ? AND (v.removal_date IS NULL OR v.removal_date > ?) "
            "ORDER BY bm25(search_index, 4.0, 1.0), v.view_count DESC, v.id LIMIT ?",
            (match, day, day, limit)).fetchall()
        return [VideoMetadata(*row) for row in rows]

    def media_spec(self, rec: VideoRecord) -> MediaSpec:
        """What to draw for a record: its own scene, a transformed source, or cuts of several sources."""
        if rec.kind == "reupload":
            return Reupload(self._scene(self.record(rec.source_id)), Transform.from_json(rec.edit))
        if rec.kind == "compilation":
            cuts = tuple(Cut(self._scene(self.record(sid)), first, n) for sid, first, n in json.loads(rec.cuts))
            return Compilation(cuts, rec.width, rec.height, rec.fps)
        return self._scene(rec)

    def _scene(self, rec: VideoRecord) -> Scene:
        relevant = rec.kind == "relevant"
        return Scene(look_seed=rec.look_seed, width=rec.width, height=rec.height, fps=rec.fps,
                     n_frames=int(round(rec.duration * rec.fps)),
                     motion=class_motion(rec.label) if relevant else None,
                     action_start=rec.action_start if relevant else 0.0,
                     action_end=rec.action_end if relevant else 0.0)

    def media_path(self, video_id: str, preview: bool = False) -> Path:
        """The video's H.264 MP4 (or its low-resolution rendition), rendered and encoded on first request,
        then served from the cache."""
        rec = self.record(video_id)
        if rec is None:
            raise KeyError(f"unknown video id {video_id!r}")
        path = self.media_dir / (f"{rec.id}.preview.mp4" if preview else f"{rec.id}.mp4")
        if path.exists():
            return path
        with self._render_locks[stable_int(rec.id) % RENDER_LOCK_STRIPES]:  # one render per id at a time
            if not path.exists():
                encode_mp4(self.media_spec(rec), path, preview=preview)
        return path

