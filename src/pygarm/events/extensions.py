"""Opt-in stream extensions: sequence numbers and resume. GARM has neither; a client that does not ask
sees GARM's wire format byte for byte.

A client opts in with query parameters on the websocket URL:

* ``?seq=true``: every event frame gains a last key, ``"seq": N``, the change's position in the change
  log. ``seq`` strictly increases in commit order; it may skip numbers (a rolled-back transaction on
  PostgreSQL, or a change that did not match the filter).
* ``?since=N`` (implies ``seq``): after the first filter arrives, first replay every logged change with
  ``seq > N`` that matches it, then continue live, with no gap and no duplicate between the two. If the
  log no longer reaches back to ``N`` (retention pruned it), the server closes with 4001 and the client
  must reload over REST. A client that remembers the last ``seq`` it processed can therefore reconnect
  after a crash or a network cut and miss nothing.

* ``?ack=true`` (implies ``seq``): every accepted filter message is answered with
  ``{"control":"filter-ack","seq":S}``; events with ``seq > S`` are matched against the new filter.
* ``?bookmark=SECONDS`` (implies ``seq``): when nothing was sent for that long, the server sends
  ``{"control":"bookmark","seq":S}`` with the hub's position, so a client whose filter skips most events
  can resume from near the head.
* ``?snapshot=true`` (implies ``seq``; see :mod:`pygarm.events.snapshot`).

Go clients ignore unknown keys, so even a GARM client that was handed a ``seq`` frame would decode it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from pygarm.events.change import Change
from pygarm.events.filters import CompiledFilter
from pygarm.events.matching import accepts

REPLAY_BATCH = 500
"""Logged changes read per round while replaying a resume."""

SINCE_BEYOND_HEAD = "resume point is beyond the head of the change log"
"""Start of the 400 ``details`` for ``?since=N`` with N past the log's head (issue 8 #10): the client's
state came from another or a restored database; it must reload over REST instead of resuming."""

_TRUE = frozenset({"1", "t", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "f", "false", "no", "off"})


class InvalidStreamOptions(ValueError):
    """A query parameter of the extension is malformed; the upgrade is refused with 400."""


MIN_BOOKMARK_SECONDS = 0.05
MAX_BOOKMARK_SECONDS = 86400.0


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """What the client asked for; every field at its default is GARM's stream, byte for byte."""

    with_seq: bool = False
    since: int | None = None
    ack: bool = False
    bookmark: float | None = None
    snapshot: bool = False


def _flag(query: Mapping[str, str], name: str) -> bool:
    text = query.get(name, "").strip().lower()
    if text not in _TRUE | _FALSE:
        raise InvalidStreamOptions(f"{name} must be true or false")
    return text in _TRUE


def parse_stream_options(query: Mapping[str, str]) -> StreamOptions:
    """Read ``seq``, ``since``, ``ack``, ``bookmark`` and ``snapshot`` from the URL's query string."""
    with_seq = _flag(query, "seq")
    ack = _flag(query, "ack")
    snapshot = _flag(query, "snapshot")
    since_text = query.get("since")
    since: int | None = None
    if since_text is not None:
        try:
            since = int(since_text)
        except ValueError:
            raise InvalidStreamOptions("since must be a non-negative integer") from None
        if since < 0:
            raise InvalidStreamOptions("since must be a non-negative integer")
    bookmark: float | None = None
    bookmark_text = query.get("bookmark")
    if bookmark_text is not None:
        try:
            bookmark = float(bookmark_text)
        except ValueError:
            bookmark = -1.0
        if not MIN_BOOKMARK_SECONDS <= bookmark <= MAX_BOOKMARK_SECONDS:
            raise InvalidStreamOptions(
                f"bookmark must be a number of seconds from {MIN_BOOKMARK_SECONDS} to "
                f"{MAX_BOOKMARK_SECONDS:.0f}"
            )
    if snapshot and since is not None:
        raise InvalidStreamOptions("snapshot and since exclude each other")
    return StreamOptions(
        with_seq=with_seq or ack or snapshot or since is not None or bookmark is not None,
        since=since,
        ack=ack,
        bookmark=bookmark,
        snapshot=snapshot,
    )


FILTER_ACK = "filter-ack"
BOOKMARK = "bookmark"
SNAPSHOT_END = "snapshot-end"


class Control:
    """A control frame, ``{"control":"<kind>","seq":S}``, queued like an event (so it keeps its place in
    the stream) and written as it is."""

    __slots__ = ("kind", "seq", "text")

    def __init__(self, kind: str, seq: int) -> None:
        self.kind = kind
        self.seq = seq
        self.text = control_text(kind, seq)


def control_text(kind: str, seq: int) -> str:
    return f'{{"control":"{kind}","seq":{seq}}}'


def text_with_seq(text: str, seq: int) -> str:
    """GARM's frame with ``"seq"`` appended as its last key (the frame always ends with ``}``)."""
    return f'{text[:-1]},"seq":{seq}}}'


ReadChangesAfter = Callable[[int, int], Awaitable[list[Change]]]
PrunedThrough = Callable[[], Awaitable[int]]


class ResumeUnavailable(Exception):
    """The change log no longer reaches back to the requested resume point."""


class Backlog:
    """A queue item standing for frames read from the database while they are sent (a resume's replay, a
    snapshot). After it, the stream stands at :attr:`position`; when :attr:`skips_live` is set, live
    deliveries queued behind it with ``seq <= position`` are already contained in it and are skipped."""

    position: int = 0
    skips_live: bool = False

    def frames(self) -> AsyncIterator[str]:
        raise NotImplementedError


@dataclass(slots=True)
class Replay(Backlog):
    """A queue item standing for "send the logged changes in ``(since, upto]`` that match ``match``".

    It is queued as the first item when the subscriber's first filter arrives, with ``upto`` = the hub's
    position at that instant, so every live delivery queued behind it has a larger ``seq``: replay and
    live stream meet with no gap and no duplicate.
    """

    since: int
    upto: int
    match: CompiledFilter
    read: ReadChangesAfter
    pruned_through: PrunedThrough

    @property
    def position(self) -> int:  # type: ignore[override]
        return self.upto

    async def frames(self) -> AsyncIterator[str]:
        """The frames to send, with ``seq``, read from the log in batches (never all at once)."""
        if self.since < await self.pruned_through():
            raise ResumeUnavailable(f"the change log was pruned past seq {self.since}")
        after = self.since
        while after < self.upto:
            rows = await self.read(after, REPLAY_BATCH)
            if not rows:
                return
            for change in rows:
                if change.seq > self.upto:
                    return
                if accepts(self.match, change.entity_type, change.operation, change.payload):
                    yield text_with_seq(change.frame.decode(), change.seq)
            after = rows[-1].seq
