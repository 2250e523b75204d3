"""The error types every layer raises, and the HTTP answer each one gets
(docs/garm-protocol.md#error-mapping).

::

    GarmError                 500  {"error": "Server error", "details": ""}
    ├── NotFoundError         404  {"error": "Not Found", "details": <message>}
    ├── UnauthorizedError     401  {"error": "Not Authorized", "details": ""}
    ├── BadRequestError       400  {"error": "Bad Request", "details": <message>}
    ├── ConflictError         409  {"error": "Conflict", "details": <message>}
    └── TooManyRequestsError  429  {"error": "Too Many Requests", "details": <message>}, Retry-After

Store and runner code raise these; only ``api/errors.py`` turns them into responses. Where GARM answers a
client mistake with 500 (docs/garm-protocol.md#error-mapping), pygarm raises the matching 4xx type instead and
lists the deviation in ``docs/compatibility.md``.
"""

from __future__ import annotations


class GarmError(Exception):
    """Base of all pygarm errors; an unexpected failure, answered with 500 and no details."""

    status_code = 500
    title = "Server error"
    default_message = "server error"
    expose_details = False

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)

    @property
    def details(self) -> str:
        return self.message if self.expose_details else ""


class NotFoundError(GarmError):
    status_code = 404
    title = "Not Found"
    default_message = "not found"
    expose_details = True


class UnauthorizedError(GarmError):
    status_code = 401
    title = "Not Authorized"
    default_message = "not authorized"


class BadRequestError(GarmError):
    status_code = 400
    title = "Bad Request"
    default_message = "invalid request"
    expose_details = True


class ConflictError(GarmError):
    status_code = 409
    title = "Conflict"
    default_message = "duplicate"
    expose_details = True


class TooManyRequestsError(GarmError):
    """A pygarm limit (failed logins, docs/compatibility.md): 429 with a ``Retry-After`` of whole seconds."""

    status_code = 429
    title = "Too Many Requests"
    default_message = "too many failed logins, retry later"
    expose_details = True

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
