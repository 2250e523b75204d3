"""``pygarm events`` says why it ended: a server that closes the stream (even normally, when it shuts
down) is reported on stderr with the close code, exit 1; only the ends the user asked for (Ctrl-C,
``--count``) exit 0."""

from __future__ import annotations

import pytest

from pygarm.client import GarmClient
from tests.cli.test_events_cli import pygarm_events
from tests.client.events_probe import Probe
from tests.live import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_server_shutdown_is_reported_with_its_close_code(logged_in: LiveServer) -> None:
    with GarmClient.from_profile() as garm, pygarm_events("events", "--all") as process:
        Probe(garm, process.frames).sync()  # subscribed
        logged_in.stop()
        code = process.wait()
    assert code == 1
    assert process.stderr.decode() == "error: the server closed the events stream (code 1000)\n"
