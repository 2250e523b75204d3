"""``pygarm watch`` and the extension flags of ``pygarm events``: argument checks and rendering without a
server; replay with ``--since``; the live table's plain-line form against a live server (once the server
sends snapshots)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from pygarm.cli._common import CliError
from pygarm.cli.events import parse_match
from pygarm.cli.watch import VIEWS, Kind, _live, change_line, render
from pygarm.client import GarmClient
from pygarm.params.models import Instance
from tests.cli.conftest import Cli
from tests.cli.test_events_cli import Process, pygarm_events
from tests.cli.test_nouns import WEBHOOK_SECRET, add_pat_credentials
from tests.client.test_events_live import endpoint_churn
from tests.live import LiveServer
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


def test_parse_match() -> None:
    assert parse_match(["pool_id=p1", "status=running", "status=failed", "enabled:=true", "id:=7"]) == {
        "pool_id": ["p1"],
        "status": ["running", "failed"],
        "enabled": [True],
        "id": [7],
    }
    for bad in ("pool_id", "=x", "n:=[1]", "n:=nope"):
        with pytest.raises(CliError, match="invalid --match"):
            parse_match([bad])


def test_render_sorts_rows_and_lines_describe_the_payload() -> None:
    view = VIEWS[Kind.runners]
    items = [
        Instance(name="b", status="running", pool_id="p"),
        Instance(name="a", status="failed", pool_id="p"),
    ]
    console = Console(width=200, record=True)
    console.print(render(view, items, title="runners (2)"))
    text = console.export_text()
    assert text.index(" a ") < text.index(" b ") and "Runner Status" in text
    line = change_line("snapshot", items[0]).plain
    assert line.split()[1:] == ["snapshot", "b", "running", "pool=p"]


def test_pool_option_only_where_it_means_something(cli: Cli, logged_in: LiveServer) -> None:
    assert "--pool applies to pools and runners, not jobs" in cli.fails("watch", "jobs", "--pool", "x")
    assert "exclude each other" in cli.fails("events", "--snapshot", "--since", "3")


def test_events_since_replays_the_log_with_seq(cli: Cli, logged_in: LiveServer) -> None:
    with GarmClient.from_profile() as garm:
        endpoint_churn(garm)
    result = cli("events", "--entity", "github_endpoint", "--since", "0", "--count", "6")
    frames = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(f["operation"], f["payload"]["name"]) for f in frames] == [
        ("create", "github.com"),
        ("create", "a.example.com"),
        ("update", "a.example.com"),
        ("create", "b.example.com"),
        ("delete", "a.example.com"),
        ("delete", "b.example.com"),
    ]
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(set(seqs))


def test_events_match_and_ack(cli: Cli, logged_in: LiveServer) -> None:
    with GarmClient.from_profile() as garm:
        endpoint_churn(garm)
    replayed = cli("events", "--since", "0", "--match", "name=a.example.com", "--count", "3").stdout
    assert [(f["operation"], f["payload"]["name"]) for f in map(orjson.loads, replayed.splitlines())] == [
        ("create", "a.example.com"),
        ("update", "a.example.com"),
        ("delete", "a.example.com"),
    ]
    args = ["--snapshot", "--ack", "--entity", "github_endpoint", "--match", "name=github.com"]
    ack, snapshot = map(orjson.loads, cli("events", *args, "--count", "1").stdout.splitlines())
    assert ack["control"] == "filter-ack" and isinstance(ack["seq"], int)
    assert (snapshot["operation"], snapshot["payload"]["name"]) == ("snapshot", "github.com")
    assert snapshot["seq"] >= ack["seq"]


def next_line(process: Process, needle: str) -> str:
    """The next stdout line containing ``needle`` (earlier lines are dropped)."""
    deadline = time.monotonic() + 60  # a new process imports the app: slow on a loaded machine
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = process.frames.get(timeout=remaining).decode()
        except queue.Empty:
            break
        if needle in line:
            return line
    raise AssertionError(f"no line with {needle!r}")


def test_watch_prints_the_snapshot_then_each_change(cli: Cli, logged_in: LiveServer) -> None:
    add_pat_credentials(cli)
    add = ["--credentials", "gh-pat", "--webhook-secret", WEBHOOK_SECRET]
    first = cli.json("repo", "add", "--owner", "octo", "--name", "first", *add)
    with pygarm_events("watch", "repos") as process:
        assert next_line(process, "octo/first").split()[1] == "snapshot"
        second = cli.json("repo", "add", "--owner", "octo", "--name", "second", *add)
        assert next_line(process, "octo/second").split()[1] == "create"
        cli("repo", "delete", first["id"])
        assert next_line(process, first["id"]).split()[1] == "delete"
        assert process.interrupt() == 0, process.stderr
    assert second["id"]


def test_events_snapshot_then_snapshot_end(logged_in: LiveServer) -> None:
    with pygarm_events("events", "--snapshot", "--entity", "github_endpoint", "--count", "1") as process:
        assert process.wait(60) == 0, process.stderr
    frame = orjson.loads(process.frames.get_nowait())
    assert (frame["operation"], frame["payload"]["name"]) == ("snapshot", "github.com")


MIRROR_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "state_mirror.py"


@pytest.mark.slow  # a process
def test_state_mirror_example_without_a_profile_says_so_in_one_line(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(MIRROR_EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("state_mirror: no profile in ") and result.stderr.count("\n") == 1


def test_state_mirror_example_follows_changes(logged_in: LiveServer) -> None:
    example = Process([sys.executable, str(MIRROR_EXAMPLE)])
    try:
        assert next_line(example, "mirroring").startswith("mirroring http://127.0.0.1:")
        assert example.interrupt() == 0, example.stderr
    finally:
        if example.proc.poll() is None:
            example.proc.kill()


class FakeMirror:
    """What ``_live`` uses of a mirror: ``state``, ``seq``, ``error`` and ``on_change``."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {"instance": {}}
        self.seq: int | None = 1
        self._error: Exception | None = None
        self.error_reads = 0
        self.callbacks: list[Any] = []

    @property
    def error(self) -> Exception | None:
        """``_live`` reads this once per pass of its loop: the reads count the passes."""
        self.error_reads += 1
        return self._error

    @error.setter
    def error(self, error: Exception | None) -> None:
        self._error = error

    def on_change(self, callback: Any) -> Any:
        self.callbacks.append(callback)
        return callback

    def change(self, instance: Instance, seq: int) -> None:
        self.state["instance"][instance.name] = instance
        self.seq = seq
        for callback in self.callbacks:
            callback("instance", "create", instance)


def test_live_table_is_redrawn_after_a_change(capsys: pytest.CaptureFixture[str]) -> None:
    mirror = FakeMirror()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            _live(mirror, VIEWS[Kind.runners], Kind.runners)  # type: ignore[arg-type]
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: mirror.error_reads > 0, "the live table's first pass")
    mirror.change(Instance(name="late-runner", status="running", pool_id="p"), seq=9)
    # Two more passes: the one the change woke (it redraws the table) has ended. Off a terminal, rich
    # prints the table only when the view stops, so the output cannot be watched for the redraw (the
    # test used to wait 10 s for it in vain); what it prints then is the table as last redrawn.
    changed_at = mirror.error_reads
    wait_until(lambda: mirror.error_reads >= changed_at + 2, "the live table's pass after the change")
    mirror.error = RuntimeError("stop")
    thread.join(timeout=10)
    out = capsys.readouterr().out
    assert [str(exc) for exc in failures] == ["stop"]
    assert "late-runner" in out and "runners (1) seq 9" in out
