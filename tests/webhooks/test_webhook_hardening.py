"""``/webhooks`` under abuse (issue 8 #5, #6, #7): anyone can post to it, so every malformed delivery is a
4xx with GARM's error body that changes nothing and logs no error, and a delivery GitHub sends again
(a redelivery, or a retry after a timeout) changes nothing and emits no event."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.api.entity_support import ChangeLog
from tests.webhooks.conftest import World, send

BAD_REQUEST = "Bad Request"


def _no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]


async def _refused(
    world: World, caplog: pytest.LogCaptureFixture, body: bytes, details: str, **kw: Any
) -> None:
    log = ChangeLog(world.app)
    await log.mark()
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        response = await send(world.http, body, **kw)
    assert (response.status_code, response.json()) == (400, {"error": BAD_REQUEST, "details": details})
    assert await log.new() == []
    _no_error_logged(caplog)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"null",
        b'{"action": "queued"}',
        b'{"workflow_job": {}}',
        b'{"workflow_job": null, "repository": null}',
        b'{"workflow_job": {"id": 5, "html_url": "https://github.com:x/"}}',
        b'{"workflow_job": {"id": 5, "html_url": "relative/path"}}',
    ],
)
async def test_delivery_without_a_usable_job_url_is_400(
    world: World, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    """Unsigned and unauthenticated: GARM answers these with 500 (docs/compatibility.md)."""
    await _refused(world, caplog, body, "invalid job url", signature="")


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"[{}]",
        b"42",
        b'"workflow_job"',
        b"true",
        b'{"workflow_job": []}',
        b'{"workflow_job": "x"}',
        b'{"workflow_job": {"html_url": 5}}',
        b'{"workflow_job": {"labels": "linux"}}',
        b'{"workflow_job": {"started_at": "yesterday"}}',
        b'{"workflow_job": {"started_at": "2024-13-01T00:00:00Z"}}',
        b'{"repository": {"owner": "octo"}}',
        b'{"action": 1}',
    ],
)
async def test_wrong_json_types_are_invalid_request(
    world: World, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    await _refused(world, caplog, body, "invalid request", signature="")
