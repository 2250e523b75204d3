"""The Alembic migrations build exactly the schema ``store/tables.py`` declares, on both backends.

The suite's database fixture copies a schema migrated once per test process (``tests/conftest.py``), so
this is where the migrations themselves run against empty databases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect

from pygarm.store.migrate import upgrade_to_head
from pygarm.store.tables import metadata
from tests.conftest import POSTGRES_DSN, REQUIRE_POSTGRES


@pytest.fixture
def empty_engine(backend: str, tmp_path: Path, postgres_unreachable_reason: str | None) -> Iterator[Engine]:
    if backend == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    if postgres_unreachable_reason is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(postgres_unreachable_reason)
        pytest.skip(postgres_unreachable_reason)
    schema = f"m_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = POSTGRES_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(f"{url}?options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_migrations_build_the_declared_schema(empty_engine: Engine) -> None:
    upgrade_to_head(empty_engine)
    with empty_engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert set(metadata.tables) <= set(inspect(empty_engine).get_table_names())


def test_migrating_twice_changes_nothing(empty_engine: Engine) -> None:
    upgrade_to_head(empty_engine)
    with empty_engine.connect() as conn:
        before = MigrationContext.configure(conn).get_current_heads()
    upgrade_to_head(empty_engine)
    with empty_engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == before
        assert before  # stamped at a head revision
