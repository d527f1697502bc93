"""Planted duplicates of every kind are clustered, distinct clips of the same motion are not.

The planted set is rendered here with the sandbox painter (procedural backgrounds, the class's motion) and
encoded with PyAV: originals of three classes, re-uploads (crops up to 15 %, letterbox, mirror, CRF 40 at
another resolution, graded, logo), 5-s sub-clips, and a ~100-s compilation that holds two originals among
unrelated footage. Truth is which original frames each file copies; pairwise precision/recall is measured on the
union-find clusters against the connected components of "shares >= 2 s of footage".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from kinetics_assets.dedup import ClipItem, clusters, find_matches, fingerprint_video
from kinetics_assets.dedup.cluster import UnionFind
from kinetics_assets.dedup.match import distance_matrices
from resources.sandbox.render import (
    Compilation,
    Cut,
    Reupload,
    Scene,
    Transform,
    class_motion,
    encode_mp4,
)

FPS, W, H = 25, 160, 120
CLASSES = ("dancing ballet", "juggling balls", "skipping rope")
FOOTAGE_SHARED_S = 2.0


@dataclass(frozen=True)
class Planted:
    name: str
    spec: Scene | Reupload | Compilation
    footage: tuple[tuple[int, int, int], ...]  # (scene look seed, first frame, end frame) copied


def _scene(seed: int, label: str, seconds: float = 10.0) -> Scene:
    return Scene(look_seed=seed, width=W, height=H, fps=FPS, n_frames=int(seconds * FPS),
                 motion=class_motion(label), action_start=0.0, action_end=seconds)


TRANSFORMS = {
    "crop15": Transform(width=W, height=H, crop=(0.10, 0.02, 0.05, 0.12), crf=28),
    "corner": Transform(width=128, height=96, crop=(0.0, 0.15, 0.15, 0.0), crf=30),
    "letterbox": Transform(width=192, height=144, pad=0.25, crf=32, brightness=15, contrast=0.85),
    "mirror": Transform(width=W, height=H, mirror=True, logo_corner=1, crf=30),
    "crf40": Transform(width=96, height=72, crf=40),
    "graded": Transform(width=240, height=180, brightness=-25, contrast=1.2, crf=35, trim_frames=37),
    "mirror_crop": Transform(width=W, height=H, mirror=True, crop=(0.05, 0.05, 0.05, 0.05), crf=32),
}


def planted_set() -> list[Planted]:
    originals = {}
    out = []
    for c, label in enumerate(CLASSES):
        for k in range(4):
            seed = 1000 + 10 * c + k
            originals[seed] = _scene(seed, label)
            out.append(Planted(f"orig_{c}{k}", originals[seed], ((seed, 0, 10 * FPS),)))
    seeds = sorted(originals)
    for (kind, tr), seed in zip(TRANSFORMS.items(), seeds[::1]):
        trim = tr.trim_frames
        out.append(Planted(f"copy_{kind}", Reupload(originals[seed], tr), ((seed, trim, 10 * FPS),)))
    for seed, first in ((seeds[8], 60), (seeds[0], 125)):  # 5-s pieces; seeds[0] also has a crop copy
        out.append(Planted(f"sub_{seed}", Compilation((Cut(originals[seed], first, 5 * FPS),), W, H, FPS),
                           ((seed, first, first + 5 * FPS),)))
    fillers = [_scene(5000 + k, CLASSES[k % 3], 30.0) for k in range(3)]
    held = [(seeds[9], 25, 8 * FPS), (seeds[5], 0, 6 * FPS)]
    cuts = (Cut(fillers[0], 0, 30 * FPS), Cut(originals[held[0][0]], held[0][1], held[0][2]),
            Cut(fillers[1], 0, 30 * FPS), Cut(originals[held[1][0]], held[1][1], held[1][2]),
            Cut(fillers[2], 0, 30 * FPS))
    out.append(Planted("compilation", Compilation(cuts, W, H, FPS),
                       tuple((s, f, f + n) for s, f, n in held)))
    return out


def true_components(items: list[Planted]) -> list[int]:
    """Component number per item: items sharing >= 2 s of some original's frames, transitively."""
    uf = UnionFind(len(items))
    for i, j in itertools.combinations(range(len(items)), 2):
        shared = sum(max(0, min(e0, e1) - max(f0, f1)) for s0, f0, e0 in items[i].footage
                     for s1, f1, e1 in items[j].footage if s0 == s1)
        if shared >= FOOTAGE_SHARED_S * FPS:
            uf.union(i, j)
    return [uf.find(k) for k in range(len(items))]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[list[Planted], list[Path]]:
    folder = tmp_path_factory.mktemp("planted")
    items = planted_set()
    return items, [encode_mp4(p.spec, folder / f"{p.name}.mp4") for p in items]


def pairwise_scores(predicted: list[int], truth: list[int]) -> tuple[float, float]:
    pairs = list(itertools.combinations(range(len(truth)), 2))
    pred = {(i, j) for i, j in pairs if predicted[i] == predicted[j]}
    true = {(i, j) for i, j in pairs if truth[i] == truth[j]}
    precision = len(pred & true) / len(pred) if pred else 1.0
    recall = len(pred & true) / len(true) if true else 1.0
    return precision, recall


def test_planted_duplicates_clustered_with_target_precision_and_recall(planted):
    items, paths = planted
    fingerprints = [fingerprint_video(p) for p in paths]
    matches = find_matches(fingerprints)
    groups = clusters([ClipItem(p.name) for p in items], matches)
    predicted = list(range(len(items)))
    for g in groups:
        for k in g:
            predicted[k] = g[0]
    truth = true_components(items)
    precision, recall = pairwise_scores(predicted, truth)
    names = [[items[k].name for k in g] for g in groups]
    assert precision >= 0.99, f"pairwise precision {precision:.3f}; clusters {names}"
    assert recall >= 0.97, f"pairwise recall {recall:.3f}; clusters {names}"
    # every confirmed match is a true one (no false edge hidden by a correct cluster)
    for m in matches:
        assert truth[m.a] == truth[m.b], f"false match {items[m.a].name} ~ {items[m.b].name}: {m.describe()}"


def test_every_planted_kind_is_matched_to_its_original_at_the_right_offset(planted):
    items, paths = planted
    by_name = {p.name: k for k, p in enumerate(items)}
    fingerprints = [fingerprint_video(p) for p in paths]
    matches = {(m.a, m.b): m for m in find_matches(fingerprints)}
    seeds = sorted({p.footage[0][0] for p in items if p.name.startswith("orig_")})
    for k, p in enumerate(items):
        if p.name.startswith("orig_"):
            continue
        for seed, first, _ in p.footage:
            original = by_name[f"orig_{seeds.index(seed) // 4}{seeds.index(seed) % 4}"]
            pair = (min(k, original), max(k, original))
            assert pair in matches, f"{p.name} not matched to the original it copies"
            m = matches[pair]
            offset = m.offset if m.a == original else -m.offset   # time in original - time in copy
            if p.name == "compilation":
                continue  # its two cuts are checked below
            if abs(offset - first / FPS) > 0.6:  # near-still footage may look alike at other offsets too ...
                chosen, true = (_aligned_distance(fingerprints[original], fingerprints[k], o, m.mirrored)
                                for o in (offset, first / FPS))
                assert true >= chosen - 1.0, f"{p.name}: offset {offset} vs {first / FPS}, which fits better"
            assert m.mirrored == ("mirror" in p.name), f"{p.name}: mirrored={m.mirrored}"
    comp = by_name["compilation"]
    kinds = {m.kind for (a, b), m in matches.items() if comp in (a, b)}
    assert kinds == {"compilation"}


def _aligned_distance(original, copy, offset: float, mirrored: bool) -> float:
    """Mean bits between each frame of the copy and the original's frame nearest to it at `offset` (... so the
    chosen offset must fit no worse than the true one)."""
    distances = distance_matrices(original, copy)[int(mirrored)]  # original frames x copy frames
    nearest = np.abs(original.times[:, None] - (copy.times[None, :] + offset)).argmin(axis=0)
    return float(distances[nearest, np.arange(len(copy.times))].mean())


def test_frames_are_sampled_at_two_fps_as_uint64_hashes(planted):
    _, paths = planted
    fp = fingerprint_video(paths[0])
    assert len(fp) == 20 and np.allclose(np.diff(fp.times), 0.5, atol=1.0 / FPS)
    assert fp.hashes.dtype == np.uint64 and fp.duration == pytest.approx(10.0)
