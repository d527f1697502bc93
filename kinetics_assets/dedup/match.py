"""Confirm a candidate pair of clips by temporal offset voting over their frame hashes.

Two clips show the same footage when many of their frames are close in Hamming distance AND those frame pairs
agree on one time offset (t_a - t_b): a re-upload matches at about 0 s (or at its trim), a sub-clip at its start
inside the longer clip, a compilation at the position of the cut. Unrelated clips that happen to share a look
produce a few close pairs at scattered offsets, which the vote rejects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from kinetics_assets.dedup.fingerprint import MIN_DETAIL, VIEW_COLUMNS, Fingerprint
from kinetics_assets.dedup.table import FingerprintTable

COMPILATION_MIN_SECONDS = 30.0  # a longer video holding a short clip is treated as a compilation
# Hash comparisons behind one frame pair's distance (``distance_matrices``): 10 views against a whole frame,
# both ways, in both orientations. A still pair has little more evidence than one such frame pair.
COMPARISONS_PER_FRAME_PAIR = 40


@dataclass(frozen=True)
class MatchParams:
    max_distance: int = 12      # bits of 64: frames this close are "the same picture" (96x72 CRF 38 copies: 12)
    bin_seconds: float = 0.5    # width of an offset bin
    min_frames: int = 5         # frames (at 2 fps) that must agree on one offset ...
    min_share: float = 0.5      # ... or this share of the shorter clip's frames, whichever is fewer
    # Near-still footage matches at every offset, so the offset vote cannot vouch for it: when more than
    # `unspecific_share` of all frame pairs are close, or the agreeing frames of either clip show fewer than the
    # needed frames' worth of distinct pictures (consecutive ones over `still_apart` bits apart), the pair is
    # judged as one picture compared with another.
    # Its mean distance must then be one that unrelated pictures reach by chance less than `chance_matches`
    # times in the whole collection (``chance_distance``: 12 bits among a few dozen clips, 4 among 100k). A
    # detailed picture (median spatial detail of the close frames >= `min_detail`) needs nothing more; a flat
    # one, whose hash resembles other flat scenes' more than chance says, must also be nearly identical (mean
    # distance <= `strict_distance`) or cover nearly all of the shorter clip (`full_cover`).
    unspecific_share: float = 0.2
    strict_distance: float = 6.0
    full_cover: float = 0.8
    min_detail: float = MIN_DETAIL
    chance_matches: float = 0.01
    still_apart: int = 6
    workers: int = 2            # threads rejecting candidates (``worth_voting``; its compiled loops release the GIL)

    def __post_init__(self):
        if (not 0 <= self.max_distance < 32 or self.bin_seconds <= 0 or self.min_frames < 1
                or not 0 < self.min_share <= 1 or self.workers < 1):
            raise ValueError(f"invalid match parameters: {self}")


@dataclass(frozen=True)
class ClipMatch:
    """Clip ``a`` shows clip ``b``'s footage: the frame of b at time t is at time t + offset in a."""

    a: int
    b: int
    offset: float
    frames: int             # distinct frames agreeing on the offset (the smaller count of the two clips)
    mean_distance: float
    mirrored: bool
    kind: str               # re-upload | sub-clip | compilation

    def describe(self) -> str:
        mirror = ", mirrored" if self.mirrored else ""
        return f"{self.kind} match at offset {self.offset:+.1f} s, {self.frames} matching frames{mirror}"


def _views_vs(views: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """(n_views_frames, n_hashes): smallest distance between any view of a frame and a hash."""
    return np.bitwise_count(views[:, None, :] ^ hashes[None, :, None]).min(axis=2)


def distance_matrices(fa: Fingerprint, fb: Fingerprint) -> tuple[np.ndarray, np.ndarray]:
    """(same orientation, mirrored) frame-to-frame distances, each the best over crop windows either way."""
    same = np.minimum(_views_vs(fa.view_hashes, fb.frame_hashes), _views_vs(fb.view_hashes, fa.frame_hashes).T)
    mirrored = np.minimum(_views_vs(fa.view_hashes, fb.mirrored_hashes),
                          _views_vs(fb.view_hashes, fa.mirrored_hashes).T)
    return same, mirrored


def _distinct_per_window(window: np.ndarray, frame: np.ndarray, n_windows: int) -> np.ndarray:
    codes = np.unique(window.astype(np.int64) * (int(frame.max()) + 1) + frame)
    return np.bincount(codes // (int(frame.max()) + 1), minlength=n_windows)


def vote(ta: np.ndarray, tb: np.ndarray, close: np.ndarray, distances: np.ndarray, bin_seconds: float
         ) -> tuple[int, float, float, np.ndarray, np.ndarray]:
    """(frames, offset, mean distance, frames of a, frames of b) of the best offset window; windows are
    ``bin_seconds`` wide and overlap."""
    ii, jj = np.nonzero(close)
    if len(ii) == 0:
        return 0, 0.0, math.inf, ii, jj
    half = bin_seconds / 2.0
    q = np.round((ta[ii] - tb[jj]) / half).astype(np.int64)
    window = np.concatenate([q - 1, q, q + 1])
    window -= window.min()
    n_windows = int(window.max()) + 1
    frames_a = _distinct_per_window(window, np.tile(ii, 3), n_windows)
    frames_b = _distinct_per_window(window, np.tile(jj, 3), n_windows)
    score = np.minimum(frames_a, frames_b)
    # static footage ties many offsets on frame count; the closest frames then tell the true one
    d_all = np.tile(distances[ii, jj], 3).astype(np.float64)
    mean = np.bincount(window, weights=d_all, minlength=n_windows) / np.maximum(np.bincount(window, minlength=n_windows), 1)
    best = int(np.lexsort((mean, -score))[0])
    in_best = window == best
    d = d_all[in_best]
    offsets = np.tile(ta[ii] - tb[jj], 3)[in_best]
    return (int(score[best]), float(np.median(offsets)), float(d.mean()), np.unique(np.tile(ii, 3)[in_best]),
            np.unique(np.tile(jj, 3)[in_best]))


def distinct_pictures(frame_hashes: np.ndarray, frames: np.ndarray, apart: int) -> int:
    """How many pictures ``frames`` (ascending positions) show: a frame within ``apart`` bits of the one before
    shows the same picture (a still shot's frames agree on every offset and so vouch for none)."""
    steps = np.bitwise_count(frame_hashes[frames[1:]] ^ frame_hashes[frames[:-1]])
    return int(len(frames) > 0) + int((steps > apart).sum())


def close_detail(fa: Fingerprint, fb: Fingerprint, close: np.ndarray) -> float:
    """Median over close frame pairs of the lesser spatial detail of the two frames (0 when none is close)."""
    ii, jj = np.nonzero(close)
    return float(np.median(np.minimum(fa.detail[ii], fb.detail[jj]))) if len(ii) else 0.0


def chance_distance(n_clips: int, params: MatchParams) -> int:
    """The largest distance (<= max_distance; -1 if none) at which two unrelated still clips among ``n_clips``
    look alike fewer than ``params.chance_matches`` times in all, were hash bits fair coins."""
    comparisons = n_clips * (n_clips - 1) / 2 * COMPARISONS_PER_FRAME_PAIR
    within = 0
    for d in range(params.max_distance + 1):
        within += math.comb(64, d)
        if comparisons * within / 2.0**64 > params.chance_matches:
            return d - 1
    return params.max_distance


def match_kind(fa: Fingerprint, fb: Fingerprint) -> str:
    shorter, longer = sorted((fa.duration, fb.duration))
    if longer <= 1.5 * shorter:
        return "re-upload"
    return "compilation" if longer >= COMPILATION_MIN_SECONDS else "sub-clip"


def match_fingerprints(fa: Fingerprint, fb: Fingerprint, params: MatchParams = MatchParams(),
                       a: int = 0, b: int = 1, n_clips: int = 2) -> ClipMatch | None:
    """The confirmed match of two clips (numbered ``a`` and ``b`` in the result) of a collection of ``n_clips``,
    or None."""
    if len(fa) == 0 or len(fb) == 0:
        return None
    needed = needed_frames(len(fa), len(fb), params)
    still_limit = chance_distance(n_clips, params)
    best = None
    for mirrored, dist in zip((False, True), distance_matrices(fa, fb)):
        close = dist <= params.max_distance
        if min(close.any(axis=1).sum(), close.any(axis=0).sum()) < needed:
            continue  # too few close frames for any offset (most chance candidates): no vote needed
        frames, offset, mean_distance, in_a, in_b = vote(fa.times, fb.times, close, dist, params.bin_seconds)
        pictures = min(distinct_pictures(fa.frame_hashes, in_a, params.still_apart),
                       distinct_pictures(fb.frame_hashes, in_b, params.still_apart))
        voted = close.mean() <= params.unspecific_share and pictures >= needed
        specific = voted or mean_distance <= still_limit and (
            close_detail(fa, fb, close) >= params.min_detail
            or mean_distance <= params.strict_distance
            or frames >= params.full_cover * min(len(fa), len(fb))
        )
        if frames >= needed and specific and (
            best is None or (frames, -mean_distance) > (best.frames, -best.mean_distance)
        ):
            best = ClipMatch(a, b, round(offset, 2), frames, round(mean_distance, 2), mirrored, match_kind(fa, fb))
    return best


def needed_frames(len_a: int, len_b: int, params: MatchParams) -> int:
    """Frames that must agree on one offset for two clips of these lengths to match."""
    return max(1, min(params.min_frames, math.ceil(params.min_share * min(len_a, len_b))))


def worth_voting(table: FingerprintTable, pairs: np.ndarray, params: MatchParams) -> np.ndarray:
    """(pairs,) bool: whether a pair passes, in either orientation, what ``match_fingerprints`` needs of every match
    before and in its offset vote: enough close frames in both clips, either few enough close frame pairs for the
    vote to vouch (``unspecific_share``) or a closest frame pair within the chance distance (the mean distance of a
    still match is no less), and enough frames agreeing on one offset. The others (nearly all chance candidates)
    need not be confirmed one by one. The pairs are judged by ``params.workers`` threads."""
    from kinetics_assets.dedup.kernels import worth  # Numba: imported where it runs (see kernels)

    pairs = np.ascontiguousarray(np.asarray(pairs, dtype=np.int64).reshape(-1, 2))
    lengths = table.lengths
    shorter = np.minimum(lengths[pairs[:, 0]], lengths[pairs[:, 1]])
    needed = np.maximum(1, np.minimum(params.min_frames, np.ceil(params.min_share * shorter))).astype(np.int64)
    still_limit = chance_distance(len(table), params)
    views = np.asarray(VIEW_COLUMNS, np.int64)
    hashes = np.ascontiguousarray(table.hashes)
    times = np.ascontiguousarray(table.times, np.float64)
    offsets = np.ascontiguousarray(table.offsets, np.int64)

    def judge(chunk: slice) -> np.ndarray:
        return worth(hashes, times, offsets, pairs[chunk], needed[chunk], views, params.max_distance,
                      float(params.unspecific_share), still_limit, params.bin_seconds / 2.0)

    step = -(-len(pairs) // params.workers) if len(pairs) else 1
    with ThreadPoolExecutor(max_workers=params.workers) as pool:
        parts = list(pool.map(judge, [slice(lo, lo + step) for lo in range(0, len(pairs), step)]))
    return np.concatenate([np.zeros(0, bool), *parts])


def confirm_pairs(fingerprints: Sequence[Fingerprint], pairs: np.ndarray, params: MatchParams = MatchParams()
                  ) -> list[ClipMatch]:
    """The candidate pairs (positions in ``fingerprints``, the collection) that really match, in pair order."""
    table = FingerprintTable.of(fingerprints)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    matches = []
    for a, b in pairs[worth_voting(table, pairs, params)].tolist():
        found = match_fingerprints(table[a], table[b], params, a, b, len(table))
        if found is not None:
            matches.append(found)
    return matches
