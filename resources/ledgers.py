"""The pipeline's bookkeeping databases as a Dagster resource: shared by every class, run and process.

The clip ledger (what was fetched, what failed how), the vote ledger (which vote files were imported), the
availability history and the platforms' request budgets live side by side: as SQLite files in one folder
(`root`, the default), or as tables of one PostgreSQL database (`url`, the production database that every pod of
a deployment reaches; `postgres_ledgers()`). Callers use nothing but these methods, whichever it is.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from pydantic import Field, model_validator

from kinetics_assets.acquisition.ledger import ClipLedger
from kinetics_assets.editions.history import AvailabilityHistory
from kinetics_assets.voting.votes import VoteLedger
from resources.ledger_database import LedgerLocation, PostgresDatabase
from resources.token_bucket import SharedTokenBucket

DATABASE_URL_ENV = "KINETICS_LEDGER_DATABASE_URL"


class Ledgers(ConfigurableResource):
    """The ledgers under `root` or in the database at `url` (exactly one); every process of a deployment must
    be given the same one."""

    root: str | None = Field(default=None, description="Folder of the ledgers' SQLite files, shared by every "
                                                        "run of the deployment.")
    url: str | None = Field(default=None, description="PostgreSQL URL of the ledgers' database instead of a "
                                                      "folder; give it from the environment: "
                                                      f"EnvVar({DATABASE_URL_ENV!r}).")

    @model_validator(mode="after")
    def _one_place(self) -> Ledgers:
        if (self.root is None) == (self.url is None):
            raise ValueError("Ledgers needs exactly one of root (a folder of SQLite files) or url (PostgreSQL)")
        return self

    def _where(self, name: str) -> LedgerLocation:
        if self.url is not None:
            return PostgresDatabase(self.url)  # one database; each ledger has its own tables
        path = Path(self.root) / f"{name}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def clip_ledger(self) -> ClipLedger:
        """What was fetched, and what failed how: reruns never redo a finished clip or retry a permanent failure."""
        return ClipLedger(self._where("clips"))

    def vote_ledger(self) -> VoteLedger:
        """Every vote file imported (by checksum) and its votes: importing the same file twice adds nothing."""
        return VoteLedger(self._where("votes"))

    def availability_history(self) -> AvailabilityHistory:
        """Every link-rot answer about a published video and each video's status: survives restarts."""
        return AvailabilityHistory(self._where("availability"))

    def rate_budget(self, name: str, rate_per_s: float, burst: float) -> SharedTokenBucket:
        """The request budget `name`: one bucket for every process that asks for the same name here."""
        return SharedTokenBucket(self._where("rate_budgets"), name, rate_per_s, burst)


def postgres_ledgers() -> Ledgers:
    """The production ledgers: the PostgreSQL database named by $KINETICS_LEDGER_DATABASE_URL (with its password),
    read from the environment when a run starts, so the URL is in no file, run config or log."""
    return Ledgers(url=EnvVar(DATABASE_URL_ENV))
