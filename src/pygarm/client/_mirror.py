"""The state mirror's core, without I/O: frames in, entity state and change notes out.

A mirror's stream asks for a snapshot (``?snapshot=true``) and resumes with ``since=`` (see
:mod:`pygarm.client._resume`). This core turns its frames into state:

* snapshot frames (operation ``snapshot``) are staged, not applied: only ``snapshot-end`` replaces the
  state with the staged one, so a connection lost halfway leaves the last complete state in place;
  a new connection drops what an earlier one staged;
* after the swap, every entity that is new or changed is reported as ``snapshot`` and every entity the
  new snapshot no longer has as ``delete``: a re-snapshot (after a 4001) tells the callbacks exactly
  what changed while the mirror could not follow;
* live ``create``/``update`` events store the payload, ``delete`` removes it.

Entities are keyed by their ID as a string (``name`` for GitHub endpoints, ``controller_id`` for the
controller), as the REST API addresses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from pydantic import BaseModel

from pygarm.client._protocol import EventPayload, decode_event
from pygarm.client._resume import SNAPSHOT, SNAPSHOT_END, decode_control

KEY_FIELDS: Final[Mapping[str, str]] = {"github_endpoint": "name", "controller": "controller_id"}
"""The field that identifies an entity, where it is not ``id``."""

State: TypeAlias = dict[str, dict[str, EventPayload]]
"""Entity type → key → payload."""


@dataclass(frozen=True, slots=True)
class Note:
    """One change of the mirrored state, as the ``on_change`` callbacks receive it."""

    entity_type: str
    operation: str
    payload: EventPayload


def entity_key(entity_type: str, payload: EventPayload) -> str:
    """The key of ``payload`` in the state (see the module docstring)."""
    name = KEY_FIELDS.get(entity_type, "id")
    value: Any = payload.get(name) if isinstance(payload, dict) else getattr(payload, name, None)
    return "" if value is None else str(value)


def _same(a: EventPayload, b: EventPayload) -> bool:
    if isinstance(a, BaseModel) and isinstance(b, BaseModel):
        return a.model_dump() == b.model_dump()
    return a == b


class MirrorCore:
    """Frames in (:meth:`feed`), :attr:`state` and :class:`Note` lists out."""

    def __init__(self) -> None:
        self.state: State = {}
        self.ready = False
        """A snapshot has completed at least once."""
        self.snapshots = 0
        self._staging: State | None = None

    def opened(self) -> None:
        """A new connection: whatever an earlier one staged of a snapshot is void."""
        self._staging = None

    def feed(self, raw: bytes) -> list[Note]:
        """One text frame; returns the changes it made to :attr:`state`."""
        control = decode_control(raw)
        if control is not None:
            return self._snapshot_end() if control.kind == SNAPSHOT_END else []
        event = decode_event(raw)
        if event is None:
            return []
        entity, operation = str(event.entity_type), str(event.operation)
        key = entity_key(entity, event.payload)
        if operation == SNAPSHOT:
            if self._staging is None:
                self._staging = {}
            self._staging.setdefault(entity, {})[key] = event.payload
            return []
        if operation == "delete":
            self.state.get(entity, {}).pop(key, None)
        else:
            self.state.setdefault(entity, {})[key] = event.payload
        return [Note(entity, operation, event.payload)]

    def _snapshot_end(self) -> list[Note]:
        fresh, self._staging = self._staging or {}, None
        notes: list[Note] = []
        for entity, items in fresh.items():
            old = self.state.get(entity, {})
            notes.extend(
                Note(entity, SNAPSHOT, payload)
                for key, payload in items.items()
                if key not in old or not _same(old[key], payload)
            )
        for entity, items in self.state.items():
            new = fresh.get(entity, {})
            notes.extend(Note(entity, "delete", payload) for key, payload in items.items() if key not in new)
        self.state = fresh
        self.ready = True
        self.snapshots += 1
        return notes

    def copy(self) -> State:
        """A copy of the state another thread may iterate while this one keeps applying frames."""
        return {entity: dict(items) for entity, items in self.state.items()}
