"""video2dataset's side of bench/bench_peer_video2dataset.py; runs in video2dataset's own venv, not ours.

Reads a JSON job ([{"url", "start", "end"}]), writes it as video2dataset's parquet input (url, clips) and runs
`video2dataset.video2dataset` with its download worker: yt-dlp downloads each URL whole, the ClippingSubsampler
cuts the window with `precision: exact` (ffmpeg's segment muxer with forced key frames), the
ResolutionSubsampler scales the short side to 256. Prints one JSON line: seconds of that call and, per URL,
the clip file or the status and error video2dataset recorded.

video2dataset imports, at package import, modules for stages this path never calls: captioning and optical
flow (torch, transformers, einops, opencv), cut detection (scenedetect), whisper, re-processing of existing
shards (its torch dataloader), and wandb for its optional
logging. Those modules are replaced by empty placeholders that raise if touched, so the install holds only what
the download-and-clip path runs (command in bench_peer_video2dataset.py's docstring). One bug of 1.3.0 that
stops this path is patched (`patch_resolution_subsampler`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

UNUSED_MODULES = {
    "video2dataset.subsamplers.caption_subsampler": ["CaptionSubsampler"],
    "video2dataset.subsamplers.optical_flow_subsampler": ["OpticalFlowSubsampler"],
    "video2dataset.subsamplers.cut_detection_subsampler": ["CutDetectionSubsampler"],
    "video2dataset.subsamplers.whisper_subsampler": ["WhisperSubsampler"],
    "video2dataset.workers.caption_worker": ["CaptionWorker"],
    "video2dataset.workers.optical_flow_worker": ["OpticalFlowWorker"],
    "video2dataset.workers.whisper_worker": ["WhisperWorker"],
    "video2dataset.workers.subset_worker": ["SubsetWorker"],
    "wandb": [],
}


def placeholder(module: str, name: str) -> type:
    def refuse(*args, **kwargs):
        raise RuntimeError(f"{module}.{name} is not installed in this benchmark's venv (not on the download path)")
    return type(name, (), {"__init__": refuse})


def install_placeholders() -> None:
    for module, names in UNUSED_MODULES.items():
        stub = types.ModuleType(module)
        for name in names:
            setattr(stub, name, placeholder(module, name))
        sys.modules[module] = stub


def patch_resolution_subsampler() -> None:
    """video2dataset 1.3.0's download worker reads `encode_formats` of its first video subsampler, which
    ResolutionSubsampler lacks (it has `encode_format`): unpatched, every shard fails with an AttributeError
    and no clip is written. The property gives the worker what it reads; nothing else changes."""
    from video2dataset.subsamplers import ResolutionSubsampler

    ResolutionSubsampler.encode_formats = property(lambda self: {"video": self.encode_format})


# at import, because video2dataset's spawned worker processes import this module too
install_placeholders()
patch_resolution_subsampler()


def config(workers: int) -> dict:
    """One process with `workers` download threads (the same number of downloads at once as ours), no
    metadata or subtitle requests (ours reads metadata; theirs skips it here, in their favour), no frame-rate pass
    (the sources are already 25 fps, so one ffmpeg pass fewer, again in their favour)."""
    return {
        "subsampling": {
            "ClippingSubsampler": {"args": {"min_length": 0.0, "max_length": 10.0, "precision": "exact"}},
            "ResolutionSubsampler": {"args": {"video_size": 256, "resize_mode": "scale"}},
        },
        "reading": {"yt_args": {"download_size": 256, "download_audio_rate": 0, "yt_metadata_args": {}},
                    "timeout": 60, "sampler": None},
        "storage": {"number_sample_per_shard": 1000, "oom_shard_count": 5, "captions_are_subtitles": False},
        "distribution": {"processes_count": 1, "thread_count": workers, "subjob_size": 1000,
                         "distributor": "multiprocessing"},
    }


def outcomes(output: Path) -> dict[str, dict]:
    """Per URL: the clip file, or what video2dataset recorded about the failure (from its per-sample JSON)."""
    found = {}
    for meta_path in sorted(output.glob("*/*.json")):
        meta = json.loads(meta_path.read_text())
        clip = meta_path.with_suffix(".mp4")
        found[meta["url"]] = {"status": meta.get("status"), "error": meta.get("error_message"),
                              "clip": str(clip) if clip.exists() else None}
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import pyarrow as pa
    import pyarrow.parquet as pq
    from video2dataset import video2dataset

    job = json.loads(args.job.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "input.parquet"
    pq.write_table(pa.table({"url": [j["url"] for j in job], "clips": [[[j["start"], j["end"]]] for j in job]}),
                   table)
    started = time.perf_counter()
    video2dataset(url_list=str(table), output_folder=str(args.out / "dataset"), output_format="files",
                  input_format="parquet", url_col="url", clip_col="clips", encode_formats={"video": "mp4"},
                  tmp_dir=str(args.out / "tmp"), config=config(args.workers))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "outcomes": outcomes(args.out / "dataset")}))


if __name__ == "__main__":
    main()
