"""The one place that turns errors into GARM's error responses (docs/garm-protocol.md#error-mapping)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from pygarm.api.responses import GoJSONResponse
from pygarm.errors import GarmError, TooManyRequestsError
from pygarm.params.models import APIErrorResponse

log = logging.getLogger(__name__)

AUTHENTICATION_FAILED = APIErrorResponse(error="Authentication failed", details="")
INIT_REQUIRED = APIErrorResponse(error="init_required", details="Missing superuser")
URLS_REQUIRED = APIErrorResponse(
    error="urls_required",
    details="Missing required URLs. Make sure you update the metadata, callback and webhook URLs",
)
NOT_FOUND_ROUTE = APIErrorResponse(error="Not found", details="Resource not found")


def error_response(status_code: int, error: str, details: str = "") -> GoJSONResponse:
    return GoJSONResponse(APIErrorResponse(error=error, details=details), status_code=status_code)


def garm_error_response(exc: GarmError) -> GoJSONResponse:
    response = error_response(exc.status_code, exc.title, exc.details)
    if isinstance(exc, TooManyRequestsError):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def handle_garm_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GarmError)
    if exc.status_code >= 500:
        log.error("request failed: %s", exc.message)
    return garm_error_response(exc)


async def handle_unexpected_error(_request: Request, exc: Exception) -> Response:
    """Anything unforeseen is a 500 with no details, as in GARM; the cause goes to the log only."""
    log.exception("unhandled error: %s", type(exc).__name__)
    return error_response(500, "Server error")
