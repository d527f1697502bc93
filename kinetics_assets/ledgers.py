"""The pipeline's bookkeeping databases (SQLite): shared across classes and runs, kept under KINETICS_HOME."""

from pathlib import Path

from kinetics_assets.acquisition.ledger import ClipLedger
from kinetics_assets.voting.votes import VoteLedger
from resources.profiles import kinetics_home


def _ledger_path(name: str) -> Path:
    path = kinetics_home() / "ledgers" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def clip_ledger() -> ClipLedger:
    """What was fetched, and what failed how: reruns never redo a finished clip or retry a permanent failure."""
    return ClipLedger(_ledger_path("clips.sqlite"))


def vote_ledger() -> VoteLedger:
    """Every vote file imported (by checksum) and its votes: importing the same file twice adds nothing."""
    return VoteLedger(_ledger_path("votes.sqlite"))
