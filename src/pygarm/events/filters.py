"""The events filter message: its schema, GARM's exact decoding rules, and the compiled filter.

A client of ``/api/v1/ws/events`` sends GARM's ``Options`` document (docs/garm-protocol.md#filter-message)::

    {"send-everything": false, "filters": [{"entity-type": "repository", "operations": ["create"]}]}

:class:`FilterMessage` / :class:`EventFilter` describe it (their JSON schema has GARM's keys and enums) and
write it the way Go does, for clients. Wire messages are *not* decoded with pydantic: :func:`decode_filter`
reproduces ``json.Unmarshal`` into GARM's structs followed by ``Options.Validate()``
(docs/garm-protocol.md#filter-rules), because clients depend on which inputs are ignored, which are "invalid
filter" and which "failed to unmarshal":

* keys match case-insensitively with Go's simple folding (``"SEND-EVERYTHING"`` matches, and so does a
  long s, U+017F, in place of ``s``; a ligature does not), values match exactly;
* types are strict (``"send-everything": "yes"`` is an error), ``null`` leaves a field as it was;
* a repeated key decodes *into* the value the earlier one left, element by element, as Go does;
* anything after the JSON value, an empty message, ``NaN``/``Infinity`` are errors.

The result is a :data:`CompiledFilter`: a frozenset of ``(entity_type, operation)`` pairs, so matching a
change is one set lookup. :data:`EVERYTHING` holds every pair and :data:`NOTHING` none (the state before
any filter, GARM's ``WithNone()``).

Known deviation: Python's JSON parser recurses, so a message nested deeper than the interpreter's
recursion limit (about 1000 levels; GARM accepts 10000) is answered "failed to unmarshal filter" even
where GARM would ignore the deep value.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from pygarm.events.change import EntityType, Operation
from pygarm.events.matching import CompiledFilter, EventKey, Scalar, compile_stream_filter

__all__ = ["CompiledFilter", "EventKey"]

EVERYTHING: Final[CompiledFilter] = frozenset(itertools.product(EntityType, Operation))
"""``send-everything``: every pair (GARM's ``WithEverything()``)."""
NOTHING: Final[CompiledFilter] = frozenset()
"""No pair: the filter of a connection that has not sent a valid filter yet (GARM's ``WithNone()``)."""

ERR_NO_FILTERS = "no filters provided"
ERR_INVALID_ENTITY_TYPE = "invalid entity type"
ERR_INVALID_OPERATION_TYPE = "invalid operation type"
ERR_INVALID_MATCH = "invalid match: an object of field names to a string, number, boolean or a list of them"
"""GARM's error values (``garm@v0.1.5 database/common/errors.go``); pygarm logs them, the client never sees
them."""

_ENTITY_TYPES: Final = frozenset(item.value for item in EntityType)
_OPERATIONS: Final = frozenset(item.value for item in Operation)


# --- Schema and client-side encoding ---------------------------------------------------------------


class EventFilter(BaseModel):
    """GARM's ``Filter``: one entity type and, optionally, the operations wanted for it."""

    model_config = ConfigDict(
        populate_by_name=True, title="Filter", json_schema_extra={"additionalProperties": False}
    )

    operations: list[Operation] = Field(
        default_factory=list,
        title="operations",
        description="A list of operations to filter on; empty means every operation",
    )
    entity_type: EntityType = Field(
        alias="entity-type", title="entity type", description="The type of entity to filter on"
    )
    match: dict[str, list[str | bool | int | float]] | None = Field(
        default=None,
        title="match",
        description="pygarm only (GARM ignores it): top-level payload fields and the values any of which "
        "they must hold; AND across fields",
    )


class FilterMessage(BaseModel):
    """GARM's ``Options``: the message a client sends to choose which events it receives.

    For building and documenting messages. Decode what a client sent with :func:`decode_filter`.
    """

    model_config = ConfigDict(
        populate_by_name=True, title="Options", json_schema_extra={"additionalProperties": False}
    )

    send_everything: bool = Field(default=False, alias="send-everything", title="send everything")
    filters: list[EventFilter] = Field(
        default_factory=list,
        title="filters",
        description="A list of filters to apply to the events. This is ignored when send-everything is true",
    )

    def encode(self) -> bytes:
        """The message as Go writes it: struct order, ``omitempty`` fields dropped when empty."""
        document: dict[str, Any] = {}
        if self.send_everything:
            document["send-everything"] = True
        if self.filters:
            document["filters"] = [_encode_filter(f) for f in self.filters]
        return orjson.dumps(document)


def _encode_filter(item: EventFilter) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    if item.operations:
        encoded["operations"] = [op.value for op in item.operations]
    encoded["entity-type"] = item.entity_type.value
    if item.match is not None:
        encoded["match"] = item.match
    return encoded


def compile_filter(message: FilterMessage) -> CompiledFilter:
    """OR over the filters; each is its entity type AND any of its operations (all when none listed), AND
    its field conditions when it has ``match`` (then a :class:`~pygarm.events.matching.StreamFilter`)."""
    if message.send_everything:
        return EVERYTHING
    return compile_stream_filter((item.entity_type, item.operations, item.match) for item in message.filters)


# --- Decoding results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decoded:
    """A valid filter set: it replaces the connection's current filter."""

    filter: CompiledFilter
    message: FilterMessage


@dataclass(frozen=True, slots=True)
class Ignore:
    """Decodes, but names no filter (``{}``, ``null``, ``{"filters":[]}``): keep the current filter."""

    detail: str = ERR_NO_FILTERS


@dataclass(frozen=True, slots=True)
class UnmarshalError:
    """Not decodable into ``Options``: GARM answers ``failed to unmarshal filter`` and closes."""

    detail: str


@dataclass(frozen=True, slots=True)
class InvalidFilter:
    """Decodes, but an entity type or operation is unknown: GARM answers ``invalid filter`` and closes."""

    detail: str


DecodeResult = Decoded | Ignore | UnmarshalError | InvalidFilter


def decode_filter(data: str | bytes) -> DecodeResult:
    """Decode one inbound websocket message exactly as GARM v0.1.5 does (docs/garm-protocol.md#filter-rules).

    Binary messages are read like text. Invalid UTF-8 is replaced by U+FFFD first, which is what Go's
    decoder does inside strings; outside strings it is a syntax error either way.
    """
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    try:
        document = json.loads(
            text,
            object_pairs_hook=_GoObject,
            parse_constant=_no_constant,
            parse_int=_any_number,
            parse_float=_any_number,
        )
        options = _unmarshal_options(document)
    except (ValueError, _GoTypeError, RecursionError) as exc:
        return UnmarshalError(detail=f"{type(exc).__name__}: {exc}")
    return _validate(options)


def _validate(options: _Options) -> DecodeResult:
    """``Options.Validate()`` and the compile step of ``events.go``."""
    if options.send_everything:
        return Decoded(filter=EVERYTHING, message=FilterMessage(send_everything=True))
    filters = options.filters.live() if options.filters is not None else []
    if not filters:
        return Ignore()
    for item in filters:
        if item.entity_type not in _ENTITY_TYPES:
            return InvalidFilter(detail=ERR_INVALID_ENTITY_TYPE)
        operations = item.operations.live() if item.operations is not None else []
        if any(op not in _OPERATIONS for op in operations):
            return InvalidFilter(detail=ERR_INVALID_OPERATION_TYPE)
        if item.match is not None and _match_conditions(item.match) is None:
            return InvalidFilter(detail=ERR_INVALID_MATCH)
    message = FilterMessage(
        filters=[
            EventFilter(
                entity_type=EntityType(item.entity_type),
                operations=[Operation(op) for op in (item.operations.live() if item.operations else [])],
                match=None if item.match is None else _match_conditions(item.match),
            )
            for item in filters
        ]
    )
    return Decoded(filter=compile_filter(message), message=message)


# --- A model of Go's json.Unmarshal into GARM's two structs ----------------------------------------------


class _GoObject(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs in order, duplicates kept (Go visits every one)."""


class _GoTypeError(Exception):
    """A JSON value of the wrong kind for its Go field (``json.UnmarshalTypeError``)."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character in literal {name!r}")


class _Number(float):
    """A JSON number: GARM's fields take none, so only its kind matters there; ``match`` needs its value.
    Keeping the literal avoids ``int()``'s digit limit, which would reject what Go skips."""

    literal: str

    def value(self) -> int | float | None:
        if any(c in self.literal for c in ".eE"):
            return float(self)
        return int(self.literal) if len(self.literal) <= 400 else None


def _any_number(literal: str) -> float:
    number = _Number(literal)
    number.literal = literal
    return number


def _match_scalar(value: Any) -> Scalar | None:
    if isinstance(value, str | bool):
        return value
    if isinstance(value, _Number):
        return value.value()
    return None


def _match_conditions(value: Any) -> dict[str, list[Scalar]] | None:
    """``match``'s decoded value as field → values, or None when it is not one (an invalid filter).
    A repeated field name keeps its last value."""
    if not isinstance(value, _GoObject):
        return None
    conditions: dict[str, list[Scalar]] = {}
    for field, item in value:
        values = item if isinstance(item, list) and not isinstance(item, _GoObject) else [item]
        scalars = [_match_scalar(v) for v in values]
        if any(s is None for s in scalars):
            return None
        conditions[field] = [s for s in scalars if s is not None]
    return conditions


# Go folds keys with simple Unicode case folding; the only non-ASCII runes that fold onto ASCII letters
# are U+017F (long s) and U+212A (Kelvin sign). GARM's keys are ASCII, so this table is exact for them.
_GO_FOLD: Final = {
    **{ord(c): ord(c.upper()) for c in "abcdefghijklmnopqrstuvwxyz"},
    0x017F: ord("S"),
    0x212A: ord("K"),
}
_KEY_SEND_EVERYTHING: Final = "SEND-EVERYTHING"
_KEY_FILTERS: Final = "FILTERS"
_KEY_ENTITY_TYPE: Final = "ENTITY-TYPE"
_KEY_OPERATIONS: Final = "OPERATIONS"
_KEY_MATCH: Final = "MATCH"

ElemT = TypeVar("ElemT")


class _Slice(Generic[ElemT]):
    """A Go slice being decoded into: a backing array plus a length.

    Go reuses the backing array when a repeated key decodes into the same slice, so elements past the
    current length can come back (with the values an earlier key wrote) when the slice grows again.
    Capacity is modelled as unbounded, which is exact: Go only ever exposes slots it wrote before.
    """

    __slots__ = ("backing", "length")

    def __init__(self) -> None:
        self.backing: list[ElemT] = []
        self.length = 0

    def live(self) -> list[ElemT]:
        return self.backing[: self.length]


class _Filter:
    __slots__ = ("entity_type", "match", "operations")

    def __init__(self) -> None:
        self.entity_type = ""
        self.operations: _Slice[str] | None = None
        self.match: Any = None
        """pygarm's ``match`` (GARM has no such field and skips it): the raw value, null = none."""


class _Options:
    __slots__ = ("filters", "send_everything")

    def __init__(self) -> None:
        self.send_everything = False
        self.filters: _Slice[_Filter] | None = None


def _fold(key: str) -> str:
    return key.translate(_GO_FOLD)


def _unmarshal_options(value: Any) -> _Options:
    options = _Options()
    if value is None:  # `null` into a struct: no-op
        return options
    if not isinstance(value, _GoObject):
        raise _GoTypeError(f"cannot unmarshal {_kind(value)} into Go value of type events.Options")
    for key, item in value:
        folded = _fold(key)
        if folded == _KEY_SEND_EVERYTHING:
            if item is not None:
                if not isinstance(item, bool):
                    raise _GoTypeError(f"cannot unmarshal {_kind(item)} into Go struct field send-everything")
                options.send_everything = item
        elif folded == _KEY_FILTERS:
            options.filters = _unmarshal_slice(item, options.filters, _unmarshal_filter_into, _Filter)
    return options


def _unmarshal_filter_into(value: Any, slots: list[_Filter], index: int) -> None:
    if value is None:  # `null` into a struct element: the element keeps what it had
        return
    if not isinstance(value, _GoObject):
        raise _GoTypeError(f"cannot unmarshal {_kind(value)} into Go value of type events.Filter")
    target = slots[index]
    for key, item in value:
        folded = _fold(key)
        if folded == _KEY_ENTITY_TYPE:
            if item is not None:
                if not isinstance(item, str):
                    raise _GoTypeError(f"cannot unmarshal {_kind(item)} into Go struct field entity-type")
                target.entity_type = item
        elif folded == _KEY_OPERATIONS:
            target.operations = _unmarshal_slice(item, target.operations, _unmarshal_string_into, str)
        elif folded == _KEY_MATCH and item is not None:
            target.match = item


def _unmarshal_string_into(value: Any, slots: list[str], index: int) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise _GoTypeError(f"cannot unmarshal {_kind(value)} into Go value of type common.OperationType")
    slots[index] = value


def _unmarshal_slice(
    value: Any,
    current: _Slice[ElemT] | None,
    decode_into: Callable[[Any, list[ElemT], int], None],
    zero: Callable[[], ElemT],
) -> _Slice[ElemT] | None:
    """Go's ``decodeState.array`` for a slice field: ``null`` → nil, ``[]`` → new empty slice."""
    if value is None:
        return None
    if not isinstance(value, list) or isinstance(value, _GoObject):
        raise _GoTypeError(f"cannot unmarshal {_kind(value)} into Go slice")
    if not value:
        return _Slice()
    target: _Slice[ElemT] = current if current is not None else _Slice()
    for index, item in enumerate(value):
        if index >= len(target.backing):
            target.backing.append(zero())
        decode_into(item, target.backing, index)
    target.length = len(value)
    return target


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _GoObject):
        return "object"
    return "array"
