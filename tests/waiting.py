"""Waiting for state in tests: poll a condition until it holds, and fail with what was awaited after a
deadline. Never a fixed sleep: a slow machine only makes these wait longer, a fast one not at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEFAULT_TIMEOUT_S = 10.0
POLL_S = 0.01


async def until(condition: Callable[[], object], what: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
    """Return as soon as ``condition()`` is true; ``AssertionError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL_S)


def wait_until(condition: Callable[[], object], what: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
    """:func:`until` for threads without an event loop."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL_S)
