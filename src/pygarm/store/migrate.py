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


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema up to date; safe to run on every start."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
