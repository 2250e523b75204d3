"""Durations read from stored integers, safe from a bad stored value (issue 8 #4).

Requests are validated against the ``INTEGER`` columns (0..2^31-1), but a row written before that, by
hand, or by another program may hold anything SQLite stores (up to 2^63): 86,400,000,000,000 seconds of
``minimum_job_age_backoff`` overflowed ``timedelta`` and failed every job-queue pass, every few seconds,
so queued jobs never got runners. Such a value is clamped to the column's range instead, and reported
once per field and value.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

log = logging.getLogger(__name__)

STORED_INT_MAX: Final = 2**31 - 1
"""The largest value an ``INTEGER`` column holds on every backend (int4 on PostgreSQL)."""
_REPORTED_LIMIT: Final = 1024
_reported: set[tuple[str, int]] = set()


def stored_duration(field: str, amount: int, unit: timedelta) -> timedelta:
    """``amount`` units of ``unit``, with ``amount`` clamped to 0..:data:`STORED_INT_MAX`."""
    if not 0 <= amount <= STORED_INT_MAX:
        if (field, amount) not in _reported and len(_reported) < _REPORTED_LIMIT:
            _reported.add((field, amount))
            log.warning("stored %s %d is out of range; using %d", field, amount, _clamp(amount))
        amount = _clamp(amount)
    return unit * amount


def _clamp(amount: int) -> int:
    return min(max(amount, 0), STORED_INT_MAX)
