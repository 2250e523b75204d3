"""The access log and structured logs (docs/observability.md#logs): one INFO ``access_log`` line per
request with method, route template, path, status, duration and request id; the request id on every line
logged while serving; ``log_format = "json"``; never a secret, never a query string."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pygarm.api.accesslog import UNMATCHED_ROUTE
from pygarm.config import Settings
from pygarm.logsetup import REQUEST_ID, JSONFormatter, RequestIdFilter, TextFormatter, configure_logging
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, initialize, make_settings

ACCESS = "pygarm.access"
POOL_ID = "6f1c2a7e-1111-4b2c-9d3e-000000000001"


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == ACCESS]


def attrs(record: logging.LogRecord) -> dict[str, Any]:
    value: dict[str, Any] = record.attrs  # type: ignore[attr-defined]
    return value


async def test_one_line_per_request_with_template_status_and_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    token = await initialize(client)
    caplog.clear()
    response = await client.get(
        f"/api/v1/pools/{POOL_ID}?since=1&token=query-secret-123",
        headers={"Authorization": f"Bearer {token}", "User-Agent": "probe/1"},
    )
    assert response.status_code == 404
    (record,) = access_records(caplog)
    assert record.levelno == logging.INFO and record.getMessage() == "access_log"
    line = attrs(record)
    assert list(line) == [
        "method", "route", "path", "code", "bytes", "duration_ms", "user_agent", "ip", "request_id",
    ]  # fmt: skip
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/pools/{pool_id}"
    assert line["path"] == f"/api/v1/pools/{POOL_ID}"
    assert line["code"] == 404
    assert line["bytes"] == len(response.content)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["user_agent"] == "probe/1"
    assert line["request_id"] == response.headers["x-request-id"]
    assert len(line["request_id"]) == 16
    for formatter in (JSONFormatter(with_source=False), TextFormatter(with_source=False)):
        text = formatter.format(record)
        assert token not in text and "query-secret-123" not in text and "?" not in text


async def test_secrets_never_reach_any_line(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """First-run and login carry the password in the body; the token comes back in the body."""
    caplog.set_level(logging.DEBUG)
    token = await initialize(client)
    response = await client.post(
        "/api/v1/auth/login", json={"username": ADMIN_USERNAME, "password": "wrong-pw-1"}
    )
    assert response.status_code == 401
    lines = [JSONFormatter(with_source=True).format(record) for record in caplog.records]
    lines += [TextFormatter(with_source=False).format(record) for record in caplog.records]
    assert any('"access_log"' in line and '"/api/v1/auth/login"' in line for line in lines)
    for line in lines:
        assert ADMIN_PASSWORD not in line and "wrong-pw-1" not in line and token not in line


async def test_request_id_from_a_proxy_is_kept_when_well_formed(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    good = await client.get("/healthz", headers={"X-Request-Id": "edge-7f3a.1"})
    assert good.headers["x-request-id"] == "edge-7f3a.1"
    bad = await client.get("/healthz", headers={"X-Request-Id": "evil id\r\n" + "x" * 80})
    assert bad.headers["x-request-id"] != "evil id" and len(bad.headers["x-request-id"]) == 16
    other = await client.get("/healthz")
    assert other.headers["x-request-id"] not in (good.headers["x-request-id"], bad.headers["x-request-id"])
    assert [attrs(r)["request_id"] for r in access_records(caplog)] == [
        good.headers["x-request-id"],
        bad.headers["x-request-id"],
        other.headers["x-request-id"],
    ]


async def test_unmatched_paths_and_methods_are_logged_without_their_path_as_route(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    await client.get("/no/such/thing")
    await client.post("/healthz")
    first, second = (attrs(record) for record in access_records(caplog))
    assert (first["route"], first["path"], first["code"]) == (UNMATCHED_ROUTE, "/no/such/thing", 404)
    assert (second["route"], second["code"]) == ("/healthz", 405)


class TestLinesDuringARequest:
    @pytest.fixture
    async def app(self, settings: Settings) -> Any:
        from pygarm.api.app import create_app

        application = create_app(settings)

        async def noisy() -> dict[str, str]:
            logging.getLogger("pygarm.test").warning("inside the handler")
            return {}

        application.add_api_route("/noisy", noisy)
        async with application.router.lifespan_context(application):
            yield application

    async def test_carry_the_request_id(
        self, app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        caplog.handler.addFilter(RequestIdFilter())  # as configure_logging does for the server's handler
        response = await client.get("/noisy")
        (inside,) = [r for r in caplog.records if r.name == "pygarm.test"]
        text = TextFormatter(with_source=False).format(inside)
        assert text.endswith(f"msg=inside the handler request_id={response.headers['x-request-id']}")
        assert REQUEST_ID.get() == ""  # reset once the request is served


def test_json_format_is_one_object_per_line_with_slog_keys() -> None:
    record = logging.LogRecord("pygarm.access", logging.WARNING, __file__, 1, "access_log", None, None)
    record.attrs = {"method": "GET", "code": 200, "user_agent": 'a "quoted" agent'}
    data = json.loads(JSONFormatter(with_source=False).format(record))
    assert list(data) == ["time", "level", "msg", "logger", "method", "code", "user_agent"]
    assert (data["level"], data["msg"], data["code"]) == ("WARN", "access_log", 200)
    text = TextFormatter(with_source=False).format(record)
    assert text.endswith('msg=access_log method=GET code=200 user_agent="a \\"quoted\\" agent"')


def test_configure_logging_json_to_a_file(tmp_path: Any) -> None:
    """``[logging] log_format = "json"`` with ``log_file``: every line in the file is a JSON object."""
    log_file = tmp_path / "garm.log"
    database = {"passphrase": "p" * 32, "sqlite3": {"db_file": str(tmp_path / "garm.db")}}
    settings = make_settings(
        database, logging={"log_format": "json", "log_level": "info", "log_file": str(log_file)}
    )
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging(settings)
        token = REQUEST_ID.set("req-42")
        try:
            logging.getLogger("pygarm.test").info("hello %s", "world", extra={"attrs": {"code": 201}})
        finally:
            REQUEST_ID.reset(token)
        logging.getLogger("pygarm.test").debug("below the level")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    (line,) = log_file.read_text().splitlines()
    data = json.loads(line)
    assert (data["level"], data["msg"], data["code"], data["request_id"]) == (
        "INFO",
        "hello world",
        201,
        "req-42",
    )
