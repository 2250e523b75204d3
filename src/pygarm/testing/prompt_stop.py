"""uvicorn servers for tests that stop as soon as they are asked to.

A stopped ``uvicorn.Server`` notices ``should_exit`` on its next 0.1 s tick, and its shutdown then sleeps
0.1 s more so that open connections see the close: about 0.2 s per stop, which the tests paid once per
fake GitHub (one per test) and once per live server or restart.

:class:`PromptExit` wakes the main loop at once when :meth:`~PromptExit.request_exit` is called (from any
thread); the server then shuts down exactly as uvicorn does. :class:`PromptStopServer` also leaves out the
shutdown's sleep, for servers whose shutdown no test observes (the fake GitHub).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn

TICK_S = 0.1
"""uvicorn's own tick: the loop still runs ``on_tick`` this often (the ``Date`` header, request limits)."""


class PromptExit(uvicorn.Server):
    """A uvicorn server whose :meth:`request_exit` takes effect at once instead of on the next tick."""

    _loop: asyncio.AbstractEventLoop | None = None
    _exit_requested: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._exit_requested = asyncio.Event()
        await super().startup(sockets)

    async def main_loop(self) -> None:
        assert self._exit_requested is not None
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_requested.wait(), TICK_S)

    def request_exit(self) -> None:
        """Stop serving; safe from any thread, before or after the server started."""
        self.should_exit = True
        loop, event = self._loop, self._exit_requested
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed: the server has stopped
                loop.call_soon_threadsafe(event.set)


class PromptStopServer(PromptExit):
    """:class:`PromptExit` whose shutdown closes the connections without waiting for them."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for server in self.servers:
            await server.wait_closed()
