"""Shared fixtures: a real database per test (SQLite file and PostgreSQL schema), the real app with its
lifespan, and an admin-authenticated client.

Every test that asks for ``app``/``client``/``admin_client`` runs once per backend. PostgreSQL tests use
``PYGARM_TEST_POSTGRES_DSN`` (default: the local server) and skip with a reason when it is unreachable;
with ``PYGARM_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) an unreachable server fails them instead.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

import pygarm.runner.auth
from pygarm.api.app import create_app
from pygarm.config import Settings, parse_settings
from pygarm.store.migrate import upgrade_to_head
from tests.live import HTTP_TIMEOUT_S

POSTGRES_DSN = os.environ.get("PYGARM_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("PYGARM_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]

ADMIN_USERNAME = "admin"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Vq7#mZ2!pLx9@rT4-garm-admin"
TEST_PASSPHRASE = "Tn8xQ2wZ7kLp4Rv9Bc6Hj3Md5Fs1Gy0K"
TEST_JWT_SECRET = "pygarm-test-jwt-secret-" + "x" * 16
CONTROLLER_URLS = {
    "metadata_url": "http://127.0.0.1:9997/api/v1/metadata",
    "callback_url": "http://127.0.0.1:9997/api/v1/callbacks",
    "webhook_url": "http://127.0.0.1:9997/webhooks",
}


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_DSN} is not reachable: {exc}".splitlines()[0]


SLOW_FIXTURES = frozenset({"live_server", "live_admin", "logged_in"})
"""Tests that use these start a real server on a socket (or a process): the quick subset leaves them out."""
SLOW_FOLDERS = frozenset({"durability", "lifecycle"})
"""Whole folders of process-level tests (SIGKILL, pool managers running real provider processes)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` what starts servers or processes, so ``-m "not slow"`` is the quick subset."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & SLOW_FIXTURES or SLOW_FOLDERS & set(item.path.parts):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def postgres_unreachable_reason() -> str | None:
    return _postgres_reachable()


PRODUCTION_BCRYPT_ROUNDS = pygarm.runner.auth.BCRYPT_ROUNDS
TEST_BCRYPT_ROUNDS = 4
"""bcrypt's minimum cost. At GARM's cost (10) every first-run and login in a test costs ~60 ms each, a
few minutes over the suite; ``test_auth_controller`` checks that the server itself uses cost 10."""


@pytest.fixture(autouse=True, scope="session")
def _cheap_bcrypt() -> Iterator[None]:
    production = pygarm.runner.auth.BCRYPT_ROUNDS
    pygarm.runner.auth.BCRYPT_ROUNDS = TEST_BCRYPT_ROUNDS
    yield
    pygarm.runner.auth.BCRYPT_ROUNDS = production


class _MigratedTemplates:
    """Each test gets a fresh database; migrating one with Alembic costs 70-200 ms, so the schema is
    built once per test process and copied: a SQLite file, or the DDL Alembic ran, replayed into a fresh
    PostgreSQL schema (the app's own ``upgrade_to_head`` then finds the schema at head). The tests of the
    migrations themselves migrate empty databases as usual.

    Creating a PostgreSQL schema that way and dropping it afterwards still cost the server 0.5-0.7 s per
    test (catalog work for 18 tables and their indexes, on a machine where the server shares the two
    cores with the tests), so a test's schema is emptied afterwards and given to the next test of the
    same process instead: every table's rows deleted and every sequence restarted, ~30 ms. A schema
    whose tables or columns a test changed, or that cannot be emptied within the lock timeout, is
    dropped instead of reused."""

    def __init__(self, base: Path) -> None:
        self._base = base
        self._lock = threading.Lock()
        self._sqlite: Path | None = None
        self._postgres_ddl: list[str] | None = None
        self._postgres_reset: str | None = None
        self._postgres_shape: tuple[Any, ...] | None = None
        self._postgres_free: list[str] = []
        self._postgres_all: set[str] = set()

    def sqlite_file(self, target: Path) -> None:
        with self._lock:
            if self._sqlite is None:
                template = self._base / "template.db"
                from sqlalchemy import create_engine

                engine = create_engine(f"sqlite:///{template}")
                upgrade_to_head(engine)
                engine.dispose()
                self._sqlite = template
        shutil.copyfile(self._sqlite, target)

    def postgres_schema(self) -> str:
        """A schema at head with no rows: a recycled one, or a new one."""
        with self._lock:
            if self._postgres_free:
                return self._postgres_free.pop()
            schema = f"t_{uuid.uuid4().hex[:16]}"
            self._postgres_all.add(schema)
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            dsn = postgres_schema_dsn(schema)
            if self._postgres_ddl is None:
                self._postgres_ddl = _record_postgres_migration(dsn)  # recording migrates this schema
            else:
                with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
                    for statement in self._postgres_ddl:
                        conn.execute(statement.encode())
            if self._postgres_reset is None:
                self._postgres_reset, self._postgres_shape = _postgres_reset_and_shape(schema)
            return schema

    def release_postgres_schema(self, schema: str) -> None:
        """Empty ``schema`` for the next test, or drop it when it no longer has the migrated shape."""
        assert self._postgres_reset is not None
        try:
            with psycopg.connect(postgres_schema_dsn(schema), autocommit=True) as conn:
                conn.execute("SET lock_timeout = '10s'")
                with conn.transaction():
                    conn.execute(self._postgres_reset.encode())
                reusable = _postgres_shape(conn, schema) == self._postgres_shape
        except psycopg.Error:
            reusable = False
        if reusable:
            with self._lock:
                self._postgres_free.append(schema)
            return
        self._drop(schema)

    def drop_all(self) -> None:
        for schema in sorted(self._postgres_all):
            self._drop(schema)

    def _drop(self, schema: str) -> None:
        self._postgres_all.discard(schema)
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def postgres_schema_dsn(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_DSN else "?"
    return f"{POSTGRES_DSN}{separator}options=-csearch_path%3D{schema}"


def _postgres_shape(conn: psycopg.Connection[Any], schema: str) -> tuple[Any, ...]:
    """The schema's tables, columns and sequences, and its Alembic revision: what a test must not have
    changed for the schema to be reused."""
    columns = conn.execute(
        "SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
        " WHERE n.nspname = %s ORDER BY 1, 3",
        (schema,),
    ).fetchall()
    revision = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return (tuple(columns), tuple(revision))


def _postgres_reset_and_shape(schema: str) -> tuple[str, tuple[Any, ...]]:
    """The SQL that empties a migrated schema (children before parents, sequences restarted), and the
    schema's shape just after migrating."""
    from pygarm.store.tables import metadata

    with psycopg.connect(postgres_schema_dsn(schema), autocommit=True) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
        }
        sequences = [
            row[0]
            for row in conn.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = %s ORDER BY 1", (schema,)
            )
        ]
        shape = _postgres_shape(conn, schema)
    ordered = [table.name for table in reversed(metadata.sorted_tables)]
    assert tables == {*ordered, "alembic_version"}, f"migrated tables {sorted(tables)} != tables.py's"
    statements = [f"DELETE FROM {name}" for name in ordered]
    statements += [f"ALTER SEQUENCE {name} RESTART" for name in sequences]
    return ";\n".join(statements), shape


def _record_postgres_migration(dsn: str) -> list[str]:
    """Migrate the (empty) schema that ``dsn`` selects and return the SQL Alembic ran, literal values
    inlined, in order."""
    from sqlalchemy import create_engine, event

    statements: list[str] = []
    engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith(("CREATE", "ALTER", "INSERT", "UPDATE", "DROP", "COMMENT")):
            statements.append(psycopg.ClientCursor(cursor.connection).mogrify(statement, parameters))

    upgrade_to_head(engine)
    engine.dispose()
    return statements


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_MigratedTemplates]:
    templates = _MigratedTemplates(tmp_path_factory.mktemp("templates"))
    yield templates
    templates.drop_all()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_section(
    backend: str,
    tmp_path: Path,
    postgres_unreachable_reason: str | None,
    migrated_templates: _MigratedTemplates,
) -> Iterator[dict[str, Any]]:
    """A fresh database for one test, with the schema but no rows: a SQLite file, or a PostgreSQL schema
    emptied afterwards for the next test (``_MigratedTemplates``)."""
    if backend == "sqlite":
        db_file = tmp_path / "garm.db"
        migrated_templates.sqlite_file(db_file)
        yield {
            "backend": "sqlite3",
            "passphrase": TEST_PASSPHRASE,
            "sqlite3": {"db_file": str(db_file)},
        }
        return
    if postgres_unreachable_reason is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(postgres_unreachable_reason)
        pytest.skip(postgres_unreachable_reason)
    schema = migrated_templates.postgres_schema()
    try:
        yield {
            "backend": "postgresql",
            "passphrase": TEST_PASSPHRASE,
            "postgresql": {"dsn": postgres_schema_dsn(schema)},
        }
    finally:
        migrated_templates.release_postgres_schema(schema)


def make_settings(database: dict[str, Any], **sections: Any) -> Settings:
    data: dict[str, Any] = {
        "apiserver": {"bind": "127.0.0.1", "port": 9997},
        "jwt_auth": {"secret": TEST_JWT_SECRET, "time_to_live": "24h"},
        "database": database,
        # Pool managers would call the real GitHub for every entity; tests that exercise them (the
        # lifecycle suite) pass their own [pool_manager] section, which replaces this one.
        "pool_manager": {"enabled": False},
    }
    data.update(sections)
    return parse_settings(data)


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The real app with its lifespan running (database migrated, controller initialized)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9997") as http:
        yield http


async def initialize(http: httpx.AsyncClient, *, set_urls: bool = True) -> str:
    """What ``garm-cli init`` does: first-run, login, then the controller URLs. Returns the token."""
    response = await http.post(
        "/api/v1/first-run",
        json={
            "username": ADMIN_USERNAME,
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "full_name": "Admin",
        },
    )
    assert response.status_code == 200, response.text
    response = await http.post(
        "/api/v1/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    token = str(response.json()["token"])
    if set_urls:
        response = await http.put(
            "/api/v1/controller", json=CONTROLLER_URLS, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
    return token


@pytest.fixture
async def admin_token(client: httpx.AsyncClient) -> str:
    return await initialize(client)


@pytest.fixture
async def admin_client(app: FastAPI, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as the initialized admin, with the controller URLs set."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://127.0.0.1:9997",
        headers={"Authorization": f"Bearer {admin_token}"},
    ) as http:
        yield http


def random_secret() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[Any]:
    """A real uvicorn server on 127.0.0.1 (see ``tests/live.py``); not initialized."""
    from tests.live import run_live_server

    with run_live_server(settings) as live:
        yield live


@pytest.fixture
def live_admin(live_server: Any) -> tuple[Any, str]:
    """The live server after ``garm-cli init``: returns ``(live_server, admin_token)``."""
    import asyncio

    async def init() -> str:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, base_url=live_server.base_url) as http:
            return await initialize(http)

    return live_server, asyncio.run(init())
