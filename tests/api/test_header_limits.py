"""The request head is bounded like Go's ``net/http`` (1 MiB, 431), on a real socket: under httptools an
unauthenticated client could send one header of any size and the server buffered it all (80 MiB of
header, RSS +80 MiB, then a 200). The protocol is the server's, not the database's: SQLite only."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from pygarm.http_protocol import MAX_HEADER_BYTES


@pytest.fixture
def backend() -> str:
    return "sqlite"


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response's head and its ``content-length`` body."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def test_a_head_over_1_mib_is_431_and_the_connection_closed(live_server: Any) -> None:
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * MAX_HEADER_BYTES)
        head, body = read_response(sock)
        assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        assert body == b"431 Request Header Fields Too Large"
        while sock.recv(65536):  # the server closes: recv returns b"" (no more requests on it)
            pass


def test_large_heads_under_the_limit_are_served_and_each_request_is_counted_alone(live_server: Any) -> None:
    """Two requests on one keep-alive connection, each with a 600 KiB header: together over the limit,
    each under it."""
    big = b"X-Big: " + b"a" * (600 * 1024) + b"\r\n"
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + big + b"\r\n"
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(request)
            head, body = read_response(sock)
            assert (head.split(b"\r\n")[0], body) == (b"HTTP/1.1 200 OK", b'{"status":"ok"}\n')
