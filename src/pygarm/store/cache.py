"""In-process copies of the rows that every request reads: the controller row (GARM's URLs check runs
on every API call) and the owners of tokens (checked on every authenticated call).

Without them an authenticated REST call costs two extra reader-thread hops before it does any work.
Entries are dropped by the store's own writes and, for writes by another process, by
:meth:`ReadCache.on_change`, which the app registers as a hub listener: the hub calls it synchronously
for every committed change before anyone is served, so no request sees a cached row older than a
change this process has already been told about.
"""

from __future__ import annotations

import orjson

from pygarm.events.change import Change, EntityType

CONTROLLER_KEY = ("controller",)


def user_key(user_id: str) -> tuple[str, str]:
    return ("user", user_id)


class ReadCache:
    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[tuple[str, ...], object] = {}

    def get(self, key: tuple[str, ...]) -> object | None:
        return self._entries.get(key)

    def put(self, key: tuple[str, ...], value: object) -> None:
        self._entries[key] = value

    def drop(self, key: tuple[str, ...]) -> None:
        self._entries.pop(key, None)

    def on_change(self, change: Change) -> None:
        if change.entity_type is EntityType.CONTROLLER:
            self.drop(CONTROLLER_KEY)
        elif change.entity_type is EntityType.USER:
            user_id = orjson.loads(change.payload).get("id")
            if isinstance(user_id, str):
                self.drop(user_key(user_id))
