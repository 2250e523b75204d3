"""The exit codes ``docs/cli.md`` documents, checked against real ``pygarm`` processes: each example of
its table is run as written; Ctrl-C is a real Ctrl-C typed on a pseudo-terminal."""

from __future__ import annotations

import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from pygarm.client import Profile, ProfileFile

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = REPO_ROOT / "docs" / "cli.md"
EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.py"))
PYGARM = [sys.executable, "-m", "pygarm.cli"]
WAIT_S = 30.0


def documented_codes() -> dict[int, str]:
    """``{exit code: example command}`` from the table under ``## Exit codes``."""
    section = CLI_DOC.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \|[^|]*\| `([^`]+)`", section, flags=re.MULTILINE)
    return {int(code): example for code, example in rows}


def argv(example: str) -> list[str]:
    words = shlex.split(example)
    assert words[0] == "pygarm"
    return [*PYGARM, *words[1:]]


def env(home: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYGARM_PROFILE", "PYGARM_FORMAT")}
    return {**clean, "HOME": str(home), "PYTHONUNBUFFERED": "1"}


def run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env(home), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=WAIT_S
    )


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_the_table_documents_each_code_once() -> None:
    assert sorted(documented_codes()) == [0, 1, 2, 130]


@pytest.mark.parametrize("code", [0, 1, 2])
def test_each_documented_example_exits_with_its_code(code: int, home: Path) -> None:
    result = run(argv(documented_codes()[code]), home)
    assert result.returncode == code, result.stderr
    if code:
        one_error_line(result.stderr)


class Terminal:
    """``pygarm`` on a pseudo-terminal that is its controlling terminal, so ``\\x03`` is a real Ctrl-C."""

    def __init__(self, args: list[str], home: Path) -> None:
        self.master, slave = os.openpty()
        attach = (
            "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0);"
            " os.execv(sys.argv[1], sys.argv[1:])"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", attach, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env(home),
            start_new_session=True,
        )
        os.close(slave)
        self.screen = b""

    def wait_for(self, text: bytes) -> None:
        deadline = time.monotonic() + WAIT_S
        while text not in self.screen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} never appeared: {self.screen!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                self.screen += os.read(self.master, 4096)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def exit_code(self) -> int:
        """Wait for the exit, then read what is left on the screen."""
        try:
            code = self.proc.wait(WAIT_S)
            while select.select([self.master], [], [], 1.0)[0]:
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # EIO: the terminal's last writer is gone
                    break
                if not data:
                    break
                self.screen += data
            return code
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self.master)


def test_ctrl_c_at_the_password_prompt_exits_130(home: Path) -> None:
    terminal = Terminal(argv(documented_codes()[130]), home)
    terminal.wait_for(b"Password: ")
    terminal.type(b"\x03")
    assert terminal.exit_code() == 130
    assert b"Traceback" not in terminal.screen and b"Aborted" not in terminal.screen
    assert ProfileFile.load().get("x") is None


def test_end_of_input_at_the_prompt_is_one_error_line(home: Path) -> None:
    terminal = Terminal(argv(documented_codes()[130]), home)
    terminal.wait_for(b"Password: ")
    terminal.type(b"\x04")  # Ctrl-D
    assert terminal.exit_code() == 1
    assert b"error: no input" in terminal.screen and b"Traceback" not in terminal.screen


def test_ctrl_c_during_a_request_exits_130(home: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts, never answers
        profiles = ProfileFile.load()
        profiles.add(Profile("silent", f"http://127.0.0.1:{server.getsockname()[1]}", "token"))
        profiles.save()
        process = subprocess.Popen(
            [*PYGARM, "repo", "list"], env=env(home), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        server.settimeout(WAIT_S)
        connection, _ = server.accept()
        with connection:
            connection.recv(4096)  # the request arrived: the command is waiting for the answer
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == 130
    assert stderr.strip() == ""


def test_usage_errors_of_the_root_command_are_one_line(home: Path) -> None:
    for args in (["--bogus"], ["--profile"], ["nope"], ["pool", "list", "--bogus"]):
        result = run([*PYGARM, *args], home)
        assert result.returncode == 2, result.stderr
        assert "╭" not in one_error_line(result.stderr)


def test_version(home: Path) -> None:
    result = run([*PYGARM, "--version"], home)
    assert result.returncode == 0
    assert result.stdout == f"pygarm {version('pygarm')} (GARM v0.1.5 compatible)\n"


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_examples_without_a_profile_fail_with_one_line(example: Path, home: Path) -> None:
    result = run([sys.executable, str(example)], home)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no profile" in lines[0] and "pygarm init" in lines[0], result.stderr
