"""The floor of this stack for the fan-out benchmark (issue 14): a minimal asyncio server that does only
what a fan-out must do, with nothing else around it.

It accepts websocket upgrades on any path (no auth, no filter: it reads and drops what clients send),
and answers ``PUT`` requests, as pygarm answers a pool update, by building one frame
``{"entity-type":"pool","operation":"update","payload":{"image":"img-N"},"seq":S}`` (the same shape
the benchmark's subscribers recognise) and writing those same bytes to every connected socket, then
``200`` with an empty body. So its CPU per delivered frame is the cost of a socket write on this
machine, under uvloop like pygarm.

    python -m bench.reference --port 18999        # run by bench/fanout.py in its own process
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import re

from pygarm.api.ws_frames import text_frame_of_utf8 as text_frame

_HEADER_END = b"\r\n\r\n"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_KEY = re.compile(rb"(?im)^sec-websocket-key:\s*(\S+)")
_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")
_IMAGE = re.compile(rb'"image":"img-(\d+)"')


class Reference:
    def __init__(self) -> None:
        self.subscribers: set[asyncio.StreamWriter] = set()
        self.seq = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(_HEADER_END)
                if head.startswith(b"GET"):
                    await self._upgrade(head, reader, writer)
                    return
                length = _LENGTH.search(head)
                body = await reader.readexactly(int(length.group(1))) if length else b""
                self._publish(body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.subscribers.discard(writer)
            writer.close()

    def _publish(self, body: bytes) -> None:
        match = _IMAGE.search(body)
        self.seq += 1
        number = match.group(1) if match else b"0"
        payload = b'{"entity-type":"pool","operation":"update","payload":{"image":"img-%s"},"seq":%d}' % (
            number,
            self.seq,
        )
        frame = text_frame(payload)
        for subscriber in self.subscribers:
            subscriber.write(frame)

    async def _upgrade(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        key = _KEY.search(head)
        accept = base64.b64encode(hashlib.sha1((key.group(1) if key else b"") + _GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.subscribers.add(writer)
        while await reader.read(65536):  # the filter message and the close: read and dropped
            pass


async def serve(port: int) -> None:
    reference = Reference()
    server = await asyncio.start_server(reference.handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.port))
    except ImportError:
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
