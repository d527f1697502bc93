"""A throwaway GCS for tests: `gcp-storage-emulator` (a real GCS JSON API) on 127.0.0.1, a free port, in memory.

It runs in its own process, not a thread: Dagster runs steps in other processes that must reach it too, and its
HTTPServer answers one request at a time, so it must not share a GIL-bound thread with the code under test.
Clients find it through ``STORAGE_EMULATOR_HOST`` (google-cloud-storage then uses anonymous credentials).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from tests.postgres_server import free_port

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
DEFAULT_BUCKET = "kinetics-test"


@dataclass(frozen=True)
class GcsEmulator:
    host: str
    port: int
    bucket: str

    @property
    def url(self) -> str:
        """The value for ``STORAGE_EMULATOR_HOST``."""
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """What a process needs in its environment to talk to this emulator instead of Google."""
        return {"STORAGE_EMULATOR_HOST": self.url}


def _wait_until_healthy(url: str, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"gcp-storage-emulator exited with {process.returncode} before answering on {url}: "
                               f"{log.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as answer:  # its health check answers "OK"
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"gcp-storage-emulator did not answer on {url} within {START_TIMEOUT_S} s")


@contextmanager
def gcs_emulator(bucket: str = DEFAULT_BUCKET) -> Iterator[GcsEmulator]:
    """A running emulator holding an empty ``bucket``; stopped (and its memory gone) afterwards.

    Does not touch this process's environment: callers set ``environment()`` where they need it.
    """
    port = free_port()
    command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port),
               "--in-memory", "--default-bucket", bucket, "--quiet"]
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")}  # the CLI reads these as defaults
    emulator = GcsEmulator(host="127.0.0.1", port=port, bucket=bucket)
    with tempfile.TemporaryFile() as log:  # a file, not a pipe nobody reads: a full pipe would stall the server
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_healthy(emulator.url, process, log)
            yield emulator
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
