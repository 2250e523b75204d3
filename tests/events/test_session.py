"""The websocket session state machine, without a socket (docs/garm-protocol.md#websocket-connection,
docs/garm-protocol.md#filter-rules)."""

from __future__ import annotations

import pytest

from pygarm.events.change import EntityType, Operation
from pygarm.events.filters import EVERYTHING, NOTHING
from pygarm.events.mailbox import CloseCause
from pygarm.events.session import (
    CLOSE_AUTH_EXPIRED,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_SHUTDOWN,
    CLOSE_SLOW_CONSUMER,
    INVALID_FILTER_TEXT,
    MAX_CLOSE_REASON_BYTES,
    MAX_MESSAGE_BYTES,
    UNMARSHAL_ERROR_TEXT,
    Close,
    EventsSession,
    Keep,
    LogsSession,
    SessionState,
    SessionStateError,
    SetFilter,
    slow_consumer_reason,
)

REPO_CREATE = '{"filters":[{"entity-type":"repository","operations":["create"]}]}'


def test_garm_close_codes() -> None:
    """docs/garm-protocol.md#websocket-connection: GARM closes with 1000 for every server-side reason; 1009
    for a too-big message."""
    assert CLOSE_NORMAL == CLOSE_AUTH_EXPIRED == CLOSE_SHUTDOWN == 1000
    assert CLOSE_MESSAGE_TOO_BIG == 1009
    assert 4000 <= CLOSE_SLOW_CONSUMER <= 4999
    assert MAX_MESSAGE_BYTES == 16384


def test_new_session_delivers_nothing() -> None:
    """docs/garm-protocol.md#filter-rules: before a valid filter, the filter matches nothing."""
    session = EventsSession()
    assert session.state is SessionState.AWAITING_FILTER
    assert session.filter is NOTHING
    assert session.is_open


def test_valid_filter_starts_streaming() -> None:
    """docs/garm-protocol.md#filter-rules: a valid filter is applied and nothing is sent back."""
    session = EventsSession()
    action = session.receive(REPO_CREATE)
    assert isinstance(action, SetFilter)
    assert action.filter == {(EntityType.REPOSITORY, Operation.CREATE)}
    assert session.state is SessionState.STREAMING
    assert session.filter == action.filter


def test_new_filter_replaces_and_empty_one_keeps() -> None:
    """docs/garm-protocol.md#filter-rules: a new valid filter replaces the old; ``{}`` keeps it."""
    session = EventsSession()
    session.receive(REPO_CREATE)
    action = session.receive('{"send-everything":true}')
    assert isinstance(action, SetFilter)
    assert session.filter == EVERYTHING
    for ignored in ("{}", "null", '{"filters":[]}'):
        assert isinstance(session.receive(ignored), Keep)
        assert session.filter == EVERYTHING
        assert session.state is SessionState.STREAMING


def test_ignored_message_before_any_filter_keeps_waiting() -> None:
    """docs/garm-protocol.md#filter-rules row 3: an empty filter set before any filter leaves the session
    delivering nothing."""
    session = EventsSession()
    assert isinstance(session.receive("{}"), Keep)
    assert session.state is SessionState.AWAITING_FILTER
    assert session.filter is NOTHING


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ("not json", UNMARSHAL_ERROR_TEXT),
        ("", UNMARSHAL_ERROR_TEXT),
        (b"\x00\x01", UNMARSHAL_ERROR_TEXT),
        ('{"filters":[{"entity-type":"nope"}]}', INVALID_FILTER_TEXT),
        ('{"filters":[{"entity-type":"pool","operations":["CREATE"]}]}', INVALID_FILTER_TEXT),
    ],
)
@pytest.mark.parametrize("streaming_first", [False, True])
def test_bad_messages_reply_then_close_normally(
    message: str | bytes, text: str, streaming_first: bool
) -> None:
    """docs/garm-protocol.md#filter-rules rows 1 and 4: the error text, then close 1000, in either open
    state."""
    session = EventsSession()
    if streaming_first:
        session.receive(REPO_CREATE)
    action = session.receive(message)
    assert action == Close(CLOSE_NORMAL, "", text=text, detail=action.detail)  # type: ignore[union-attr]
    assert session.pending_close == action
    assert not session.is_open
    assert session.state is SessionState.CLOSING
    session.close_sent()
    assert session.state.value == "closed"
    assert session.pending_close is None


def test_send_everything_with_invalid_filters_is_accepted() -> None:
    """docs/garm-protocol.md#filter-rules, last case."""
    session = EventsSession()
    action = session.receive('{"send-everything":true,"filters":[{"entity-type":"nope"}]}')
    assert isinstance(action, SetFilter)
    assert action.filter == EVERYTHING


@pytest.mark.parametrize("session_type", [EventsSession, LogsSession])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_message_over_the_limit_closes_1009(session_type: type[EventsSession], as_bytes: bool) -> None:
    """docs/garm-protocol.md#websocket-connection: more than 16384 bytes closes with 1009 and no text."""
    session = session_type()
    at_limit = '{"x":"' + "a" * (MAX_MESSAGE_BYTES - 8) + '"}'
    assert len(at_limit) == MAX_MESSAGE_BYTES
    assert not isinstance(session.receive(at_limit.encode() if as_bytes else at_limit), Close)
    over = at_limit + " "
    action = session.receive(over.encode() if as_bytes else over)
    assert isinstance(action, Close)
    assert (action.code, action.text) == (CLOSE_MESSAGE_TOO_BIG, None)
    assert session.state is SessionState.CLOSING


def test_limit_counts_utf8_bytes_not_characters() -> None:
    """The limit is on the frame's bytes: 6000 three-byte characters are 18000 bytes."""
    session = EventsSession()
    action = session.receive('{"x":"' + "\u20ac" * 6000 + '"}')
    assert isinstance(action, Close)
    assert action.code == CLOSE_MESSAGE_TOO_BIG


def test_token_expiry_closes_normally_once() -> None:
    """docs/garm-protocol.md#websocket-connection: close 1000 at ``exp``; a second trigger does not change the
    close."""
    session = EventsSession()
    close = session.expire()
    assert close is not None and close.code == CLOSE_AUTH_EXPIRED and close.text is None
    assert session.expire() is None
    assert session.close_for(CloseCause.SLOW_CONSUMER, 10) == close


def test_slow_consumer_close_has_code_and_reason() -> None:
    """pygarm's slow-consumer close: code 4000 and a reason that fits a close frame."""
    session = EventsSession()
    session.receive('{"send-everything":true}')
    close = session.close_for(CloseCause.SLOW_CONSUMER, 1024)
    assert close is not None
    assert close.code == CLOSE_SLOW_CONSUMER
    assert close.reason == slow_consumer_reason(1024)
    assert "1024" in close.reason and "reload" in close.reason
    assert len(slow_consumer_reason(10**12).encode()) <= MAX_CLOSE_REASON_BYTES


def test_shutdown_closes_normally() -> None:
    session = LogsSession()
    close = session.close_for(CloseCause.SHUTDOWN, 10)
    assert close is not None and close.code == CLOSE_SHUTDOWN and close.reason == ""


def test_own_close_wins_over_subscription_cause() -> None:
    """A bad filter closes the subscription too; the writer must still send the error text."""
    session = EventsSession()
    bad = session.receive("nope")
    assert session.close_for(CloseCause.CLOSED, 10) == bad


def test_peer_gone_means_nothing_to_send() -> None:
    session = EventsSession()
    session.peer_gone()
    assert session.state is SessionState.CLOSED
    assert session.close_for(CloseCause.SLOW_CONSUMER, 10) is None
    assert session.expire() is None
    session.peer_gone()  # idempotent
    session.close_sent()  # the peer may leave while the close frame is on its way


def test_receive_after_close_is_a_caller_bug() -> None:
    """Checked transitions: the error names the state."""
    session = EventsSession()
    session.receive("nope")
    with pytest.raises(SessionStateError, match="closing"):
        session.receive("{}")


def test_close_sent_needs_a_chosen_close() -> None:
    session = EventsSession()
    with pytest.raises(SessionStateError, match="awaiting filter"):
        session.close_sent()


def test_logs_session_streams_from_the_start_and_ignores_input() -> None:
    """docs/garm-protocol.md#log-stream: inbound messages from log clients are ignored."""
    session = LogsSession()
    assert session.state is SessionState.STREAMING
    assert isinstance(session.receive("not json"), Keep)
    assert isinstance(session.receive('{"send-everything":true}'), Keep)
    assert session.state is SessionState.STREAMING


def test_pruned_resume_point_closes_4001_with_its_reason() -> None:
    """docs/events.md: a resume point the log no longer holds closes 4001 with the reason clients act on."""
    session = EventsSession()
    session.receive('{"send-everything":true}')
    close = session.close_for(CloseCause.RESUME_UNAVAILABLE, 10)
    assert close is not None
    assert (close.code, close.reason, close.text) == (
        4001,
        "resume point no longer in the change log, reload and resubscribe",
        None,
    )
    assert len(close.reason.encode()) <= MAX_CLOSE_REASON_BYTES


def test_subscription_closed_by_the_server_closes_1000_without_reason() -> None:
    """Any other cause (a revoked user, a closed subscription) closes 1000 with no reason, as GARM does."""
    session = EventsSession()
    session.receive('{"send-everything":true}')
    close = session.close_for(CloseCause.CLOSED, 10)
    assert close is not None
    assert (close.code, close.reason, close.text) == (CLOSE_NORMAL, "", None)
    assert session.state is SessionState.CLOSING
