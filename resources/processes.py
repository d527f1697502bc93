"""Whether a process still runs: how the leftovers of killed processes (staging folders, partial renders, runs
left STARTED) are told apart from those of live ones on this machine."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs here (one we may not signal, another user's, still runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
