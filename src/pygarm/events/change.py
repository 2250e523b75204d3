"""The change record: one committed mutation of one GARM entity, as the change log stores it.

The store builds these inside the write transaction (so a rolled-back change has none) and hands them to
the hub after the commit. ``payload`` is the entity's REST JSON, encoded once with
:func:`pygarm.params.gojson.dumps`; ``frame`` is the GARM wire frame built from it, also once, and then
shared by every subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class EntityType(StrEnum):
    """``DatabaseEntityType`` (docs/garm-protocol.md#event-frame)."""

    REPOSITORY = "repository"
    ORGANIZATION = "organization"
    ENTERPRISE = "enterprise"
    POOL = "pool"
    USER = "user"
    INSTANCE = "instance"
    JOB = "job"
    CONTROLLER = "controller"
    GITHUB_CREDENTIALS = "github_credentials"
    GITHUB_ENDPOINT = "github_endpoint"


class Operation(StrEnum):
    """``OperationType`` (docs/garm-protocol.md#event-frame)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the change log. ``seq`` is strictly increasing in commit order."""

    seq: int
    entity_type: EntityType
    operation: Operation
    payload: bytes
    created_at: datetime
    frame: bytes = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        if not self.frame:
            object.__setattr__(self, "frame", encode_frame(self.entity_type, self.operation, self.payload))


def encode_frame(entity_type: str, operation: str, payload: bytes) -> bytes:
    """GARM's ``ChangePayload`` frame: compact JSON, keys in this order, no trailing newline
    (docs/garm-protocol.md#event-frame).

    Entity types and operations are fixed ASCII words, so plain concatenation is exact JSON.
    """
    return b'{"entity-type":"%s","operation":"%s","payload":%s}' % (
        entity_type.encode(),
        operation.encode(),
        payload,
    )
