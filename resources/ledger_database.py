"""The one seam between the ledgers and their database engine: SQLite files (the default) or PostgreSQL.

The ledgers write SQL that both engines run (`?` parameters, `INSERT ... ON CONFLICT`, explicit BEGIN and
COMMIT) and ask a connection from here for the little that differs: how it opens, how a write transaction keeps
other writers out, two schema words, an index hint and a list parameter. A write transaction is one writer at a
time per ledger on both engines: SQLite's `BEGIN IMMEDIATE` takes the file's write lock; on PostgreSQL the
transaction first takes an advisory lock named after the ledger. So every read-modify-write (a token take, a
vote import, a status fold) sees what the one before it committed, whichever process made it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg2  # dagster-postgres's driver
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from psycopg2.extras import execute_batch

from resources.storage import connect_wal


@dataclass(frozen=True)
class PostgresDatabase:
    """A PostgreSQL database by its libpq URL, e.g. postgresql://user:password@host:5432/ledgers.

    The URL carries the password, so it is left out of repr and never put into a message."""

    url: str = field(repr=False)


LedgerLocation = Path | str | PostgresDatabase  # a str or Path is a SQLite file


class LedgerConnection(ABC):
    """One connection to a ledger's database; the ledger's own lock guards it when threads share it."""

    # Words a schema names by `{key}`: SQLite's REAL is 8 bytes (PostgreSQL's is 4), and SQLite numbers the rows
    # of a table itself (`rowid`, which the ledgers order by) where PostgreSQL needs a column.
    SCHEMA_WORDS: dict[str, str]

    @abstractmethod
    def execute(self, sql: str, params: Sequence = ()):
        """The cursor of `sql` run with `params` (`?` placeholders)."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        """Run `sql` once per row of `rows`."""

    @abstractmethod
    def create_schema(self, script: str) -> None:
        """Run the `CREATE ... IF NOT EXISTS` statements of `script` (with its `{words}` filled in)."""

    @abstractmethod
    def begin_write(self) -> None:
        """Start a transaction that no other writer of this ledger runs alongside; end it with COMMIT/ROLLBACK."""

    @property
    @abstractmethod
    def in_transaction(self) -> bool:
        """Whether a transaction is open (to roll back after an error)."""

    def indexed_by(self, index: str) -> str:
        """The clause that makes a query use `index` (placed after the table), where the engine has one."""
        return ""

    @abstractmethod
    def any_of(self, column: str, values: Collection[str]) -> tuple[str, object]:
        """The condition `column` is one of `values` (any number of them), and its one parameter."""

    def frame(self, sql: str, params: Sequence = ()) -> pd.DataFrame:
        """The rows of a query as a DataFrame with the query's column names (as pandas.read_sql_query makes it)."""
        cursor = self.execute(sql, params)
        columns = [column[0] for column in cursor.description]
        return pd.DataFrame.from_records(cursor.fetchall(), columns=columns, coerce_float=True)

    def close(self) -> None:
        self._con.close()


class SqliteConnection(LedgerConnection):
    SCHEMA_WORDS = {"real": "REAL", "rowid": ""}

    def __init__(self, path: Path, timeout: float, synchronous: str | None, shared_by_threads: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = connect_wal(path, timeout=timeout, check_same_thread=not shared_by_threads)
        if synchronous:
            self._con.execute(f"PRAGMA synchronous={synchronous}")

    def execute(self, sql: str, params: Sequence = ()) -> sqlite3.Cursor:
        return self._con.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        self._con.executemany(sql, rows)

    def create_schema(self, script: str) -> None:
        self._con.executescript(script.format(**self.SCHEMA_WORDS))

    def begin_write(self) -> None:
        self._con.execute("BEGIN IMMEDIATE")

    @property
    def in_transaction(self) -> bool:
        return self._con.in_transaction

    def indexed_by(self, index: str) -> str:
        return f"INDEXED BY {index}"

    def any_of(self, column: str, values: Collection[str]) -> tuple[str, object]:
        return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(sorted(values))


class PostgresConnection(LedgerConnection):
    """Autocommit, so the ledgers' explicit BEGIN/COMMIT mean what they mean on SQLite; waits for a lock end
    after `timeout` seconds (SQLite's busy timeout) instead of hanging."""

    SCHEMA_WORDS = {"real": "DOUBLE PRECISION", "rowid": ", rowid BIGSERIAL"}

    def __init__(self, database: PostgresDatabase, ledger: str, timeout: float) -> None:
        self._con = psycopg2.connect(database.url, connect_timeout=max(1, round(timeout)),
                                     application_name=f"kinetics {ledger} ledger")
        self._con.autocommit = True
        # Every writer of this ledger, in any process, queues on one advisory lock (64 bits of the name's hash).
        self._lock_key = int.from_bytes(hashlib.sha256(f"kinetics-ledger:{ledger}".encode()).digest()[:8], "big",
                                        signed=True)
        self.execute("SET lock_timeout = ?", (f"{round(timeout * 1000)}ms",))

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")  # psycopg2's placeholders; a literal % is doubled

    def execute(self, sql: str, params: Sequence = ()):
        cursor = self._con.cursor()
        cursor.execute(self._sql(sql), params)
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        with self._con.cursor() as cursor:
            execute_batch(cursor, self._sql(sql), rows, page_size=1000)  # a page of rows a round trip

    def create_schema(self, script: str) -> None:
        # Two processes creating the same table at once collide in PostgreSQL's catalog: one at a time.
        self.begin_write()
        try:
            with self._con.cursor() as cursor:
                cursor.execute(script.format(**self.SCHEMA_WORDS))
            self.execute("COMMIT")
        except BaseException:
            self.execute("ROLLBACK")
            raise

    def begin_write(self) -> None:
        self.execute("BEGIN")
        self.execute("SELECT pg_advisory_xact_lock(?)", (self._lock_key,))

    @property
    def in_transaction(self) -> bool:
        return self._con.info.transaction_status != TRANSACTION_STATUS_IDLE

    def any_of(self, column: str, values: Collection[str]) -> tuple[str, object]:
        return f"{column} = ANY(?)", sorted(values)


def connect(
    where: LedgerLocation,
    ledger: str,
    *,
    timeout: float = 60.0,
    synchronous: str | None = None,
    shared_by_threads: bool = False,
) -> LedgerConnection:
    """A connection to the database of the ledger named `ledger` at `where`.

    SQLite only: `synchronous` is the file's PRAGMA synchronous, and `shared_by_threads` lets threads other than
    this one use the connection (under the ledger's lock)."""
    if isinstance(where, PostgresDatabase):
        return PostgresConnection(where, ledger, timeout)
    return SqliteConnection(Path(where), timeout, synchronous, shared_by_threads)
