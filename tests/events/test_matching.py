"""Field filters (``"match"``, docs/events.md#field-filters-match): decoding, the rules, and the hub's
index delivering each change to exactly the subscribers whose conditions select it."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from pygarm.events.change import Change, EntityType, Operation
from pygarm.events.filters import Decoded, InvalidFilter, decode_filter
from pygarm.events.hub import Hub
from pygarm.events.matching import StreamFilter, accepts
from tests.events.helpers import FakeLog

INST, P = EntityType.INSTANCE, EntityType.POOL
C, U, D = Operation.CREATE, Operation.UPDATE, Operation.DELETE


def decoded(message: str) -> Decoded:
    result = decode_filter(message)
    assert isinstance(result, Decoded), result
    return result


def instance(
    seq: int, pool_id: str, status: str = "running", operation: Operation = U, **extra: object
) -> Change:
    payload = orjson.dumps({"id": f"i{seq}", "pool_id": pool_id, "status": status, **extra})
    return Change(seq, INST, operation, payload, datetime(2026, 1, 1, tzinfo=UTC))


def test_a_filter_without_match_is_garms_plain_filter() -> None:
    result = decoded('{"filters":[{"entity-type":"instance","operations":["update"]}]}')
    assert type(result.filter) is frozenset and result.filter == {(INST, U)}


def test_match_and_across_fields_or_within_a_list() -> None:
    compiled = decoded(
        '{"filters":[{"entity-type":"instance","operations":["update"],'
        '"match":{"pool_id":"p1","status":["running","failed"]}}]}'
    ).filter
    assert isinstance(compiled, StreamFilter) and compiled == {(INST, U)} and not compiled.plain
    assert compiled.matches(INST, U, instance(1, "p1").payload)
    assert compiled.matches(INST, U, instance(2, "p1", "failed").payload)
    assert not compiled.matches(INST, U, instance(3, "p1", "pending").payload)
    assert not compiled.matches(INST, U, instance(4, "p2").payload)
    assert not compiled.matches(INST, C, instance(5, "p1").payload), "operations still apply"


@pytest.mark.parametrize(
    ("match", "payload", "selected"),
    [
        ('{"agent_id":5}', {"agent_id": 5}, True),
        ('{"agent_id":5}', {"agent_id": 5.0}, True),
        ('{"agent_id":5}', {"agent_id": "5"}, False),
        ('{"enabled":true}', {"enabled": True}, True),
        ('{"enabled":true}', {"enabled": 1}, False),
        ('{"agent_id":1}', {"agent_id": True}, False),
        ('{"pool_id":"p"}', {}, False),
        ('{"pool_id":"p"}', {"pool_id": None}, False),
        ('{"tags":"x"}', {"tags": ["x"]}, False),
        ('{"max_runners":1.5}', {"max_runners": 1.5}, True),
        ('{"status":[]}', {"status": "running"}, False),
    ],
)
def test_values_compare_by_json_type(match: str, payload: dict[str, object], selected: bool) -> None:
    compiled = decoded(f'{{"filters":[{{"entity-type":"pool","match":{match}}}]}}').filter
    assert accepts_payload(compiled, payload) is selected


def accepts_payload(compiled: frozenset[tuple[EntityType, Operation]], payload: dict[str, object]) -> bool:
    if isinstance(compiled, StreamFilter):
        return compiled.matches(P, U, orjson.dumps(payload))
    return (P, U) in compiled


def test_empty_match_and_a_plain_filter_on_the_same_pair_select_everything() -> None:
    assert decoded('{"filters":[{"entity-type":"pool","match":{}}]}').filter == {(P, C), (P, U), (P, D)}
    both = decoded('{"filters":[{"entity-type":"pool"},{"entity-type":"pool","match":{"id":"x"}}]}').filter
    assert type(both) is frozenset, "the plain filter subsumes the condition"


@pytest.mark.parametrize(
    "match", ['"p1"', "[1]", '{"pool_id":{"a":1}}', '{"pool_id":[[1]]}', '{"pool_id":[null]}', "true"]
)
def test_a_malformed_match_is_an_invalid_filter(match: str) -> None:
    result = decode_filter(f'{{"filters":[{{"entity-type":"instance","match":{match}}}]}}')
    assert isinstance(result, InvalidFilter)


def test_match_null_is_no_match_and_the_key_folds_like_garms_keys() -> None:
    assert type(decoded('{"filters":[{"entity-type":"pool","match":null}]}').filter) is frozenset
    folded = decoded('{"filters":[{"entity-type":"pool","MATCH":{"id":"x"}}]}').filter
    assert isinstance(folded, StreamFilter)


def test_send_everything_ignores_match() -> None:
    result = decoded('{"send-everything":true,"filters":[{"entity-type":"pool","match":5}]}')
    assert len(result.filter) == 30


# --- the hub -----------------------------------------------------------------------------------------


def follow_pool(pool_id: str) -> frozenset[tuple[EntityType, Operation]]:
    return decoded(f'{{"filters":[{{"entity-type":"instance","match":{{"pool_id":"{pool_id}"}}}}]}}').filter


async def test_each_of_many_subscribers_gets_exactly_its_pool() -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    subscriptions = [hub.subscribe(f"s{i}") for i in range(200)]
    for index, subscription in enumerate(subscriptions):
        subscription.set_filter(follow_pool(f"pool-{index}"))
    everything = hub.subscribe("all")
    everything.set_filter(decoded('{"send-everything":true}').filter)
    changes = [instance(seq, f"pool-{seq % 7}") for seq in range(1, 50)]
    hub.publish(changes)
    for index, subscription in enumerate(subscriptions):
        got = [d.change.seq for d in subscription.items]
        assert got == [c.seq for c in changes if c.seq % 7 == index], index
    assert len(everything.items) == len(changes)


async def test_two_conditions_selecting_one_change_deliver_it_once() -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    subscription = hub.subscribe()
    subscription.set_filter(
        decoded(
            '{"filters":[{"entity-type":"instance","match":{"pool_id":"p"}},'
            '{"entity-type":"instance","match":{"status":"running"}},'
            '{"entity-type":"instance","match":{"id":"i1","pool_id":["p","q"]}}]}'
        ).filter
    )
    hub.publish([instance(1, "p"), instance(2, "q", "failed"), instance(3, "q", "running")])
    assert [d.change.seq for d in subscription.items] == [1, 3]


async def test_replacing_or_closing_drops_the_old_conditions() -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    subscription = hub.subscribe()
    subscription.set_filter(follow_pool("a"))
    subscription.set_filter(follow_pool("b"))
    hub.publish([instance(1, "a"), instance(2, "b")])
    assert [d.change.seq for d in subscription.items] == [2]
    subscription.close()
    assert hub._index.fields((INST, U)) is None and hub._index.plain((INST, U)) == ()


async def test_a_full_queue_closes_a_conditional_subscriber_as_slow() -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None, queue_limit=2)
    subscription = hub.subscribe()
    subscription.set_filter(follow_pool("a"))
    hub.publish([instance(seq, "a") for seq in range(1, 4)])
    assert subscription.closed and subscription.cause is not None
    assert subscription.cause.value == "slow consumer"


async def test_the_hub_delivers_only_changes_matching_every_field_of_a_condition() -> None:
    """The index finds a subscriber by one field's value; the other fields must still match."""
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    subscription = hub.subscribe()
    subscription.set_filter(
        decoded('{"filters":[{"entity-type":"instance","match":{"pool_id":"p","status":"running"}}]}').filter
    )
    hub.publish([instance(1, "p", "failed"), instance(2, "q", "running"), instance(3, "p", "running")])
    assert [d.change.seq for d in subscription.items] == [3]


@pytest.mark.parametrize(
    ("literal", "payload", "selected"),
    [
        ("1E3", 1000, True),
        ("1e3", 1000, True),
        ("1000.0", 1000, True),
        ("9007199254740993", 9007199254740993, True),  # 2**53 + 1: compared as an integer, exactly
        ("9007199254740993", 9007199254740992, False),
    ],
)
def test_number_literals_compare_by_their_exact_value(literal: str, payload: int, selected: bool) -> None:
    compiled = decoded(f'{{"filters":[{{"entity-type":"pool","match":{{"agent_id":{literal}}}}}]}}').filter
    assert accepts_payload(compiled, {"agent_id": payload}) is selected


def test_a_condition_with_no_values_leaves_the_other_filters_in_force() -> None:
    compiled = decoded(
        '{"filters":[{"entity-type":"instance","match":{"status":[]}},'
        '{"entity-type":"pool","operations":["update"]},'
        '{"entity-type":"instance","operations":["update"],"match":{"pool_id":"p1"}}]}'
    ).filter
    assert accepts(compiled, P, U, b'{"id":"x"}')
    assert accepts(compiled, INST, U, instance(1, "p1").payload)
    assert not accepts(compiled, INST, U, instance(2, "p2").payload)
