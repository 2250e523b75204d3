"""``GET /api/v1/events/stream``: the events stream as Server-Sent Events (docs/events.md#server-sent-events),
for ``curl -N`` and browsers' ``EventSource``.

The same hub subscription, filter and extensions as the websocket
(:class:`~pygarm.events.stream.StreamSetup`): the filter message comes URL-encoded in ``?filter=``;
``since``, ``snapshot``, ``bookmark`` and ``ack`` mean what they mean there, and every frame carries
``seq``. Each event is ``id: <seq>`` and ``data: <frame>``; control frames are ``event: control``; a
``Last-Event-ID`` header (what ``EventSource`` sends when it reconnects) resumes after that ``seq``
instead of taking a new snapshot. When the server ends the stream (slow consumer, pruned resume point,
token expiry, shutdown, lost access) it first sends ``event: close`` with ``{"code":N,"reason":"…"}``,
the close code the websocket would have used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pygarm.api.errors import error_response
from pygarm.api.ws_events import check_principal, check_since, parse_options, stream_setup
from pygarm.events.extensions import Backlog, ResumeUnavailable, StreamOptions
from pygarm.events.filters import Decoded, Ignore, InvalidFilter, decode_filter
from pygarm.events.guard import AccessGuard
from pygarm.events.hub import Delivery, Hub, Subscription
from pygarm.events.mailbox import CloseCause
from pygarm.events.metrics import opt_ins
from pygarm.events.session import EventsSession, SetFilter
from pygarm.events.snapshot import Snapshot
from pygarm.events.stream import Bookmarks
from pygarm.stats import StreamStats

SSE_PATH: Final = "/events/stream"
"""Relative to ``/api/v1``."""
SSE_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def events_stream(request: Request) -> Response:
    options = parse_options(request)
    if isinstance(options, Response):
        return options
    principal = await check_principal(request)
    if isinstance(principal, Response):
        return principal
    filter_text = request.query_params.get("filter")
    if filter_text is None:
        return error_response(400, "Bad Request", "filter is required: a URL-encoded filter message")
    decoded = decode_filter(filter_text)
    if not isinstance(decoded, Decoded):
        reason = (
            "no filters provided"
            if isinstance(decoded, Ignore)
            else ("invalid filter" if isinstance(decoded, InvalidFilter) else "failed to unmarshal filter")
        )
        return error_response(400, "Bad Request", f"filter: {reason}")
    last_event_id = request.headers.get("last-event-id")
    if last_event_id:
        try:
            resume = int(last_event_id)
        except ValueError:
            return error_response(400, "Bad Request", "Last-Event-ID must be a non-negative integer")
        if resume < 0:
            return error_response(400, "Bad Request", "Last-Event-ID must be a non-negative integer")
        options = dataclasses.replace(options, since=resume, snapshot=False, with_seq=True)
    hub: Hub = request.app.state.hub
    refusal = await check_since(request, hub, options)
    if refusal is not None:
        return refusal
    subscription = hub.subscribe(f"sse-event-watcher-{principal.user_id}-{secrets.token_hex(4)}")
    setup, bookmarks = stream_setup(request, hub, subscription, options)
    labels = opt_ins(options)
    hub.stats.subscriber_joined(labels)  # /metrics: pygarm_events_subscribers
    if options.since is not None:
        hub.stats.resumes += 1
    guard: AccessGuard | None = getattr(request.app.state, "access_guard", None)
    if guard is not None:
        guard.register(principal.user_id, principal.generation, subscription)
    # The filter takes effect now, before the response starts: nothing committed from here on is missed.
    setup.on_filter(SetFilter(decoded.filter, decoded.message))
    stream = _stream(subscription, bookmarks, principal.expires_at, options, hub.stats)

    async def body() -> AsyncIterator[str]:
        try:
            async for chunk in stream:
                yield chunk
        finally:
            hub.stats.subscriber_left(labels)
            subscription.close()
            if guard is not None:
                guard.unregister(principal.user_id, subscription)

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


def _seq_of(frame: str) -> str:
    """The ``seq`` of a frame that ends with ``"seq":N}`` (every frame this route sends)."""
    return frame[frame.rindex(":") + 1 : -1]


def _event(frame: str) -> str:
    if frame.startswith('{"control"'):
        return f"event: control\nid: {_seq_of(frame)}\ndata: {frame}\n\n"
    return f"id: {_seq_of(frame)}\ndata: {frame}\n\n"


async def _stream(
    subscription: Subscription,
    bookmarks: Bookmarks | None,
    expires_at: float | None,
    options: StreamOptions,
    stats: StreamStats,
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    expiry = loop.call_later(_seconds_until(expires_at), subscription.close, CloseCause.CLOSED)
    floor = 0
    try:
        while True:
            item: Any = subscription.pop()
            if item is None:
                if subscription.cause is not None:
                    break
                if bookmarks is None:
                    await subscription.park()
                else:
                    text = await bookmarks.idle(subscription)
                    if text is not None:
                        yield _event(text)
                continue
            if type(item) is Delivery:
                if floor and item.change.seq <= floor:
                    continue
                floor = 0
                yield f"id: {item.change.seq}\ndata: {item.seq_text}\n\n"
            elif isinstance(item, Backlog):
                started = loop.time()
                kind = "snapshot" if isinstance(item, Snapshot) else "replay"
                try:
                    async for frame in item.frames():
                        yield _event(frame)
                except ResumeUnavailable:
                    stats.backlog_sent(kind, loop.time() - started, complete=False)
                    subscription.close(CloseCause.RESUME_UNAVAILABLE)
                    continue
                stats.backlog_sent(kind, loop.time() - started, complete=True)
                floor = item.position if item.skips_live else 0
                if bookmarks is not None:
                    bookmarks.reached(item.position)
            else:
                yield _event(item.text)
        close = EventsSession().close_for(subscription.cause or CloseCause.CLOSED, subscription.limit)
        if close is not None:
            data = orjson.dumps({"code": close.code, "reason": close.reason}).decode()
            yield f"event: close\ndata: {data}\n\n"
    finally:
        expiry.cancel()


def _seconds_until(expires_at: float | None) -> float:
    return 0.0 if expires_at is None else max(0.0, expires_at - time.time())


router = APIRouter()
router.add_api_route(SSE_PATH, events_stream, methods=["GET"], include_in_schema=False)
