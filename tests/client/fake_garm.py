"""A scripted GARM events endpoint on 127.0.0.1, for reader behaviour the real server cannot be made to
show on demand (an abnormal drop, a slow-consumer close, a ping that must be answered).

Each connection runs ``script(connection, index)`` on its own thread; the handshake checks the bearer
token the way GARM's JWT middleware does and answers a bad one with GARM's 401 body.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

GOOD_TOKEN = "good-token"
AUTH_FAILED = '{"error":"Authentication failed","details":""}\n'

REPO_CREATE = '{"entity-type":"repository","operation":"create","payload":{"id":"r1","owner":"o","name":"n"}}'
POOL_DELETE = '{"entity-type":"pool","operation":"delete","payload":{"runner_prefix":"","id":"p1"}}'

Script = Callable[[ServerConnection, int], None]


@dataclass
class FakeGarm:
    script: Script
    url: str = ""
    filters: list[str] = field(default_factory=list)
    close_codes: list[int | None] = field(default_factory=list)
    connections: int = 0
    offered_extensions: list[str | None] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, connection: ServerConnection) -> None:
        with self.lock:
            index = self.connections
            self.connections += 1
        try:
            self.script(connection, index)
        finally:
            with self.lock:
                self.close_codes.append(connection.close_code)

    def check_token(self, connection: ServerConnection, request: Request) -> Response | None:
        self.offered_extensions.append(request.headers.get("Sec-WebSocket-Extensions"))
        self.paths.append(request.path)
        if request.headers.get("Authorization") != f"Bearer {GOOD_TOKEN}":
            response = connection.respond(401, AUTH_FAILED)
            response.headers = Headers(
                [*((k, v) for k, v in response.headers.raw_items() if k != "Content-Type")]
            )
            response.headers["Content-Type"] = "application/json"
            return response
        return None

    def recv_filter(self, connection: ServerConnection, timeout: float = 5.0) -> str:
        message = connection.recv(timeout=timeout)
        text = message if isinstance(message, str) else message.decode()
        with self.lock:
            self.filters.append(text)
        return text


@contextmanager
def fake_garm(script: Script) -> Iterator[FakeGarm]:
    fake = FakeGarm(script)
    server: Server = serve(
        fake.handle, "127.0.0.1", 0, process_request=fake.check_token, compression=None, ping_interval=None
    )
    host, port = server.socket.getsockname()[:2]
    fake.url = f"http://{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        thread.join(timeout=5)
