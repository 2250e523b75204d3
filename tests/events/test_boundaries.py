"""Off-by-one edges of the events core: a subscriber queue at exactly its limit, and a resume replay whose
last logged change sits exactly at ``upto`` (docs/events.md).

Each test here was written to kill a change that the rest of the suite let through (docs/testing.md,
"Mutation testing").
"""

from __future__ import annotations

import pytest

from pygarm.events import extensions
from pygarm.events.change import EntityType, Operation
from pygarm.events.extensions import Replay, ResumeUnavailable
from pygarm.events.filters import EVERYTHING
from pygarm.events.hub import Hub
from pygarm.events.mailbox import CloseCause
from tests.events.helpers import FakeLog, make_change, seqs_of

LIMIT = 4


def _hub() -> Hub:
    return Hub(FakeLog().read_changes_after, 0, poll_interval=None)


async def test_a_queue_holding_exactly_its_limit_stays_open() -> None:
    """A subscriber may fall behind by up to ``queue_limit`` changes and still get all of them."""
    hub = _hub()
    sub = hub.subscribe("at-limit", queue_limit=LIMIT)
    sub.set_filter(EVERYTHING)
    hub.publish([make_change(seq) for seq in range(1, LIMIT + 1)])
    assert sub.cause is None
    assert [delivery.change.seq for delivery in sub.items] == list(range(1, LIMIT + 1))
    assert hub.subscriber_count == 1


async def test_one_change_past_the_limit_closes_the_subscriber_as_slow() -> None:
    """The change that finds the queue full closes the subscriber (4000 on the socket); the queue never
    holds more than ``queue_limit`` changes."""
    hub = _hub()
    sub = hub.subscribe("one-past", queue_limit=LIMIT)
    sub.set_filter(EVERYTHING)
    hub.publish([make_change(seq) for seq in range(1, LIMIT + 1)])
    hub.publish([make_change(LIMIT + 1)])
    assert sub.cause is CloseCause.SLOW_CONSUMER
    assert hub.subscriber_count == 0


async def test_draining_one_makes_room_for_exactly_one_more() -> None:
    hub = _hub()
    sub = hub.subscribe("drains", queue_limit=LIMIT)
    sub.set_filter(EVERYTHING)
    hub.publish([make_change(seq) for seq in range(1, LIMIT + 1)])
    first = sub.pop()
    assert first is not None and first.change.seq == 1
    hub.publish([make_change(LIMIT + 1)])
    assert sub.cause is None
    hub.publish([make_change(LIMIT + 2)])
    assert sub.cause is CloseCause.SLOW_CONSUMER


def _replay(log: FakeLog, since: int, upto: int, match: frozenset[tuple[EntityType, Operation]]) -> Replay:
    async def pruned_through() -> int:
        return 0

    return Replay(
        since=since, upto=upto, match=match, read=log.read_changes_after, pruned_through=pruned_through
    )


async def _frames(replay: Replay) -> list[str]:
    return [frame async for frame in replay.frames()]


@pytest.mark.parametrize("upto", [1, 3, 5])
async def test_replay_includes_the_change_at_upto(upto: int) -> None:
    """``upto`` is the hub's position when the filter arrived: the live stream starts after it, so the
    replay must send the change at ``upto`` itself, or that change is lost to the resuming client."""
    log = FakeLog()
    log.commit(*(make_change(seq) for seq in range(1, 8)))
    frames = await _frames(_replay(log, 0, upto, EVERYTHING))
    assert seqs_of(frames) == list(range(1, upto + 1))
    assert frames[-1].endswith(f',"seq":{upto}}}')


async def test_replay_of_a_filter_whose_only_match_is_at_upto() -> None:
    log = FakeLog()
    log.commit(make_change(1), make_change(2), make_change(3, EntityType.REPOSITORY, Operation.CREATE))
    log.commit(make_change(4, EntityType.REPOSITORY, Operation.CREATE))
    only_repo_create = frozenset({(EntityType.REPOSITORY, Operation.CREATE)})
    frames = await _frames(_replay(log, 0, 3, only_repo_create))
    assert seqs_of(frames) == [3]


async def test_replay_sends_nothing_at_or_below_since() -> None:
    log = FakeLog()
    log.commit(*(make_change(seq) for seq in range(1, 6)))
    assert seqs_of(await _frames(_replay(log, 2, 4, EVERYTHING))) == [3, 4]
    assert await _frames(_replay(log, 4, 4, EVERYTHING)) == []


async def test_replay_reads_in_batches_without_gaps_or_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    """A replay longer than one batch resumes each read after the last change of the previous one."""
    monkeypatch.setattr(extensions, "REPLAY_BATCH", 3)
    log = FakeLog()
    log.commit(*(make_change(seq) for seq in range(1, 12)))
    assert seqs_of(await _frames(_replay(log, 1, 10, EVERYTHING))) == list(range(2, 11))
    assert [after for after, _limit in log.calls] == [1, 4, 7], "three batches, each after the last"


async def test_replay_from_a_pruned_point_says_which_seq() -> None:
    async def pruned_through() -> int:
        return 5

    replay = Replay(since=3, upto=9, match=EVERYTHING, read=FakeLog().read_changes_after,
                    pruned_through=pruned_through)  # fmt: skip
    with pytest.raises(ResumeUnavailable, match=r"^the change log was pruned past seq 3$"):
        await _frames(replay)
