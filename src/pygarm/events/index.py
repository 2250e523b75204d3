"""Which subscriptions a change goes to, without looking at the others.

The hub keeps every subscription's compiled filter here, indexed:

* plain pairs (selected whatever the payload): ``(entity_type, operation)`` → the subscriptions, as a
  tuple rebuilt only when a filter changes, so a dispatch iterates exactly the subscribers that want the
  change;
* field conditions (:class:`~pygarm.events.matching.Match`): ``(entity_type, operation)`` → field → value →
  the ``(subscription, match)`` entries indexed under that value. A change with such entries is decoded
  once and each indexed field costs one dictionary lookup, so 1,000 subscribers each following a
  different ``pool_id`` cost about what one does.

A subscription's plain pairs and its condition pairs are disjoint (a plain pair subsumes conditions on
it, :class:`~pygarm.events.matching.StreamFilter`), so the two paths never deliver one change twice to
one subscriber; within the field path a subscriber found through two fields is taken once.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import orjson

from pygarm.events.change import Change
from pygarm.events.matching import CompiledFilter, EventKey, Match, StreamFilter, norm

SubT = TypeVar("SubT")

FieldEntries = dict[str, dict[Any, tuple[tuple[Any, Match], ...]]]


class SubscriberIndex(Generic[SubT]):
    __slots__ = ("_cache", "_fields", "_plain", "_registered")

    def __init__(self) -> None:
        self._plain: dict[EventKey, dict[SubT, None]] = {}
        self._cache: dict[EventKey, tuple[SubT, ...]] = {}
        self._fields: dict[EventKey, FieldEntries] = {}
        self._registered: dict[SubT, tuple[frozenset[EventKey], list[tuple[EventKey, Match]]]] = {}

    def set(self, subscription: SubT, compiled: CompiledFilter) -> None:
        """Replace what ``subscription`` is registered for."""
        self.remove(subscription)
        if isinstance(compiled, StreamFilter):
            plain = compiled.plain
            indexed = [(key, match) for key, matches in compiled.clauses.items() for match in matches]
        else:
            plain, indexed = compiled, []
        if not plain and not indexed:
            return
        for key in plain:
            self._plain.setdefault(key, {})[subscription] = None
            self._cache.pop(key, None)
        for key, match in indexed:
            by_value = self._fields.setdefault(key, {}).setdefault(match.index_field, {})
            for value in match.index_values:
                by_value[value] = (*by_value.get(value, ()), (subscription, match))
        self._registered[subscription] = (plain, indexed)

    def remove(self, subscription: SubT) -> None:
        registered = self._registered.pop(subscription, None)
        if registered is None:
            return
        plain, indexed = registered
        for key in plain:
            members = self._plain.get(key)
            if members is not None:
                members.pop(subscription, None)
                if not members:
                    del self._plain[key]
            self._cache.pop(key, None)
        for key, match in indexed:
            fields = self._fields.get(key)
            if fields is None:
                continue
            by_value = fields.get(match.index_field)
            if by_value is None:
                continue
            for value in match.index_values:
                kept = tuple(entry for entry in by_value.get(value, ()) if entry[0] is not subscription)
                if kept:
                    by_value[value] = kept
                else:
                    by_value.pop(value, None)
            if not by_value:
                del fields[match.index_field]
            if not fields:
                del self._fields[key]

    def plain(self, key: EventKey) -> tuple[SubT, ...]:
        """The subscriptions that take every change of ``key``."""
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = tuple(self._plain.get(key, ()))
        return cached

    def fields(self, key: EventKey) -> FieldEntries | None:
        return self._fields.get(key)

    @staticmethod
    def matching(fields: FieldEntries, change: Change) -> list[SubT]:
        """The subscriptions whose conditions on ``change``'s pair select its payload."""
        document = orjson.loads(change.payload)
        if type(document) is not dict:
            return []
        found: dict[SubT, None] = {}  # ordered, and membership is one lookup however many match
        for field, by_value in fields.items():
            value = norm(document.get(field))
            if value is None:
                continue
            entries = by_value.get(value)
            if entries is None:
                continue
            for subscription, match in entries:
                if subscription not in found and match.matches(document):
                    found[subscription] = None
        return list(found)
