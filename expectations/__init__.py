"""The edition's Great Expectations suites (``suites``) and how they are run (``validate``).

GX reads ``GX_ANALYTICS_ENABLED`` when imported; it is set here, before any module of this package imports GX,
so no usage statistics are ever sent (the contexts also switch analytics off in their config).
"""

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# The suites' names, importable without GX (importing it takes seconds): Dagster declares one check per suite
# when it loads the code location, and only running the checks needs GX itself.
CLASS_MINIMUM, SPLIT_TARGETS, CLIP_ROWS, VIDEO_SPLITS = "class_minimum", "split_targets", "clip_rows", "video_splits"
SUITE_NAMES = (CLASS_MINIMUM, SPLIT_TARGETS, CLIP_ROWS, VIDEO_SPLITS)
# What each suite's check tells a curator in the UI (every one blocks the release; its Data Docs say more).
SUITE_DESCRIPTIONS = {
    CLASS_MINIMUM: "Great Expectations: every class of the taxonomy has at least the minimum clips, all splits "
    "together. Fails naming each class below it with its count (classes_below_minimum); blocks the release.",
    SPLIT_TARGETS: "Great Expectations: every class's val and test counts are at their targets within the "
    "tolerance. Fails listing the classes off target; blocks the release.",
    CLIP_ROWS: "Great Expectations: one clip per video within a class, 0 < time_end - time_start <= 10 s, labels "
    "in the taxonomy, canonical split names. Fails listing the offending rows; blocks the release.",
    VIDEO_SPLITS: "Great Expectations: no video in two splits (a test clip's video must not also be trained on). "
    "Fails listing the videos; blocks the release.",
}
