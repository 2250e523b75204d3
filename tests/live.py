"""A real server on 127.0.0.1 for tests that need sockets (websockets, the CLI, the client library).

It runs uvicorn exactly as ``pygarm serve`` does (``pygarm.server.uvicorn_config``), in a thread with
its own event loop, on a free port.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI

from pygarm.config import Settings
from pygarm.server import GarmServer, uvicorn_config
from pygarm.testing.prompt_stop import PromptExit

STARTUP_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 30.0
"""Tests' HTTP clients wait this long for a live server (httpx's 5 s default fails on a loaded machine)."""
T = TypeVar("T")


class LiveGarmServer(PromptExit, GarmServer):
    """``pygarm serve``'s server, shut down as in production, but without waiting for the next tick of
    uvicorn's main loop (up to 0.1 s per stop or restart) to notice that it should."""

    def install_signal_handlers(self) -> None:
        """Signals are the main thread's: a server in a thread leaves them alone (uvicorn < 0.29)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    ws_url: str
    port: int
    app: FastAPI
    server: LiveGarmServer
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop

    def call(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run a coroutine on the server's own event loop (where its store and hub live)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        self.server.request_exit()
        self.thread.join(timeout=15)


@contextmanager
def run_live_server(settings: Settings, port: int | None = None) -> Iterator[LiveServer]:
    """Start the app on 127.0.0.1 and stop it on exit."""
    port = port or free_port()
    config = uvicorn_config(settings, host="127.0.0.1", port=port)
    server = LiveGarmServer(config)

    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve())
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"pygarm-live-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    assert isinstance(config.app, FastAPI)
    live = LiveServer(
        base_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}",
        port=port,
        app=config.app,
        server=server,
        thread=thread,
        loop=loop,
    )
    try:
        yield live
    finally:
        live.stop()
