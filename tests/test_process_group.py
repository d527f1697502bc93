"""A supervised server command is stopped whole and promptly: SIGTERM, SIGINT or SIGHUP (terminal closed) to the
supervisor stops the command and every process it started within the grace, even a child that ignores them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

# A stubborn server: ignores SIGTERM and SIGINT, starts a grandchild, says who they are, waits forever.
_STUBBORN = """
import json, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(json.dumps([__import__("os").getpid(), grandchild.pid]))
time.sleep(600)
"""
_SUPERVISOR = """
import os, sys
from kinetics_assets.process_group import run_process_group
sys.exit(run_process_group([sys.executable, "-c", sys.argv[1], sys.argv[2]], os.environ, grace_s=1.0))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_ends_the_command_and_its_children_within_the_grace(stop, tmp_path: Path):
    pids_file = tmp_path / "pids.json"
    supervisor = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, _STUBBORN, str(pids_file)],
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not pids_file.exists() or not pids_file.read_text():
            assert supervisor.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        pids = json.loads(pids_file.read_text())
        started = time.monotonic()
        os.kill(supervisor.pid, stop)
        assert supervisor.wait(timeout=10) == 128 + stop
        assert time.monotonic() - started < 5, "stopped within the 1-s grace and the kill"
        time.sleep(0.2)
        assert [pid for pid in pids if _alive(pid)] == [], "the command and its child are gone"
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
