"""Waking the hubs of other processes that share a PostgreSQL database (docs/design.md#waking-up-readers).

Every write transaction that appends changes also runs ``pg_notify`` on :data:`CHANNEL` (see
``WriteTx``); PostgreSQL delivers the notification at commit, never on rollback. Each process keeps one
connection that ``LISTEN``s and wakes its hub, which then reads the log from its last ``seq``; the
payload is not trusted for anything. A notification is lost while the listener is disconnected, so the
listener wakes the hub again after every (re)connect, and the hub's slow safety poll stays on as a net.
SQLite has a single writer process, so there is nothing to do there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

import psycopg

from pygarm.store.db import CHANGE_NOTIFY_CHANNEL as CHANNEL

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 2.0
"""Pause before reconnecting a lost listener connection."""


class ChangeNotifyListener:
    """One ``LISTEN`` connection per process, calling ``wake()`` for every notification."""

    def __init__(self, dsn: str, wake: Callable[[], None], own_pids: Collection[int] = ()) -> None:
        """``own_pids``: backends whose notifications are this process's own commits (the hub got
        those from the writer already; re-reading the log for each cost ~9 % of server CPU)."""
        self._dsn = dsn
        self._wake = wake
        self._own_pids = own_pids
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pygarm-change-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _run(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self._wake()  # whatever was committed while we were not listening
                    async for notification in conn.notifies():
                        if notification.pid not in self._own_pids:
                            self._wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("change notification listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(RECONNECT_DELAY_S)
