"""uvicorn's httptools protocol with a bound on the request head (issue 8, the class of #2).

llhttp, under uvicorn's httptools protocol, buffers a request line or header of any size: an
unauthenticated client sending one 80 MiB header grew the server by 80 MiB and got a 200. GARM's Go
``net/http`` server stops at ``DefaultMaxHeaderBytes`` (1 MiB) with ``431 Request Header Fields Too
Large``; this protocol does the same: the bytes received before the end of a request's head are counted,
and past :data:`MAX_HEADER_BYTES` the connection gets Go's answer and is closed, before the rest is read.
(``PYGARM_HTTP=h11`` uses h11, which has its own, smaller bound.)
"""

from __future__ import annotations

from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES: Final = 1 << 20
"""Go's ``http.DefaultMaxHeaderBytes``: the request line and all headers together."""
_REFUSAL: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\n"
    b"content-length: 35\r\n"
    b"\r\n"
    b"431 Request Header Fields Too Large"
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Counts each request's head as it arrives; a head over :data:`MAX_HEADER_BYTES` is refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self._in_head = False
                if not self.transport.is_closing():
                    self.transport.write(_REFUSAL)
                    self.transport.close()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # keep-alive: the next request's head is counted from its first byte
        self._head_bytes = 0
