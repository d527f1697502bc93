"""Run a long-lived server command (``dagster dev``) in its own process group, stopped whole and promptly.

In the terminal's foreground group Ctrl-C reaches every process at once and each shuts down at its own pace
(``dagster dev`` waits up to 60 s for each of its children), while a SIGTERM to the parent alone would orphan
them. In a group of its own the command gets the stop from us: SIGTERM to the whole group, a bounded grace, then
SIGKILL for whatever is left. A second Ctrl-C skips the grace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

# SIGHUP: a closed terminal no longer reaches a command outside its foreground group, so it comes through us.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, _frame) -> None:
    raise _Stop(signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(child: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to the child's group; SIGKILL to what is left after ``grace_s`` (or at a second signal)."""
    deadline = time.monotonic() + grace_s
    try:
        if _group_alive(child.pid):
            os.killpg(child.pid, signal.SIGTERM)
        while time.monotonic() < deadline and (child.poll() is None or _group_alive(child.pid)):
            time.sleep(0.05)
    except _Stop:
        pass  # asked twice: no more grace
    if _group_alive(child.pid):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def run_process_group(command: Sequence[str], env: Mapping[str, str], grace_s: float = 5.0) -> int:
    """Run ``command`` in a new session until it exits (its code) or we get SIGINT, SIGTERM or SIGHUP (128 + the
    signal, after the whole group is stopped)."""
    previous = {signum: signal.signal(signum, _raise_stop) for signum in STOP_SIGNALS}
    try:
        child = subprocess.Popen(list(command), env=dict(env), start_new_session=True)
        try:
            return child.wait()
        except _Stop as stop:
            stop_group(child, grace_s)
            return 128 + stop.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
