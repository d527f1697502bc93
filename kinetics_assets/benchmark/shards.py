"""Release clips -> preprocessed ArrayRecord shards that the I3D loader reads by random access.

Each clip is decoded once with PyAV, resampled to a fixed frame rate (25 fps: the frame shown at each output
time), resized so its short side is ``short_side`` (256 in production), and stored as one record PER FRAME,
JPEG-encoded. JPEG, as DMVR and the original Kinetics TFRecords do, because raw uint8 at 256 px is ~65 MB per
10-s clip (tens of TB for Kinetics-700), and because a training window then costs 32 independent JPEG decodes
instead of decoding H.264 from the clip's keyframe (usually its first frame). A record per frame, so that a
32-frame window reads 32 records, not the clip's 250.

Layout of ``{shards}/``::

    shards.json                          release, content hash, spec, classes, per split: clips, files, skipped
    {split}.csv                          one row per clip: position, clip, label, frames, height, width,
                                         first (record of its frame 0), source (path in the release)
    {split}-{i:05d}-of-{n:05d}.array_record   the frames of clips [i*c, (i+1)*c) of the split, in list order

Record numbers count through the concatenation of the split's files (what the loader indexes); a clip's
frames are records ``first`` .. ``first + frames - 1``. A clip that cannot be decoded is skipped and named in
``shards.json`` with the reason; everything else is kept. The folder is built under a temporary name and
renamed at the end; a rebuild of the same release content with the same spec returns the existing shards.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import av
from av.video.reformatter import VideoReformatter
import numpy as np
import pandas as pd
from array_record.python.array_record_module import ArrayRecordWriter
from PIL import Image

from kinetics_assets.release.writer import CLASSES, SPLIT_NAMES, read_manifest, swap_folder_into_place
from resources.storage import atomic_write_bytes

MANIFEST = "shards.json"
INDEX_COLUMNS = ["position", "clip", "label", "frames", "height", "width", "first", "source"]
_WRITER_OPTIONS = "group_size:1,uncompressed"  # a chunk per record: random access; JPEG is compressed


@dataclass(frozen=True)
class ShardSpec:
    """How clips are preprocessed; part of the shards' identity (a different spec is a different build)."""

    fps: float = 25.0
    short_side: int = 256
    jpeg_quality: int = 90

    def __post_init__(self):
        if not (self.fps > 0 and self.short_side >= 8 and 1 <= self.jpeg_quality <= 100):
            raise ValueError(f"invalid shard spec {self}")


@dataclass(frozen=True)
class Shards:
    """A finished shard folder: what its manifest says, and where each split's files and index are."""

    root: Path
    manifest: dict

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.manifest["classes"])

    @property
    def spec(self) -> ShardSpec:
        return ShardSpec(**self.manifest["spec"])

    def files(self, split: str) -> list[Path]:
        return [self.root / name for name in self._split(split)["files"]]

    def index(self, split: str) -> pd.DataFrame:
        """One row per clip of ``split`` (see the module docstring), in position order."""
        self._split(split)
        return pd.read_csv(self.root / f"{split}.csv", dtype={"clip": str, "source": str}, keep_default_na=False)

    def _split(self, split: str) -> dict:
        if split not in self.manifest["splits"]:
            raise KeyError(f"shards {self.root} hold no split {split!r} (have {sorted(self.manifest['splits'])})")
        return self.manifest["splits"][split]


def open_shards(root: Path) -> Shards:
    root = Path(root)
    try:
        return Shards(root, json.loads((root / MANIFEST).read_text()))
    except (OSError, ValueError) as err:
        raise ValueError(f"shards {root}: {MANIFEST} is missing or unreadable ({err})") from err


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the short side at ``short_side`` and the aspect ratio kept (rounded)."""
    scale = short_side / min(height, width)
    return (short_side, max(1, round(width * scale))) if height <= width else (max(1, round(height * scale)), short_side)


def decode_clip(path: Path, spec: ShardSpec) -> np.ndarray:
    """uint8 [frames, height, width, 3] of the clip file at ``spec`` (see ``decode_video``)."""
    try:
        with av.open(str(path)) as container:
            return decode_video(container, spec, str(path))
    except av.FFmpegError as err:
        raise ValueError(f"clip {path}: cannot decode ({type(err).__name__}: {err})") from err


def decode_video(container: av.container.InputContainer, spec: ShardSpec, name: str) -> np.ndarray:
    """uint8 [frames, height, width, 3] at ``spec.fps``, short side ``spec.short_side``; output frame k is the
    source frame on screen at time k / fps, so frames are repeated or dropped when the source rate differs."""
    frames: list[np.ndarray] = []
    try:
        stream = container.streams.video[0]
        reformatter = VideoReformatter()  # one scaler for the clip: a frame's own is rebuilt for every frame
        height, width = resized_shape(stream.codec_context.height, stream.codec_context.width, spec.short_side)
        rate = float(stream.average_rate or spec.fps)
        shown, first, last_time = None, None, 0.0
        for frame in container.decode(stream):
            time = float(frame.time if frame.time is not None else len(frames) / rate)
            first = time if first is None else first
            last_time = time - first
            while shown is not None and len(frames) / spec.fps < last_time - 1e-6:
                frames.append(shown)
            shown = reformatter.reformat(frame, width, height, "rgb24", interpolation="BILINEAR").to_ndarray()
    except (av.FFmpegError, IndexError) as err:
        raise ValueError(f"clip {name}: cannot decode ({type(err).__name__}: {err})") from err
    if shown is None:
        raise ValueError(f"clip {name}: no video frames")
    end = last_time + 1.0 / rate
    while len(frames) / spec.fps < end - 1e-6:
        frames.append(shown)
    return np.stack(frames)


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_jpeg(data: bytes, box: tuple[int, int, int, int] | None = None, flip: bool = False) -> np.ndarray:
    """uint8 [height, width, 3] of one stored frame, or of its ``box`` (left, top, right, bottom), mirrored if
    ``flip``: cropping and mirroring in PIL before the conversion to numpy copies only the pixels kept (a
    mirrored numpy copy of 3-byte pixels costs more than the JPEG decode)."""
    image = Image.open(io.BytesIO(data))
    image = image if image.mode == "RGB" else image.convert("RGB")
    image = image if box is None else image.crop(box)
    return np.asarray(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image)


def release_clips(release: Path, split: str) -> pd.DataFrame:
    """Clips of ``split`` from the release's mmaction2 list (source path relative to the release, label index)."""
    listing = release / f"{split}_list_videos.txt"
    rows = []
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        source, _, label = line.rpartition(" ")
        if not source or not label.isdigit() or Path(source).is_absolute() or ".." in Path(source).parts:
            raise ValueError(f"{listing}:{number}: expected 'split/folder/clip.mp4 label', got {line!r}")
        rows.append((Path(source).stem, int(label), source))
    return pd.DataFrame(rows, columns=["clip", "label", "source"])


def _write_shard(release: Path, rows: pd.DataFrame, target: Path, spec: ShardSpec) -> tuple[list[dict], list[dict]]:
    """Writes one shard file; returns the index rows of the clips it holds and those it skipped (with reason)."""
    written, skipped = [], []
    writer = ArrayRecordWriter(str(target), _WRITER_OPTIONS)
    try:
        for row in rows.itertuples(index=False):
            try:
                frames = decode_clip(release / row.source, spec)
            except ValueError as err:
                skipped.append({"clip": row.clip, "source": row.source, "reason": str(err)})
                continue
            for frame in frames:
                writer.write(encode_jpeg(frame, spec.jpeg_quality))
            written.append({"clip": row.clip, "label": row.label, "frames": len(frames), "height": frames.shape[1],
                            "width": frames.shape[2], "source": row.source})
    finally:
        writer.close()
    return written, skipped


def _shard_plan(release: Path, split: str, size: int) -> list[tuple[str, pd.DataFrame]]:
    """(file name, clips) of each shard of ``split``: consecutive runs of ``size`` list rows."""
    clips = release_clips(release, split)
    count = max(1, math.ceil(len(clips) / size))
    return [(f"{split}-{i:05d}-of-{count:05d}.array_record", clips.iloc[i * size:(i + 1) * size]) for i in range(count)]


def _split_index(building: Path, split: str, names: list[str], results: list[tuple[list[dict], list[dict]]]) -> dict:
    """Writes ``{split}.csv`` from the shards' results (in file order) and returns the split's manifest entry."""
    written = pd.DataFrame([row for rows, _ in results for row in rows],
                           columns=["clip", "label", "frames", "height", "width", "source"])
    first = written["frames"].cumsum() - written["frames"]
    index = written.assign(first=first).rename_axis("position").reset_index()[INDEX_COLUMNS]
    atomic_write_bytes(building / f"{split}.csv", index.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return {"clips": len(index), "files": names, "skipped": [bad for _, skipped in results for bad in skipped]}


def build_shards(release: Path, target: Path, spec: ShardSpec = ShardSpec(), *, workers: int = 1,
                 clips_per_shard: int = 256) -> Shards:
    """Shards of every split of ``release`` (a folder ``publish_release`` wrote) at ``target``.

    Returns the existing shards when ``target`` already holds this release content with this spec; otherwise
    builds in a temporary sibling and swaps it into place. ``workers`` > 1 writes shard files in that many
    processes (spawned, so safe inside a threaded Dagster process); a shard holds ``clips_per_shard`` clips."""
    release, target = Path(release), Path(target)
    manifest = read_manifest(release)
    if (target / MANIFEST).is_file():
        existing = open_shards(target)
        if (existing.manifest.get("content_sha256") == manifest["content_sha256"]
                and existing.manifest.get("spec") == asdict(spec)):
            return existing
    classes = (release / CLASSES).read_text().splitlines()
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        splits = [split for split in SPLIT_NAMES if (release / f"{split}_list_videos.txt").is_file()]
        plans = {split: _shard_plan(release, split, clips_per_shard) for split in splits}
        jobs = [(release, clips, building / name, spec) for plan in plans.values() for name, clips in plan]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) if workers > 1 else nullcontext() as pool:
            results = iter(list(pool.map(_write_shard, *zip(*jobs))) if pool else [_write_shard(*job) for job in jobs])
        written = {split: _split_index(building, split, [name for name, _ in plan], [next(results) for _ in plan])
                   for split, plan in plans.items()}
        result = {"release": release.name, "content_sha256": manifest["content_sha256"], "spec": asdict(spec),
                  "classes": classes, "splits": written}
        atomic_write_bytes(building / MANIFEST, json.dumps(result, indent=2, sort_keys=True).encode("utf-8"))
        building.chmod(0o755)
        swap_folder_into_place(building, target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return open_shards(target)
