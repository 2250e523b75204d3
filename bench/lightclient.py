"""A deliberately small HTTP/1.1 and websocket client for the load generator.

httpx and the websockets library cost the generator ~0.7 ms of CPU per update and ~20 µs per received
frame, so on this 2-core machine the generator, not the server, capped the benchmarks (the generator
was 98 % busy while the server was 69 % busy). These clients do only what the benchmarks need: one
keep-alive connection sending pre-built requests, and websocket connections that read unfragmented
server frames. They are not general clients; the test suite uses the real ones.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

_HEADER_END = b"\r\n\r\n"


class RawHTTP:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length (pygarm's do)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, token: str):
        self._reader, self._writer = reader, writer
        self._prefix = f"Host: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"

    @classmethod
    async def connect(cls, base_url: str, token: str) -> RawHTTP:
        parts = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc, token)

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        head = f"{method} {path} HTTP/1.1\r\n{self._prefix}Content-Length: {len(body)}\r\n\r\n"
        self._writer.write(head.encode() + body)
        header = await self._reader.readuntil(_HEADER_END)
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self._reader.readexactly(length)
        return status

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


class RawWebSocket:
    """A websocket that sends text with a zero mask key and reads unfragmented, unmasked server frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader, self._writer = reader, writer

    @classmethod
    async def connect(cls, ws_url: str, path: str, token: str) -> RawWebSocket:
        parts = urlsplit(ws_url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        header = await reader.readuntil(_HEADER_END)
        if not header.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(header.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer)

    def send_text(self, text: str) -> None:
        data = text.encode()
        length = len(data)
        if length < 126:
            header = struct.pack("!BB", 0x81, 0x80 | length)
        else:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
        self._writer.write(header + b"\x00\x00\x00\x00" + data)  # a zero mask key leaves data as is

    async def recv(self) -> bytes:
        """The next data frame's payload (pings are answered, a close raises ConnectionError)."""
        while True:
            first, second = await self._reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self._reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
            payload = await self._reader.readexactly(length)
            opcode = first & 0x0F
            if opcode in (0x1, 0x2):
                return payload
            if opcode == 0x8:
                raise ConnectionError(f"closed: {payload[:2].hex()} {payload[2:].decode(errors='replace')}")
            if opcode == 0x9:  # ping → pong with the same payload
                self._writer.write(struct.pack("!BB", 0x8A, 0x80 | len(payload)) + b"\x00" * 4 + payload)

    async def close(self) -> None:
        self._writer.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # close 1000, zero mask key
        self._writer.close()
        with contextlib.suppress(ConnectionError):  # the server may have closed first
            await self._writer.wait_closed()


class FrameSubscriber(asyncio.Protocol):
    """A websocket for thousands of subscribers at once: frames are parsed in ``data_received`` and handed
    to ``on_frame``, with no task, future or await per frame (:class:`RawWebSocket` costs the load
    generator ~20 µs per frame, which capped a burst to 10,000 subscribers). Pings are answered; a close
    frame or a lost connection calls ``on_close`` once with a description."""

    def __init__(self, on_frame: Callable[[bytes], None], on_close: Callable[[str], None]) -> None:
        self._buffer = bytearray()
        self._on_frame, self._on_close = on_frame, on_close
        self._handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._transport: asyncio.Transport | None = None
        self.closed = ""

    @classmethod
    async def connect(
        cls,
        ws_url: str,
        path: str,
        token: str,
        on_frame: Callable[[bytes], None],
        on_close: Callable[[str], None],
    ) -> FrameSubscriber:
        parts = urlsplit(ws_url)
        _transport, subscriber = await asyncio.get_running_loop().create_connection(
            lambda: cls(on_frame, on_close), parts.hostname, parts.port
        )
        key = base64.b64encode(os.urandom(16)).decode()
        subscriber._write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        await subscriber._handshake
        return subscriber

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def send_text(self, text: str) -> None:
        data = text.encode()
        assert len(data) < 126
        self._write(struct.pack("!BB", 0x81, 0x80 | len(data)) + b"\x00\x00\x00\x00" + data)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._handshake.done():
            end = buffer.find(_HEADER_END)
            if end < 0:
                return
            head = bytes(buffer[:end])
            del buffer[: end + len(_HEADER_END)]
            if not head.startswith(b"HTTP/1.1 101"):
                self._handshake.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                return
            self._handshake.set_result(None)
        while len(buffer) >= 2:
            length, offset = buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                (length,), offset = struct.unpack_from("!H", buffer, 2), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                (length,), offset = struct.unpack_from("!Q", buffer, 2), 10
            if len(buffer) < offset + length:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode in (0x1, 0x2):
                self._on_frame(payload)
            elif opcode == 0x9:  # ping → pong with the same payload
                self._write(struct.pack("!BB", 0x8A, 0x80 | len(payload)) + b"\x00" * 4 + payload)
            elif opcode == 0x8:
                self._closed(f"closed: {payload[:2].hex()} {payload[2:].decode(errors='replace')}")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionError("connection lost during the handshake"))
        self._closed(f"connection lost: {exc}")

    def _closed(self, why: str) -> None:
        if not self.closed:
            self.closed = why
            self._on_close(why)

    def close(self) -> None:
        self._write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # close 1000, zero mask key
        if self._transport is not None:
            self._transport.close()
