"""The resume half of the core, without sockets: the query of each connection, the position a stream
holds after each kind of frame, gaps, 4001, and field filters in the filter message."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson
import pytest

from pygarm.client import ResumeUnavailable, StreamOptions, build_filter, decode_control
from pygarm.client._protocol import StreamState
from pygarm.client._resume import Position, event_seq, with_query
from pygarm.events.change import EntityType


def frame(op: str, seq: int, entity: str = "pool") -> bytes:
    return b'{"entity-type":"%s","operation":"%s","payload":{"id":"x","seq":7},"seq":%d}' % (
        entity.encode(),
        op.encode(),
        seq,
    )


def control(kind: str, seq: int) -> bytes:
    return b'{"control":"%s","seq":%d}' % (kind.encode(), seq)


def zero() -> Iterator[float]:
    return itertools.repeat(0.0)


def test_no_extension_asks_for_nothing() -> None:
    position = Position(StreamOptions())
    assert position.query() == {}
    assert with_query("ws://h/api/v1/ws/events", position.query()) == "ws://h/api/v1/ws/events"


def test_event_seq_is_the_last_key_not_a_payload_field() -> None:
    assert event_seq(frame("update", 1234)) == 1234
    assert event_seq(b'{"entity-type":"pool","operation":"update","payload":{"seq":5}}') is None


def test_resume_continues_from_the_last_event() -> None:
    position = Position(StreamOptions(resume=True))
    assert position.query() == {"seq": "true", "ack": "true"}
    assert not position.opened()  # a fresh subscription: whatever came before is not ours
    position.observe(frame("create", 10))
    position.observe(frame("update", 12))
    assert position.query() == {"seq": "true", "since": "12", "ack": "true"}
    assert position.opened()


def test_filter_ack_sets_the_position_only_of_a_fresh_subscription() -> None:
    position = Position(StreamOptions(resume=True))
    position.opened()
    position.observe(control("filter-ack", 40))
    assert position.seq == 40
    position.observe(control("filter-ack", 55))  # resumed: the replay may still be behind the ack
    assert position.seq == 40
    position.observe(control("bookmark", 70))
    assert position.seq == 70


def test_a_snapshot_counts_only_once_complete() -> None:
    position = Position(StreamOptions(snapshot=True, resume=True, resnapshot=True))
    assert position.query() == {"seq": "true", "snapshot": "true", "ack": "true"}
    position.opened()
    position.observe(control("filter-ack", 30))
    position.observe(frame("snapshot", 30))
    assert position.seq is None  # lost here, the next connection needs a whole snapshot
    assert position.query()["snapshot"] == "true"
    position.opened()
    position.observe(frame("snapshot", 31))
    position.observe(control("snapshot-end", 31))
    position.observe(frame("update", 33))
    assert position.query() == {"seq": "true", "since": "33", "ack": "true"}


def test_without_resume_a_reconnect_drops_since() -> None:
    position = Position(StreamOptions(since=5))
    assert position.query() == {"seq": "true", "since": "5"}
    position.opened()
    position.observe(frame("update", 9))
    assert position.seq == 9
    assert position.query() == {"seq": "true"}


@pytest.mark.parametrize(
    "options",
    [{"since": -1}, {"since": 3, "snapshot": True}, {"bookmark": 0}, {"resnapshot": True, "resume": True}],
)
def test_contradictory_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        StreamOptions(**options)  # type: ignore[arg-type]


def test_a_resumed_reconnect_is_not_a_gap() -> None:
    gaps: list[object] = []
    state = StreamState(
        filter_message=b"{}",
        reconnect=False,
        options=StreamOptions(resume=True),
        delays=zero,
        on_gap=gaps.append,
    )
    assert state.reconnect  # resume implies reconnecting
    state.opened()
    state.received(frame("update", 3).decode())
    assert state.closed(1006, "", 1.0) == 0.0
    assert state.url("ws://h/e") == "ws://h/e?seq=true&since=3&ack=true"
    state.opened()
    assert gaps == []


def test_4001_raises_or_resnapshots() -> None:
    state = StreamState(filter_message=b"{}", reconnect=True, options=StreamOptions(resume=True))
    state.opened()
    state.received(frame("update", 3))
    with pytest.raises(ResumeUnavailable):
        state.closed(4001, "resume point no longer in the change log", 1.0)

    mirror = StreamState(
        filter_message=b"{}",
        reconnect=True,
        delays=zero,
        options=StreamOptions(snapshot=True, resume=True, resnapshot=True),
    )
    mirror.opened()
    mirror.received(control("snapshot-end", 3))
    assert "since=3" in mirror.url("ws://h/e")
    assert mirror.closed(4001, "", 1.0) == 0.0
    assert "snapshot=true" in mirror.url("ws://h/e") and "since" not in mirror.url("ws://h/e")


def test_decode_control() -> None:
    got = decode_control(control("snapshot-end", 8))
    assert got is not None and (got.kind, got.seq) == ("snapshot-end", 8)
    assert decode_control(frame("update", 8)) is None
    assert decode_control(b"invalid filter") is None


def test_match_goes_into_every_filter() -> None:
    message = build_filter(["instance:update"], match={"pool_id": "p1", "status": ["running", "failed"]})
    assert orjson.loads(message) == {
        "filters": [
            {
                "operations": ["update"],
                "entity-type": "instance",
                "match": {"pool_id": "p1", "status": ["running", "failed"]},
            }
        ]
    }
    everything = orjson.loads(build_filter(None, match={"id": 1}))
    assert [item["entity-type"] for item in everything["filters"]] == [e.value for e in EntityType]
    with pytest.raises(ValueError, match="invalid match"):
        build_filter(None, match={"id": [{"nested": 1}]})  # type: ignore[list-item]
