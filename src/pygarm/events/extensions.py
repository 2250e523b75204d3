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

Go clients ignore unknown keys, so even a GARM client that was handed a ``seq`` frame would decode it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from pygarm.events.change import Change
from pygarm.events.filters import CompiledFilter

REPLAY_BATCH = 500
"""Logged changes read per round while replaying a resume."""

SINCE_BEYOND_HEAD = "resume point is beyond the head of the change log"
"""Start of the 400 ``details`` for ``?since=N`` with N past the log's head (issue 8 #10): the client's
state came from another or a restored database; it must reload over REST instead of resuming."""

_TRUE = frozenset({"1", "t", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "f", "false", "no", "off"})


class InvalidStreamOptions(ValueError):
    """A query parameter of the extension is malformed; the upgrade is refused with 400."""


@dataclass(frozen=True, slots=True)
class StreamOptions:
    with_seq: bool = False
    since: int | None = None


def parse_stream_options(query: Mapping[str, str]) -> StreamOptions:
    """Read ``seq`` and ``since`` from the websocket URL's query string."""
    seq_text = query.get("seq", "").strip().lower()
    if seq_text not in _TRUE | _FALSE:
        raise InvalidStreamOptions("seq must be true or false")
    since_text = query.get("since")
    since: int | None = None
    if since_text is not None:
        try:
            since = int(since_text)
        except ValueError:
            raise InvalidStreamOptions("since must be a non-negative integer") from None
        if since < 0:
            raise InvalidStreamOptions("since must be a non-negative integer")
    return StreamOptions(with_seq=seq_text in _TRUE or since is not None, since=since)


def text_with_seq(text: str, seq: int) -> str:
    """GARM's frame with ``"seq"`` appended as its last key (the frame always ends with ``}``)."""
    return f'{text[:-1]},"seq":{seq}}}'


ReadChangesAfter = Callable[[int, int], Awaitable[list[Change]]]
PrunedThrough = Callable[[], Awaitable[int]]


class ResumeUnavailable(Exception):
    """The change log no longer reaches back to the requested resume point."""


@dataclass(slots=True)
class Replay:
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
                if (change.entity_type, change.operation) in self.match:
                    yield text_with_seq(change.frame.decode(), change.seq)
            after = rows[-1].seq
