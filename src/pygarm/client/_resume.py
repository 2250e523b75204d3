"""pygarm's opt-in stream extensions as a reader sees them (docs/events.md#opt-in-extensions): which
query parameters each connection asks for, and where in the change log a resuming stream stands.

GARM has none of this; a reader that asks for nothing sends GARM's URL and nothing here runs.

:class:`Position` is the part of the sans-I/O core that makes resuming exact. It keeps the last ``seq``
up to which the stream holds everything its filter selects:

* an event frame's ``seq`` (the key is always last: ``…,"seq":N}``);
* ``snapshot-end``'s ``seq`` once a snapshot is complete. The snapshot frames themselves carry the same
  ``seq`` but do not count: a connection lost halfway through a snapshot has not got the state at that
  position, so the next connection asks for a whole snapshot again;
* a ``bookmark``'s ``seq`` (the server sends it in stream order, after everything before it);
* a ``filter-ack``'s ``seq`` only while no position is known yet: on a fresh subscription it is the
  point the filter took effect, so a connection lost before any event still resumes without a gap.
  On a resumed connection the replay may still be in flight behind the acknowledgement, so it is not
  taken then.

Each new connection then asks for ``since=<position>`` and the server replays what the filter selects
after it: no gap, no duplicate. Without a position, a snapshot-reading stream asks for a new snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

CLOSE_RESUME_UNAVAILABLE: Final = 4001
"""The server's close code for a ``since`` older than what retention kept."""
SNAPSHOT: Final = "snapshot"
"""The ``operation`` of the frames of a snapshot."""
SNAPSHOT_END: Final = "snapshot-end"
FILTER_ACK: Final = "filter-ack"
BOOKMARK: Final = "bookmark"

_SNAPSHOT_MARK: Final = b'"operation":"snapshot"'
_SEQ_KEY: Final = b',"seq":'


@dataclass(frozen=True, slots=True)
class Control:
    """A control frame of pygarm's extensions, e.g. ``{"control":"snapshot-end","seq":42}``."""

    kind: str
    seq: int | None
    raw: bytes


def decode_control(data: str | bytes) -> Control | None:
    """A frame → :class:`Control`; ``None`` for events and GARM's texts."""
    raw = data.encode() if isinstance(data, str) else data
    if not raw.startswith(b'{"control"'):
        return None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("control"), str):
        return None
    seq = document.get("seq")
    return Control(
        document["control"], seq if isinstance(seq, int) and not isinstance(seq, bool) else None, raw
    )


def event_seq(raw: bytes) -> int | None:
    """The ``seq`` of an event frame (its last key), without decoding the payload."""
    at = raw.rfind(_SEQ_KEY, max(0, len(raw) - 40))
    if at < 0 or not raw.endswith(b"}"):
        return None
    digits = raw[at + len(_SEQ_KEY) : -1]
    return int(digits) if digits.isdigit() else None


def is_snapshot_frame(raw: bytes) -> bool:
    """Whether an event frame belongs to a snapshot (its operation is ``snapshot``)."""
    return _SNAPSHOT_MARK in raw[:96]


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """What a reader asks the server for; every field off is GARM's protocol unchanged.

    ``resume``: remember the position and reconnect with ``since=`` (implies reconnecting);
    ``resnapshot``: after a 4001, start over with a snapshot instead of raising ``ResumeUnavailable``
    (for state mirrors; needs ``snapshot``).
    """

    seq: bool = False
    since: int | None = None
    snapshot: bool = False
    ack: bool = False
    bookmark: float | None = None
    resume: bool = False
    resnapshot: bool = False

    def __post_init__(self) -> None:
        if self.since is not None and self.since < 0:
            raise ValueError("since must be a non-negative integer")
        if self.since is not None and self.snapshot:
            raise ValueError("snapshot and since exclude each other: a snapshot starts from the present")
        if self.bookmark is not None and self.bookmark <= 0:
            raise ValueError("bookmark must be a positive number of seconds")
        if self.resnapshot and not (self.snapshot and self.resume):
            raise ValueError("resnapshot needs snapshot and resume")

    @property
    def extended(self) -> bool:
        """Whether anything beyond GARM's protocol is asked for."""
        return self != StreamOptions()


@dataclass(slots=True)
class Position:
    """The resume point of one stream (see the module docstring) and the query of its next connection."""

    options: StreamOptions
    seq: int | None = None
    awaiting_snapshot: bool = False
    """This connection asked for a snapshot and its ``snapshot-end`` has not arrived yet."""
    _first: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        self.seq = self.options.since

    def query(self) -> dict[str, str]:
        """The query parameters of the next connection attempt."""
        o = self.options
        if not o.extended:
            return {}
        query = {"seq": "true"}
        since = self.seq if (o.resume or self._first) else None
        if since is not None:
            query["since"] = str(since)
        elif o.snapshot:
            query["snapshot"] = "true"
        if o.ack or o.resume:
            query["ack"] = "true"
        if o.bookmark is not None:
            query["bookmark"] = f"{o.bookmark:g}"
        return query

    def opened(self) -> bool:
        """A connection opened with :meth:`query`; True when it continues without a gap (it resumed
        from a position or starts from a fresh snapshot)."""
        query = self.query()
        self._first = False
        self.awaiting_snapshot = "snapshot" in query  # what a lost connection sent of one is void
        return "since" in query or self.awaiting_snapshot

    def observe(self, raw: bytes) -> None:
        """Every text frame, in order."""
        if not self.options.extended or raw[:1] != b"{":
            return
        if raw.startswith(b'{"control"'):
            control = decode_control(raw)
            if control is None or control.seq is None:
                return
            if control.kind == SNAPSHOT_END:
                self.seq, self.awaiting_snapshot = control.seq, False
            elif self.awaiting_snapshot:
                return
            elif control.kind == BOOKMARK:
                self.seq = max(self.seq or 0, control.seq)
            elif control.kind == FILTER_ACK and self.seq is None:
                self.seq = control.seq
            return
        if self.awaiting_snapshot or is_snapshot_frame(raw):
            return
        seq = event_seq(raw)
        if seq is not None:
            self.seq = seq

    def forget(self) -> None:
        """The server no longer holds the log after :attr:`seq` (4001): start over with a snapshot."""
        self.seq = None
        self.awaiting_snapshot = False


def with_query(url: str, query: dict[str, str]) -> str:
    """``url`` with ``query`` as its query string (replacing any)."""
    if not query:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
