"""The database: one writer thread, a small reader pool, and the change log written inside each write.

Why one writer thread: measured here (docs/design.md#what-the-stack-costs), a thread hop per *statement*
(async SQLAlchemy) halves GARM's write rate, while one hop per *transaction* is 3-4x faster. So every write is
one plain function ``fn(tx)`` run to completion on a single thread, and every read is one function on a reader
thread. Writes inside one process are therefore serialized, and across processes:

* SQLite: ``BEGIN IMMEDIATE`` takes the write lock up front (a deferred transaction that upgrades later
  is what makes GARM answer "database is locked"), with a busy timeout for other processes.
* PostgreSQL: a transaction-scoped advisory lock is taken right before the change rows are inserted and
  held until commit, so the order of ``seq`` values equals commit order
  (docs/design.md#sequence-order-equals-commit-order).

After the commit, the committed :class:`~pygarm.events.change.Change` records are handed to the commit
listener on the event loop, in commit order (see :meth:`Database.write`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)

from pygarm.events.change import Change, EntityType, Operation
from pygarm.params.base import GoModel
from pygarm.params.gojson import dumps
from pygarm.stats import WriterStats
from pygarm.store.fastsql import Prepared, driver_execute
from pygarm.store.sqlite_files import secure_sqlite_files
from pygarm.store.tables import change_events, change_log_state

T = TypeVar("T")
log = logging.getLogger(__name__)

CommitListener = Callable[[Sequence[Change]], None]

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's write lock before failing."""
READER_THREADS = 4
"""Concurrent reads; SQLite in WAL mode lets readers run beside the single writer."""
CHANGE_NOTIFY_CHANNEL = "pygarm_changes"
"""PostgreSQL channel on which commits with changes are announced to other processes."""
CHANGELOG_ADVISORY_LOCK = 0x6761726D
"""PostgreSQL advisory lock key ("garm") that orders change-log inserts across processes."""


_INSERT_CHANGE = Prepared(
    insert(change_events)
    .values({name: bindparam(name) for name in ("entity_type", "operation", "payload", "created_at")})
    .returning(change_events.c.seq)
)
"""Built and compiled once: every write transaction runs it (store/fastsql.py)."""
_SERIALIZE_COMMITS_SQL = (
    f"SELECT pg_advisory_xact_lock({CHANGELOG_ADVISORY_LOCK}); NOTIFY {CHANGE_NOTIFY_CHANNEL}"
)
"""One round trip (no parameters: psycopg sends both statements as one simple query)."""


class WriteTx:
    """A write transaction in progress: the connection, and the changes it will append at commit.

    Store functions call :meth:`emit` after they have written the entity; the payload is encoded once,
    here, with the same encoder as the REST responses.
    """

    __slots__ = ("_pending", "conn", "now")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.now = datetime.now(UTC)
        self._pending: list[tuple[EntityType, Operation, bytes]] = []

    def emit(self, entity_type: EntityType, operation: Operation, payload: GoModel) -> None:
        self._pending.append((entity_type, operation, dumps(payload)))

    def _append_changes(self, serialize_commits: bool) -> list[Change]:
        if not self._pending:
            return []
        if serialize_commits:
            # The advisory lock orders seq by commit order; the NOTIFY is delivered at commit to every
            # process LISTENing (store/notify.py), never on rollback.
            driver_execute(self.conn, _SERIALIZE_COMMITS_SQL)
        changes = []
        for entity_type, operation, payload in self._pending:
            seq = _INSERT_CHANGE.scalar(
                self.conn,
                {
                    "entity_type": entity_type.value,
                    "operation": operation.value,
                    "payload": payload,
                    "created_at": self.now,
                },
            )
            changes.append(Change(seq, entity_type, operation, payload, self.now))
        return changes


def _configure_sqlite(engine: Engine, begin_statement: str) -> None:
    """Take over transaction control from pysqlite so that ``BEGIN IMMEDIATE`` really is used."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (SIGKILL); only an OS crash can lose the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        driver_execute(conn, begin_statement)


class Database:
    """Owns the engines and the threads; the only way the store touches the database."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            secure_sqlite_files(url)
            args = {"check_same_thread": False}
            # One connection, reused: the writer thread is the only user, and reconnecting costs a WAL set-up.
            self._write_engine = create_engine(url, echo=echo, connect_args=args, pool_size=1, max_overflow=0)
            self._read_engine = create_engine(url, echo=echo, connect_args=args, pool_size=READER_THREADS)
            _configure_sqlite(self._write_engine, "BEGIN IMMEDIATE")
            _configure_sqlite(self._read_engine, "BEGIN")
        else:
            self._write_engine = create_engine(url, echo=echo, pool_size=2, pool_pre_ping=True)
            self._read_engine = create_engine(url, echo=echo, pool_size=READER_THREADS, pool_pre_ping=True)
            event.listen(self._write_engine, "connect", self._remember_backend_pid)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pygarm-writer")
        self._readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="pygarm-reader")
        self._sqlite_writer: Connection | None = None
        """The writer thread's own SQLite connection (only that thread uses it)."""
        self._listener: CommitListener | None = None
        self.stats = WriterStats()
        """The writer's figures for ``/metrics`` (``pygarm/stats.py``)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.own_backend_pids: set[int] = set()
        """PostgreSQL backends of this process's writer connections: their NOTIFYs are this process's
        own commits, which the hub has already been handed, so the listener can ignore them."""

    def _remember_backend_pid(self, dbapi_connection: Any, _record: Any) -> None:
        self.own_backend_pids.add(int(dbapi_connection.info.backend_pid))

    @property
    def engine(self) -> Engine:
        return self._write_engine

    def set_commit_listener(self, listener: CommitListener | None) -> None:
        """Register who hears about committed changes (the events hub); called on the event loop."""
        self._listener = listener
        self._loop = asyncio.get_running_loop() if listener is not None else None

    async def write(self, fn: Callable[[WriteTx], T]) -> T:
        """Run ``fn`` in one transaction on the writer thread; commit, then publish its changes.

        The changes ride back with the result, so a write wakes the event loop once, not twice. They
        are published by a done-callback of the writer's future, which runs before the awaiting
        coroutine resumes and even if it was cancelled meanwhile (the commit happened regardless).
        Futures complete in commit order on the one writer thread, so publishing stays in commit order.
        """
        loop = asyncio.get_running_loop()
        self.stats.queued += 1
        future = loop.run_in_executor(self._writer, self._timed_write, fn)
        future.add_done_callback(self._publish_committed)
        result, _changes = await asyncio.shield(future)
        return result

    def _publish_committed(self, future: asyncio.Future[tuple[Any, list[Change]]]) -> None:
        self.stats.queued -= 1
        if future.cancelled() or future.exception() is not None:
            return
        changes = future.result()[1]
        if changes and self._listener is not None:
            self._listener(changes)

    def write_sync(self, fn: Callable[[WriteTx], T]) -> T:
        """Run a write from a thread that is not the event loop (start-up, migrations, tests)."""
        result, changes = self._writer.submit(self._run_write, fn).result()
        if changes and self._listener is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._listener, changes)
        return result

    def _timed_write(self, fn: Callable[[WriteTx], T]) -> tuple[T, list[Change]]:
        """:meth:`_run_write` with its figures for ``/metrics`` (on the writer thread, once per write)."""
        stats = self.stats
        started = perf_counter()
        try:
            result = self._run_write(fn)
        finally:
            stats.transactions.observe(perf_counter() - started)
        appended = stats.appended
        for change in result[1]:
            key = (change.entity_type.value, change.operation.value)
            appended[key] = appended.get(key, 0) + 1
        return result

    def _run_write(self, fn: Callable[[WriteTx], T]) -> tuple[T, list[Change]]:
        if not self.is_sqlite:
            # A checkout per transaction: the pool's pre-ping replaces a connection the server dropped.
            with self._write_engine.connect() as conn:
                return self._transaction(conn, fn)
        # SQLite: the writer keeps its one connection (checking it out and back in per transaction cost
        # ~15 % of a pool update's store time). It is taken at the first write, after the migrations.
        if self._sqlite_writer is None:
            self._sqlite_writer = self._write_engine.connect()
        return self._transaction(self._sqlite_writer, fn)

    def _transaction(self, conn: Connection, fn: Callable[[WriteTx], T]) -> tuple[T, list[Change]]:
        with conn.begin():
            tx = WriteTx(conn)
            result = fn(tx)
            changes = tx._append_changes(serialize_commits=not self.is_sqlite)
        # Committed (the context manager has exited): the changes are durable now.
        return result, changes

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one read transaction (a consistent snapshot) on a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self.read_sync, fn)

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        with self._read_engine.connect() as conn, conn.begin():
            return fn(conn)

    async def on_reader(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a reader thread (for a transaction that spans several calls)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, fn, *args)

    def read_connection(self, *, repeatable: bool = False) -> Connection:
        """A reader connection with its read transaction begun; the caller closes it. ``repeatable``: one
        snapshot for the whole transaction on PostgreSQL too (SQLite's WAL read transactions are)."""
        conn = self._read_engine.connect()
        if repeatable and not self.is_sqlite:
            conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
        return conn

    # The change log, as the hub sees it: read-only and ordered by seq.

    async def read_changes_after(self, after_seq: int, limit: int) -> list[Change]:
        return await self.read(lambda conn: _changes_after(conn, after_seq, limit))

    async def last_seq(self) -> int:
        return await self.read(_last_seq)

    async def oldest_seq(self) -> int:
        """The oldest ``seq`` still in the change log (0 when it is empty)."""

        def query(conn: Connection) -> int:
            return int(conn.execute(select(func.coalesce(func.min(change_events.c.seq), 0))).scalar_one())

        return await self.read(query)

    async def prune_changes(self, older_than: datetime) -> int:
        """Delete change rows committed before ``older_than`` and remember the highest deleted ``seq``;
        returns how many went."""

        def prune(tx: WriteTx) -> int:
            doomed = change_events.c.created_at < older_than
            highest = tx.conn.execute(select(func.max(change_events.c.seq)).where(doomed)).scalar_one()
            if highest is None:
                return 0
            result = tx.conn.execute(delete(change_events).where(change_events.c.seq <= highest))
            state = tx.conn.execute(select(change_log_state.c.pruned_through)).scalar_one_or_none()
            if state is None:
                tx.conn.execute(insert(change_log_state).values(id=1, pruned_through=highest))
            elif highest > state:
                tx.conn.execute(update(change_log_state).values(pruned_through=highest))
            return int(result.rowcount or 0)

        return await self.write(prune)

    async def pruned_through(self) -> int:
        """The highest ``seq`` retention has deleted (0 when nothing was ever pruned)."""

        def query(conn: Connection) -> int:
            value = conn.execute(select(change_log_state.c.pruned_through)).scalar_one_or_none()
            return int(value or 0)

        return await self.read(query)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        if self._sqlite_writer is not None:
            self._sqlite_writer.close()
            self._sqlite_writer = None
        self._write_engine.dispose()
        self._read_engine.dispose()


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_CHANGES_AFTER = Prepared(
    select(change_events)
    .where(change_events.c.seq > bindparam("after_seq"))
    .order_by(change_events.c.seq)
    .limit(bindparam("limit"))
)
"""The hub's catch-up read, run after every wake-up (on PostgreSQL also for its own NOTIFYs)."""


def _changes_after(conn: Connection, after_seq: int, limit: int) -> list[Change]:
    rows = _CHANGES_AFTER.all(conn, {"after_seq": after_seq, "limit": limit})
    return [
        Change(
            row.seq,
            EntityType(row.entity_type),
            Operation(row.operation),
            bytes(row.payload),
            _as_utc(row.created_at),
        )
        for row in rows
    ]


def _last_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(change_events.c.seq), 0))).scalar_one())
