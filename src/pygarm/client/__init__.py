"""pygarm's client library: GARM's REST API and events stream, sync and async, typed with ``params``.

::

    from pygarm.client import GarmClient

    with GarmClient("http://127.0.0.1:9997", token=token) as garm:
        for repo in garm.list_repositories():
            print(repo.owner, repo.name)
        for event in garm.events(filters={"pool": None}, reconnect=True):
            print(event.entity_type, event.operation, event.payload.id)
        with StateMirror(garm, filters=["pool"]) as mirror:   # snapshot + events, kept current
            print(len(mirror.state["pool"]), "pools")

``AsyncGarmClient`` has the same methods as coroutines (``async for event in garm.events(...)``), and
:class:`EventReader` is GARM's own handler-style reader. Errors are one tree under
:class:`GarmClientError` (see :mod:`pygarm.client.errors`).
"""

from pygarm.client._core import UNSET, Unset, make_request
from pygarm.client._protocol import (
    EVENTS_PATH,
    Event,
    EventPayload,
    FilterSpec,
    Gap,
    MatchSpec,
    backoff,
    build_filter,
)
from pygarm.client._resume import Control, StreamOptions, decode_control
from pygarm.client.errors import (
    APIError,
    ConnectError,
    DecodeError,
    EventsClosed,
    EventsClosedError,
    EventsClosedOK,
    FilterRejected,
    GarmClientError,
    HandshakeError,
    ResumeUnavailable,
)
from pygarm.client.events import BINARY_MESSAGE, TEXT_MESSAGE, AsyncEventStream, EventReader, EventStream
from pygarm.client.mirror import AsyncStateMirror, StateMirror
from pygarm.client.profiles import Profile, ProfileError, ProfileFile
from pygarm.client.rest import AsyncGarmClient, GarmClient

__all__ = [
    "BINARY_MESSAGE",
    "EVENTS_PATH",
    "TEXT_MESSAGE",
    "UNSET",
    "APIError",
    "AsyncEventStream",
    "AsyncGarmClient",
    "AsyncStateMirror",
    "ConnectError",
    "Control",
    "DecodeError",
    "Event",
    "EventPayload",
    "EventReader",
    "EventStream",
    "EventsClosed",
    "EventsClosedError",
    "EventsClosedOK",
    "FilterRejected",
    "FilterSpec",
    "Gap",
    "GarmClient",
    "GarmClientError",
    "HandshakeError",
    "MatchSpec",
    "Profile",
    "ProfileError",
    "ProfileFile",
    "ResumeUnavailable",
    "StateMirror",
    "StreamOptions",
    "Unset",
    "backoff",
    "build_filter",
    "decode_control",
    "make_request",
]
