"""The local Dagster instance (SQLite under ``$KINETICS_HOME/dagster_home``) that the demo and the UI share."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from resources.processes import pid_alive
from resources.profiles import kinetics_home
from resources.storage import atomic_write_bytes

# The code location as the UI and the demo's daemon ticks load it: one location name, so sensor state, ticks and
# the run keys' dedup are shared (the demo runs from the repository, installed in development mode).
WORKSPACE = Path(__file__).resolve().parents[1] / "workspace.yaml"
# No telemetry: these machines (and many curators' clusters) have no route out. No community sign-up dialog (the
# UI's "nux", shown on every loopback origin until dismissed; `nux: enabled` is the instance's switch for it). A
# queued run whose code server does not answer in time (a loaded machine) is dequeued again a few times instead
# of failing at once.
_INSTANCE_YAML = ("telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
                  "run_queue:\n  max_user_code_failure_retries: 3\n  user_code_failure_retry_delay: 15\n")
# Statuses of a run whose process is (or was) executing it.
_RUNNING = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def ensure_dagster_home() -> Path:
    """Create the instance folder if needed and point ``DAGSTER_HOME`` at it (an explicit setting wins)."""
    home = Path(os.environ.get("DAGSTER_HOME") or kinetics_home() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        atomic_write_bytes(home / "dagster.yaml", _INSTANCE_YAML.encode())
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _alive(pid: int) -> bool:
    """Whether another process with this id runs. Our own id is a dead run's id reused: this process starts no
    run before it sweeps."""
    return pid != os.getpid() and pid_alive(pid)


def _writer_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process that wrote the run's latest event (the one executing it), if any event names one."""
    for record in instance.get_records_for_run(run_id, ascending=False, limit=100).records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.pid is not None:
            return event.pid
    return None


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every run still starting, started or canceling whose process is gone (killed with -9, or its
    machine rebooted); returns their ids. ``execute_in_process`` runs (the demo's) have no run monitoring, so
    without this they would stay STARTED forever. The instance is machine-local (SQLite), so a process id is
    checked on this machine; a run whose id is reused by a live process is left alone."""
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_RUNNING)):
        pid = _writer_pid(instance, run.run_id)
        if pid is None or _alive(pid):
            continue
        instance.report_run_failed(run, f"The process (pid {pid}) executing this run is gone: it was killed or "
                                        "its machine stopped; marked failed at the next start.")
        failed.append(run.run_id)
    return failed
