"""The events half of the client's sans-I/O core: every decision a reader makes, and none of its I/O.

A reader face (``events.py``: asyncio, threads, and the GARM-style handler reader) only opens sockets,
moves frames and sleeps. It asks :class:`StreamState` what to do at each step:

* ``opened()`` after a handshake: the filter to (re-)send, and whether a gap must be reported;
* ``received(frame)`` for every text frame: remembers the server's last non-event text, because GARM
  answers a bad filter with a text frame (``invalid filter``) followed by an ordinary close 1000;
* ``closed(...)`` / ``failed(...)``: how long to wait before reconnecting, or the error that ends the
  stream. Reconnecting is opt-in; without it a normal close ends the stream quietly and anything else
  raises.

Why a reconnect can lose events: GARM has no replay. Events committed while no socket is subscribed
are never sent to this client, so each reconnect is reported as a :class:`Gap` (logged as a warning by
default) and the caller decides whether to re-list what it cares about over REST. A pygarm server can
replay: with ``resume`` the state's :class:`~pygarm.client._resume.Position` remembers the last ``seq``
and each reconnect asks for ``since=`` it, which is not a gap (``client/_resume.py``).

Frame decoding (:func:`decode_event`), URL rules (:func:`events_url`), the filter message
(:func:`build_filter`) and the backoff (:func:`backoff`) are plain functions for the same reason: the
tests drive them without a socket.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import orjson
from pydantic import BaseModel, ValidationError

from pygarm.client._resume import CLOSE_RESUME_UNAVAILABLE, Position, StreamOptions, with_query
from pygarm.client.errors import (
    ConnectError,
    EventsClosed,
    EventsClosedError,
    EventsClosedOK,
    FilterRejected,
    GarmClientError,
    HandshakeError,
    ResumeUnavailable,
)
from pygarm.events.change import EntityType, Operation
from pygarm.events.filters import EventFilter, FilterMessage
from pygarm.params.models import (
    ControllerInfo,
    Enterprise,
    GithubCredentials,
    GithubEndpoint,
    Instance,
    Job,
    Organization,
    Pool,
    Repository,
    User,
)

log = logging.getLogger("pygarm.client.events")

EVENTS_PATH: Final = "/api/v1/ws/events"
"""GARM's events endpoint (docs/garm-protocol.md#websocket-routes)."""
PING_INTERVAL_S: Final = 20.0
"""Client pings keep idle connections alive through proxies (most cut idle TCP after 60 s or more)."""
PING_TIMEOUT_S: Final = 20.0
"""A pong later than this means the path is dead; the reader then closes and (optionally) reconnects."""
OPEN_TIMEOUT_S: Final = 10.0
"""For the TCP + TLS + HTTP upgrade; GARM answers the upgrade without doing any slow work."""
CLOSE_TIMEOUT_S: Final = 5.0
MAX_FRAME_BYTES: Final = 2**20
"""GARM's own Go reader stops at 16 KiB (v0.1.5) and 1 MiB later; a pool with many instances is larger
than 16 KiB, so pygarm uses the later limit."""
STABLE_AFTER_S: Final = 10.0
"""A connection that stayed open this long (or delivered an event) resets the backoff; one that the
server keeps closing right away does not, so a refusing server is not hammered."""

NORMAL_CLOSE_CODES: Final = frozenset({1000, 1001})
FILTER_REJECTIONS: Final = frozenset({"invalid filter", "failed to unmarshal filter"})
"""The two texts GARM sends before closing a connection whose filter it refused
(docs/garm-protocol.md#filter-rules)."""
FATAL_HANDSHAKE_STATUSES: Final = frozenset({400, 401, 403, 404, 405, 409, 426})
"""A bad token, a non-admin user, an uninitialized controller (409): retrying cannot help."""

PAYLOAD_MODELS: Final[Mapping[str, type[BaseModel]]] = {
    EntityType.REPOSITORY: Repository,
    EntityType.ORGANIZATION: Organization,
    EntityType.ENTERPRISE: Enterprise,
    EntityType.POOL: Pool,
    EntityType.USER: User,
    EntityType.INSTANCE: Instance,
    EntityType.JOB: Job,
    EntityType.CONTROLLER: ControllerInfo,
    EntityType.GITHUB_CREDENTIALS: GithubCredentials,
    EntityType.GITHUB_ENDPOINT: GithubEndpoint,
}
"""The wire model of each entity type's payload (docs/garm-protocol.md#which-operations-emit-events). Deletes
of pools, jobs, endpoints and credentials carry a mostly zero-valued object
(docs/garm-protocol.md#delete-payloads); it still parses into the same model."""

EventPayload: TypeAlias = (
    Repository
    | Organization
    | Enterprise
    | Pool
    | User
    | Instance
    | Job
    | ControllerInfo
    | GithubCredentials
    | GithubEndpoint
    | dict[str, Any]
)
"""A model for every GARM v0.1.5 entity type; a plain dict for types a newer server may add."""


@dataclass(frozen=True, slots=True)
class Event:
    """One change as the server sent it. ``raw`` is the frame exactly as received (GARM's bytes)."""

    entity_type: EntityType | str
    operation: Operation | str
    payload: EventPayload
    raw: bytes


@dataclass(frozen=True, slots=True)
class Gap:
    """The stream was down from ``lost_at`` to ``resumed_at``: events committed then were not received."""

    lost_at: datetime
    resumed_at: datetime
    attempts: int
    cause: str

    def describe(self) -> str:
        seconds = (self.resumed_at - self.lost_at).total_seconds()
        since, until = self.lost_at.isoformat(), self.resumed_at.isoformat()
        return (
            f"events stream reconnected after {seconds:.1f}s ({self.attempts} attempt(s); lost: "
            f"{self.cause}); events between {since} and {until} may have been missed"
        )


FilterSpec: TypeAlias = (
    FilterMessage | Mapping[str, Iterable[str] | None] | Iterable[str] | str | bytes | None
)
"""What ``events(filters=...)`` accepts; see :func:`build_filter`."""

MatchValue: TypeAlias = str | int | float | bool
MatchSpec: TypeAlias = Mapping[str, MatchValue | Iterable[MatchValue]] | None
"""Field filters (pygarm's ``match``): payload field → value or values; see :func:`add_match`."""


def build_filter(spec: FilterSpec, *, match: MatchSpec = None) -> bytes:
    """The filter message to send, from any of these:

    * ``None``: everything (``{"send-everything":true}``);
    * a :class:`FilterMessage`;
    * a mapping ``{"pool": ["create", "delete"], "repository": None}`` (``None``/empty = all operations);
    * an iterable of ``"TYPE[:op,op]"`` strings, the CLI's ``--entity`` syntax;
    * ``str``/``bytes``: raw JSON sent verbatim, as ``garm-cli debug-events --filters`` does (the server
      validates it; a rejection ends the stream with :class:`FilterRejected`).

    Everything but raw JSON is validated here, so a typo fails before any socket is opened. ``match``
    adds pygarm's field filters to every filter (:func:`add_match`).
    """
    if match:
        return add_match(build_filter(spec), match)
    if spec is None:
        return FilterMessage(send_everything=True).encode()
    if isinstance(spec, bytes):
        return spec
    if isinstance(spec, str):
        return spec.encode()
    if isinstance(spec, FilterMessage):
        return spec.encode()
    try:
        if isinstance(spec, Mapping):
            filters = [
                EventFilter(entity_type=EntityType(name), operations=[Operation(op) for op in ops or ()])
                for name, ops in spec.items()
            ]
        else:
            filters = [parse_entity_filter(item) for item in spec]
    except ValueError as exc:
        raise ValueError(f"invalid events filter: {exc}") from None
    if not filters:
        raise ValueError("invalid events filter: no entity types given")
    return FilterMessage(filters=filters).encode()


def add_match(message: bytes, match: Mapping[str, MatchValue | Iterable[MatchValue]]) -> bytes:
    """``message`` with ``"match": {field: value or [values]}`` in each of its filters (pygarm's field
    filters: AND across fields, OR within a list; GARM ignores the key). ``send-everything`` becomes
    one filter per entity type, so the match applies to all of them."""
    rules: dict[str, MatchValue | list[MatchValue]] = {}
    for name, value in match.items():
        values = [value] if isinstance(value, (str, int, float, bool)) else list(value)
        if not name or not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise ValueError(
                f"invalid match for {name!r}: expected a string, number, boolean or a list of them"
            )
        rules[name] = values[0] if len(values) == 1 else values
    try:
        document = orjson.loads(message)
    except orjson.JSONDecodeError:
        raise ValueError("invalid events filter: match needs a JSON filter message") from None
    if not isinstance(document, dict):
        raise ValueError("invalid events filter: match needs a JSON filter message")
    filters = document.get("filters") or []
    if document.get("send-everything") is True:
        filters = [{"entity-type": entity.value} for entity in EntityType]
    if not isinstance(filters, list) or not filters:
        raise ValueError("invalid events filter: match needs at least one entity type")
    out = [{**item, "match": rules} for item in filters if isinstance(item, dict)]
    return orjson.dumps({"filters": out})


def parse_entity_filter(text: str) -> EventFilter:
    """``"pool"`` or ``"pool:create,delete"`` → one filter; names are checked against GARM's enums."""
    name, _, ops = text.strip().partition(":")
    try:
        entity = EntityType(name.strip())
    except ValueError:
        choices = ", ".join(item.value for item in EntityType)
        raise ValueError(f"unknown entity type {name!r} (one of: {choices})") from None
    operations: list[Operation] = []
    for op in filter(None, (part.strip() for part in ops.split(","))):
        try:
            operations.append(Operation(op))
        except ValueError:
            raise ValueError(
                f"unknown operation {op!r} for {entity.value} (create, update, delete)"
            ) from None
    return EventFilter(entity_type=entity, operations=operations)


def events_url(base_url: str, path: str = EVENTS_PATH, *, keep_prefix: bool = True) -> str:
    """The websocket URL: ``https`` → ``wss``, anything else → ``ws``; ``ws(s)://`` is taken as is.

    GARM's Go reader keeps only the host of the profile URL and drops any path prefix
    (docs/garm-protocol.md#debug-events); the GARM-style reader does the same (``keep_prefix=False``), while
    :meth:`GarmClient.events` keeps a reverse-proxy prefix so it reaches the same server as the REST calls.
    """
    parts = urlsplit(base_url.strip())
    if not parts.netloc:
        raise ValueError(f"invalid base URL {base_url!r}: expected http(s)://host[:port]")
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    prefix = parts.path.rstrip("/") if keep_prefix else ""
    if prefix.endswith("/api/v1") and path.startswith("/api/v1/"):
        prefix = prefix[: -len("/api/v1")]
    return urlunsplit((scheme, parts.netloc, prefix + "/" + path.lstrip("/"), "", ""))


def decode_event(data: str | bytes) -> Event | None:
    """A frame → :class:`Event`; ``None`` for anything that is not an event (GARM's error texts)."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or "entity-type" not in document:
        return None
    entity = str(document.get("entity-type", ""))
    operation = str(document.get("operation", ""))
    payload: Any = document.get("payload")
    model = PAYLOAD_MODELS.get(entity)
    if model is not None and isinstance(payload, dict):
        try:
            payload = model.model_validate(payload)
        except ValidationError:
            log.warning(
                "events: %s payload does not match the %s model; kept as a dict", entity, model.__name__
            )
    if not isinstance(payload, (BaseModel, dict)):
        payload = {"value": payload}
    return Event(
        entity_type=_enum_or_str(EntityType, entity),
        operation=_enum_or_str(Operation, operation),
        payload=payload,
        raw=raw,
    )


def _enum_or_str(enum: type[EntityType] | type[Operation], value: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        return value


def closed_error(code: int | None, reason: str = "", server_message: str = "") -> EventsClosed:
    """What a close means: GARM's filter rejection, a normal close, or a failure."""
    if server_message in FILTER_REJECTIONS:
        return FilterRejected(code, reason, server_message)
    if code == CLOSE_RESUME_UNAVAILABLE:
        return ResumeUnavailable(code, reason, server_message)
    if code in NORMAL_CLOSE_CODES:
        return EventsClosedOK(code, reason, server_message)
    return EventsClosedError(code, reason, server_message)


def is_retryable(error: GarmClientError) -> bool:
    """Worth reconnecting after? Auth and filter problems are not; network and server trouble is."""
    if isinstance(error, (FilterRejected, ResumeUnavailable)):
        return False
    if isinstance(error, HandshakeError):
        return error.status not in FATAL_HANDSHAKE_STATUSES
    return isinstance(error, (ConnectError, EventsClosed))


def backoff(
    initial: float = 1.0,
    minimum: float = 1.0,
    maximum: float = 60.0,
    factor: float = 2.0,
    jitter: float = 0.5,
    rng: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Reconnect delays: a random first delay in ``[0, initial)`` (RFC 6455 §7.2.3, so clients dropped
    together do not return together), then ``minimum * factor**n`` capped at ``maximum``, each reduced
    by up to ``jitter`` of itself at random."""
    yield rng() * initial
    delay = minimum
    while True:
        yield delay * (1.0 - jitter * rng())
        delay = min(delay * factor, maximum)


class StreamState:
    """The reconnect policy of one events stream; see the module docstring for the call sequence.

    ``filter_message`` is re-sent after every handshake. The GARM-style reader starts without one and
    records what the caller writes (:meth:`remember_filter`), so a reconnect restores it too.
    ``options`` are pygarm's extensions (:class:`~pygarm.client._resume.StreamOptions`); with
    ``resume`` each reconnect continues from :attr:`position` and is not a gap.
    """

    def __init__(
        self,
        *,
        filter_message: bytes | None,
        reconnect: bool,
        delays: Callable[[], Iterator[float]] = backoff,
        on_gap: Callable[[Gap], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        options: StreamOptions | None = None,
    ) -> None:
        self.filter_message = filter_message
        self.options = options or StreamOptions()
        self.position = Position(self.options)
        self.reconnect = reconnect or self.options.resume
        self._delays_factory = delays
        self._delays = delays()
        self._on_gap = on_gap or (lambda gap: log.warning("%s", gap.describe()))
        self._clock = clock
        self._lost_at: datetime | None = None
        self._lost_cause = ""
        self._attempts = 0
        self._server_message = ""
        self._events_since_open = 0
        self.connections = 0
        self.gaps: list[Gap] = []
        self.ended_by: EventsClosedOK | None = None
        """The normal close that ended the stream quietly (a caller may still want to say why)."""

    def remember_filter(self, message: bytes) -> None:
        self.filter_message = message

    def url(self, base: str) -> str:
        """The URL of the next connection attempt: ``base`` with the extensions' query."""
        return with_query(base, self.position.query())

    def opened(self) -> bytes | None:
        """A handshake succeeded. Returns the filter to send now (``None``: send nothing)."""
        self.connections += 1
        self._server_message = ""
        self._events_since_open = 0
        continues = self.position.opened()
        if continues and self.connections > 1:
            self._lost_at = None  # resumed from a position or a fresh snapshot: nothing was missed
        if self._lost_at is not None:
            gap = Gap(self._lost_at, self._clock(), self._attempts, self._lost_cause)
            self.gaps.append(gap)
            self._lost_at = None
            self._on_gap(gap)
        self._attempts = 0
        return self.filter_message

    def received(self, data: str | bytes) -> None:
        """Every inbound frame; a non-event text is kept, as it may explain the close that follows."""
        head = data[:1]
        if head in ("{", b"{"):
            self._events_since_open += 1
            self.position.observe(data.encode() if isinstance(data, str) else data)
            return
        self._server_message = (data.decode("utf-8", "replace") if isinstance(data, bytes) else data).strip()

    def closed(self, code: int | None, reason: str, open_for_s: float) -> float | None:
        """The socket closed after being open ``open_for_s`` seconds. Returns the delay before the next
        attempt, ``None`` to end quietly (normal close, no reconnect), or raises the closing error."""
        error = closed_error(code, reason, self._server_message)
        if isinstance(error, ResumeUnavailable) and self.options.resnapshot:
            self.position.forget()
            return self._lost(error)
        if self.reconnect and is_retryable(error):
            if open_for_s >= STABLE_AFTER_S or self._events_since_open:
                self._delays = self._delays_factory()
            return self._lost(error)
        if isinstance(error, EventsClosedOK):
            self.ended_by = error
            return None
        raise error

    def failed(self, error: GarmClientError) -> float:
        """A connection attempt failed. Returns the delay before the next one, or raises ``error``."""
        if self.reconnect and self.connections and is_retryable(error):
            return self._lost(error)
        raise error

    def _lost(self, error: GarmClientError) -> float:
        if self._lost_at is None:
            self._lost_at = self._clock()
            self._lost_cause = str(error)
        self._attempts += 1
        return next(self._delays)
