"""Every error the client raises, under one root, so a caller can catch ``GarmClientError`` and be done.

::

    GarmClientError
    ├── APIError                 the server answered a non-2xx status: .status, .error, .details
    │   └── HandshakeError       ... to the websocket upgrade of the events stream
    ├── ConnectError             the server could not be reached (refused, DNS, TLS, timeout)
    ├── DecodeError              a 2xx answer that is not the JSON the route promises
    └── EventsClosed             the events stream ended: .code, .reason
        ├── EventsClosedOK       a normal close (1000/1001), e.g. the server shut down cleanly
        └── EventsClosedError    anything else: an abnormal drop, a pygarm close code in the 4000s
            ├── FilterRejected   the server refused the filter ("invalid filter", ...)
            └── ResumeUnavailable  4001: the change log no longer reaches back to the resume point

Why the split between the two closed errors: a caller that reconnects wants to tell "the server said
goodbye" from "something broke", exactly as ``websockets`` separates ``ConnectionClosedOK`` from
``ConnectionClosedError``. ``APIError`` keeps GARM's ``{"error", "details"}`` body apart because GARM puts
the useful text in ``details`` (``"repository x/y already exists"``) and a short title in ``error``.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "ConnectError",
    "DecodeError",
    "EventsClosed",
    "EventsClosedError",
    "EventsClosedOK",
    "FilterRejected",
    "GarmClientError",
    "HandshakeError",
    "ResumeUnavailable",
]


class GarmClientError(Exception):
    """Root of every error raised by :mod:`pygarm.client`."""


class APIError(GarmClientError):
    """A non-2xx answer. ``error``/``details`` come from GARM's JSON body, or the plain text body
    (GARM's admin check answers ``Unauthorized`` as text)."""

    def __init__(self, status: int, error: str, details: str = "") -> None:
        self.status = status
        self.error = error
        self.details = details
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = self.error or "HTTP error"
        if self.details and self.details != self.error:
            text = f"{text}: {self.details}"
        return f"{text} (HTTP {self.status})"


class HandshakeError(APIError):
    """The events websocket upgrade was refused; carries the same fields as any API error."""

    @property
    def message(self) -> str:
        return f"events handshake failed: {super().message}"


class ConnectError(GarmClientError):
    """No HTTP answer at all: connection refused, name resolution, TLS or timeout."""


class DecodeError(GarmClientError):
    """A successful status with a body that does not decode into the expected wire model."""


class EventsClosed(GarmClientError):
    """The events stream is over. ``code`` is the websocket close code (``None`` when no close frame
    arrived), ``reason`` the close reason, ``message`` the last text the server sent before closing."""

    def __init__(self, code: int | None, reason: str = "", message: str = "") -> None:
        self.code = code
        self.reason = reason
        self.server_message = message
        super().__init__(self.describe())

    def describe(self) -> str:
        code = "no close frame" if self.code is None else f"code {self.code}"
        text = f"events stream closed ({code}"
        if self.reason:
            text += f": {self.reason}"
        text += ")"
        if self.server_message:
            text += f" after the server said {self.server_message!r}"
        return text


class EventsClosedOK(EventsClosed):
    """The server closed the stream normally (1000 or 1001)."""


class EventsClosedError(EventsClosed):
    """The stream failed: an abnormal drop or a close code that signals a problem."""


class FilterRejected(EventsClosedError):
    """The server answered the filter with ``invalid filter`` / ``failed to unmarshal filter`` and closed."""


class ResumeUnavailable(EventsClosedError):
    """Closed with 4001: retention pruned the change log past the ``since`` the client resumed from, so
    the events in between are gone. Reload the state (or use a snapshot) and subscribe again."""
