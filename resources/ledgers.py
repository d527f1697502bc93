"""The pipeline's bookkeeping databases as a Dagster resource: shared by every class, run and process.

The clip ledger (what was fetched, what failed how), the vote ledger (which vote files were imported) and the
platforms' request budgets live side by side. This resource keeps them as SQLite files in one folder; a
production profile that wants a shared database server subclasses it and returns the same three objects
backed by that server — callers use nothing but these methods.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from kinetics_assets.acquisition.ledger import ClipLedger
from kinetics_assets.editions.history import AvailabilityHistory
from kinetics_assets.voting.votes import VoteLedger
from resources.token_bucket import SqliteTokenBucket


class Ledgers(ConfigurableResource):
    """The ledger files under `root`; every process of a deployment must see the same folder."""

    root: str = Field(description="Folder of the ledger databases, shared by every run of the deployment.")

    def _path(self, name: str) -> Path:
        path = Path(self.root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def clip_ledger(self) -> ClipLedger:
        """What was fetched, and what failed how: reruns never redo a finished clip or retry a permanent failure."""
        return ClipLedger(self._path("clips.sqlite"))

    def vote_ledger(self) -> VoteLedger:
        """Every vote file imported (by checksum) and its votes: importing the same file twice adds nothing."""
        return VoteLedger(self._path("votes.sqlite"))

    def availability_history(self) -> AvailabilityHistory:
        """Every link-rot answer about a published video and each video's status: survives restarts."""
        return AvailabilityHistory(self._path("availability.sqlite"))

    def rate_budget(self, name: str, rate_per_s: float, burst: float) -> SqliteTokenBucket:
        """The request budget `name`: one bucket for every process that asks for the same name here."""
        return SqliteTokenBucket(self._path("rate_budgets.sqlite"), name, rate_per_s, burst)
