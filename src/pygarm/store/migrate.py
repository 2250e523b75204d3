"""Schema migrations with Alembic, applied at start-up on the store's own engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine_connection: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = engine_connection
    return config


MIGRATION_LOCK_ID = 0x70676172_6D6D6967  # "pgarmmig"
"""PostgreSQL advisory lock held while migrating: replicas starting together on one database migrate
one after the other (the later ones find the schema at head) instead of racing on ``CREATE TABLE``."""


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema up to date; safe to run on every start, and from several replicas at once."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
        command.upgrade(alembic_config(conn), "head")
