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
