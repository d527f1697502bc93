"""The ledgers' two backends as one parametrized fixture, so each ledger test runs on SQLite and on PostgreSQL.

`ledger_backend` hands a test new, empty ledger storage on its backend: files under the test's tmp_path, or a
fresh database on one PostgreSQL server per session (tests/postgres_server.py), started only when a test asks.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from resources.ledger_database import LedgerLocation, PostgresDatabase
from resources.ledgers import Ledgers

_NEXT_DATABASE = itertools.count()


@pytest.fixture(scope="session")
def ledger_server():
    from postgres_server import postgres_server

    with postgres_server("ledgers") as server:
        yield server


class LedgerBackend:
    """New, empty ledger storage on one backend, each call a deployment of its own."""

    def __init__(self, name: str, tmp_path: Path, server) -> None:
        self.name, self._tmp_path, self._server = name, tmp_path, server

    def _database(self) -> PostgresDatabase:
        return PostgresDatabase(self._server.create_database(f"ledgers_{next(_NEXT_DATABASE)}").url)

    def location(self) -> LedgerLocation:
        """Where one ledger keeps its tables: a SQLite file, or a PostgreSQL database."""
        if self.name == "postgres":
            return self._database()
        return self._tmp_path / f"ledger-{next(_NEXT_DATABASE)}.sqlite"

    def ledgers(self) -> Ledgers:
        """The Ledgers resource of a new deployment: a folder of SQLite files, or a PostgreSQL URL."""
        if self.name == "postgres":
            return Ledgers(url=self._database().url)
        return Ledgers(root=str(self._tmp_path / f"ledgers-{next(_NEXT_DATABASE)}"))


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_backend(request, tmp_path) -> LedgerBackend:
    server = request.getfixturevalue("ledger_server") if request.param == "postgres" else None
    return LedgerBackend(request.param, tmp_path, server)
