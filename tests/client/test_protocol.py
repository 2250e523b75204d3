"""The events half of the core: filter messages, frames, close meanings, backoff and the reconnect state."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from pygarm.client import (
    ConnectError,
    EventsClosedError,
    EventsClosedOK,
    FilterRejected,
    HandshakeError,
    backoff,
    build_filter,
)
from pygarm.client._protocol import (
    PAYLOAD_MODELS,
    STABLE_AFTER_S,
    Gap,
    StreamState,
    closed_error,
    decode_event,
    events_url,
    is_retryable,
)
from pygarm.events.change import EntityType, Operation
from pygarm.events.filters import Decoded, decode_filter
from pygarm.params.models import GithubCredentials, GithubEndpoint, Job, Pool, Repository


def test_default_filter_is_everything() -> None:
    assert build_filter(None) == b'{"send-everything":true}'


def test_filter_from_mapping_and_entity_strings_agree() -> None:
    from_map = build_filter({"pool": ["create", "delete"], "repository": None})
    from_strings = build_filter(["pool:create,delete", "repository"])
    assert from_map == from_strings
    assert orjson.loads(from_map) == {
        "filters": [
            {"operations": ["create", "delete"], "entity-type": "pool"},
            {"entity-type": "repository"},
        ]
    }
    # What the client builds, the server's own decoder accepts.
    assert isinstance(decode_filter(from_map), Decoded)


def test_raw_filter_is_sent_verbatim() -> None:
    assert build_filter('{"filters":[{"entity-type":"nope"}]}') == b'{"filters":[{"entity-type":"nope"}]}'


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["pools"], "unknown entity type 'pools'"),
        (["pool:CREATE"], "unknown operation 'CREATE' for pool"),
        ({"job": ["remove"]}, "invalid events filter"),
        ([], "no entity types given"),
    ],
)
def test_bad_filters_fail_before_connecting(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_filter(spec)  # type: ignore[arg-type]


def test_client_enums_are_the_server_enums() -> None:
    """The client decodes payloads by entity type: every type GARM v0.1.5 emits has a model."""
    assert set(PAYLOAD_MODELS) == {item.value for item in EntityType}


@pytest.mark.parametrize(
    ("url", "path", "keep", "expected"),
    [
        ("http://127.0.0.1:9997", "/api/v1/ws/events", True, "ws://127.0.0.1:9997/api/v1/ws/events"),
        ("https://garm.example.com/", "/api/v1/ws/events", True, "wss://garm.example.com/api/v1/ws/events"),
        ("https://h/prefix", "/api/v1/ws/events", True, "wss://h/prefix/api/v1/ws/events"),
        ("https://h/prefix", "/api/v1/ws/events", False, "wss://h/api/v1/ws/events"),  # GARM's reader
        ("http://h/api/v1", "/api/v1/ws/events", True, "ws://h/api/v1/ws/events"),
        ("ws://h:1", "/x", True, "ws://h:1/x"),
    ],
)
def test_events_url(url: str, path: str, keep: bool, expected: str) -> None:
    assert events_url(url, path, keep_prefix=keep) == expected


def test_decode_event_parses_payload_into_its_model() -> None:
    frame = b'{"entity-type":"repository","operation":"create","payload":{"id":"r1","owner":"o","name":"n"}}'
    event = decode_event(frame)
    assert event is not None
    assert (event.entity_type, event.operation) == (EntityType.REPOSITORY, Operation.CREATE)
    assert isinstance(event.payload, Repository) and event.payload.owner == "o"
    assert event.raw == frame


@pytest.mark.parametrize(
    ("entity", "payload", "model"),
    [  # the partial delete payloads of docs/garm-protocol.md#delete-payloads
        ("pool", {"runner_prefix": "", "id": "p1", "tags": None, "instances": None}, Pool),
        (
            "job",
            {
                "id": 123,
                "StartedAt": "0001-01-01T00:00:00Z",
                "LockedBy": "00000000-0000-0000-0000-000000000000",
            },
            Job,
        ),
        ("github_endpoint", {"name": "ghes", "description": ""}, GithubEndpoint),
        (
            "github_credentials",
            {"id": 7, "name": "c", "auth-type": "", "endpoint": {"name": ""}},
            GithubCredentials,
        ),
    ],
)
def test_partial_delete_payloads_parse(entity: str, payload: dict[str, object], model: type) -> None:
    event = decode_event(orjson.dumps({"entity-type": entity, "operation": "delete", "payload": payload}))
    assert event is not None and isinstance(event.payload, model)


def test_unknown_entity_type_keeps_a_dict() -> None:
    """A newer GARM emits types v0.1.5 does not know (``scaleset``); they still come through."""
    event = decode_event(b'{"entity-type":"scaleset","operation":"create","payload":{"id":3}}')
    assert event is not None and event.entity_type == "scaleset" and event.payload == {"id": 3}


@pytest.mark.parametrize("frame", [b"invalid filter", "failed to unmarshal filter", b"[1]", b'{"x":1}'])
def test_non_events_are_not_events(frame: str | bytes) -> None:
    assert decode_event(frame) is None


def test_close_meanings() -> None:
    assert isinstance(closed_error(1000), EventsClosedOK)
    assert isinstance(closed_error(1001), EventsClosedOK)
    assert isinstance(closed_error(1000, "", "invalid filter"), FilterRejected)
    assert isinstance(closed_error(4000, "subscriber too slow"), EventsClosedError)
    assert isinstance(closed_error(None), EventsClosedError)
    assert "4000: subscriber too slow" in str(closed_error(4000, "subscriber too slow"))


def test_retryable_errors() -> None:
    assert is_retryable(ConnectError("refused"))
    assert is_retryable(HandshakeError(503, "Service Unavailable"))
    assert is_retryable(closed_error(1006))
    assert is_retryable(closed_error(4000, "slow"))
    assert not is_retryable(HandshakeError(401, "Authentication failed"))
    assert not is_retryable(HandshakeError(409, "urls_required"))
    assert not is_retryable(closed_error(1000, "", "invalid filter"))


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    delays = list(
        itertools.islice(backoff(initial=1, minimum=1, maximum=8, factor=2, jitter=0.5, rng=lambda: 1.0), 7)
    )
    assert delays == [1.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    no_jitter = list(itertools.islice(backoff(initial=1, minimum=1, maximum=8, factor=2, rng=lambda: 0.0), 6))
    assert no_jitter == [0.0, 1.0, 2.0, 4.0, 8.0, 8.0]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def counting_delays() -> Iterator[float]:
    return itertools.count(1.0)


def test_without_reconnect_a_normal_close_ends_quietly_and_a_failure_raises() -> None:
    state = StreamState(filter_message=b"{}", reconnect=False)
    assert state.opened() == b"{}"
    assert state.closed(1000, "", 1.0) is None
    state.opened()
    with pytest.raises(EventsClosedError):
        state.closed(1006, "", 1.0)
    with pytest.raises(ConnectError):
        state.failed(ConnectError("refused"))


def test_filter_rejection_is_never_retried() -> None:
    state = StreamState(filter_message=b"{", reconnect=True)
    state.opened()
    state.received("failed to unmarshal filter")
    with pytest.raises(FilterRejected, match="failed to unmarshal filter"):
        state.closed(1000, "", 0.1)


def test_reconnect_resends_the_filter_and_reports_the_gap() -> None:
    clock, gaps = Clock(), list[Gap]()
    state = StreamState(
        filter_message=b"F", reconnect=True, delays=counting_delays, on_gap=gaps.append, clock=clock
    )
    assert state.opened() == b"F"
    state.received('{"entity-type":"pool"}')
    assert state.closed(1012, "", 0.5) == 1.0  # the server restarted
    clock.now += timedelta(seconds=3)
    assert state.failed(ConnectError("refused")) == 2.0  # still down
    clock.now += timedelta(seconds=2)
    assert state.opened() == b"F"
    assert len(gaps) == 1 and state.gaps == gaps
    gap: Gap = gaps[0]
    assert gap.attempts == 2 and (gap.resumed_at - gap.lost_at).total_seconds() == 5
    assert "may have been missed" in gap.describe()


def test_fatal_errors_end_even_a_reconnecting_stream() -> None:
    state = StreamState(filter_message=b"F", reconnect=True, delays=counting_delays)
    state.opened()
    state.closed(1000, "", 1.0)
    with pytest.raises(HandshakeError):
        state.failed(HandshakeError(401, "Authentication failed"))  # e.g. the token expired meanwhile


def test_first_connection_must_succeed_even_with_reconnect() -> None:
    """A wrong URL or a server that is not up fails at once instead of retrying forever."""
    with pytest.raises(ConnectError):
        StreamState(filter_message=b"F", reconnect=True).failed(ConnectError("refused"))


def test_backoff_resets_only_after_a_stable_connection() -> None:
    state = StreamState(filter_message=b"F", reconnect=True, delays=counting_delays)
    state.opened()
    assert state.closed(1000, "", 0.1) == 1.0  # closed at once: keep backing off
    state.opened()
    assert state.closed(1000, "", 0.1) == 2.0
    state.opened()
    assert state.closed(1000, "", STABLE_AFTER_S) == 1.0  # was stable: start over
    state.opened()
    state.received('{"entity-type":"job"}')
    assert state.closed(4000, "slow", 0.1) == 1.0  # delivered events: start over


def test_reader_state_sends_nothing_until_a_filter_is_written() -> None:
    state = StreamState(filter_message=None, reconnect=True, delays=counting_delays)
    assert state.opened() is None
    state.remember_filter(b'{"send-everything":true}')
    state.closed(1006, "", 20.0)
    assert state.opened() == b'{"send-everything":true}'
