"""Request bodies are bounded per route and refused before they are read (issue 8 #2): a 200 MiB password
sent to the unauthenticated login used to be buffered whole (RSS +590 MB)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from pygarm.api.bodylimit import DEFAULT_LIMIT, LOGIN_LIMIT, WEBHOOK_LIMIT
from tests.api.entity_support import ChangeLog

HUGE = 200 * 1024 * 1024
CHUNK = 64 * 1024


def too_large(limit: int) -> dict[str, str]:
    return {"error": "Request Entity Too Large", "details": f"request body is larger than {limit} bytes"}


class CountingBody:
    """A request body of ``total`` bytes that records how much of it the server pulled."""

    def __init__(self, total: int, prefix: bytes = b"") -> None:
        self.total = total
        self.prefix = prefix
        self.consumed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.prefix:
            self.consumed += len(self.prefix)
            yield self.prefix
        while self.consumed < self.total:
            self.consumed += CHUNK
            yield b"x" * CHUNK


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/first-run"])
async def test_declared_huge_body_is_413_before_a_byte_is_read(client: httpx.AsyncClient, path: str) -> None:
    body = CountingBody(HUGE, prefix=b'{"username":"admin","password":"')
    response = await client.post(path, content=body, headers={"Content-Length": str(HUGE)})
    assert (response.status_code, response.json()) == (413, too_large(LOGIN_LIMIT))
    assert body.consumed == 0


async def test_chunked_huge_login_stops_being_read_at_the_limit(client: httpx.AsyncClient) -> None:
    body = CountingBody(HUGE, prefix=b'{"username":"admin","password":"')
    started = time.monotonic()
    response = await client.post("/api/v1/auth/login", content=body)
    assert (response.status_code, response.json()) == (413, too_large(LOGIN_LIMIT))
    assert body.consumed <= LOGIN_LIMIT + 2 * CHUNK
    assert time.monotonic() - started < 5


async def test_a_login_within_the_limit_is_answered_as_before(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    password = "p" * (LOGIN_LIMIT - 100)
    response = await client.post("/api/v1/auth/login", json={"username": "admin", "password": password})
    assert (response.status_code, response.json()) == (
        401,
        {"error": "Not Authorized", "details": ""},
    )


async def test_rest_bodies_over_1_mib_are_413_and_change_nothing(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    log = ChangeLog(app)
    await log.mark()
    body = orjson.dumps({"name": "e", "description": "d" * DEFAULT_LIMIT, "base_url": "https://ghe.example"})
    for headers in ({}, {"Transfer-Encoding": "chunked"}):

        async def stream(data: bytes = body) -> AsyncIterator[bytes]:
            for start in range(0, len(data), CHUNK):
                yield data[start : start + CHUNK]

        content: Any = body if not headers else stream()
        response = await admin_client.post("/api/v1/github/endpoints", content=content, headers=headers)
        assert (response.status_code, response.json()) == (413, too_large(DEFAULT_LIMIT)), headers
    assert await log.new() == []
    listed = await admin_client.get("/api/v1/github/endpoints")
    assert [endpoint["name"] for endpoint in listed.json()] == ["github.com"]


async def test_a_body_just_under_1_mib_reaches_the_handler(admin_client: httpx.AsyncClient) -> None:
    padding = " " * (DEFAULT_LIMIT - 200)
    urls = {key: "https://ghe.example" for key in ("base_url", "api_base_url", "upload_base_url")}
    body = b'{"name": "ghe",' + padding.encode() + orjson.dumps(urls)[1:]
    response = await admin_client.post("/api/v1/github/endpoints", content=body)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "ghe"


async def test_webhooks_keep_githubs_25_mb(client: httpx.AsyncClient) -> None:
    body = CountingBody(WEBHOOK_LIMIT + 1)
    response = await client.post(
        "/webhooks",
        content=body,
        headers={"Content-Length": str(WEBHOOK_LIMIT + 1), "X-GitHub-Event": "workflow_job"},
    )
    assert (response.status_code, response.json()) == (413, too_large(WEBHOOK_LIMIT))
    assert body.consumed == 0


def test_live_server_answers_a_declared_huge_login_without_waiting_for_the_body(live_server: Any) -> None:
    """On a real socket: only the headers are sent, and the 413 comes back at once (the server neither
    waits for nor drains the 200 MiB it was promised)."""
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {HUGE}\r\n\r\n".encode()
            + b'{"username":"admin","password":"'
        )
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        while sock.recv(65536):  # then the server closes instead of reading the promised 200 MiB
            pass
    head, _, payload = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nconnection: close" in head.lower()
    assert orjson.loads(payload) == too_large(LOGIN_LIMIT)
