"""PostgreSQL: the writer's ``BEGIN`` travels with the transaction's first statement.

Outside autocommit, psycopg starts a transaction by sending ``BEGIN`` on its own and waiting for the
answer before it sends the first statement: one round trip per write transaction that does nothing
else. While the writer runs a transaction (:func:`deferred_begin`), its connection is in psycopg's
autocommit mode, so psycopg sends no ``BEGIN``, and its cursors are :class:`DeferredBeginCursor`: the
first statement of the transaction, whichever path sends it (``store/fastsql.py`` or
``Connection.execute``), goes out in one pipeline behind a ``BEGIN``. psycopg's ``commit()`` and
``rollback()`` act on the server's transaction status, not on the autocommit flag, so SQLAlchemy's
transaction ends what was begun, and a transaction that sent nothing has nothing to end.

Only the writer's own checkout is switched, and only while it holds it: migrations and anything else
on the write engine get psycopg's ordinary transactions (:func:`restore`).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.abc import Params, Query, QueryNoTemplate

_PENDING: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
"""Connections whose transaction was begun by the writer and has not sent a statement yet."""


def _send_begin_with(conn: psycopg.Connection[Any]) -> bool:
    """True (and no longer pending) when the next statement must be preceded by ``BEGIN``."""
    if conn in _PENDING:
        _PENDING.discard(conn)
        return True
    return False


class DeferredBeginCursor(psycopg.Cursor[Any]):
    """A cursor that sends a pending ``BEGIN`` in the same pipeline as its statement."""

    def execute(  # type: ignore[override]
        self,
        query: QueryNoTemplate,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> DeferredBeginCursor:
        conn = self.connection
        if not _send_begin_with(conn):
            return super().execute(query, params, prepare=prepare, binary=binary)
        with conn.pipeline():
            with psycopg.Cursor(conn) as begin:
                begin.execute("BEGIN")
            super().execute(query, params, prepare=prepare, binary=binary)
        return self

    def executemany(self, query: Query, params_seq: Iterable[Params], *, returning: bool = False) -> None:
        conn = self.connection
        if not _send_begin_with(conn):
            super().executemany(query, params_seq, returning=returning)
            return
        with conn.pipeline():
            with psycopg.Cursor(conn) as begin:
                begin.execute("BEGIN")
            super().executemany(query, params_seq, returning=returning)


class DeferredBeginServerCursor(psycopg.ServerCursor[Any]):
    """A named (server-side) cursor needs its transaction before ``DECLARE``: a pending ``BEGIN`` is
    sent first, on its own (no store code uses these today; this keeps them correct if one does)."""

    def execute(  # type: ignore[override]
        self,
        query: QueryNoTemplate,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        **kwargs: Any,
    ) -> DeferredBeginServerCursor:
        if _send_begin_with(self.connection):
            with psycopg.Cursor(self.connection) as begin:
                begin.execute("BEGIN")
        super().execute(query, params, binary=binary, **kwargs)
        return self


@contextmanager
def deferred_begin(dbapi_connection: psycopg.Connection[Any]) -> Iterator[None]:
    """Around one writer transaction on an idle connection: ``BEGIN`` goes with its first statement."""
    if not dbapi_connection.autocommit:
        dbapi_connection.autocommit = True
        dbapi_connection.cursor_factory = DeferredBeginCursor
        dbapi_connection.server_cursor_factory = DeferredBeginServerCursor
    _PENDING.add(dbapi_connection)
    try:
        yield
    finally:
        _PENDING.discard(dbapi_connection)


def restore(dbapi_connection: Any) -> None:
    """Give the connection back psycopg's ordinary transactions (before it returns to the pool)."""
    if not isinstance(dbapi_connection, psycopg.Connection) or dbapi_connection.closed:
        return
    idle = dbapi_connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if dbapi_connection.autocommit and idle:
        dbapi_connection.autocommit = False
        dbapi_connection.cursor_factory = psycopg.Cursor
        dbapi_connection.server_cursor_factory = psycopg.ServerCursor
