"""The database: one writer thread, a small reader pool, and the change log written inside each write.

Why one writer thread: measured here (docs/design.md#what-the-stack-costs), a thread hop per *statement*
(async SQLAlchemy) halves GARM's write rate, while one hop per *transaction* is 3-4x faster. So every write is
one plain function ``fn(tx)`` run to completion on a single thread, and every read is one function on a reader
thread. Writes inside one process are therefore serialized, and across processes:

* SQLite: ``BEGIN IMMEDIATE`` takes the write lock up front (a deferred transaction that upgrades later
  is what makes GARM answer "database is locked"), with a busy timeout for other processes.
* PostgreSQL: a transaction-scoped advisory lock is taken right before the change rows are inserted and
  held until commit, so the order of ``seq`` values equals commit order
  (docs/design.md#sequence-order-equals-commit-order); lock, NOTIFY and insert are one statement, with
  the COMMIT pipelined behind it (``store/changelog.py``).

Writes queued while the writer is busy share one transaction, each in its own savepoint (group commit,
``store/writer.py``): one commit, and on PostgreSQL one disk flush, for all of them.

After the commit, the committed :class:`~pygarm.events.change.Change` records are handed to the commit
listener on the event loop, in commit order (see :meth:`Database.write`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

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
from pygarm.stats import WriterStats
from pygarm.store.changelog import CHANGE_NOTIFY_CHANNEL, CHANGELOG_ADVISORY_LOCK, WriteTx
from pygarm.store.deferred_begin import restore
from pygarm.store.fastsql import Prepared, driver_execute
from pygarm.store.sqlite_files import secure_sqlite_files
from pygarm.store.tables import change_events, change_log_state
from pygarm.store.writer import WriteJob, Writer

T = TypeVar("T")
log = logging.getLogger(__name__)

CommitListener = Callable[[Sequence[Change]], None]

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's write lock before failing."""
READER_THREADS = 4
"""Concurrent reads; SQLite in WAL mode lets readers run beside the single writer."""

__all__ = ["CHANGELOG_ADVISORY_LOCK", "CHANGE_NOTIFY_CHANNEL", "CommitListener", "Database", "WriteTx"]


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

    def __init__(self, url: str, *, echo: bool = False, synchronous_commit: bool = True) -> None:
        """``synchronous_commit=False`` (PostgreSQL only): the writer's commits return before their WAL
        is flushed to disk (``SET synchronous_commit = off``), see docs/deployment.md."""
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
            event.listen(self._write_engine, "checkin", _restore_transactions)
            if not synchronous_commit:
                event.listen(self._write_engine, "connect", _asynchronous_commit)
        self._readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="pygarm-reader")
        self._listener: CommitListener | None = None
        self.stats = WriterStats()
        """The writer's figures for ``/metrics`` (``pygarm/stats.py``)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.own_backend_pids: set[int] = set()
        """PostgreSQL backends of this process's writer connections: their NOTIFYs are this process's
        own commits, which the hub has already been handed, so the listener can ignore them."""
        self._writer = Writer(
            self._write_engine, postgresql=not self.is_sqlite, stats=self.stats, finish=self._finish
        )

    def _remember_backend_pid(self, dbapi_connection: Any, _record: Any) -> None:
        self.own_backend_pids.add(int(dbapi_connection.info.backend_pid))

    @property
    def engine(self) -> Engine:
        return self._write_engine

    @property
    def writer_connection(self) -> Connection | None:
        """The writer thread's connection between writes (tests count its round trips)."""
        return self._writer.connection

    def set_commit_listener(self, listener: CommitListener | None) -> None:
        """Register who hears about committed changes (the events hub); called on the event loop."""
        self._listener = listener
        self._loop = asyncio.get_running_loop() if listener is not None else None

    async def write(self, fn: Callable[[WriteTx], T]) -> T:
        """Run ``fn`` in a transaction on the writer thread (possibly shared with other queued writes,
        ``store/writer.py``); after the commit, publish its changes and return its result.

        The changes are published before the awaiting coroutine resumes, and even if it was cancelled
        meanwhile (the commit happened regardless): batches finish in commit order on the one writer
        thread, and each is handed to the event loop in one callback, so publishing stays in commit order.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._writer.submit(WriteJob(fn, future, loop))
        self.stats.queued += 1
        return cast(T, await asyncio.shield(future))

    def write_sync(self, fn: Callable[[WriteTx], T]) -> T:
        """Run a write from a thread that is not the event loop (start-up, migrations, tests)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._writer.submit(WriteJob(fn, future, None))
        return cast(T, future.result())

    def _finish(self, batch: list[WriteJob]) -> None:
        """On the writer thread, once a batch committed or failed: resolve each write's future and hand
        the committed changes to the listener, on its event loop, in commit order."""
        loop = self._loop
        on_loop = [job for job in batch if job.loop is not None]
        if loop is None and on_loop:
            loop = on_loop[0].loop
        handed = False
        if loop is not None and (on_loop or (self._listener is not None and any(j.changes for j in batch))):
            try:
                loop.call_soon_threadsafe(self._complete, batch, loop)
                handed = True
            except RuntimeError:  # the loop is closed: nobody is left to hear about it
                log.debug("event loop closed; %d writes not handed back", len(on_loop))
        for job in batch:
            if job.loop is None:
                _resolve(job)
            elif not handed and job.loop is not loop:
                job.loop.call_soon_threadsafe(_resolve, job)

    def _complete(self, batch: list[WriteJob], loop: asyncio.AbstractEventLoop) -> None:
        """On the event loop: publish each write's changes, then resolve its future, in commit order."""
        listener = self._listener if self._loop is loop else None
        for job in batch:
            if job.error is None and job.changes and listener is not None:
                try:
                    listener(job.changes)
                except Exception:
                    log.exception("the commit listener failed")
            if job.loop is loop:
                self.stats.queued -= 1
                _resolve(job)
            elif job.loop is not None:
                job.loop.call_soon_threadsafe(_resolve, job)

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
        self._writer.close()
        self._readers.shutdown(wait=True)
        self._write_engine.dispose()
        self._read_engine.dispose()


def _resolve(job: WriteJob) -> None:
    future = job.future
    if future.done():  # cancelled by its owner (not possible through write(), which shields it)
        return
    if job.error is not None:
        future.set_exception(job.error)
    else:
        future.set_result(job.result)


def _restore_transactions(dbapi_connection: Any, _record: Any) -> None:
    """A writer connection back in the pool gets psycopg's ordinary transactions again (migrations and
    other users of the write engine rely on them; ``store/deferred_begin.py``)."""
    if dbapi_connection is not None:
        restore(dbapi_connection)


def _asynchronous_commit(dbapi_connection: Any, _record: Any) -> None:
    """The writer's commits do not wait for the WAL flush (``[database.postgresql] synchronous_commit``)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    dbapi_connection.commit()


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
