"""The lease statements of replicas sharing one PostgreSQL (``runner/leadership.py``, ``runner/leases.py``).

They run on one dedicated autocommit connection per replica, not on the store's writer or readers, so a
busy writer never delays a renewal. Every time comparison uses the database clock (``now()``): replicas
never compare their own clocks. A statement that fails closes the connection; the next call opens a new
one (the driver bounds each call with a timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

CONNECT_TIMEOUT_S = 3
PRUNE_REPLICAS_AFTER = "1 hour"
"""Heartbeat rows of replicas that died without shutting down are deleted this long after expiry."""

_HEARTBEAT = """
INSERT INTO replicas (id, name, started_at, expires_at)
VALUES (%(me)s, %(name)s, now(), now() + make_interval(secs => %(ttl)s))
ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at
"""
_PRUNE_REPLICAS = f"DELETE FROM replicas WHERE expires_at < now() - interval '{PRUNE_REPLICAS_AFTER}'"
_READ_LEASES = "SELECT key, holder, expires_at <= now(), status FROM leader_leases"
_READ_REPLICAS = """
SELECT id, name, expires_at > now(), extract(epoch FROM expires_at - now())::float8
FROM replicas ORDER BY started_at, id
"""
_CLAIM = """
INSERT INTO leader_leases (key, holder, expires_at, status)
SELECT k, %(me)s, now() + make_interval(secs => %(ttl)s), s
FROM unnest(%(keys)s::text[], %(statuses)s::text[]) AS u(k, s)
ORDER BY k
ON CONFLICT (key) DO UPDATE
SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at, status = EXCLUDED.status
WHERE leader_leases.expires_at <= now() OR leader_leases.holder = EXCLUDED.holder
RETURNING key
"""
_RELEASE = "DELETE FROM leader_leases WHERE holder = %(me)s AND key = ANY(%(keys)s::text[])"
_RELEASE_ALL = "DELETE FROM leader_leases WHERE holder = %(me)s"
_LEAVE = "DELETE FROM replicas WHERE id = %(me)s"


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """One lease: ``expired`` by the database clock; ``status`` as its holder published it."""

    key: str
    holder: str
    expired: bool
    status: str | None


@dataclass(frozen=True, slots=True)
class Replica:
    """One heartbeat row: ``live`` by the database clock; ``expires_in`` seconds (negative once expired)."""

    id: str
    name: str
    live: bool
    expires_in: float


@dataclass(frozen=True, slots=True)
class LeaseSnapshot:
    """The lease table and the replicas as one tick read them."""

    leases: dict[str, LeaseRow]
    replicas: list[Replica]

    @property
    def live_replicas(self) -> int:
        return sum(1 for replica in self.replicas if replica.live)


class PostgresLeases:
    """The statements of one replica (``me``) on its own connection to ``dsn``."""

    def __init__(self, dsn: str, me: str, name: str) -> None:
        self._dsn = dsn
        self.me = me
        self.name = name
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def heartbeat_and_read(self, ttl: float) -> LeaseSnapshot:
        """Say this replica is alive for ``ttl`` seconds, then read every lease and replica."""
        async with self._lock:
            try:
                conn = await self._connection()
                await conn.execute(_HEARTBEAT, {"me": self.me, "name": self.name, "ttl": ttl})
                leases = {
                    str(key): LeaseRow(str(key), str(holder), bool(expired), None if st is None else str(st))
                    for key, holder, expired, st in await (await conn.execute(_READ_LEASES)).fetchall()
                }
                rows = await (await conn.execute(_READ_REPLICAS)).fetchall()
                replicas = [Replica(str(i), str(n), bool(live), float(left)) for i, n, live, left in rows]
            except BaseException:
                await self._drop()
                raise
        return LeaseSnapshot(leases, replicas)

    async def claim(self, ttl: float, items: Sequence[tuple[str, str | None]]) -> set[str]:
        """Claim or renew each ``(key, status)`` for ``ttl`` seconds in one statement; returns the keys
        granted (free, expired or already ours). ``status`` is published to the other replicas."""
        if not items:
            return set()
        params = {
            "me": self.me,
            "ttl": ttl,
            "keys": [key for key, _ in items],
            "statuses": [status for _, status in items],
        }
        async with self._lock:
            try:
                conn = await self._connection()
                rows = await (await conn.execute(_CLAIM, params)).fetchall()
            except BaseException:
                await self._drop()
                raise
        return {str(row[0]) for row in rows}

    async def release(self, keys: Sequence[str]) -> None:
        """Give up ``keys`` now (their jobs were stopped first), so another replica may claim them."""
        if not keys:
            return
        async with self._lock:
            try:
                conn = await self._connection()
                await conn.execute(_RELEASE, {"me": self.me, "keys": list(keys)})
            except BaseException:
                await self._drop()
                raise

    async def leave(self) -> None:
        """Shutdown: release every lease and the heartbeat row, so successors claim at once."""
        async with self._lock:
            try:
                conn = await self._connection()
                await conn.execute(_RELEASE_ALL, {"me": self.me})
                await conn.execute(_LEAVE, {"me": self.me})
                await conn.execute(_PRUNE_REPLICAS)
            finally:
                await self._drop()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
