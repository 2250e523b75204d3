"""Closing a user's websockets when that user loses access, as GARM's per-client user watcher does.

GARM v0.1.5 registers, per websocket client, a watcher on ``user`` events and closes the connection when
the user is deleted, disabled or changes password (its token's password generation no longer matches),
docs/garm-protocol.md#websocket-connection; it never emits user events, so that code is dormant there. pygarm
emits them, so this works: one guard per process subscribes to ``user`` events and, for each open connection
of the changed user, asks whether the connection's token is still acceptable; if not, its queue is closed with
:attr:`CloseCause.ACCESS_REVOKED` and its writer sends close 1000.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from pygarm.events.change import EntityType, Operation
from pygarm.events.hub import Hub, Subscription
from pygarm.events.mailbox import CloseCause, Mailbox

log = logging.getLogger(__name__)

StillValid = Callable[[str, int], Awaitable[bool]]
"""``still_valid(user_id, generation)``: the user exists, is enabled and has that password generation."""

USER_EVENTS = frozenset({(EntityType.USER, Operation.UPDATE), (EntityType.USER, Operation.DELETE)})


class AccessGuard:
    """Tracks open connections per user and closes them when the user's access changes."""

    def __init__(self, hub: Hub, still_valid: StillValid) -> None:
        self._hub = hub
        self._still_valid = still_valid
        self._connections: dict[str, dict[Mailbox[Any], int]] = {}
        self._task: asyncio.Task[None] | None = None

    def register(self, user_id: str, generation: int, mailbox: Mailbox[Any]) -> None:
        self._connections.setdefault(user_id, {})[mailbox] = generation

    def unregister(self, user_id: str, mailbox: Mailbox[Any]) -> None:
        connections = self._connections.get(user_id)
        if connections is not None:
            connections.pop(mailbox, None)
            if not connections:
                del self._connections[user_id]

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pygarm-access-guard")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _run(self) -> None:
        while True:
            subscription = self._hub.subscribe("access-guard")
            subscription.set_filter(USER_EVENTS)
            await self._watch(subscription)
            # Our own queue overflowed (a burst of user changes): re-check every connection, then go on.
            await self._recheck(list(self._connections))

    async def _watch(self, subscription: Subscription) -> None:
        async for delivery in subscription:
            user_id = orjson.loads(delivery.change.payload).get("id", "")
            if isinstance(user_id, str) and user_id in self._connections:
                await self._recheck([user_id])

    async def _recheck(self, user_ids: list[str]) -> None:
        for user_id in user_ids:
            for mailbox, generation in list(self._connections.get(user_id, {}).items()):
                try:
                    valid = await self._still_valid(user_id, generation)
                except Exception:
                    log.exception("checking a websocket user's access failed")
                    continue
                if not valid:
                    mailbox.close(CloseCause.ACCESS_REVOKED)
