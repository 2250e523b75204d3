"""Field filters: ``"match"`` on a filter selects events by top-level payload fields
(docs/events.md#field-filters-match).

::

    {"filters": [{"entity-type": "instance", "operations": ["update"],
                  "match": {"pool_id": "8ec3…", "status": ["running", "failed"]}}]}

AND across keys, OR within a list; values are strings, numbers or booleans and compare by JSON type
(``1`` matches ``1`` and ``1.0``, never ``true`` or ``"1"``). A field that is absent, ``null``, an object
or an array never matches. GARM ignores the unknown key, so the message stays valid for GARM.

A filter set with field conditions compiles to a :class:`StreamFilter`: still the frozenset of every
``(entity_type, operation)`` pair it may select (so code that only asks "could this pair match?" keeps
working), plus :attr:`StreamFilter.plain` (pairs selected whatever the payload) and
:attr:`StreamFilter.clauses` (per pair, the :class:`Match` conditions, any of which selects a payload).
The hub indexes clauses by ``(pair, field, value)`` (``pygarm.events.index``), so subscribers following
different values cost one dictionary lookup per event between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from pygarm.events.change import EntityType, Operation

EventKey = tuple[EntityType, Operation]
CompiledFilter = frozenset[EventKey]
"""The same aliases as :mod:`pygarm.events.filters` (which builds on this module)."""

Scalar = str | int | float | bool
_BOOL: Final = object()


def norm(value: Any) -> Any:
    """A hashable key that equals another exactly when the two JSON values match; None: never matches.

    Booleans are wrapped (Python's ``True == 1``); ints and floats compare numerically, as JSON numbers.
    """
    kind = type(value)
    if kind is str or kind is int or kind is float:
        return value
    if kind is bool:
        return (_BOOL, value)
    return None


class Match:
    """The conditions of one filter: every field must hold one of its values."""

    __slots__ = ("conditions", "index_field", "index_values")

    def __init__(self, conditions: Mapping[str, Iterable[Scalar]]) -> None:
        self.conditions: tuple[tuple[str, frozenset[Any]], ...] = tuple(
            (field, frozenset(norm(value) for value in values))
            for field, values in sorted(conditions.items())
        )
        # The hub indexes each match under one field (the first); the others are checked per candidate.
        self.index_field, self.index_values = self.conditions[0]

    def matches(self, payload: Mapping[str, Any]) -> bool:
        return all(norm(payload.get(field)) in values for field, values in self.conditions)


class StreamFilter(frozenset[EventKey]):
    """A compiled filter set with field conditions (see the module docstring)."""

    plain: CompiledFilter
    clauses: dict[EventKey, tuple[Match, ...]]

    def __new__(cls, plain: CompiledFilter, clauses: Mapping[EventKey, tuple[Match, ...]]) -> StreamFilter:
        self = super().__new__(cls, plain | clauses.keys())
        self.plain = plain
        self.clauses = {key: matches for key, matches in clauses.items() if key not in plain}
        return self

    def matches(self, entity_type: EntityType, operation: Operation, payload: bytes) -> bool:
        key = (entity_type, operation)
        if key in self.plain:
            return True
        clauses = self.clauses.get(key)
        if not clauses:
            return False
        document = orjson.loads(payload)
        return isinstance(document, dict) and any(match.matches(document) for match in clauses)

    def snapshot_matches(self, entity_type: EntityType, payload: bytes) -> bool:
        """A snapshot entry stands for the entity's create and update."""
        return self.matches(entity_type, Operation.CREATE, payload) or self.matches(
            entity_type, Operation.UPDATE, payload
        )


def accepts(compiled: CompiledFilter, entity_type: EntityType, operation: Operation, payload: bytes) -> bool:
    """Whether ``compiled`` (plain or with field conditions) selects this change."""
    if type(compiled) is StreamFilter:
        return compiled.matches(entity_type, operation, payload)
    return (entity_type, operation) in compiled


def compile_stream_filter(
    filters: Iterable[tuple[EntityType, Iterable[Operation], Mapping[str, list[Scalar]] | None]],
) -> CompiledFilter:
    """OR over the filters; a filter without ``match`` (or with ``match: {}``) selects its pairs whatever
    the payload; a condition with an empty list of values selects nothing. Returns a plain frozenset when
    no filter has a condition (GARM's filter exactly)."""
    plain: set[EventKey] = set()
    clauses: dict[EventKey, list[Match]] = {}
    for entity_type, operations, conditions in filters:
        keys = [(entity_type, op) for op in (list(operations) or list(Operation))]
        if not conditions:
            plain.update(keys)
            continue
        if any(not values for values in conditions.values()):
            continue
        match = Match(conditions)
        for key in keys:
            clauses.setdefault(key, []).append(match)
    if not any(key not in plain for key in clauses):
        return frozenset(plain)
    return StreamFilter(frozenset(plain), {key: tuple(matches) for key, matches in clauses.items()})
