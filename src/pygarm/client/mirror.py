"""A local copy of the server's state, kept current by the events stream: :class:`StateMirror` (a
background thread) and :class:`AsyncStateMirror` (an asyncio task).

::

    with GarmClient.from_profile() as garm, StateMirror(garm, filters=["pool", "instance"]) as mirror:
        mirror.wait_for(lambda m: any(i.status == "running" for i in m.state["instance"].values()))

The mirror subscribes with a snapshot: the server sends the current state of every entity the filter
selects, then ``snapshot-end`` at log position S, then live events after S (docs/events.md). It resumes
after network cuts and server restarts from the last position with ``since=`` (no reload, no gap, no
duplicate) and, if the server pruned its log past that position (4001), takes a new snapshot by itself
and reports what changed meanwhile. :attr:`state` is entity type → key → payload (typed models, keyed
by ID; GitHub endpoints by name). ``on_change`` callbacks receive ``(entity_type, operation, payload)``
with operation ``create``/``update``/``delete``, or ``snapshot`` for entities a snapshot added or changed.

Field filters (``match``) narrow what is mirrored, e.g. the instances of one pool. Match only on fields
that do not change (IDs): an entity whose field stops matching sends no event, so it would stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self

from pygarm.client._mirror import MirrorCore, Note, State
from pygarm.client._protocol import (
    EVENTS_PATH,
    EventPayload,
    FilterSpec,
    MatchSpec,
    StreamState,
    backoff,
    build_filter,
    events_url,
)
from pygarm.client._resume import StreamOptions
from pygarm.client.errors import GarmClientError
from pygarm.client.events import OPENED, TEXT_MESSAGE, _SyncSocket, async_frames, sync_frames
from pygarm.client.rest import AsyncGarmClient, GarmClient

__all__ = ["AsyncStateMirror", "ChangeCallback", "StateMirror"]

log = logging.getLogger("pygarm.client.mirror")

ChangeCallback = Callable[[str, str, EventPayload], object]
DEFAULT_BOOKMARK_S = 30.0
"""Ask for a bookmark after this long without a frame, so a mirror of rare events resumes near the head."""
DEFAULT_START_TIMEOUT_S = 30.0


class _Mirror:
    """What both faces share: the stream's state, the core and the callbacks."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        filters: FilterSpec,
        match: MatchSpec,
        bookmark: float | None,
        delays: Callable[[], Iterator[float]],
    ) -> None:
        self._url = events_url(base_url, EVENTS_PATH)
        self._token = token or ""
        options = StreamOptions(snapshot=True, resume=True, resnapshot=True, bookmark=bookmark)
        self._stream = StreamState(
            filter_message=build_filter(filters, match=match), reconnect=True, delays=delays, options=options
        )
        self._core = MirrorCore()
        self._callbacks: list[ChangeCallback] = []
        self.error: GarmClientError | None = None
        """What stopped the mirror, if it stopped by itself (a refused filter, a revoked token)."""

    def on_change(self, callback: ChangeCallback) -> ChangeCallback:
        """Call ``callback(entity_type, operation, payload)`` after each change; usable as a decorator.
        Callbacks run on the mirror's thread (task) in stream order; one that raises is logged."""
        self._callbacks.append(callback)
        return callback

    @property
    def seq(self) -> int | None:
        """The log position the state is at (``None`` before the first snapshot)."""
        return self._stream.position.seq

    @property
    def ready(self) -> bool:
        """The first snapshot is complete."""
        return self._core.ready

    @property
    def snapshots(self) -> int:
        """How many snapshots the mirror has loaded: 1 unless the server could not resume it (4001)."""
        return self._core.snapshots

    def _notify(self, notes: list[Note]) -> None:
        for note in notes:
            for callback in self._callbacks:
                try:
                    callback(note.entity_type, note.operation, note.payload)
                except Exception:
                    log.exception("state mirror callback failed")


class StateMirror(_Mirror):
    """The blocking mirror: a background thread applies the stream; see the module docstring."""

    def __init__(
        self,
        client: GarmClient,
        filters: FilterSpec = None,
        *,
        match: MatchSpec = None,
        bookmark: float | None = DEFAULT_BOOKMARK_S,
        delays: Callable[[], Iterator[float]] = backoff,
    ) -> None:
        super().__init__(client.base_url, client.token, filters, match, bookmark, delays)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._socket = _SyncSocket()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def state(self) -> State:
        """A consistent copy of the mirrored state (entity type → key → payload)."""
        with self._lock:
            return self._core.copy()

    def start(self, timeout: float | None = DEFAULT_START_TIMEOUT_S) -> Self:
        """Connect and wait until the first snapshot is in (``timeout=None``: do not wait). Raises the
        client error of a failed first connection, or ``TimeoutError``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pygarm-mirror", daemon=True)
            self._thread.start()
        if timeout is not None:
            self.wait_for(lambda mirror: mirror.ready, timeout)
        return self

    def stop(self) -> None:
        """Close the stream and wait for the thread; safe from any thread, repeatedly."""
        self._socket.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def wait_for(self, predicate: Callable[[StateMirror], object], timeout: float) -> None:
        """Block until ``predicate(mirror)`` is true (checked after every change); raises
        ``TimeoutError``, or the error that stopped the mirror."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if predicate(self):
                    return
                if self.error is not None:
                    raise self.error
                if self._stopped.is_set():
                    raise GarmClientError("the state mirror is stopped")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"state mirror: condition not met within {timeout:g}s")
                self._changed.wait(remaining)

    def _run(self) -> None:
        try:
            for kind, data in sync_frames(self._url, self._token, self._stream, self._socket):
                with self._changed:
                    if kind == OPENED:
                        self._core.opened()
                        continue
                    if kind != TEXT_MESSAGE:
                        continue
                    notes = self._core.feed(data)
                    self._changed.notify_all()
                self._notify(notes)
        except GarmClientError as exc:
            self.error = exc
            log.error("state mirror stopped: %s", exc)
        finally:
            with self._changed:
                self._stopped.set()
                self._changed.notify_all()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


class AsyncStateMirror(_Mirror):
    """The asyncio mirror: a task applies the stream; the same behaviour as :class:`StateMirror`."""

    def __init__(
        self,
        client: AsyncGarmClient,
        filters: FilterSpec = None,
        *,
        match: MatchSpec = None,
        bookmark: float | None = DEFAULT_BOOKMARK_S,
        delays: Callable[[], Iterator[float]] = backoff,
    ) -> None:
        super().__init__(client.base_url, client.token, filters, match, bookmark, delays)
        self._task: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None

    @property
    def state(self) -> State:
        """A copy of the mirrored state (entity type → key → payload)."""
        return self._core.copy()

    async def start(self, timeout: float | None = DEFAULT_START_TIMEOUT_S) -> Self:
        """Connect and wait until the first snapshot is in (see :meth:`StateMirror.start`)."""
        if self._task is None:
            self._changed = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="pygarm-mirror")
        if timeout is not None:
            await self.wait_for(lambda mirror: mirror.ready, timeout)
        return self

    async def stop(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_for(self, predicate: Callable[[AsyncStateMirror], object], timeout: float) -> None:
        """Wait until ``predicate(mirror)`` is true; raises ``TimeoutError`` or the mirror's error."""
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            if predicate(self):
                return
            if self.error is not None:
                raise self.error
            if changed is None or self._task is None or self._task.done():
                raise GarmClientError("the state mirror is not running")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"state mirror: condition not met within {timeout:g}s")
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue

    async def _run(self) -> None:
        try:
            async for kind, data in async_frames(self._url, self._token, self._stream):
                if kind == OPENED:
                    self._core.opened()
                elif kind == TEXT_MESSAGE:
                    notes = self._core.feed(data)
                    self._notify(notes)
                    self._wake()
        except GarmClientError as exc:
            self.error = exc
            log.error("state mirror stopped: %s", exc)
        finally:
            self._wake()

    def _wake(self) -> None:
        """Wake every waiter (each waits on the event it saw; a new one is armed for the next change)."""
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.stop()
