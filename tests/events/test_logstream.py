"""The log broadcaster (docs/garm-protocol.md#log-stream): every record to every subscriber, bounded, never
blocking the logger."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest

from pygarm.events.logstream import LogBroadcaster, LogLine, serving_log_stream
from pygarm.events.mailbox import CloseCause, Mailbox
from tests.waiting import until


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("pygarm.tests.logstream")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    log.handlers.clear()


def texts(subscriber: Mailbox[LogLine]) -> list[str]:
    return [line.text for line in subscriber.items]


def attach(logger: logging.Logger, **kwargs: int) -> LogBroadcaster:
    broadcaster = LogBroadcaster(**kwargs)
    broadcaster.setFormatter(logging.Formatter("level=%(levelname)s msg=%(message)s"))
    logger.addHandler(broadcaster)
    broadcaster.bind()
    return broadcaster


async def test_records_reach_every_subscriber_as_lines(logger: logging.Logger) -> None:
    """docs/garm-protocol.md#log-stream: one text frame per record; slog writes whole lines, so each ends with
    a newline."""
    broadcaster = attach(logger)
    first, second = broadcaster.subscribe(), broadcaster.subscribe()
    logger.info("pool %s created", "p1")
    logger.warning("slow")
    assert texts(first) == texts(second) == ["level=INFO msg=pool p1 created\n", "level=WARNING msg=slow\n"]


async def test_nothing_is_formatted_without_subscribers(logger: logging.Logger) -> None:
    calls = 0

    class CountingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            nonlocal calls
            calls += 1
            return super().format(record)

    broadcaster = attach(logger)
    broadcaster.setFormatter(CountingFormatter())
    logger.info("nobody listens")
    assert calls == 0
    subscriber = broadcaster.subscribe()
    logger.info("now someone does")
    assert calls == 1
    assert len(subscriber) == 1


async def test_records_from_other_threads_arrive_in_order(logger: logging.Logger) -> None:
    broadcaster = attach(logger)
    subscriber = broadcaster.subscribe()

    def work() -> None:
        for i in range(100):
            logger.info("line %d", i)

    thread = threading.Thread(target=work)
    thread.start()
    await asyncio.to_thread(thread.join)
    for _ in range(10):
        await asyncio.sleep(0)
    assert texts(subscriber) == [f"level=INFO msg=line {i}\n" for i in range(100)]


async def test_slow_log_subscriber_is_closed_and_others_keep_receiving(logger: logging.Logger) -> None:
    broadcaster = attach(logger, queue_limit=5)
    slow, healthy = broadcaster.subscribe(), broadcaster.subscribe()
    for i in range(20):
        logger.info("line %d", i)
        healthy.items.clear()  # a healthy writer keeps up
    assert slow.cause is CloseCause.SLOW_CONSUMER
    assert healthy.cause is None
    assert broadcaster.subscriber_count == 1


async def test_inbox_overflow_from_other_threads_closes_subscribers_instead_of_blocking(
    logger: logging.Logger,
) -> None:
    """The loop never ran while another thread logged 50 lines into an inbox of 10: the logger was not
    blocked, and the subscribers, having missed lines, are closed."""
    broadcaster = attach(logger, inbox_limit=10, queue_limit=100)
    subscriber = broadcaster.subscribe()

    def work() -> None:
        for i in range(50):
            logger.info("line %d", i)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=5)  # blocking the loop on purpose: no flush can run meanwhile
    assert not thread.is_alive()
    await asyncio.sleep(0)
    assert subscriber.cause is CloseCause.SLOW_CONSUMER


async def test_unsubscribe_and_stop(logger: logging.Logger) -> None:
    broadcaster = attach(logger)
    leaving, staying = broadcaster.subscribe(), broadcaster.subscribe()
    broadcaster.unsubscribe(leaving)
    logger.info("after")
    assert texts(leaving) == []
    assert texts(staying) == ["level=INFO msg=after\n"]
    broadcaster.stop()
    assert staying.cause is CloseCause.SHUTDOWN
    logger.info("after stop")  # no subscribers, no loop: ignored


async def test_records_caused_by_serving_the_stream_are_not_streamed(logger: logging.Logger) -> None:
    """issue 8 #1: at log_level debug the websocket server logs every frame it sends; streaming that line
    sent another frame, forever. Records logged while serving a stream (and in tasks it starts) are dropped;
    the rest of the server's records still arrive."""
    broadcaster = attach(logger)
    subscriber = broadcaster.subscribe()

    async def child() -> None:
        logger.debug("> TEXT 'level=INFO ...' [20 bytes]")

    with serving_log_stream():
        logger.debug("> TEXT 'level=INFO ...' [20 bytes]")
        await asyncio.create_task(child())
    logger.info("pool p1 created")
    assert texts(subscriber) == ["level=INFO msg=pool p1 created\n"]


async def test_unsubscribe_forgets_the_subscriber(logger: logging.Logger) -> None:
    broadcaster = attach(logger)
    leaving = broadcaster.subscribe()
    broadcaster.unsubscribe(leaving)
    assert broadcaster.subscriber_count == 0
    assert leaving.cause is CloseCause.CLOSED


async def test_closing_a_slow_subscriber_is_logged_for_the_operator(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator sees why a ``debug-log`` client was dropped: one warning, logged after the fan-out."""
    broadcaster = attach(logger, queue_limit=1)
    slow = broadcaster.subscribe()
    with caplog.at_level(logging.WARNING, logger="pygarm.events.logstream"):
        logger.info("one")
        logger.info("two")  # the queue holds one line: this closes the subscriber as slow
        assert slow.cause is CloseCause.SLOW_CONSUMER
        assert broadcaster.subscriber_count == 0
        await asyncio.sleep(0)  # the warning is scheduled with call_soon: one turn of the loop
    assert [r.getMessage() for r in caplog.records if r.name == "pygarm.events.logstream"] == [
        "closed 1 slow log stream subscriber(s)"
    ]


async def test_an_inbox_overflow_is_logged_with_the_number_of_subscribers_closed(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    broadcaster = attach(logger, inbox_limit=2, queue_limit=100)
    subscribers = [broadcaster.subscribe() for _ in range(3)]

    def work() -> None:
        for i in range(5):
            logger.info("line %d", i)

    with caplog.at_level(logging.WARNING, logger="pygarm.events.logstream"):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join(timeout=5)  # blocking the loop on purpose: no flush can run meanwhile
        assert not thread.is_alive()
        await until(lambda: broadcaster.subscriber_count == 0, "the subscribers to be closed")
        await until(lambda: any(r.name == "pygarm.events.logstream" for r in caplog.records), "the warning")
    assert [s.cause for s in subscribers] == [CloseCause.SLOW_CONSUMER] * 3
    assert [r.getMessage() for r in caplog.records if r.name == "pygarm.events.logstream"] == [
        "log stream inbox overflowed; closed 3 subscriber(s)"
    ]


async def test_after_stop_a_new_subscriber_gets_nothing(logger: logging.Logger) -> None:
    """Stopped, the broadcaster delivers nothing more, from the loop's thread or another."""
    broadcaster = attach(logger)
    broadcaster.stop()
    late = broadcaster.subscribe()
    logger.info("after stop")
    thread = threading.Thread(target=logger.info, args=("from a thread",))
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive()
    await asyncio.sleep(0)  # a flush scheduled by the thread would run now
    assert texts(late) == []
