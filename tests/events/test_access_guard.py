"""The access guard closes exactly the connections of a user whose token is no longer acceptable
(docs/garm-protocol.md#websocket-connection: GARM's per-client user watcher), as pure in-process code:
a hub, mailboxes standing for connections, and a ``still_valid`` double."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from pygarm.events.change import Change, EntityType, Operation
from pygarm.events.guard import AccessGuard
from pygarm.events.hub import Hub
from pygarm.events.mailbox import CloseCause, Mailbox
from tests.events.helpers import CREATED_AT, FakeLog
from tests.waiting import until


class Validity:
    """``still_valid`` answering from a set of acceptable ``(user, generation)`` pairs, recording calls."""

    def __init__(self, *valid: tuple[str, int], failing: str = "") -> None:
        self.valid = set(valid)
        self.failing = failing
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, user_id: str, generation: int) -> bool:
        self.calls.append((user_id, generation))
        if user_id == self.failing:
            raise OSError("database is unavailable")
        return (user_id, generation) in self.valid


class Changes:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.seq = hub.last_seq

    def publish(self, entity_type: EntityType, operation: Operation, payload: dict[str, Any]) -> None:
        self.seq += 1
        self.hub.publish([Change(self.seq, entity_type, operation, orjson.dumps(payload), CREATED_AT)])

    def user(self, user_id: str, operation: Operation = Operation.UPDATE) -> None:
        self.publish(EntityType.USER, operation, {"id": user_id})


async def _started(guard: AccessGuard, hub: Hub) -> None:
    before = hub.subscriber_count
    guard.start()
    await until(lambda: hub.subscriber_count == before + 1, "the guard's subscription")


@pytest.mark.parametrize("operation", [Operation.UPDATE, Operation.DELETE])
async def test_only_the_changed_users_revoked_connections_close(operation: Operation) -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    validity = Validity(("alice", 2), ("bob", 1))
    guard = AccessGuard(hub, validity)
    old, current, other = Mailbox[object](10), Mailbox[object](10), Mailbox[object](10)
    guard.register("alice", 1, old)
    guard.register("alice", 2, current)
    guard.register("bob", 0, other)
    await _started(guard, hub)
    changes = Changes(hub)
    changes.user("alice", operation)
    await until(lambda: old.cause is not None, "the stale connection to close")
    assert old.cause == CloseCause.ACCESS_REVOKED
    assert current.cause is None
    assert other.cause is None  # bob's token is stale too, but bob did not change
    assert sorted(validity.calls) == [("alice", 1), ("alice", 2)]
    await guard.stop()


async def test_other_entity_types_and_unknown_users_check_nothing() -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    validity = Validity()
    guard = AccessGuard(hub, validity)
    mailbox = Mailbox[object](10)
    guard.register("alice", 1, mailbox)
    await _started(guard, hub)
    changes = Changes(hub)
    changes.publish(EntityType.POOL, Operation.UPDATE, {"id": "alice"})
    changes.publish(EntityType.USER, Operation.CREATE, {"id": "alice"})
    changes.user("carol")
    changes.publish(EntityType.USER, Operation.UPDATE, {"id": 7})
    changes.user("alice")  # the marker: once it is handled, everything before it was
    await until(lambda: mailbox.cause is not None, "alice's connection to close")
    assert validity.calls == [("alice", 1)]
    await guard.stop()


async def test_unregistered_connections_are_no_longer_checked() -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    validity = Validity()
    guard = AccessGuard(hub, validity)
    gone, kept, marker = Mailbox[object](10), Mailbox[object](10), Mailbox[object](10)
    guard.register("alice", 1, gone)
    guard.register("alice", 1, kept)
    guard.register("bob", 1, marker)
    guard.unregister("alice", gone)
    guard.unregister("carol", gone)  # never registered: nothing happens
    await _started(guard, hub)
    changes = Changes(hub)
    changes.user("alice")
    await until(lambda: kept.cause is not None, "alice's remaining connection to close")
    assert gone.cause is None
    guard.unregister("alice", kept)
    changes.user("alice")  # alice has no connection left
    changes.user("bob")
    await until(lambda: marker.cause is not None, "bob's connection to close")
    assert validity.calls == [("alice", 1), ("bob", 1)]
    await guard.stop()


async def test_a_failing_check_is_logged_and_the_other_users_are_still_checked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    validity = Validity(failing="alice")
    guard = AccessGuard(hub, validity)
    first, second, bob = Mailbox[object](10), Mailbox[object](10), Mailbox[object](10)
    guard.register("alice", 1, first)
    guard.register("alice", 2, second)
    guard.register("bob", 1, bob)
    await _started(guard, hub)
    changes = Changes(hub)
    with caplog.at_level(logging.ERROR, logger="pygarm.events.guard"):
        changes.user("alice")
        changes.user("bob")
        await until(lambda: bob.cause is not None, "bob's connection to close")
    assert (first.cause, second.cause) == (None, None)  # an unknown answer closes nothing
    assert validity.calls == [("alice", 1), ("alice", 2), ("bob", 1)]
    messages = [r.getMessage() for r in caplog.records if r.name == "pygarm.events.guard"]
    assert messages == ["checking a websocket user's access failed"] * 2
    await guard.stop()


async def test_its_own_overflow_rechecks_every_user_and_it_keeps_watching() -> None:
    """A burst of user changes larger than the guard's queue closes its subscription; it then checks
    every connection of every user, subscribes again and goes on."""
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None, queue_limit=2)
    validity = Validity(("carol", 1))
    guard = AccessGuard(hub, validity)
    alice, bob, carol = Mailbox[object](10), Mailbox[object](10), Mailbox[object](10)
    guard.register("alice", 1, alice)
    guard.register("bob", 1, bob)
    guard.register("carol", 1, carol)
    await _started(guard, hub)
    changes = Changes(hub)
    for _ in range(3):  # published in one tick: the guard cannot drain its queue in between
        changes.user("nobody")
    await until(lambda: alice.cause is not None and bob.cause is not None, "every stale connection to close")
    assert carol.cause is None
    assert sorted(validity.calls) == [("alice", 1), ("bob", 1), ("carol", 1)]
    await until(lambda: hub.subscriber_count == 1, "the guard to subscribe again")
    validity.valid.clear()
    changes.user("carol")
    await until(lambda: carol.cause is not None, "carol's connection to close after the overflow")
    await guard.stop()


async def test_stop_ends_the_watch() -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    guard = AccessGuard(hub, Validity())
    await guard.stop()  # never started: nothing to stop
    mailbox = Mailbox[object](10)
    guard.register("alice", 1, mailbox)
    await _started(guard, hub)
    await guard.stop()
    Changes(hub).user("alice")
    await asyncio.sleep(0)  # a running guard would pick the change up now
    assert mailbox.cause is None


async def test_unregistering_an_unknown_connection_of_a_known_user_changes_nothing() -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    guard = AccessGuard(hub, Validity())
    kept, stranger = Mailbox[object](10), Mailbox[object](10)
    guard.register("alice", 1, kept)
    guard.unregister("alice", stranger)
    await _started(guard, hub)
    Changes(hub).user("alice")
    await until(lambda: kept.cause is not None, "alice's connection to close")
    assert stranger.cause is None
    await guard.stop()
