"""A platform session refused for longer than a batch waits is waited out by Dagster, not by a worker thread.

`SessionRefused` means the platform kept refusing the session (throttled, bot check, captcha) through every
backoff of the batch's breaker. The step then asks Dagster to run it again later (`dg.RetryRequested`): what
finished was recorded (clip ledger) and nothing was recorded for the rest, so the re-run fetches only the rest;
the link-rot check returns no table at all rather than one with statuses decided by a refused session. After
`RETRIES` re-runs the step fails, naming the refusal and its advice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg

from kinetics_assets.acquisition.failures import SessionRefused

RETRIES = 3
RETRY_AFTER_S = 20 * 60  # YouTube lifts a session rate limit within about an hour


@contextlib.contextmanager
def retry_step_if_session_refused(context: dg.AssetExecutionContext | None = None) -> Iterator[None]:
    """Turn a `SessionRefused` inside the block into a delayed retry of the whole step."""
    try:
        yield
    except SessionRefused as refused:
        if context is not None:
            context.log.warning(f"{refused} -- retrying the step in {RETRY_AFTER_S} s (at most {RETRIES} times)")
        raise dg.RetryRequested(max_retries=RETRIES, seconds_to_wait=RETRY_AFTER_S) from refused
