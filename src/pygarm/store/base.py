"""What every part of the store shares: the database and the sealer, and small row helpers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pygarm.store.cache import ReadCache
from pygarm.store.crypto import Sealer
from pygarm.store.db import Database


class StoreBase:
    """Base of the store's domain parts; :class:`pygarm.store.Store` composes them into one object."""

    def __init__(self, db: Database, sealer: Sealer) -> None:
        self.db = db
        self.sealer = sealer
        self.cache = ReadCache()


def new_id() -> str:
    return str(uuid.uuid4())


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything pygarm stores is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
