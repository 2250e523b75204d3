"""Values every backend can store: PostgreSQL's ``text`` refuses NUL (psycopg ``DataError``, a 500) while
SQLite keeps it, so a decoded JSON document holding NUL in any string (value or key) is refused at the
edge with 400 on both backends (issue 8 #3). orjson already refuses lone surrogates and invalid UTF-8."""

from __future__ import annotations

from typing import Any

from pygarm.errors import BadRequestError

MAX_DEPTH = 256  # orjson refuses deeper documents anyway (its limit is 1024); deeper here is hostile


def has_nul(value: Any, depth: int = 0) -> bool:
    """True when any string (or object key) in the decoded JSON ``value`` contains ``\\x00``."""
    if isinstance(value, str):
        return "\x00" in value
    if depth > MAX_DEPTH:
        return True
    if isinstance(value, dict):
        return any(has_nul(key, depth) or has_nul(item, depth + 1) for key, item in value.items())
    if isinstance(value, list):
        return any(has_nul(item, depth + 1) for item in value)
    return False


def require_storable(value: Any) -> None:
    """Raise 400 ``invalid request`` when ``value`` holds something a backend cannot store."""
    if has_nul(value):
        raise BadRequestError("invalid request")
