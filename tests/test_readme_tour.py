"""README.md's five-minute tour, run as written: the demo in terminal 1, the three event followers of
terminal 2, the commands of terminal 3, each one exactly as the README prints it (comments cut off). The
followers must see the job and the runners come and go.

Two substitutions, both stated in the README: ``./scripts/serve --demo`` is ``pygarm demo`` (the script only
sets up ``.venv`` first, which the test's own environment already is), and ``source .venv/bin/activate`` is
this interpreter's ``bin`` directory first on ``PATH``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.live import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEMO_COMMAND = "./scripts/serve --demo"


def tour_blocks() -> list[list[str]]:
    """The tour's bash blocks, as lists of commands without their comments."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    commands = [[line.split("  #", 1)[0].strip() for line in b.splitlines() if line.strip()] for b in blocks]
    return commands


@dataclass
class Terminal:
    command: str
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text()


class Tour:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.env = {
            **os.environ,
            "HOME": str(tmp / "home"),
            "PYGARM_DATA_DIR": str(tmp / "data"),
            "PYGARM_DEMO_PORT": str(self.port),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "COLUMNS": "200",
        }
        self.env.pop("PYGARM_PROFILE", None)
        self.background: list[Terminal] = []

    def start(self, command: str) -> Terminal:
        log = self.tmp / f"terminal-{len(self.background)}.log"
        handle = log.open("w")
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        terminal = Terminal(command, process, log)
        self.background.append(terminal)
        return terminal

    def run(self, command: str) -> str:
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"{command!r} exited {done.returncode}: {done.stderr}"
        return done.stdout + done.stderr

    def wait_for(self, what: str, check: object, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            for terminal in self.background:
                assert terminal.process.poll() is None, f"{terminal.command!r} ended: {terminal.output()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def connected(self, terminal: Terminal) -> bool:
        """The follower's process holds an established connection to the demo server."""
        connections = psutil.Process(terminal.process.pid).net_connections(kind="tcp")
        return any(c.status == "ESTABLISHED" and c.raddr and c.raddr[1] == self.port for c in connections)

    def stop_all(self) -> None:
        for terminal in reversed(self.background):
            if terminal.process.poll() is None:
                os.killpg(terminal.process.pid, signal.SIGINT)
        for terminal in self.background:
            try:
                terminal.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(terminal.process.pid, signal.SIGKILL)
                terminal.process.wait()


@pytest.fixture
def tour(tmp_path: Path) -> Iterator[Tour]:
    running = Tour(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def frames(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_serve_demo_is_pygarm_demo() -> None:
    """The one substitution the tour test makes is what the script does."""
    script = (ROOT / "scripts" / "serve").read_text()
    branch = r'if \[ "\$\{1:-\}" = "--demo" \]; then\s+shift\s+exec \.venv/bin/pygarm demo "\$@"'
    assert re.search(branch, script)


def test_readme_tour_shows_runner_and_job_events(tour: Tour) -> None:
    terminal1, terminal2, terminal3 = tour_blocks()
    assert terminal1 == [DEMO_COMMAND]
    assert terminal2[0] == terminal3[0] == "source .venv/bin/activate"

    demo = tour.start("pygarm demo")
    tour.wait_for("the demo to be ready", lambda: "The demo is ready" in demo.output())

    demo_dir = tour.tmp / "data" / "demo"
    for secret_file in ("config.toml", "demo.json"):  # secrets: JWT key, passphrase, admin password
        assert (demo_dir / secret_file).stat().st_mode & 0o777 == 0o600, secret_file

    followers = [tour.start(command) for command in terminal2[1:]]
    for follower in followers:
        tour.wait_for(f"{follower.command!r} to connect", lambda f=follower: tour.connected(f))

    outputs = [tour.run(command) for command in terminal3[1:]]
    before, job, after, password = outputs
    assert before.count(" idle ") == 2, before
    assert re.search(r"job \d+: completed", job), job
    assert after.count(" idle ") >= 1, after

    login = {"username": "admin", "password": password.strip()}
    signed_in = httpx.post(f"http://127.0.0.1:{tour.port}/api/v1/auth/login", json=login, timeout=10)
    assert signed_in.status_code == 200, "the printed password signs in (the dashboard's form does the same)"

    pretty, filtered, python_reader = followers

    def seen_everything() -> bool:
        pretty_text = pretty.output()
        ops = {(f["entity-type"], f["operation"]) for f in frames(python_reader.output())}
        return (
            re.search(r"job\s+delete", pretty_text) is not None
            and re.search(r"instance\s+delete", pretty_text) is not None
            and {("job", "delete"), ("instance", "delete")} <= ops
            and {("job", "delete"), ("instance", "delete")}
            <= {(f["entity-type"], f["operation"]) for f in frames(filtered.output())}
        )

    tour.wait_for("job and instance events in terminal 2", seen_everything)
    filtered_ops = {(f["entity-type"], f["operation"]) for f in frames(filtered.output())}
    assert filtered_ops <= {
        ("job", "create"),
        ("job", "update"),
        ("job", "delete"),
        ("instance", "create"),
        ("instance", "delete"),
    }, filtered_ops
    assert ("job", "update") in filtered_ops

    os.killpg(demo.process.pid, signal.SIGTERM)
    assert demo.process.wait(timeout=30) == 0, "a demo stopped with SIGTERM exits 0, like pygarm serve"
