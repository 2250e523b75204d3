"""``pygarm debug-log``: follows ``/api/v1/ws/logs`` like ``garm-cli debug-log``
(docs/garm-protocol.md#log-stream, docs/garm-protocol.md#debug-events)."""

from __future__ import annotations

import logging
import queue
import sys
import time
from typing import Any

import pytest

from pygarm.config import Settings
from tests.cli.conftest import PROVIDERS
from tests.cli.test_events_cli import Process
from tests.conftest import make_settings
from tests.live import LiveServer

MARKER = "debug-log-marker-7f3a"


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS, logging={"enable_log_streamer": True})


def test_debug_log_prints_server_log_lines(logged_in: LiveServer) -> None:
    broadcaster = logged_in.app.state.log_broadcaster
    process = Process([sys.executable, "-m", "pygarm.cli", "debug-log"])
    try:
        deadline = time.monotonic() + 20
        while broadcaster.subscriber_count == 0:
            assert process.proc.poll() is None and time.monotonic() < deadline, "debug-log did not connect"
            time.sleep(0.05)
        logging.getLogger("pygarm.test").warning("%s", MARKER)  # the live server shares this process
        line = b""
        while MARKER.encode() not in line:
            line = process.frames.get(timeout=10)
    except queue.Empty:
        pytest.fail("the log line never arrived")
    finally:
        code = process.interrupt()
    assert code == 0, process.stderr
