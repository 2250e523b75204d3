"""Hot statements run on the driver cursor: a Core statement compiled once per dialect.

``Connection.execute`` spends ~100-180 µs per statement before and after the driver's own work (cache
key, execution context, result metadata), while SQLite itself needs ~10 µs for a primary-key lookup
(profiled, docs/performance.md). :class:`Prepared` keeps SQLAlchemy Core as the source of the SQL: the
statement is compiled by the dialect as ``Connection.execute`` would compile it, and the dialect's own
bind and result processors are applied (SQLite's ``DATETIME`` strings and integer booleans), so rows
hold the same Python values. It then calls the driver directly, inside the connection's transaction.

Only for fixed statements whose parameters are all named ``bindparam``s (no ``IN`` lists). When the
engine logs SQL (``echo``) or has cursor-execute listeners, it falls back to ``Connection.execute``.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, exc
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Params = Mapping[str, Any]
Processor = Callable[[Any], Any]
_NO_PARAMS: Params = {}


class _Compiled:
    """One statement compiled for one dialect, with what it takes to bind and to read rows."""

    __slots__ = ("binds", "defaults", "positional", "processors", "row_type", "sql")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
        for bind in compiled.bind_names:
            if bind.expanding:
                raise TypeError("Prepared statements take no expanding (IN) parameters")
        self.sql: str = compiled.string
        self.positional: bool = compiled.positional
        if compiled.positional:
            names = list(compiled.positiontup or [])
        else:
            names = list(dict.fromkeys(compiled.bind_names.values()))
        self.binds: list[tuple[str, Processor | None]] = [
            (name, cast("Processor | None", compiled._bind_processors.get(name))) for name in names
        ]
        # Values fixed in the statement itself (``col == "x"``, ``OFFSET 0``); a required bindparam
        # has none, so a call that does not pass it fails with KeyError.
        required = {name for bind, name in compiled.bind_names.items() if bind.required}
        self.defaults: dict[str, Any] = {
            name: value
            for name, value in compiled.construct_params(_check=False).items()
            if name not in required
        }
        columns = compiled._result_columns
        self.row_type: Any = None
        self.processors: list[tuple[int, Processor]] = []
        if columns:
            self.row_type = namedtuple("Row", [column.keyname for column in columns])  # type: ignore[misc]
            for index, column in enumerate(columns):
                processor = column.type._cached_result_processor(dialect, None)
                if processor is not None:
                    self.processors.append((index, processor))

    def parameters(self, params: Params) -> Any:
        values = []
        for name, processor in self.binds:
            value = params[name] if name in params else self.defaults[name]
            values.append(value if processor is None or value is None else processor(value))
        if self.positional:
            return tuple(values)
        return dict(zip((name for name, _ in self.binds), values, strict=True))

    def rows(self, raw: Sequence[Any]) -> list[Any]:
        make = self.row_type._make
        if not self.processors:
            return [make(row) for row in raw]
        out: list[Any] = []
        for row in raw:
            values = list(row)
            for index, processor in self.processors:
                values[index] = processor(values[index])
            out.append(make(values))
        return out


def _dialect_key(dialect: Dialect) -> tuple[Any, ...]:
    return (type(dialect), dialect.paramstyle, dialect.server_version_info)


def _direct(conn: Connection) -> bool:
    """False when SQL must go through ``Connection.execute`` to be logged or seen by listeners."""
    if conn._echo:
        return False
    # The engine's dispatcher, not the connection's: ``conn.dispatch`` builds a joined listener per
    # attribute access (profiled: the most expensive line here). Listeners are set on engines.
    dispatch = conn.engine.dispatch
    return not (dispatch.before_cursor_execute or dispatch.after_cursor_execute)


class Prepared:
    """A fixed Core statement, compiled once per dialect and executed on the driver cursor.

    Rows are named tuples with the statement's column keys, so ``row.name`` reads as with
    ``Connection.execute``.
    """

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[Any, ...], _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        key = _dialect_key(dialect)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.statement, dialect)
        return compiled

    def _cursor(self, conn: Connection, params: Params) -> tuple[_Compiled, Any]:
        compiled = self._for(conn.dialect)
        parameters = compiled.parameters(params)
        return compiled, _execute(conn, compiled.sql, parameters)

    def all(self, conn: Connection, params: Params = _NO_PARAMS) -> list[Any]:
        if not _direct(conn):
            return list(conn.execute(self.statement, dict(params)).all())
        compiled, cursor = self._cursor(conn, params)
        try:
            return compiled.rows(cursor.fetchall())
        finally:
            cursor.close()

    def first(self, conn: Connection, params: Params = _NO_PARAMS) -> Any:
        """The first row, or None."""
        if not _direct(conn):
            return conn.execute(self.statement, dict(params)).first()
        compiled, cursor = self._cursor(conn, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else compiled.rows((row,))[0]

    def scalar(self, conn: Connection, params: Params = _NO_PARAMS) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def run(self, conn: Connection, params: Params = _NO_PARAMS) -> int:
        """Execute a statement that returns no rows; returns the driver's rowcount."""
        if not _direct(conn):
            return int(conn.execute(self.statement, dict(params)).rowcount)
        _compiled, cursor = self._cursor(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


def _execute(conn: Connection, sql: str, parameters: Any) -> Any:
    """Execute on a new driver cursor; driver errors become SQLAlchemy's, as ``Connection.execute``
    raises them (``IntegrityError`` …)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
    except dbapi_error as error:
        cursor.close()
        raise exc.DBAPIError.instance(sql, parameters, error, dbapi_error, dialect=conn.dialect) from error
    return cursor


def driver_execute(conn: Connection, sql: str) -> None:
    """Run parameterless SQL on the driver, inside ``conn``'s transaction (PostgreSQL: several
    statements may be sent at once)."""
    if not _direct(conn):
        conn.exec_driver_sql(sql)
        return
    _execute(conn, sql, None).close()


def driver_rows(conn: Connection, sql: str, parameters: Params) -> list[tuple[Any, ...]]:
    """Run driver-level SQL with named parameters (``%(name)s`` on psycopg) inside ``conn``'s
    transaction and return its rows as the driver gives them (no result processing)."""
    if not _direct(conn):
        return [tuple(row) for row in conn.exec_driver_sql(sql, dict(parameters))]
    cursor = _execute(conn, sql, dict(parameters))
    try:
        return list(cursor.fetchall())
    finally:
        cursor.close()


def driver_rows_and_commit(conn: Connection, sql: str, parameters: Params) -> list[tuple[Any, ...]]:
    """PostgreSQL (psycopg): run one statement and ``COMMIT`` in a single round trip (pipeline mode),
    returning the statement's rows. ``conn``'s transaction is committed when this returns; the
    SQLAlchemy transaction's own commit afterwards finds nothing left to do. When SQL must go through
    SQLAlchemy (``echo``, listeners), only the statement runs here and the commit stays the caller's."""
    if not _direct(conn):
        return driver_rows(conn, sql, parameters)
    dbapi_connection: Any = conn.connection.dbapi_connection
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        with dbapi_connection.pipeline():
            cursor = dbapi_connection.cursor()
            cursor.execute(sql, dict(parameters))
            # As a statement: ``connection.commit()`` in a pipeline adds a Sync of its own, and the
            # pipeline's exit another one, each a round trip. psycopg reads the transaction state from
            # the server's answer, so it knows the transaction ended.
            with dbapi_connection.cursor() as commit:
                commit.execute("COMMIT")
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()
    except dbapi_error as error:
        raise exc.DBAPIError.instance(sql, parameters, error, dbapi_error, dialect=conn.dialect) from error
