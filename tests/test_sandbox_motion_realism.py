"""Sandbox footage looks like real uploads around the action, so localization and dedup are really tested.

Protects: outside the action the picture moves (handheld cameras, pans, moving backgrounds) and cuts between
shots; title cards and captions appear, but never during the action, which is one continuous shot; a share of
videos is a near-still tripod shot of a place with detail everywhere (no flat regions for a deduplicator to lean
on).
"""

from __future__ import annotations

import numpy as np
import pytest

from resources.sandbox.render import STILL_SHARE, Scene, ScenePainter, class_motion

FPS, SECONDS, ACTION = 25, 40, (12.0, 30.0)
CUT_GREY_LEVELS = 30.0  # mean absolute difference of two consecutive frames that only a cut (or a card) makes


def _scene(seed: int) -> Scene:
    return Scene(seed, 160, 120, FPS, SECONDS * FPS, class_motion("luge"), *ACTION)


def _changes(painter: ScenePainter, frames: range) -> np.ndarray:
    """Mean absolute difference of each frame in `frames` from the one before it."""
    pictures = [painter.frame(i).astype(np.int16) for i in range(frames.start - 1, frames.stop)]
    return np.array([np.abs(b - a).mean() for a, b in zip(pictures, pictures[1:])])


@pytest.fixture(scope="module")
def painters() -> list[ScenePainter]:
    return [ScenePainter(_scene(seed)) for seed in range(40)]


def test_outside_the_action_the_picture_moves_and_cuts(painters):
    moving = [p for p in painters if not p.look.still]
    before_action = range(1, int(ACTION[0] * FPS))
    changes = [_changes(p, before_action) for p in moving]
    assert np.mean([np.mean(c > 1.0) for c in changes]) > 0.4, "the camera or the background should move"
    assert np.mean([(c > CUT_GREY_LEVELS).any() for c in changes]) > 0.5, "most videos should cut between shots"


def test_the_action_is_one_shot_without_cards_or_captions(painters):
    for painter in painters:
        during = [s for s in painter.footage.shots if s.start < ACTION[1] and s.end > ACTION[0]]
        assert len(during) == 1 and during[0].place == 0 and not during[0].caption, during
        assert during[0].start <= ACTION[0] and during[0].end >= ACTION[1]
        assert _changes(painter, range(int(ACTION[0] * FPS) + 1, int(ACTION[1] * FPS))).max() < CUT_GREY_LEVELS


def test_some_videos_open_on_a_title_card_that_fades_in_and_some_show_captions(painters):
    opening = [p for p in painters if p.footage.shots[0].place < 0]
    assert opening and all(p.frame(0).max() == 0 for p in opening), "a card fades in from black"
    assert all(p.frame(int(p.footage.shots[0].end * FPS) - 1).std() > 0 for p in opening)
    assert any(s.caption for p in painters for s in p.footage.shots)


def test_still_videos_are_near_still_and_detailed_everywhere():
    painters = [ScenePainter(_scene(seed)) for seed in range(200)]
    still = [p for p in painters if p.look.still]
    assert abs(len(still) / len(painters) - STILL_SHARE) < 0.08
    for painter in still[:8]:
        assert _changes(painter, range(1, int(ACTION[0] * FPS))).max() == 0, "a tripod shot of a still place"
        frame = painter.frame(0).astype(np.float32).mean(axis=2)
        blocks = frame.reshape(12, 10, 16, 10).transpose(0, 2, 1, 3).reshape(12, 16, 100)
        flat = np.mean(blocks.std(axis=2) < 8.0)  # the only flat blocks lie inside the scene's objects
        assert flat < 0.05, f"{flat:.0%} of the 10x10 blocks are flat"

