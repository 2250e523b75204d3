"""``pygarm events`` / ``debug-events`` and ``examples/print_events.py`` as real processes against a
live server: each filter form, ``--pretty``, a bad token, a rejected filter, and a server restart with
``--reconnect``."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pygarm.client import GarmClient, Profile, ProfileFile
from pygarm.config import Settings
from tests.cli.conftest import Cli
from tests.client.events_probe import Probe
from tests.client.test_events_live import endpoint_churn
from tests.live import LiveServer, run_live_server

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "print_events.py"
BOTH_CREATES = [
    ("github_endpoint", "create", "a.example.com"),
    ("github_endpoint", "create", "b.example.com"),
]


class Process:
    """A child process whose stdout lines land on :attr:`frames` as they are printed."""

    def __init__(self, argv: list[str]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO_ROOT,
        )
        self.frames: queue.Queue[bytes] = queue.Queue()
        self.stderr = b""
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.frames.put(line.rstrip(b"\n"))

    def interrupt(self, timeout: float = 20) -> int:
        """Ctrl-C, then the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float = 20) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        return code


@contextmanager
def pygarm_events(*args: str) -> Iterator[Process]:
    process = Process([sys.executable, "-m", "pygarm.cli", *args])
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def client_for_profile() -> GarmClient:
    return GarmClient.from_profile()


CONTROLLER_AND_ENDPOINT_CREATES = (
    '{"filters":[{"entity-type":"github_endpoint","operations":["create"]},{"entity-type":"controller"}]}'
)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["events", "--filters", CONTROLLER_AND_ENDPOINT_CREATES], BOTH_CREATES),
        (["debug-events", "-m", CONTROLLER_AND_ENDPOINT_CREATES], BOTH_CREATES),
        (["events", "--entity", "github_endpoint:create", "--entity", "controller"], BOTH_CREATES),
        (["events", "--all"], None),
        (["events"], None),
    ],
    ids=["filters", "debug-events-m", "entity", "all", "default"],
)
def test_filter_forms(logged_in: LiveServer, args: list[str], expected: object) -> None:
    with client_for_profile() as garm, pygarm_events(*args) as process:
        probe = Probe(garm, process.frames)
        probe.sync()
        got = probe.collect(endpoint_churn)
        assert process.interrupt() == 0, process.stderr
    if expected is None:  # everything
        assert [(op, name) for _, op, name in got] == [
            ("create", "a.example.com"),
            ("update", "a.example.com"),
            ("create", "b.example.com"),
            ("delete", "a.example.com"),
            ("delete", "b.example.com"),
        ]
    else:
        assert got == expected
    assert process.stderr == b""


def test_pretty_and_count(logged_in: LiveServer) -> None:
    with client_for_profile() as garm, pygarm_events("events", "--pretty", "--count", "1") as process:
        for n in range(100):  # the filter takes effect asynchronously: update until one arrives
            garm.update_controller(minimum_job_age_backoff=n)
            if process.proc.poll() is not None or not process.frames.empty():
                break
            threading.Event().wait(0.2)
        assert process.wait() == 0, process.stderr
    line = process.frames.get_nowait().decode()
    assert "controller" in line and "update" in line and "webhook=" in line
    assert not line.startswith("{")


def test_bad_token_is_one_line_with_status_and_details(logged_in: LiveServer, cli: Cli) -> None:
    profiles = ProfileFile.load()
    profiles.add(Profile("bad", logged_in.base_url, "not-a-token"))
    profiles.save()
    with pygarm_events("events", "--reconnect") as process:
        assert process.wait() == 1
    assert process.stderr.decode() == "error: events handshake failed: Authentication failed (HTTP 401)\n"


def test_bad_entity_fails_before_connecting(cli: Cli) -> None:
    """No profile exists: the filter is checked first."""
    line = cli.fails("events", "--entity", "pools:create")
    assert line.startswith("error: invalid events filter: unknown entity type 'pools'")
    assert "mutually exclusive" in cli.fails("events", "--all", "--entity", "pool")


def test_rejected_raw_filter(logged_in: LiveServer, cli: Cli) -> None:
    line = cli.fails("events", "--filters", '{"filters":[{"entity-type":"pool","operations":["CREATE"]}]}')
    assert line == "error: events stream closed (code 1000) after the server said 'invalid filter'"


def test_reconnect_across_a_server_restart(logged_in: LiveServer, settings: Settings) -> None:
    live = logged_in
    with (
        client_for_profile() as garm,
        pygarm_events("events", "--reconnect", "--filters", CONTROLLER_AND_ENDPOINT_CREATES) as process,
    ):
        probe = Probe(garm, process.frames)
        probe.sync()
        live.stop()
        with run_live_server(settings, port=live.port):
            probe.sync()
            assert probe.collect(endpoint_churn) == BOTH_CREATES
            assert process.interrupt() == 0
    warnings = process.stderr.decode().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: events stream reconnected after")
    assert "may have been missed" in warnings[0]


def test_print_events_example(logged_in: LiveServer) -> None:
    """``examples/print_events.py`` as documented: the active profile, every event, Ctrl-C stops it."""
    with client_for_profile() as garm:
        process = Process([sys.executable, str(EXAMPLE)])
        try:
            probe = Probe(garm, process.frames)
            probe.sync()
            assert probe.collect(endpoint_churn)[0] == ("github_endpoint", "create", "a.example.com")
        finally:
            code = process.interrupt()
    assert code == 0, process.stderr
    assert process.stderr == b""


def test_print_events_example_with_url_and_bad_token(live_admin: tuple[LiveServer, str]) -> None:
    live, _ = live_admin
    process = Process([sys.executable, str(EXAMPLE), live.base_url, "not-a-token"])
    assert process.wait() == 1
    assert process.stderr.decode() == (
        "print_events: events handshake failed: Authentication failed (HTTP 401)\n"
    )
