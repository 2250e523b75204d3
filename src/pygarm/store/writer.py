"""The single writer thread, with group commit: the writes waiting when it is free share one transaction.

Every write is a plain function ``fn(tx)`` (``store/db.py``). While the writer thread runs a
transaction, the event loop keeps queueing writes; when the thread comes back it takes every write
waiting (up to :data:`MAX_BATCH`) and runs them, in queue order, in **one** transaction: each inside its
own ``SAVEPOINT``, so a write that raises is rolled back to its savepoint and gets its own error while
the others carry on. The changes of all of them are appended at the end in one go
(``store/changelog.py``), each write keeping its own ``seq`` values in queue order, and one commit
makes them all durable. On PostgreSQL this shares the commit's ``fsync``, the advisory lock and the
append among the writes of a batch; a lone write runs exactly as before, without a savepoint.

What a write sees is unchanged: it runs after every write queued before it, with their effects
visible, and its result is only handed back after the commit. The one difference: when the commit
itself fails (the connection is lost), every write of the batch fails with that error, as a single
write would have.

The writer keeps one connection. On PostgreSQL the pool's pre-ping (one round trip) is only paid when
the connection sat idle for :data:`IDLE_RECHECK_S` or the last transaction failed; under load the
connection is reused as is, as on SQLite. Its ``BEGIN`` goes out with the first statement
(``store/deferred_begin.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from time import perf_counter
from typing import Any, cast

import psycopg
from sqlalchemy import Connection, Engine

from pygarm.events.change import Change
from pygarm.stats import WriterStats
from pygarm.store.changelog import WriteTx, append_changes
from pygarm.store.deferred_begin import deferred_begin
from pygarm.store.fastsql import driver_execute

log = logging.getLogger(__name__)

MAX_BATCH = 32
"""Writes per group commit at most: PostgreSQL caches 64 subtransactions per transaction; past that,
every snapshot of every session gets slower."""
IDLE_RECHECK_S = 1.0
"""A PostgreSQL connection idle for longer is checked (the pool's pre-ping) before it is used again."""
_SAVEPOINT = "SAVEPOINT pygarm_write"
_ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT pygarm_write"


class WriteJob:
    """One queued write: the function, and who waits for it (an asyncio future on ``loop``, or a
    ``concurrent.futures.Future`` for a caller that is not on the event loop)."""

    __slots__ = ("changes", "error", "fn", "future", "loop", "result")

    def __init__(
        self,
        fn: Callable[[WriteTx], Any],
        future: asyncio.Future[Any] | concurrent.futures.Future[Any],
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        self.fn = fn
        self.future = future
        self.loop = loop
        self.result: Any = None
        self.error: BaseException | None = None
        self.changes: list[Change] = []


class Writer:
    """The thread that runs every write, and its one connection."""

    def __init__(
        self,
        engine: Engine,
        *,
        postgresql: bool,
        stats: WriterStats,
        finish: Callable[[list[WriteJob]], None],
    ) -> None:
        """``finish`` is called on the writer thread with each batch once it committed or failed."""
        self._engine = engine
        self._postgresql = postgresql
        self._stats = stats
        self._finish = finish
        self._queue: queue.SimpleQueue[WriteJob | None] = queue.SimpleQueue()
        self._connection: Connection | None = None
        self._last_used = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="pygarm-writer", daemon=True)
        self._thread.start()

    @property
    def connection(self) -> Connection | None:
        """The connection the writer holds between transactions (diagnostics and tests: read it only
        while no write is running)."""
        return self._connection

    def submit(self, job: WriteJob) -> None:
        if self._closed:
            raise RuntimeError("the database is closed")
        self._queue.put(job)

    def close(self) -> None:
        """Run what is queued, then stop the thread and close its connection."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._run_batch(batch)
            try:
                self._finish(batch)
            except Exception:  # never lose the thread: every later write would wait forever
                log.exception("handing back a batch of writes failed")
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _run_batch(self, batch: list[WriteJob]) -> None:
        started = perf_counter()
        try:
            conn = self._checkout()
            try:
                self._transaction(conn, batch)
            except BaseException:
                if not _usable(conn):
                    self._drop()
                raise
        except BaseException as error:  # the transaction rolled back: nothing of the batch committed
            for job in batch:
                if job.error is None:
                    job.error = error
                job.changes = []
        finally:
            self._last_used = perf_counter()
            self._stats.transactions.observe(self._last_used - started)
        appended = self._stats.appended
        for job in batch:
            for change in job.changes:
                key = (change.entity_type.value, change.operation.value)
                appended[key] = appended.get(key, 0) + 1

    def _transaction(self, conn: Connection, batch: list[WriteJob]) -> None:
        if not self._postgresql:
            self._run_transaction(conn, batch)
            return
        with deferred_begin(cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)):
            self._run_transaction(conn, batch)

    def _run_transaction(self, conn: Connection, batch: list[WriteJob]) -> None:
        with conn.begin():
            if len(batch) == 1:
                job = batch[0]
                tx = WriteTx(conn)
                job.result = job.fn(tx)  # an error rolls the whole transaction back
                done = [(job, tx)]
            else:
                done = []
                for job in batch:
                    tx = WriteTx(conn)
                    driver_execute(conn, _SAVEPOINT)
                    try:
                        job.result = job.fn(tx)
                    except Exception as error:
                        job.error = error
                        driver_execute(conn, _ROLLBACK_TO_SAVEPOINT)
                        continue
                    done.append((job, tx))
            appended = append_changes(conn, [tx for _job, tx in done], postgresql=self._postgresql)
        # Committed (the context manager has exited): the changes are durable now.
        for (job, _tx), changes in zip(done, appended, strict=True):
            job.changes = changes

    def _checkout(self) -> Connection:
        conn = self._connection
        if conn is not None and self._postgresql and perf_counter() - self._last_used > IDLE_RECHECK_S:
            self._drop()  # back to the pool, whose pre-ping checks it at the checkout below
            conn = None
        if conn is None:
            conn = self._connection = self._engine.connect()
        return conn

    def _drop(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing the writer's connection failed", exc_info=True)


def _usable(conn: Connection) -> bool:
    """False when the connection was invalidated or its driver connection is broken or closed."""
    if conn.invalidated or conn.closed:
        return False
    dbapi = conn.connection.dbapi_connection
    return not (dbapi is None or getattr(dbapi, "closed", False) or getattr(dbapi, "broken", False))
